package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"logpipe/internal/testcerts"
)

// handshake connects a client configured by cc to a server configured by
// sc over a real loopback socket and returns the server certificate's CN
// the client saw, or the client's error.
func handshake(t *testing.T, sc, cc *tls.Config) (string, error) {
	st, err := connect(t, sc, cc)
	if err != nil {
		return "", err
	}
	return st.PeerCertificates[0].Subject.CommonName, nil
}

// connect is handshake returning what the client agreed on.
func connect(t *testing.T, sc, cc *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", sc)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.(*tls.Conn).Handshake()
		_, _ = c.Read(make([]byte, 1))
	}()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", ln.Addr().String(), cc)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	return c.ConnectionState(), nil
}

// TestMaterialReloadsRenewedFiles serves a certificate from files, renews
// them in place, and checks that the next connection gets the new one
// without a new Material; a broken renewal keeps the old one in service.
func TestMaterialReloadsRenewedFiles(t *testing.T) {
	ca, err := testcerts.NewCA("test CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	issue := func(cn string) {
		leaf, err := ca.Issue(testcerts.Options{Subject: pkix.Name{CommonName: cn}, Hosts: []string{"127.0.0.1"}})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := leaf.Write(dir, "server"); err != nil {
			t.Fatal(err)
		}
	}
	issue("first")
	if err := os.WriteFile(dir+"/ca.pem", ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	m := &Material{Certificate: dir + "/server.crt", Key: dir + "/server.key"}
	trust := &Material{CAs: []string{dir + "/ca.pem"}}
	cc, err := trust.Client("127.0.0.1", true)
	if err != nil {
		t.Fatal(err)
	}
	sc := m.Server(tls.NoClientCert)
	if cn, err := handshake(t, sc, cc); err != nil || cn != "first" {
		t.Fatalf("before renewal: got %q, %v; want first", cn, err)
	}
	issue("second")
	// A renewal within the file system's time granularity could keep the
	// same modification time; the size differs rarely, so move it on.
	later := time.Now().Add(time.Second)
	_ = os.Chtimes(dir+"/server.crt", later, later)
	if cn, err := handshake(t, sc, cc); err != nil || cn != "second" {
		t.Fatalf("after renewal: got %q, %v; want second", cn, err)
	}
	if err := os.WriteFile(dir+"/server.crt", []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Load(); err == nil {
		t.Fatal("a broken certificate file loaded without error")
	}
	if cn, err := handshake(t, sc, cc); err != nil || cn != "second" {
		t.Fatalf("after a broken renewal: got %q, %v; want the previous certificate, second", cn, err)
	}
}

// TestMaterialClientChecksHost checks Client's host name verification and
// that it is skipped, the chain still checked, when asked.
func TestMaterialClientChecksHost(t *testing.T) {
	ca, _ := testcerts.NewCA("test CA")
	other, _ := testcerts.NewCA("other CA")
	leaf, err := ca.Issue(testcerts.Options{Subject: pkix.Name{CommonName: "srv"}, Hosts: []string{"broker.example"}})
	if err != nil {
		t.Fatal(err)
	}
	sc := (&Material{Certificate: string(leaf.CertPEM), Key: string(leaf.KeyPEM)}).Server(tls.NoClientCert)
	good := &Material{CAs: []string{string(ca.PEM)}}
	cc, _ := good.Client("127.0.0.1", true)
	var hostErr x509.HostnameError
	if _, err := handshake(t, sc, cc); !errors.As(err, &hostErr) {
		t.Fatalf("wrong host: got %v, want a host name error", err)
	}
	cc, _ = good.Client("127.0.0.1", false)
	if _, err := handshake(t, sc, cc); err != nil {
		t.Fatalf("host check off: got %v, want nil", err)
	}
	cc, _ = (&Material{CAs: []string{string(other.PEM)}}).Client("127.0.0.1", false)
	if _, err := handshake(t, sc, cc); err == nil {
		t.Fatal("a certificate of another CA was accepted with the host check off")
	}
}
