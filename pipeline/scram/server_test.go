package scram

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

// converse runs Client against Server and returns the first error.
func converse(m Mechanism, creds map[string]Credential, user, pass, authz string) (*Server, error) {
	srv := NewServer(m, func(u string) (Credential, bool) { c, ok := creds[u]; return c, ok })
	cl := New(m.Hash)
	if err := cl.Begin(user, pass, authz); err != nil {
		return srv, err
	}
	msg, err := cl.Step("")
	if err != nil {
		return srv, err
	}
	for !cl.Done() {
		reply, err := srv.Step(msg)
		if err != nil {
			return srv, err
		}
		if msg, err = cl.Step(reply); err != nil {
			return srv, err
		}
	}
	return srv, nil
}

func TestServerAgainstClient(t *testing.T) {
	for _, m := range Mechanisms {
		t.Run(m.Name, func(t *testing.T) {
			cred, err := m.NewCredential("s3cret", nil, MinIterations)
			if err != nil {
				t.Fatal(err)
			}
			creds := map[string]Credential{"al,i=ce": cred}
			srv, err := converse(m, creds, "al,i=ce", "s3cret", "")
			if err != nil || !srv.Done() || srv.User() != "al,i=ce" {
				t.Fatalf("good login: got err %v, done %v, user %q; want nil, true, %q", err, srv.Done(), srv.User(), "al,i=ce")
			}
			if _, err := converse(m, creds, "al,i=ce", "s3cret", "al,i=ce"); err != nil {
				t.Fatalf("authzid equal to the user: got %v, want nil", err)
			}
			for _, c := range []struct{ what, user, pass, authz string }{
				{"wrong password", "al,i=ce", "wrong", ""},
				{"unknown user", "bob", "s3cret", ""},
			} {
				srv, err := converse(m, creds, c.user, c.pass, c.authz)
				if !errors.Is(err, ErrAuthFailed) || srv.Done() {
					t.Errorf("%s: got %v (done %v), want %v", c.what, err, srv.Done(), ErrAuthFailed)
				}
			}
			if _, err := converse(m, creds, "al,i=ce", "s3cret", "root"); !errors.Is(err, ErrMalformed) {
				t.Errorf("another authzid: got %v, want %v", err, ErrMalformed)
			}
		})
	}
}

// TestDoubledClientNonce accepts the client-final nonce of librdkafka
// before 2.6.1, the client's nonce followed by the whole combined one, as
// Kafka 3.9 does, and refuses any other.
func TestDoubledClientNonce(t *testing.T) {
	cred, _ := SHA256.NewCredential("pw", nil, MinIterations)
	for _, c := range []struct {
		nonce func(combined string) string
		ok    bool
	}{
		{func(n string) string { return n }, true},
		{func(n string) string { return "cn" + n }, true},
		{func(n string) string { return "xx" + n }, false},
		{func(n string) string { return "cn" }, false},
	} {
		srv := NewServer(SHA256, func(string) (Credential, bool) { return cred, true })
		first, err := srv.Step("n,,n=u,r=cn")
		if err != nil {
			t.Fatal(err)
		}
		combined := strings.TrimPrefix(strings.Split(first, ",")[0], "r=")
		withoutProof := "c=biws,r=" + c.nonce(combined)
		salted, _ := SaltedPassword(SHA256.Hash, "pw", cred.Salt, cred.Iterations)
		ck := ClientKey(SHA256.Hash, salted)
		proof := xor(ck, HMAC(SHA256.Hash, StoredKey(SHA256.Hash, ck), "n=u,r=cn,"+first+","+withoutProof))
		_, err = srv.Step(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof))
		if (err == nil) != c.ok {
			t.Errorf("nonce %q: got %v, want ok=%v", c.nonce(combined), err, c.ok)
		}
	}
}

