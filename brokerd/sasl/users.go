package sasl

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"
)

// PlainUsers are the PLAIN accounts of sasl.plain.users.file: a YAML
// mapping of user name to bcrypt hash,
//
//	shipper: $2a$12$Qm7f…
//	indexer: $2a$12$8sLk…
//
// The file is read again when its size or modification time changes, at
// the next login after the change; a file that no longer parses keeps the
// accounts last read, and the error is reported by Err.
type PlainUsers struct {
	path string

	mu    sync.Mutex
	size  int64
	mod   time.Time
	users map[string][]byte
	err   error
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

// decoyHash is compared with for a user that does not exist, so that an
// unknown name takes as long to refuse as a wrong password.
var decoyHash, _ = bcrypt.GenerateFromPassword([]byte("no such user"), bcrypt.DefaultCost)

// Check reports whether pass is user's password.
func (u *PlainUsers) Check(user, pass string) bool {
	u.mu.Lock()
	if st, err := os.Stat(u.path); err == nil && (st.Size() != u.size || !st.ModTime().Equal(u.mod)) {
		u.err = u.reload()
	}
	hash, ok := u.users[user]
	u.mu.Unlock()
	if !ok {
		hash = decoyHash
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(pass)) == nil && ok
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
	users, err := ParsePlainUsers(b)
	if err != nil {
		return fmt.Errorf("sasl: plain users file %s: %w", u.path, err)
	}
	u.users, u.size, u.mod = users, st.Size(), st.ModTime()
	return nil
}

// ParsePlainUsers parses the users file's content.
func ParsePlainUsers(b []byte) (map[string][]byte, error) {
	var raw map[string]string
	if len(bytes.TrimSpace(b)) > 0 {
		if err := yaml.Unmarshal(b, &raw); err != nil {
			return nil, err
		}
	}
	users := make(map[string][]byte, len(raw))
	for name, hash := range raw {
		if name == "" || strings.ContainsRune(name, 0) {
			return nil, fmt.Errorf("user name %q is not valid", name)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("user %s: not a bcrypt hash: %w", name, err)
		}
		users[name] = []byte(hash)
	}
	return users, nil
}
