package quorum

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
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
	s := newStreamLayer(raftLn, tcpAddr(addr), func() string { return "c1" }, note, nil)
	s.start()
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

// TestRaftStreamWithoutCertificateIsRefused runs the TLS controller
// listener with client certificates requested, not required: a Kafka
// client without one is served, but a Raft stream without one is refused.
func TestRaftStreamWithoutCertificateIsRefused(t *testing.T) {
	ca, err := testcerts.NewCA("quorum CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(testcerts.Options{Subject: pkix.Name{CommonName: "node"}, Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := leaf.TLS()
	if err != nil {
		t.Fatal(err)
	}
	server := &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: ca.Pool(), ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	refusals := make(chan error, 4)
	raftLn, kafkaLn := SplitTLSListener(ln, server, 5*time.Second, func(_ net.Addr, err error) { refusals <- err })
	defer raftLn.Close()
	defer kafkaLn.Close()

	noCert := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	kc, err := tls.Dial("tcp", addr, noCert)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	k, err := kafkaLn.Accept()
	if err != nil {
		t.Fatal(err)
	}
	k.Close()

	raftConf := noCert.Clone()
	raftConf.NextProtos = []string{RaftALPN}
	rc, err := tls.Dial("tcp", addr, raftConf)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	select {
	case err := <-refusals:
		if !errors.Is(err, ErrRaftNeedsCertificate) {
			t.Fatalf("a Raft stream without a certificate: refused with %v, want %v", err, ErrRaftNeedsCertificate)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a Raft stream without a client certificate was not refused")
	}
	_ = rc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := rc.Read(make([]byte, 1)); err == nil {
		t.Fatal("the refused Raft stream's connection is still open")
	}
}

// TestSharedTLSListenerPicksSettingsByALPN runs the stream layer on a
// listener shared with Kafka clients that have TLS settings of their own,
// as a broker-only node's inter-broker listener is: a Kafka client gets
// the Kafka side's certificate and is not asked for one, a Raft stream
// gets the Raft side's certificate and must show one of the cluster's CA;
// a Raft stream without a certificate and a plaintext Raft handshake are
// refused, and the refusals reported.
func TestSharedTLSListenerPicksSettingsByALPN(t *testing.T) {
	ca, err := testcerts.NewCA("quorum CA")
	if err != nil {
		t.Fatal(err)
	}
	cert := func(cn string) tls.Certificate {
		leaf, err := ca.Issue(testcerts.Options{Subject: pkix.Name{CommonName: cn}, Hosts: []string{"127.0.0.1"}})
		if err != nil {
			t.Fatal(err)
		}
		c, err := leaf.TLS()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	raftCfg := &tls.Config{Certificates: []tls.Certificate{cert("raft side")}, ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	kafkaCfg := &tls.Config{Certificates: []tls.Certificate{cert("kafka side")}, MinVersion: tls.VersionTLS12}
	leader := cert("leader")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var mu sync.Mutex
	var refusals []string
	raftLn, kafkaLn := SplitSharedTLSListener(ln, raftCfg, kafkaCfg, false, 5*time.Second, func(_ net.Addr, err error) {
		mu.Lock()
		refusals = append(refusals, err.Error())
		mu.Unlock()
	})
	s := newStreamLayer(raftLn, tcpAddr(addr), func() string { return "c1" }, func(error) {}, nil)
	s.start()
	defer s.Close()
	peer := func(c net.Conn) string {
		tc, ok := c.(*tls.Conn)
		if !ok || len(tc.ConnectionState().PeerCertificates) == 0 {
			return fmt.Sprintf("%T without a certificate", c)
		}
		return tc.ConnectionState().PeerCertificates[0].Subject.CommonName
	}

	kc, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("a Kafka client without a certificate: %v", err)
	}
	defer kc.Close()
	if got := peer(kc); got != "kafka side" {
		t.Errorf("the certificate a Kafka client sees: got %q, want \"kafka side\"", got)
	}
	k, err := kafkaLn.Accept()
	if err != nil {
		t.Fatal(err)
	}
	k.Close()

	s.dialTLS = func(string) (*tls.Config, error) {
		return &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{leader}, MinVersion: tls.VersionTLS12}, nil
	}
	out, err := s.Dial(raft.ServerAddress(addr), 5*time.Second)
	if err != nil {
		t.Fatalf("a Raft stream with the cluster's certificate: %v", err)
	}
	defer out.Close()
	if got := peer(out); got != "raft side" {
		t.Errorf("the certificate a Raft stream sees: got %q, want \"raft side\"", got)
	}
	in, err := s.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if got := peer(in); got != "leader" {
		t.Errorf("the accepted Raft stream's client certificate: got %q, want \"leader\"", got)
	}

	s.dialTLS = func(string) (*tls.Config, error) {
		return &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}, nil
	}
	if c, err := s.Dial(raft.ServerAddress(addr), 5*time.Second); err == nil {
		c.Close()
		t.Fatal("a Raft stream without a client certificate was accepted")
	}
	plain, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	_, _ = plain.Write([]byte{handshakeMagic, 'L', 'R', handshakeVersion, 0})
	_ = plain.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	if _, err := io.ReadFull(plain, b[:]); err == nil && b[0] == 0 {
		t.Fatal("a plaintext Raft handshake on the shared TLS listener was accepted")
	}
	want := []string{"didn't provide a certificate", "does not look like a TLS handshake"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		got := slices.Clone(refusals)
		mu.Unlock()
		if !slices.ContainsFunc(want, func(w string) bool {
			return !slices.ContainsFunc(got, func(r string) bool { return strings.Contains(r, w) })
		}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("refusals reported: got %q, want ones saying each of %q", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
