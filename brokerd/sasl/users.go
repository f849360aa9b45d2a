package sasl

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"
)

// PlainUsers are the PLAIN accounts of sasl.plain.users.file: a YAML
// mapping of user name to a bcrypt hash or an argon2id (or argon2i) hash
// in the PHC string format,
//
//	shipper: $2a$12$Qm7f…
//	indexer: $argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$8sLk…
//
// The file is read again when its size or modification time changes, at
// the next login after the change; a file that no longer parses keeps the
// accounts last read, and the error is reported by Err.
type PlainUsers struct {
	path string

	mu    sync.Mutex
	size  int64
	mod   time.Time
	users map[string]passwordHash
	// decoy is checked for a user that does not exist, so that an
	// unknown name takes as long to refuse as a wrong password: the hash
	// of one of the users, as costly as theirs.
	decoy passwordHash
	err   error
}

// passwordHash is one account's hash.
type passwordHash interface {
	// matches reports whether pass is the password hashed.
	matches(pass []byte) bool
}

// bcryptHash is a bcrypt hash ($2a$, $2b$ or $2y$).
type bcryptHash []byte

func (h bcryptHash) matches(pass []byte) bool {
	return bcrypt.CompareHashAndPassword(h, pass) == nil
}

// OpenPlainUsers reads the file at path.
func OpenPlainUsers(path string) (*PlainUsers, error) {
	u := &PlainUsers{path: path}
	u.mu.Lock()
	defer u.mu.Unlock()
	if err := u.reload(); err != nil {
		return nil, err
	}
	return u, nil
}

// emptyDecoy is the decoy of a file without users.
var emptyDecoy = func() passwordHash {
	h, _ := bcrypt.GenerateFromPassword([]byte("no such user"), bcrypt.DefaultCost)
	return bcryptHash(h)
}()

// Check reports whether pass is user's password.
func (u *PlainUsers) Check(user, pass string) bool {
	u.mu.Lock()
	if st, err := os.Stat(u.path); err == nil && (st.Size() != u.size || !st.ModTime().Equal(u.mod)) {
		u.err = u.reload()
	}
	hash, ok := u.users[user]
	if !ok {
		hash = u.decoy
	}
	u.mu.Unlock()
	return hash.matches([]byte(pass)) && ok
}

// Err returns why the file could not be read again, nil if it was.
func (u *PlainUsers) Err() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

// reload reads the file; u.mu is held.
func (u *PlainUsers) reload() error {
	st, err := os.Stat(u.path)
	if err != nil {
		return fmt.Errorf("sasl: plain users file: %w", err)
	}
	b, err := os.ReadFile(u.path)
	if err != nil {
		return fmt.Errorf("sasl: plain users file: %w", err)
	}
	users, err := parsePlainUsers(b)
	if err != nil {
		return fmt.Errorf("sasl: plain users file %s: %w", u.path, err)
	}
	u.users, u.size, u.mod = users, st.Size(), st.ModTime()
	u.decoy = emptyDecoy
	if names := slices.Sorted(maps.Keys(users)); len(names) > 0 {
		u.decoy = users[names[0]]
	}
	return nil
}

// parsePlainUsers parses the users file's content.
func parsePlainUsers(b []byte) (map[string]passwordHash, error) {
	var raw map[string]string
	if len(bytes.TrimSpace(b)) > 0 {
		if err := yaml.Unmarshal(b, &raw); err != nil {
			return nil, err
		}
	}
	users := make(map[string]passwordHash, len(raw))
	for name, hash := range raw {
		if name == "" || strings.ContainsRune(name, 0) {
			return nil, fmt.Errorf("user name %q is not valid", name)
		}
		h, err := parseHash(hash)
		if err != nil {
			return nil, fmt.Errorf("user %s: %w", name, err)
		}
		users[name] = h
	}
	return users, nil
}

// parseHash reads a bcrypt or argon2 hash.
func parseHash(s string) (passwordHash, error) {
	if strings.HasPrefix(s, "$argon2") {
		return parseArgon2(s)
	}
	if _, err := bcrypt.Cost([]byte(s)); err != nil {
		return nil, fmt.Errorf("not a bcrypt or argon2 hash: %w", err)
	}
	return bcryptHash(s), nil
}
