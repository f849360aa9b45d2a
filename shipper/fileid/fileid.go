// Package fileid gives log files an identity that follows their content
// rather than their name or inode.
//
// A file at least FingerprintSize bytes long is known by a fingerprint, a
// hash of its first FingerprintSize bytes. Renaming keeps it; a copy (the
// `access_log.1` of copytruncate rotation) has the same one, so it is
// recognised as content already partly read; a new file that happens to get
// a recycled inode has another one.
//
// A file shorter than that is known by its device and inode together with a
// hash of the bytes it had when last seen (its head), which must still be
// there: the head check tells a file that grew from a new file that took
// over a recycled inode. Once such a file reaches FingerprintSize bytes its
// head becomes a full fingerprint; its ID, fixed when it was first seen,
// does not change, so the ids of its lines stay stable.
//
// Everything here is pure: callers read the head and stat the file.
package fileid

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// FingerprintSize is how many leading bytes make a fingerprint, as in
// Filebeat's fingerprint file identity.
const FingerprintSize = 1024

// Observed is a file as seen on disk now.
type Observed struct {
	Dev, Ino uint64
	// Head holds the file's first min(size, FingerprintSize) bytes.
	Head []byte
}

// Known is what is remembered of a file between sightings.
type Known struct {
	// ID is the file's identity, fixed when it was first seen.
	ID string `json:"id"`
	// Dev and Ino are where the file was last seen.
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
	// HeadLen is how many leading bytes HeadHash covers (at most
	// FingerprintSize); HeadLen == FingerprintSize makes HeadHash the
	// fingerprint.
	HeadLen  int    `json:"head_len"`
	HeadHash string `json:"head_hash"`
}

// Hash returns the hash used for heads and fingerprints: the first 128
// bits of SHA-256, in hex.
func Hash(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// Fingerprinted reports whether k is known by a full fingerprint.
func (k *Known) Fingerprinted() bool { return k.HeadLen >= FingerprintSize }

// Fingerprint returns o's fingerprint and true, or "" and false while the
// file is too short to have one.
func (o Observed) Fingerprint() (string, bool) {
	if len(o.Head) < FingerprintSize {
		return "", false
	}
	return Hash(o.Head[:FingerprintSize]), true
}

// Matches reports whether o is the file k remembers: by fingerprint when k
// has one, else by device, inode and head.
func (o Observed) Matches(k *Known) bool {
	if k.Fingerprinted() {
		fp, ok := o.Fingerprint()
		return ok && fp == k.HeadHash
	}
	if o.Dev != k.Dev || o.Ino != k.Ino || len(o.Head) < k.HeadLen {
		return false
	}
	return Hash(o.Head[:k.HeadLen]) == k.HeadHash
}

// New returns the identity of a file seen for the first time. A file with
// a fingerprint is named by it; a shorter one by its device and inode and
// nonce, which the caller makes unique (a clock reading will do) so that a
// later file on a recycled inode gets another name.
func New(o Observed, nonce string) Known {
	k := Known{Dev: o.Dev, Ino: o.Ino}
	k.Update(o)
	if k.Fingerprinted() {
		k.ID = "fp-" + k.HeadHash
	} else {
		k.ID = "ino-" + strconv.FormatUint(o.Dev, 10) + "-" + strconv.FormatUint(o.Ino, 10) + "-" + nonce
	}
	return k
}

// Update records o, which Matches k, as k's latest sighting: its place on
// disk and, while k is still short, its longer head. It reports whether
// anything changed.
func (k *Known) Update(o Observed) bool {
	changed := k.Dev != o.Dev || k.Ino != o.Ino
	k.Dev, k.Ino = o.Dev, o.Ino
	if !k.Fingerprinted() && len(o.Head) > k.HeadLen {
		n := min(len(o.Head), FingerprintSize)
		k.HeadLen, k.HeadHash = n, Hash(o.Head[:n])
		changed = true
	} else if k.HeadLen == 0 && k.HeadHash == "" {
		k.HeadHash = Hash(nil)
		changed = true
	}
	return changed
}
