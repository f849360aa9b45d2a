package tlsconfig

import (
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"slices"
	"strings"
	"testing"

	"logpipe/internal/testcerts"
)

func TestNewPolicy(t *testing.T) {
	const (
		ecdsa128 = "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
		rsa256   = "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
	)
	tls13 := []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}
	for _, c := range []struct {
		what               string
		protocols, suites  []string
		min, max           uint16
		ids                []uint16
		errKey, errMessage string
	}{
		{what: "defaults", min: tls.VersionTLS12, max: tls.VersionTLS13},
		{what: "TLS 1.3 only", protocols: []string{"TLSv1.3"}, min: tls.VersionTLS13, max: tls.VersionTLS13},
		{what: "TLS 1.2 only", protocols: []string{"TLSv1.2"}, min: tls.VersionTLS12, max: tls.VersionTLS12},
		{what: "both, in any order", protocols: []string{"TLSv1.3", "TLSv1.2"}, min: tls.VersionTLS12, max: tls.VersionTLS13},
		{what: "TLS 1.1", protocols: []string{"TLSv1.1", "TLSv1.2"}, errKey: "ssl.enabled.protocols", errMessage: `got "TLSv1.1"`},
		{what: "TLS 1.2 suites only leave TLS 1.3 out", suites: []string{ecdsa128, rsa256, ecdsa128},
			min: tls.VersionTLS12, max: tls.VersionTLS12, ids: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}},
		{what: "TLS 1.3's suites only leave TLS 1.2 out", suites: tls13, min: tls.VersionTLS13, max: tls.VersionTLS13},
		{what: "both kinds", suites: append([]string{rsa256}, tls13...), min: tls.VersionTLS12, max: tls.VersionTLS13, ids: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}},
		{what: "some of TLS 1.3's suites", suites: []string{tls13[1], rsa256}, errKey: "ssl.cipher.suites", errMessage: "all offered or none"},
		{what: "an unknown name", suites: []string{"ECDHE-RSA-AES256-GCM-SHA384"}, errKey: "ssl.cipher.suites", errMessage: `unknown suite "ECDHE-RSA-AES256-GCM-SHA384"`},
		{what: "an insecure suite", suites: []string{"TLS_ECDHE_RSA_WITH_RC4_128_SHA"}, errKey: "ssl.cipher.suites", errMessage: "insecure"},
		{what: "TLS 1.3 enabled, TLS 1.2 suites listed", protocols: []string{"TLSv1.3"}, suites: []string{rsa256}, errKey: "ssl.cipher.suites", errMessage: "no suite of an enabled protocol (TLSv1.3)"},
		{what: "TLS 1.2 enabled, TLS 1.3 suites listed", protocols: []string{"TLSv1.2"}, suites: tls13, errKey: "ssl.cipher.suites", errMessage: "no suite of an enabled protocol (TLSv1.2)"},
	} {
		p, err := NewPolicy(c.protocols, c.suites)
		if c.errKey != "" {
			var pe *PolicyError
			if !errors.As(err, &pe) || pe.Key != c.errKey || !strings.Contains(pe.Reason, c.errMessage) {
				t.Errorf("%s: got %v, want a %s error saying %q", c.what, err, c.errKey, c.errMessage)
			}
			continue
		}
		if err != nil || p.MinVersion != c.min || p.MaxVersion != c.max || !slices.Equal(p.CipherSuites, c.ids) {
			t.Errorf("%s: got %+v, %v; want versions %x to %x, suites %v", c.what, p, err, c.min, c.max, c.ids)
		}
	}
	// Kafka's configurations write the lists with commas, blanks around.
	p, err := ParsePolicy(" TLSv1.3,TLSv1.2 ", rsa256+" , ,")
	if want := []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}; err != nil || p.MinVersion != tls.VersionTLS12 || p.MaxVersion != tls.VersionTLS12 || !slices.Equal(p.CipherSuites, want) {
		t.Errorf("ParsePolicy: got %+v, %v; want TLS 1.2 with %v", p, err, want)
	}
}

// TestMaterialPolicy checks that Material's server and client
// configurations keep to its Policy in a handshake.
func TestMaterialPolicy(t *testing.T) {
	ca, _ := testcerts.NewCA("test CA")
	leaf, err := ca.Issue(testcerts.Options{Subject: pkix.Name{CommonName: "srv"}, Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &Material{Certificate: string(leaf.CertPEM), Key: string(leaf.KeyPEM), Policy: Policy{MinVersion: tls.VersionTLS13, MaxVersion: tls.VersionTLS13}}
	sc := srv.Server(tls.NoClientCert)
	old, _ := (&Material{CAs: []string{string(ca.PEM)}, Policy: Policy{MaxVersion: tls.VersionTLS12}}).Client("127.0.0.1", true)
	if _, err := connect(t, sc, old); err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("TLS 1.2 client against a TLS 1.3 server: got %v, want a protocol version alert", err)
	}
	cur, _ := (&Material{CAs: []string{string(ca.PEM)}}).Client("127.0.0.1", true)
	if st, err := connect(t, sc, cur); err != nil || st.Version != tls.VersionTLS13 {
		t.Errorf("default client against a TLS 1.3 server: version %x, %v", st.Version, err)
	}
	// A client held to one TLS 1.2 suite gets it from a default server.
	one, _ := (&Material{CAs: []string{string(ca.PEM)}, Policy: Policy{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}}}).Client("127.0.0.1", true)
	srv.Policy = Policy{}
	if st, err := connect(t, srv.Server(tls.NoClientCert), one); err != nil || st.CipherSuite != tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 {
		t.Errorf("client held to one suite: got %s, %v", tls.CipherSuiteName(st.CipherSuite), err)
	}
}

// TestDialling checks Kafka's client ssl.protocol over a policy: TLSv1.2
// caps the version, TLSv1.3, TLS and empty leave it, others are refused.
func TestDialling(t *testing.T) {
	both, _ := NewPolicy(nil, nil)
	only13, _ := NewPolicy([]string{"TLSv1.3"}, nil)
	for _, c := range []struct {
		what     string
		p        Policy
		protocol string
		max      uint16
		err      string
	}{
		{"default", both, "", tls.VersionTLS13, ""},
		{"TLS", both, "TLS", tls.VersionTLS13, ""},
		{"TLSv1.3", both, "TLSv1.3", tls.VersionTLS13, ""},
		{"TLSv1.2", both, "TLSv1.2", tls.VersionTLS12, ""},
		{"TLSv1.2 under TLS 1.3 only", only13, "TLSv1.2", 0, "no version to connect with"},
		{"TLSv1.1", both, "TLSv1.1", 0, `got "TLSv1.1"`},
	} {
		d, err := c.p.Dialling(c.protocol)
		var pe *PolicyError
		switch {
		case c.err != "" && (!errors.As(err, &pe) || pe.Key != "ssl.protocol" || !strings.Contains(pe.Reason, c.err)):
			t.Errorf("%s: got %v, want an ssl.protocol error saying %q", c.what, err, c.err)
		case c.err == "" && (err != nil || d.MaxVersion != c.max || d.MinVersion != c.p.MinVersion):
			t.Errorf("%s: got %+v, %v; want %+v capped at %x", c.what, d, err, c.p, c.max)
		}
	}
}
