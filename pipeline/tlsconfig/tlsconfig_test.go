package tlsconfig

import (
	"crypto/tls"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

// TestAgainstAServer runs real TLS handshakes against an httptest TLS
// server with each verification mode.
func TestAgainstAServer(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, caPEM, 0o644)
	// The test server's certificate names 127.0.0.1 and example.com.
	get := func(s Settings, url string) error {
		c, err := s.Config()
		if err != nil {
			return err
		}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: c}}
		res, err := client.Get(url)
		if err != nil {
			return err
		}
		res.Body.Close()
		return nil
	}
	hostURL := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) // localhost is not in the certificate
	cases := []struct {
		name string
		s    Settings
		url  string
		ok   bool
	}{
		{"CA file, full", Settings{CertificateAuthorities: []string{caFile}}, srv.URL, true},
		{"CA PEM text, full", Settings{CertificateAuthorities: []string{string(caPEM)}}, srv.URL, true},
		{"system roots refuse a test CA", Settings{}, srv.URL, false},
		{"wrong host name, full", Settings{CertificateAuthorities: []string{caFile}}, hostURL, false},
		{"wrong host name, certificate", Settings{CertificateAuthorities: []string{caFile}, VerificationMode: "certificate"}, hostURL, true},
		{"certificate mode still checks the chain", Settings{VerificationMode: "certificate"}, srv.URL, false},
		{"none", Settings{VerificationMode: "none"}, hostURL, true},
		{"server_name override", Settings{CertificateAuthorities: []string{caFile}, ServerName: "example.com"}, hostURL, true},
	}
	for _, c := range cases {
		err := get(c.s, c.url)
		if (err == nil) != c.ok {
			t.Errorf("%s: err %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

func TestSettings(t *testing.T) {
	if (&Settings{}).On(false) || !(&Settings{}).On(true) || !(&Settings{VerificationMode: "none"}).On(false) || (&Settings{Enabled: ptr(false), VerificationMode: "none"}).On(true) {
		t.Error("On")
	}
	if err := (&Settings{VerificationMode: "sometimes"}).Validate(); err == nil {
		t.Error("bad mode accepted")
	}
	if err := (&Settings{Certificate: "c"}).Validate(); err == nil {
		t.Error("certificate without key accepted")
	}
	if _, err := (&Settings{CertificateAuthorities: []string{"/nonexistent"}}).Config(); err == nil {
		t.Error("missing CA file accepted")
	}
	if _, err := (&Settings{CertificateAuthorities: []string{"-----BEGIN nothing"}}).Config(); err == nil {
		t.Error("bad PEM accepted")
	}
}

func TestSupportedProtocols(t *testing.T) {
	s := Settings{SupportedProtocols: []string{"TLSv1.3"}}
	if !s.On(false) {
		t.Fatal("supported_protocols alone does not turn TLS on")
	}
	c, err := s.Config()
	if err != nil || c.MinVersion != tls.VersionTLS13 || c.MaxVersion != tls.VersionTLS13 {
		t.Fatalf("TLSv1.3 only: %v %v", c, err)
	}
	bad := Settings{SupportedProtocols: []string{"SSLv3"}}
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "supported_protocols[0]") {
		t.Fatalf("SSLv3 accepted: %v", err)
	}
}
