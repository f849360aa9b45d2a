package sasl

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"logpipe/pipeline/scram"
)

func hash(t *testing.T, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// TestPlainUsersReload checks logins against the users file and that a
// changed file is read again at the next login, while a broken one keeps
// the accounts read before.
func TestPlainUsersReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.yml")
	write := func(body string, at time.Time) {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		_ = os.Chtimes(path, at, at)
	}
	now := time.Now()
	write("alice: "+hash(t, "a-pw")+"\n", now)
	u, err := OpenPlainUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	if !u.Check("alice", "a-pw") || u.Check("alice", "wrong") || u.Check("bob", "b-pw") {
		t.Fatal("first file: want alice/a-pw only")
	}
	write("bob: "+hash(t, "b-pw")+"\n", now.Add(time.Second))
	if u.Check("alice", "a-pw") || !u.Check("bob", "b-pw") {
		t.Fatal("after the change: want bob/b-pw only")
	}
	write("bob: not-a-hash\n", now.Add(2*time.Second))
	if !u.Check("bob", "b-pw") || u.Err() == nil {
		t.Fatalf("a broken file: want the previous accounts kept and an error, got error %v", u.Err())
	}
	if _, err := OpenPlainUsers(path); err == nil {
		t.Fatal("opening a broken file succeeded")
	}
}

func TestExchanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.yml")
	if err := os.WriteFile(path, []byte("alice: "+hash(t, "a-pw")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	users, err := OpenPlainUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	cred, _ := scram.SHA512.NewCredential("s-pw", nil, scram.MinIterations)
	a := &Authenticator{Enabled: []string{Plain, "SCRAM-SHA-512"}, Plain: users,
		SCRAM: func(m scram.Mechanism, user string) (scram.Credential, bool) {
			return cred, user == "sam" && m.Name == "SCRAM-SHA-512"
		}}
	if _, err := a.Start("SCRAM-SHA-256"); !errors.Is(err, ErrUnsupportedMechanism) {
		t.Fatalf("a mechanism not enabled: got %v, want %v", err, ErrUnsupportedMechanism)
	}
	for _, c := range []struct {
		token string
		want  error
	}{
		{"\x00alice\x00a-pw", nil},
		{"alice\x00alice\x00a-pw", nil},
		{"\x00alice\x00wrong", ErrAuthFailed},
		{"\x00nobody\x00a-pw", ErrAuthFailed},
		{"bob\x00alice\x00a-pw", ErrMalformed},
		{"alice\x00a-pw", ErrMalformed},
	} {
		ex, _ := a.Start(Plain)
		_, err := ex.Step([]byte(c.token))
		if !errors.Is(err, c.want) || (err == nil) != ex.Done() {
			t.Errorf("PLAIN %q: got %v (done %v), want %v", c.token, err, ex.Done(), c.want)
		}
	}
	for pass, want := range map[string]error{"s-pw": nil, "wrong": ErrAuthFailed} {
		ex, _ := a.Start("SCRAM-SHA-512")
		cl := scram.ForMechanism("SCRAM-SHA-512")
		_ = cl.Begin("sam", pass, "")
		msg, _ := cl.Step("")
		var err error
		for !ex.Done() && err == nil {
			var reply []byte
			if reply, err = ex.Step([]byte(msg)); err == nil {
				msg, err = cl.Step(string(reply))
			}
		}
		if !errors.Is(err, want) || ex.User() != "sam" {
			t.Errorf("SCRAM with %q: got %v as %q, want %v as sam", pass, err, ex.User(), want)
		}
	}
}

// FuzzParsePlain checks that the PLAIN parser never panics and that what
// it accepts has a user and a password.
func FuzzParsePlain(f *testing.F) {
	f.Add([]byte("\x00user\x00pass"))
	f.Add([]byte("authz\x00user\x00pass"))
	f.Add([]byte("\x00\x00"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		_, user, pass, err := ParsePlain(msg)
		if err == nil && (user == "" || pass == "") {
			t.Fatalf("accepted %q with an empty user or password", msg)
		}
	})
}
