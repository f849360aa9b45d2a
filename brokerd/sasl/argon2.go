package sasl

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/sync/semaphore"
)

// Bounds on the argon2 hashes a users file may hold. A hash's memory is
// taken at every login of its user, so it is capped, and so is the memory
// all logins in progress take together.
const (
	// maxArgon2KiB is the most memory one hash may ask for (256 MiB).
	maxArgon2KiB = 256 << 10
	// maxArgon2Passes bounds the number of passes over that memory.
	maxArgon2Passes = 64
	// argon2BudgetKiB is the memory that logins checking argon2 hashes
	// may hold at once (512 MiB): two of the largest, more of smaller
	// ones; the others wait their turn.
	argon2BudgetKiB = 2 * maxArgon2KiB
)

var argon2Budget = semaphore.NewWeighted(argon2BudgetKiB)

// argon2Hash is an argon2i or argon2id hash in the PHC string format that
// the argon2 tool (-e) and most libraries print:
//
//	$argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>
//
// with the salt and hash in base64 without padding.
type argon2Hash struct {
	id      bool   // argon2id, else argon2i
	memory  uint32 // KiB
	passes  uint32
	threads uint8
	salt    []byte
	key     []byte
}

// parseArgon2 reads s, which starts with "$argon2".
func parseArgon2(s string) (*argon2Hash, error) {
	f := strings.Split(s, "$")
	if len(f) == 5 && strings.HasPrefix(f[2], "m=") {
		return nil, errors.New("argon2 hash without a version, as version 1.0 wrote them: not served, want v=19")
	}
	if len(f) != 6 || f[0] != "" {
		return nil, errors.New(`not an argon2 hash: want $argon2id$v=19$m=…,t=…,p=…$salt$hash`)
	}
	h := &argon2Hash{}
	switch f[1] {
	case "argon2id":
		h.id = true
	case "argon2i":
	case "argon2d":
		return nil, errors.New("argon2d is not served (it is not meant for passwords): use argon2id")
	default:
		return nil, fmt.Errorf("unknown argon2 variant %q: use argon2id", f[1])
	}
	if f[2] != "v=19" {
		return nil, fmt.Errorf("argon2 version %q is not served: want v=19 (version 1.3, the argon2 tool's default)", f[2])
	}
	params := strings.Split(f[3], ",")
	if len(params) != 3 {
		return nil, fmt.Errorf("argon2 parameters %q: want m=…,t=…,p=…", f[3])
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(params[i], name+"=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil {
			return nil, fmt.Errorf("argon2 parameters %q: want m=…,t=…,p=…", f[3])
		}
		vals[i] = n
	}
	m, t, p := vals[0], vals[1], vals[2]
	switch {
	case p < 1 || p > 255:
		return nil, fmt.Errorf("argon2 parallelism p=%d: want 1 to 255", p)
	case m < 8*p:
		return nil, fmt.Errorf("argon2 memory m=%d KiB: want at least 8 KiB per lane (p=%d)", m, p)
	case m > maxArgon2KiB:
		return nil, fmt.Errorf("argon2 memory m=%d KiB: above %d KiB (256 MiB), the most brokerd spends on one login", m, maxArgon2KiB)
	case t < 1 || t > maxArgon2Passes:
		return nil, fmt.Errorf("argon2 passes t=%d: want 1 to %d", t, maxArgon2Passes)
	}
	h.memory, h.passes, h.threads = uint32(m), uint32(t), uint8(p)
	var err error
	if h.salt, err = base64.RawStdEncoding.Strict().DecodeString(f[4]); err != nil || len(h.salt) < 8 {
		return nil, errors.New("argon2 salt: want at least 8 bytes in base64 without padding")
	}
	if h.key, err = base64.RawStdEncoding.Strict().DecodeString(f[5]); err != nil || len(h.key) < 16 || len(h.key) > 128 {
		return nil, errors.New("argon2 hash: want 16 to 128 bytes in base64 without padding")
	}
	return h, nil
}

// NewArgon2idHash hashes pass with argon2id under the second set of
// parameters RFC 9106 recommends (64 MiB, 3 passes, 4 lanes), a random
// 16-byte salt and a 32-byte tag, in the PHC string format.
func NewArgon2idHash(pass []byte) string {
	salt := make([]byte, 16)
	_, _ = rand.Read(salt) // never fails (crypto/rand)
	return argon2idPHC(pass, salt)
}

// argon2idPHC is NewArgon2idHash with the salt given.
func argon2idPHC(pass, salt []byte) string {
	const memory, passes, lanes = 64 << 10, 3, 4
	key := argon2.IDKey(pass, salt, passes, memory, lanes, 32)
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", memory, passes, lanes,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// matches reports whether pass hashes to h, once the memory it takes is
// within the budget.
func (h *argon2Hash) matches(pass []byte) bool {
	_ = argon2Budget.Acquire(context.Background(), int64(h.memory))
	defer argon2Budget.Release(int64(h.memory))
	derive := argon2.Key
	if h.id {
		derive = argon2.IDKey
	}
	got := derive(pass, h.salt, h.passes, h.memory, h.threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(got, h.key) == 1
}
