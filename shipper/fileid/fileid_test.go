package fileid

import (
	"bytes"
	"strings"
	"testing"
)

func head(content string) []byte {
	b := []byte(content)
	return b[:min(len(b), FingerprintSize)]
}

func long(prefix string) string { return prefix + strings.Repeat("x", FingerprintSize) }

// TestScenarios walks through what happens to files on disk and checks
// which sightings are recognised as the same file.
func TestScenarios(t *testing.T) {
	t.Run("renamed long file keeps its identity", func(t *testing.T) {
		k := New(Observed{Dev: 1, Ino: 10, Head: head(long("a"))}, "n1")
		if !strings.HasPrefix(k.ID, "fp-") || !k.Fingerprinted() {
			t.Fatalf("id %q", k.ID)
		}
		// Same content, another inode: a copy (copytruncate's access_log.1).
		if !(Observed{Dev: 1, Ino: 11, Head: head(long("a"))}).Matches(&k) {
			t.Fatal("copy not recognised")
		}
		// Another content on the same inode: a recycled inode.
		if (Observed{Dev: 1, Ino: 10, Head: head(long("b"))}).Matches(&k) {
			t.Fatal("recycled inode taken for the old file")
		}
		// Truncated and refilled with a few bytes.
		if (Observed{Dev: 1, Ino: 10, Head: head("a")}).Matches(&k) {
			t.Fatal("short file matched a fingerprint")
		}
	})
	t.Run("short file grows into a fingerprint and keeps its id", func(t *testing.T) {
		k := New(Observed{Dev: 1, Ino: 20, Head: head("line 1\n")}, "n2")
		if k.ID != "ino-1-20-n2" || k.Fingerprinted() || k.HeadLen != 7 {
			t.Fatalf("%+v", k)
		}
		grown := Observed{Dev: 1, Ino: 20, Head: head("line 1\nline 2\n")}
		if !grown.Matches(&k) {
			t.Fatal("grown file not recognised")
		}
		if !k.Update(grown) || k.HeadLen != 14 {
			t.Fatalf("update: %+v", k)
		}
		full := Observed{Dev: 1, Ino: 20, Head: head(long("line 1\nline 2\n"))}
		if !full.Matches(&k) {
			t.Fatal("file past the fingerprint size not recognised")
		}
		k.Update(full)
		if !k.Fingerprinted() || k.ID != "ino-1-20-n2" {
			t.Fatalf("after growing: %+v", k)
		}
		// Now a copy is recognised by content.
		if !(Observed{Dev: 1, Ino: 99, Head: full.Head}).Matches(&k) {
			t.Fatal("copy of the grown file not recognised")
		}
		if k.Update(Observed{Dev: 1, Ino: 20, Head: full.Head}) {
			t.Fatal("update without change reported a change")
		}
	})
	t.Run("recycled inode of a short file is a new file", func(t *testing.T) {
		k := New(Observed{Dev: 1, Ino: 30, Head: head("first file\n")}, "n3")
		if (Observed{Dev: 1, Ino: 30, Head: head("other file\n")}).Matches(&k) {
			t.Fatal("different head matched")
		}
		if (Observed{Dev: 1, Ino: 30, Head: head("first")}).Matches(&k) {
			t.Fatal("shorter file (truncated) matched")
		}
		if (Observed{Dev: 2, Ino: 30, Head: head("first file\n")}).Matches(&k) {
			t.Fatal("other device matched")
		}
		n := New(Observed{Dev: 1, Ino: 30, Head: head("other file\n")}, "n4")
		if n.ID == k.ID {
			t.Fatal("new file on a recycled inode got the old id")
		}
	})
	t.Run("empty file", func(t *testing.T) {
		k := New(Observed{Dev: 1, Ino: 40}, "n5")
		if k.HeadLen != 0 || k.HeadHash != Hash(nil) {
			t.Fatalf("%+v", k)
		}
		if !(Observed{Dev: 1, Ino: 40, Head: head("now with text")}).Matches(&k) {
			t.Fatal("empty file that grew not recognised")
		}
	})
	t.Run("fingerprint uses exactly the first bytes", func(t *testing.T) {
		a := bytes.Repeat([]byte("a"), FingerprintSize)
		o := Observed{Head: a}
		fp, ok := o.Fingerprint()
		if !ok || fp != Hash(a) {
			t.Fatal("fingerprint")
		}
		if _, ok := (Observed{Head: a[:FingerprintSize-1]}).Fingerprint(); ok {
			t.Fatal("short file has a fingerprint")
		}
	})
}
