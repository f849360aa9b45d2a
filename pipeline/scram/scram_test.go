package scram

import (
	"crypto/sha1"
	"testing"
)

// TestSCRAMVectors replays the example conversations of RFC 5802 (SHA-1)
// and RFC 7677 (SHA-256).
func TestSCRAMVectors(t *testing.T) {
	cases := []struct {
		name                                     string
		c                                        *Client
		nonce, serverFirst, clientFinal, serverV string
	}{
		{
			name:        "RFC 5802",
			c:           New(sha1.New),
			nonce:       "fyko+d2lbbFgONRv9qkxdawL",
			serverFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
			clientFinal: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
			serverV:     "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
		},
		{
			name:        "RFC 7677",
			c:           ForMechanism("SCRAM-SHA-256"),
			nonce:       "rOprNGfwEbeRWgbNEkqO",
			serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
			clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
			serverV:     "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := c.c
			nonce := c.nonce
			cl.nonce = func() string { return nonce }
			if err := cl.Begin("user", "pencil", ""); err != nil {
				t.Fatal(err)
			}
			first, err := cl.Step("")
			if err != nil || first != "n,,n=user,r="+c.nonce {
				t.Fatalf("client-first %q %v", first, err)
			}
			final, err := cl.Step(c.serverFirst)
			if err != nil || final != c.clientFinal {
				t.Fatalf("client-final %q %v\nwant %q", final, err, c.clientFinal)
			}
			if cl.Done() {
				t.Fatal("done before the server proved itself")
			}
			if _, err := cl.Step(c.serverV); err != nil || !cl.Done() {
				t.Fatalf("server-final: %v done=%v", err, cl.Done())
			}
		})
	}
}

func TestSCRAMRefusals(t *testing.T) {
	cl := ForMechanism("SCRAM-SHA-256")
	cl.nonce = func() string { return "abc" }
	cl.Begin("u,=", "p", "")
	first, _ := cl.Step("")
	if first != "n,,n=u=2C=3D,r=abc" {
		t.Fatalf("escaping: %q", first)
	}
	if _, err := cl.Step("r=xyz,s=AAAA,i=1"); err == nil {
		t.Fatal("foreign nonce accepted")
	}
	cl.Begin("u", "p", "")
	cl.Step("")
	cl.Step("r=abcdef,s=AAAA,i=1")
	if _, err := cl.Step("v=AAAA"); err == nil || cl.Done() {
		t.Fatal("wrong server signature accepted")
	}
	cl.Begin("u", "p", "")
	cl.Step("")
	cl.Step("r=abcdef,s=AAAA,i=1")
	if _, err := cl.Step("e=invalid-proof"); err == nil {
		t.Fatal("server error accepted")
	}
}

// TestSHA512RefusesForeignNonce keeps the shipper's former check of the
// SHA-512 client.
func TestSHA512RefusesForeignNonce(t *testing.T) {
	c := ForMechanism("SCRAM-SHA-512")
	c.nonce = func() string { return "abc" }
	c.Begin("user", "pencil", "")
	c.Step("")
	if _, err := c.Step("r=xyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"); err == nil {
		t.Fatal("foreign nonce accepted")
	}
	if ForMechanism("PLAIN") != nil {
		t.Fatal("a client for a mechanism that is not SCRAM")
	}
}
