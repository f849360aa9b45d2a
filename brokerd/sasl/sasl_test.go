package sasl

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
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

// argon2Tool hashes pass with the reference argon2 command (Debian's
// argon2 package, which deploy/deps.sh installs), with its flags args.
func argon2Tool(t *testing.T, pass, salt string, args ...string) string {
	t.Helper()
	cmd := exec.Command("argon2", append([]string{salt, "-e"}, args...)...)
	cmd.Stdin = strings.NewReader(pass)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("argon2 %v: %v (install Debian's argon2 package: deploy/deps.sh does)", args, err)
	}
	return strings.TrimSpace(string(out))
}

// TestArgon2Users checks logins against argon2id and argon2i hashes made
// by the reference argon2 tool, beside a bcrypt one, and the hashes that
// are refused with the reason.
func TestArgon2Users(t *testing.T) {
	id := argon2Tool(t, "id-pw", "saltsaltsalt", "-id", "-t", "2", "-k", "1024", "-p", "2")
	i := argon2Tool(t, "i-pw", "pepperpepper", "-i")
	long := argon2Tool(t, "long-pw", "saltsaltsalt", "-id", "-l", "64")
	path := filepath.Join(t.TempDir(), "users.yml")
	body := "ida: " + id + "\nivan: '" + i + "'\nlen: " + long + "\nbea: " + hash(t, "b-pw") + "\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	u, err := OpenPlainUsers(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user, pass string
		want       bool
	}{
		{"ida", "id-pw", true}, {"ida", "i-pw", false}, {"ida", "", false},
		{"ivan", "i-pw", true}, {"ivan", "id-pw", false},
		{"len", "long-pw", true}, {"len", "long-pw ", false},
		{"bea", "b-pw", true}, {"bea", "id-pw", false},
		{"nobody", "id-pw", false}, {"nobody", "b-pw", false},
	} {
		if got := u.Check(c.user, c.pass); got != c.want {
			t.Errorf("Check(%q, %q) = %v, want %v", c.user, c.pass, got, c.want)
		}
	}

	good := strings.Split(id, "$") // "", argon2id, v=19, m=…, salt, hash
	with := func(i int, v string) string {
		f := slices.Clone(good)
		f[i] = v
		return strings.Join(f, "$")
	}
	for _, c := range []struct{ hash, want string }{
		{argon2Tool(t, "pw", "saltsaltsalt", "-d"), "argon2d is not served"},
		{argon2Tool(t, "pw", "saltsaltsalt", "-id", "-v", "10"), `argon2 version "v=16" is not served`},
		{strings.Replace(id, "$v=19", "", 1), "argon2 hash without a version"},
		{with(2, "v=16"), `argon2 version "v=16" is not served`},
		{with(1, "argon2x"), `unknown argon2 variant "argon2x"`},
		{with(3, "m=1024,t=2"), "want m=…,t=…,p=…"},
		{with(3, "t=2,m=1024,p=2"), "want m=…,t=…,p=…"},
		{with(3, "m=1024,t=2,p=2,keyid=x"), "want m=…,t=…,p=…"},
		{with(3, "m=-1,t=2,p=2"), "want m=…,t=…,p=…"},
		{with(3, "m=1048576,t=2,p=2"), "above 262144 KiB"},
		{with(3, "m=8,t=2,p=2"), "at least 8 KiB per lane"},
		{with(3, "m=1024,t=0,p=2"), "passes t=0"},
		{with(3, "m=1024,t=2,p=0"), "parallelism p=0"},
		{with(3, "m=1024,t=2,p=256"), "parallelism p=256"},
		{with(4, "c2FsdA"), "argon2 salt"},
		{with(4, "c2FsdHNhbHRzYWx0=="), "argon2 salt"},
		{with(5, "aGFzaA"), "argon2 hash"},
		{id + "$", "not an argon2 hash"},
		{"$argon2id", "not an argon2 hash"},
		{"$2a$04$short", "not a bcrypt or argon2 hash"},
	} {
		_, err := parsePlainUsers([]byte("x: '" + c.hash + "'\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "user x: ") {
			t.Errorf("hash %s: got %v, want an error for user x saying %q", c.hash, err, c.want)
		}
	}
}

// TestNewArgon2idHash checks the hashes brokerd makes against the
// reference argon2 tool's for the same salt and parameters, and that a
// new hash gets a new salt and is taken by the users file.
func TestNewArgon2idHash(t *testing.T) {
	want := argon2Tool(t, "pw", "saltsaltsaltsalt", "-id", "-t", "3", "-k", "65536", "-p", "4")
	if got := argon2idPHC([]byte("pw"), []byte("saltsaltsaltsalt")); got != want {
		t.Errorf("argon2idPHC: got %s, the argon2 tool %s", got, want)
	}
	a, b := NewArgon2idHash([]byte("pw")), NewArgon2idHash([]byte("pw"))
	if a == b {
		t.Errorf("two hashes of one password are the same: %s", a)
	}
	h, err := parseHash(a)
	if err != nil || !h.matches([]byte("pw")) || h.matches([]byte("pw2")) {
		t.Errorf("NewArgon2idHash: %s parsed %v, or matches the wrong password", a, err)
	}
}

// FuzzParseHash feeds hostile hashes to the users file's parser: it never
// panics, and an argon2 hash it takes is within the bounds a login may
// spend.
func FuzzParseHash(f *testing.F) {
	for _, s := range []string{
		"$argon2id$v=19$m=4096,t=2,p=2$c2FsdHlzYWx0c2FsdA$MtDcXAQ9UCTyg/g/Ex+64Yyi3zXq/UFqO0GfCHRtbnU",
		"$argon2i$v=19$m=4096,t=3,p=1$c2FsdHlzYWx0$+s0boqrKGIOMH+AUFqZWk6J79OwceruM1OUxVhD3hP0",
		"$argon2id$v=19$m=4294967295,t=1,p=1$$", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", "$",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseHash(s)
		if a, ok := h.(*argon2Hash); err == nil && ok && (a.memory > maxArgon2KiB || a.passes > maxArgon2Passes || a.threads == 0 || len(a.salt) < 8 || len(a.key) < 16) {
			t.Fatalf("took %q: %+v", s, a)
		}
	})
}
