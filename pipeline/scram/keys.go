package scram

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"strings"
)

// The primitives of RFC 5802 section 3, shared by the client and the
// server side.

// Mechanism is a SCRAM variant under Kafka's name for it.
type Mechanism struct {
	// Name is Kafka's name: SCRAM-SHA-256 or SCRAM-SHA-512.
	Name string
	// Hash is the variant's hash function.
	Hash func() hash.Hash
}

// The mechanisms Kafka offers.
var (
	SHA256 = Mechanism{Name: "SCRAM-SHA-256", Hash: sha256.New}
	SHA512 = Mechanism{Name: "SCRAM-SHA-512", Hash: sha512.New}
)

// Mechanisms lists SHA256 and SHA512.
var Mechanisms = []Mechanism{SHA256, SHA512}

// MechanismByName returns the mechanism Kafka calls name.
func MechanismByName(name string) (Mechanism, bool) {
	for _, m := range Mechanisms {
		if m.Name == name {
			return m, true
		}
	}
	return Mechanism{}, false
}

// Kafka's bounds on a credential's iteration count.
const (
	MinIterations = 4096
	MaxIterations = 16384
)

// Credential is what a server keeps of a password (RFC 5802 section 5):
// enough to check a client's proof and to prove itself, not enough to log
// in as the user.
type Credential struct {
	Salt       []byte
	Iterations int
	StoredKey  []byte
	ServerKey  []byte
}

// SaltedPassword is Hi(password, salt, iterations).
func SaltedPassword(h func() hash.Hash, password string, salt []byte, iterations int) ([]byte, error) {
	k, err := pbkdf2.Key(h, password, salt, iterations, h().Size())
	if err != nil {
		return nil, fmt.Errorf("scram: %w", err)
	}
	return k, nil
}

// HMAC is HMAC(key, msg) with h.
func HMAC(h func() hash.Hash, key []byte, msg string) []byte {
	m := hmac.New(h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// ClientKey is HMAC(SaltedPassword, "Client Key").
func ClientKey(h func() hash.Hash, salted []byte) []byte { return HMAC(h, salted, "Client Key") }

// ServerKey is HMAC(SaltedPassword, "Server Key").
func ServerKey(h func() hash.Hash, salted []byte) []byte { return HMAC(h, salted, "Server Key") }

// StoredKey is H(ClientKey).
func StoredKey(h func() hash.Hash, clientKey []byte) []byte {
	d := h()
	d.Write(clientKey)
	return d.Sum(nil)
}

// NewCredential derives the credential of password with salt; a nil salt
// is replaced by a random one.
func (m Mechanism) NewCredential(password string, salt []byte, iterations int) (Credential, error) {
	if iterations < MinIterations || iterations > MaxIterations {
		return Credential{}, fmt.Errorf("scram: %d iterations: want %d to %d", iterations, MinIterations, MaxIterations)
	}
	if salt == nil {
		salt = make([]byte, 32)
		_, _ = rand.Read(salt)
	}
	salted, err := SaltedPassword(m.Hash, password, salt, iterations)
	if err != nil {
		return Credential{}, err
	}
	return Credential{Salt: salt, Iterations: iterations,
		StoredKey: StoredKey(m.Hash, ClientKey(m.Hash, salted)), ServerKey: ServerKey(m.Hash, salted)}, nil
}

// xor returns a XOR b; they have the same length.
func xor(a, b []byte) []byte {
	out := make([]byte, len(a))
	for i := range a {
		out[i] = a[i] ^ b[i]
	}
	return out
}

var nameEscaper = strings.NewReplacer("=", "=3D", ",", "=2C")

// saslName escapes ',' and '=' in a user name, as RFC 5802 asks.
func saslName(s string) string { return nameEscaper.Replace(s) }

// unescapeName undoes saslName, refusing a '=' that starts neither escape.
func unescapeName(s string) (string, bool) {
	if !strings.Contains(s, "=") {
		return s, true
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", false
		}
		i += 2
	}
	return b.String(), true
}