// TestUnknownUserLooksKnown checks that the server's first message does not
// tell an unknown user from a known one: both get a salt of the same
// length and the same iterations, and an unknown name always the same salt.
func TestUnknownUserLooksKnown(t *testing.T) {
	cred, _ := SHA256.NewCredential("pw", nil, MinIterations)
	lookup := func(u string) (Credential, bool) { return cred, u == "known" }
	first := func(user string) ClientFirst {
		reply, err := NewServer(SHA256, lookup).Step("n,,n=" + user + ",r=abc")
		if err != nil {
			t.Fatal(err)
		}
		// Parse the server-first message with the client-first parser's
		// attribute rules by dressing it as one.
		cf, err := ParseClientFirst("n,,n=x," + reply)
		if err != nil {
			t.Fatalf("server-first %q: %v", reply, err)
		}
		return cf
	}
	k, u1, u2 := first("known"), first("ghost"), first("ghost")
	if len(k.Extensions["s"]) != len(u1.Extensions["s"]) || k.Extensions["i"] != u1.Extensions["i"] {
		t.Errorf("salt/iterations differ: known %v, unknown %v", k.Extensions, u1.Extensions)
	}
	if u1.Extensions["s"] != u2.Extensions["s"] {
		t.Errorf("an unknown user's salt changed: got %q then %q", u1.Extensions["s"], u2.Extensions["s"])
	}
}

func TestParseClientFirst(t *testing.T) {
	cf, err := ParseClientFirst("n,a=u=2Cx,n=u=2Cx,r=n0nce,tokenauth=true")
	if err != nil || cf.User != "u,x" || cf.Authzid != "u,x" || cf.Nonce != "n0nce" || cf.GS2Header != "n,a=u=2Cx," ||
		cf.Bare != "n=u=2Cx,r=n0nce,tokenauth=true" || cf.Extensions["tokenauth"] != "true" {
		t.Fatalf("got %+v, %v", cf, err)
	}
	for _, bad := range []string{"", "n", "n,", "n,,", "p=tls-unique,,n=u,r=x", "x,,n=u,r=x", "n,,m=ext,n=u,r=x",
		"n,,n=,r=x", "n,,n=u", "n,,n=u=zz,r=x", "n,,r=x,n=u", "n,,n=u,r=", "n,b=u,n=u,r=x", "n,,n=u,r=x,novalue"} {
		if _, err := ParseClientFirst(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseClientFirst(%q): got %v, want %v", bad, err, ErrMalformed)
		}
	}
}

func TestParseClientFinal(t *testing.T) {
	cf, err := ParseClientFinal("c=biws,r=abcdef,p=AAEC")
	if err != nil || cf.ChannelBinding != "n,," || cf.Nonce != "abcdef" || string(cf.Proof) != "\x00\x01\x02" || cf.WithoutProof != "c=biws,r=abcdef" {
		t.Fatalf("got %+v, %v", cf, err)
	}
	for _, bad := range []string{"", "c=biws,r=abc", "c=biws,p=AAEC", "r=abc,c=biws,p=AAEC", "c=!!,r=abc,p=AAEC", "c=biws,r=abc,p=!!", "c=biws,r=,p=AAEC", "c=biws,r=a,p="} {
		if _, err := ParseClientFinal(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseClientFinal(%q): got %v, want %v", bad, err, ErrMalformed)
		}
	}
}

// FuzzServer feeds arbitrary client messages to a server: it never panics,
// and it never accepts a conversation whose proof it did not check.
func FuzzServer(f *testing.F) {
	f.Add("n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", "c=biws,r=fyko+d2lbbFgONRv9qkxdawL,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")
	f.Add("y,a=user,n=user,r=abc,ext=1", "c=eSxhPXVzZXIs,r=abc,p=AAAA")
	f.Add("n,,n=u=3D,r=x", "c=biws,r=x,e=1,p=AAAA")
	cred, err := SHA256.NewCredential("pencil", []byte("salt"), MinIterations)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, first, final string) {
		srv := NewServer(SHA256, func(u string) (Credential, bool) { return cred, u == "user" })
		if _, err := srv.Step(first); err != nil {
			return
		}
		if _, err := srv.Step(final); err == nil {
			// A random proof matches only with negligible probability.
			t.Fatalf("accepted %q / %q", first, final)
		}
	})
}

// FuzzParse checks that the parsers never panic and that what they accept
// round-trips into the fields they report.
func FuzzParse(f *testing.F) {
	f.Add("n,,n=user,r=abc")
	f.Add("c=biws,r=abc,p=AAAA")
	f.Fuzz(func(t *testing.T, msg string) {
		if cf, err := ParseClientFirst(msg); err == nil && cf.GS2Header+cf.Bare != msg {
			t.Fatalf("client-first %q: header %q + bare %q", msg, cf.GS2Header, cf.Bare)
		}
		if cf, err := ParseClientFinal(msg); err == nil && len(cf.WithoutProof) >= len(msg) {
			t.Fatalf("client-final %q: without proof %q", msg, cf.WithoutProof)
		}
	})
}
