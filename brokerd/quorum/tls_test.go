package quorum

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"logpipe/internal/testcerts"
)

// TestRaftStreamsOverTLS runs the stream layer on a TLS controller
// listener: a Raft stream dialed with a certificate of the cluster's CA is
// accepted and carries bytes both ways, a Kafka client's TLS connection
// (no ALPN) goes to the Kafka side, and a plaintext Raft handshake or a
// certificate of another CA is refused, the refusal reported.
func TestRaftStreamsOverTLS(t *testing.T) {
	ca, err := testcerts.NewCA("quorum CA")
	if err != nil {
		t.Fatal(err)
	}
	other, err := testcerts.NewCA("other CA")
	if err != nil {
		t.Fatal(err)
	}
	cert := func(ca *testcerts.CA) tls.Certificate {
		leaf, err := ca.Issue(testcerts.Options{Subject: pkix.Name{CommonName: "node"}, Hosts: []string{"127.0.0.1"}})
		if err != nil {
			t.Fatal(err)
		}
		c, err := leaf.TLS()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	good, rogue := cert(ca), cert(other)
	server := &tls.Config{Certificates: []tls.Certificate{good}, ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var mu sync.Mutex
	var refusals []string
	note := func(err error) {
		mu.Lock()
		refusals = append(refusals, err.Error())
		mu.Unlock()
	}
	refused := func(substr string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range refusals {
			if strings.Contains(r, substr) {
				return true
			}
		}
		return false
	}
	raftLn, kafkaLn := SplitTLSListener(ln, server, 5*time.Second, func(_ net.Addr, err error) { note(err) })
	s := newStreamLayer(raftLn, tcpAddr(addr), func() string { return "c1" }, note)
	defer s.Close()
	dialWith := func(c tls.Certificate) func(string) (*tls.Config, error) {
		return func(string) (*tls.Config, error) {
			return &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{c}, MinVersion: tls.VersionTLS12}, nil
		}
	}

	s.dialTLS = dialWith(good)
	out, err := s.Dial(raft.ServerAddress(addr), 5*time.Second)
	if err != nil {
		t.Fatalf("a Raft stream with the cluster's certificate: %v", err)
	}
	defer out.Close()
	in, err := s.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if _, err := out.Write([]byte("entry")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 5)
	if _, err := io.ReadFull(in, got); err != nil || string(got) != "entry" {
		t.Fatalf("over the accepted stream: got %q, %v; want \"entry\"", got, err)
	}
	if _, ok := out.(*tls.Conn); !ok {
		t.Fatalf("the dialed stream is a %T, want a *tls.Conn", out)
	}

	kc, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{good}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	k, err := kafkaLn.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if tc, ok := k.(*tls.Conn); !ok || len(tc.ConnectionState().PeerCertificates) != 1 {
		t.Fatalf("a Kafka client's connection reached the Kafka side as %T; want a *tls.Conn with the client's certificate", k)
	}

	plain, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = plain.Write([]byte{handshakeMagic, 'L', 'R', handshakeVersion, 0})
	_ = plain.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	if _, err := io.ReadFull(plain, b[:]); err == nil && b[0] == 0 {
		t.Fatal("a plaintext Raft handshake on the TLS listener was accepted")
	}
	plain.Close()

	s.dialTLS = dialWith(rogue)
	if c, err := s.Dial(raft.ServerAddress(addr), 5*time.Second); err == nil {
		c.Close()
		t.Fatal("a Raft stream with another CA's certificate was accepted")
	}
	deadline := time.Now().Add(10 * time.Second)
	// Go's client leaves out a certificate whose issuer is not among the
	// CAs the server names, so the server sees none.
	for !(refused("first record does not look like a TLS handshake") && refused("client didn't provide a certificate") && refused("quorum: handshake with "+addr+": remote error: tls: certificate required")) {
		if time.Now().After(deadline) {
			mu.Lock()
			t.Fatalf("refusals reported: got %q; want the plaintext handshake, and the other CA's certificate on both sides", refusals)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
