package broker

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"strings"
	"testing"

	"logpipe/internal/testcerts"
	"logpipe/pipeline/tlsconfig"
)

// TestSSLProtocolKeepsDiallingAtTLS12 checks ssl.protocol TLSv1.2 as
// Kafka's clients take it: the connections this node dials offer TLS 1.2
// at most, so a node whose listener takes TLS 1.3 only refuses them;
// without it they use TLS 1.3.
func TestSSLProtocolKeepsDiallingAtTLS12(t *testing.T) {
	ca, err := testcerts.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(testcerts.Options{Subject: pkix.Name{CommonName: "peer"}, Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &tlsconfig.Material{Certificate: string(leaf.CertPEM), Key: string(leaf.KeyPEM), Policy: tlsconfig.Policy{MinVersion: tls.VersionTLS13}}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv.Server(tls.NoClientCert))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	for _, c := range []struct {
		protocol string
		refused  bool
	}{{"", false}, {"TLSv1.3", false}, {"TLS", false}, {"TLSv1.2", true}} {
		ls := &listenerSec{cfg: SecurityConfig{SSLProtocol: c.protocol}, material: &tlsconfig.Material{CAs: []string{string(ca.PEM)}}}
		cfg, err := ls.peerTLS(ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		conn, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err == nil {
			conn.Close()
		}
		if refused := err != nil && strings.Contains(err.Error(), "protocol version"); refused != c.refused {
			t.Errorf("ssl.protocol %q against a TLS 1.3 listener: got %v, want refused %v", c.protocol, err, c.refused)
		}
	}
}
