package tlsconfig

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"logpipe/internal/testcerts"
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

// TestCipherSuitesAndCurves checks Filebeat's cipher_suites and
// curve_types in a handshake, and their refusals.
func TestCipherSuitesAndCurves(t *testing.T) {
	ca, _ := testcerts.NewCA("test CA")
	leaf, err := ca.Issue(testcerts.Options{Subject: pkix.Name{CommonName: "srv"}, Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	sc := (&Material{Certificate: string(leaf.CertPEM), Key: string(leaf.KeyPEM)}).Server(tls.NoClientCert)
	s := Settings{
		CertificateAuthorities: []string{string(ca.PEM)}, SupportedProtocols: []string{"TLSv1.2"},
		CipherSuites: []string{"ECDHE-ECDSA-AES-256-GCM-SHA384"}, CurveTypes: []string{"P-384"},
	}
	if !s.On(false) || s.Validate() != nil {
		t.Fatalf("settings: on %v, %v", s.On(false), s.Validate())
	}
	cc, err := s.Config()
	if err != nil {
		t.Fatal(err)
	}
	st, err := connect(t, sc, cc)
	if err != nil || st.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 || st.CurveID != tls.CurveP384 {
		t.Fatalf("got %s over %v, %v; want TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 over P-384", tls.CipherSuiteName(st.CipherSuite), st.CurveID, err)
	}
	bad := Settings{CipherSuites: []string{"ECDHE-RSA-AES-128-GCM-SHA256", "ECDHE-RSA-3DES-CBC3-SHA", "AES128-SHA"}, CurveTypes: []string{"X448"}}
	err = bad.Validate()
	for _, want := range []string{"cipher_suites[1]: ECDHE-RSA-3DES-CBC3-SHA (TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA) is insecure", `cipher_suites[2]: unknown cipher suite "AES128-SHA"`, `curve_types[0]: unknown curve "X448"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("refusals: got %v, want %q", err, want)
		}
	}
	if _, err := bad.Config(); err == nil {
		t.Error("Config took an insecure suite")
	}
}
