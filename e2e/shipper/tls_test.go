package shipper_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/internal/await"
)

// tlsFront terminates TLS in front of a plaintext broker: brokerd has no
// TLS listener, so it advertises this front's address and clients reach it
// only through TLS.
type tlsFront struct {
	ln   net.Listener
	mu   sync.Mutex
	back string
	wg   sync.WaitGroup
}

func newTLSFront(t *testing.T, cert tls.Certificate) *tlsFront {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	f := &tlsFront{ln: ln}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			back := f.back
			f.mu.Unlock()
			go func() {
				defer c.Close()
				b, err := net.Dial("tcp", back)
				if err != nil {
					return
				}
				defer b.Close()
				done := make(chan struct{}, 2)
				go func() { io.Copy(b, c); done <- struct{}{} }()
				go func() { io.Copy(c, b); done <- struct{}{} }()
				<-done
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

// testPKI makes a CA and a server certificate for 127.0.0.1 signed by it,
// and writes the CA to dir/ca.pem.
func testPKI(t *testing.T, dir string) (tls.Certificate, string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "logpipe test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caPath := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, caPath
}

// TestTLS ships through TLS, checking the broker's certificate against the
// configured CA, and fails to connect (clearly) with the wrong CA.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	cert, caPath := testPKI(t, dir)
	front := newTLSFront(t, cert)
	b := startBrokerd(t, "advertised.listeners=PLAINTEXT://"+front.ln.Addr().String())
	front.mu.Lock()
	front.back = b.bootstrap
	front.mu.Unlock()

	path := filepath.Join(dir, "access_log")
	appendFile(t, path, "over tls\n")
	topic := topicName(t)
	pool := x509.NewCertPool()
	caPEM, _ := os.ReadFile(caPath)
	pool.AppendCertsFromPEM(caPEM)
	c := consume(t, front.ln.Addr().String(), topic, kgo.DialTLSConfig(&tls.Config{RootCAs: pool}))
	config := fmt.Sprintf(`
filebeat.inputs:
- paths: [%q]
output.kafka:
  hosts: [%q]
  topic: %s
  ssl.certificate_authorities: [%q]
`, path, front.ln.Addr().String(), topic, caPath)
	sdir := filepath.Join(dir, "good")
	os.Mkdir(sdir, 0o755)
	s := startShipper(t, sdir, config)
	recs := c.waitRecords("the line", s, func(r []record) bool { return len(r) == 1 })
	if recs[0].Message != "over tls" {
		t.Fatalf("got %q", recs[0].Message)
	}
	s.stop()

	// Another CA: the certificate is refused and nothing is sent.
	_, otherCA := testPKI(t, t.TempDir())
	bdir := filepath.Join(dir, "bad")
	os.Mkdir(bdir, 0o755)
	bad := startShipper(t, bdir, strings.Replace(config, caPath, otherCA, 1))
	await.Eventually(t, "a certificate error in the log", func() error {
		log, _ := os.ReadFile(bad.log)
		if !logHas(string(log), "level=WARN", "cannot reach Kafka", "certificate signed by unknown authority") {
			return await.NotYet("no such warning in the log", "a WARN line: cannot reach Kafka, certificate signed by unknown authority")
		}
		return nil
	}, bad.alive())
}
