// Package tlsconfig turns the `ssl` sections of the shipper's and the
// indexer's configurations (for Kafka, Elasticsearch and Kibana) into
// crypto/tls settings, keeps brokerd's certificates (Material) fresh, and
// holds brokerd's versions and cipher suites (Policy). The keys are
// Filebeat's: enabled, certificate_authorities, certificate, key,
// verification_mode, server_name, supported_protocols, cipher_suites,
// curve_types. A certificate or key setting holds either a file name or
// the PEM text itself.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"logpipe/pipeline/config"
)

// Settings is one `ssl` section.
type Settings struct {
	// Enabled turns TLS on. Left unset, TLS is on when any other key is set
	// (or, for Elasticsearch and Kibana, when the URL is https).
	Enabled *bool `yaml:"enabled"`
	// CertificateAuthorities are the CAs that sign the server's certificate
	// (files or PEM text); empty means the system's roots.
	CertificateAuthorities []string `yaml:"certificate_authorities"`
	// Certificate and Key are the client certificate and its key, for
	// servers that ask for one.
	Certificate string `yaml:"certificate"`
	Key         string `yaml:"key"`
	// VerificationMode is full (the default: chain and host name),
	// certificate (chain only) or none.
	VerificationMode string `yaml:"verification_mode"`
	// ServerName overrides the name checked in the server's certificate.
	ServerName string `yaml:"server_name"`
	// SupportedProtocols lists TLSv1.2 and/or TLSv1.3 (default: both).
	SupportedProtocols []string `yaml:"supported_protocols"`
	// CipherSuites are the suites offered, by Filebeat's names
	// (ECDHE-ECDSA-AES-128-GCM-SHA256); empty means Go's defaults. As in
	// Filebeat, they choose among TLS 1.2's suites: TLS 1.3 offers all of
	// its own whatever is listed.
	CipherSuites []string `yaml:"cipher_suites"`
	// CurveTypes are the key exchange groups offered: P-256, P-384, P-521
	// and X25519; empty means Go's defaults.
	CurveTypes []string `yaml:"curve_types"`
}

var tlsVersions = map[string]uint16{"TLSv1.2": tls.VersionTLS12, "TLSv1.3": tls.VersionTLS13}

// On reports whether TLS is to be used; https tells whether the address
// asks for it by its scheme.
func (s *Settings) On(https bool) bool {
	if s.Enabled != nil {
		return *s.Enabled
	}
	return https || len(s.CertificateAuthorities) > 0 || s.Certificate != "" || s.Key != "" || s.VerificationMode != "" || s.ServerName != "" || len(s.SupportedProtocols) > 0 ||
		len(s.CipherSuites) > 0 || len(s.CurveTypes) > 0
}

// Validate checks the settings without reading files.
func (s *Settings) Validate() error {
	var errs []error
	switch strings.ToLower(s.VerificationMode) {
	case "", "full", "strict", "certificate", "none":
	default:
		errs = append(errs, config.Errorf("verification_mode", "want full, certificate or none, got %q", s.VerificationMode))
	}
	for i, p := range s.SupportedProtocols {
		if _, _, err := Protocols([]string{p}); err != nil {
			errs = append(errs, config.Errorf(fmt.Sprintf("supported_protocols[%d]", i), "%v", err))
		}
	}
	for i, n := range s.CipherSuites {
		if _, err := suiteIDs([]string{n}); err != nil {
			errs = append(errs, config.Errorf(fmt.Sprintf("cipher_suites[%d]", i), "%v", err))
		}
	}
	for i, n := range s.CurveTypes {
		if _, err := curveIDs([]string{n}); err != nil {
			errs = append(errs, config.Errorf(fmt.Sprintf("curve_types[%d]", i), "%v", err))
		}
	}
	if (s.Certificate == "") != (s.Key == "") {
		errs = append(errs, config.Errorf("certificate", "certificate and key go together"))
	}
	return errors.Join(errs...)
}

func pemOf(v string) ([]byte, error) {
	if strings.Contains(v, "-----BEGIN") {
		return []byte(v), nil
	}
	b, err := os.ReadFile(v)
	if err != nil {
		return nil, fmt.Errorf("tlsconfig: %w", err)
	}
	return b, nil
}

// Config returns the crypto/tls configuration, reading the files named.
func (s *Settings) Config() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.ServerName}
	var err error
	if len(s.SupportedProtocols) > 0 {
		if c.MinVersion, c.MaxVersion, err = Protocols(s.SupportedProtocols); err != nil {
			return nil, fmt.Errorf("tlsconfig: supported_protocols: %w", err)
		}
	}
	if c.CipherSuites, err = suiteIDs(s.CipherSuites); err != nil {
		return nil, fmt.Errorf("tlsconfig: cipher_suites: %w", err)
	}
	if c.CurvePreferences, err = curveIDs(s.CurveTypes); err != nil {
		return nil, fmt.Errorf("tlsconfig: curve_types: %w", err)
	}
	if len(s.CertificateAuthorities) > 0 {
		pool := x509.NewCertPool()
		for _, ca := range s.CertificateAuthorities {
			b, err := pemOf(ca)
			if err != nil {
				return nil, err
			}
			if !pool.AppendCertsFromPEM(b) {
				return nil, fmt.Errorf("tlsconfig: no PEM certificate in %.60q", ca)
			}
		}
		c.RootCAs = pool
	}
	if s.Certificate != "" {
		cert, err := pemOf(s.Certificate)
		if err != nil {
			return nil, err
		}
		key, err := pemOf(s.Key)
		if err != nil {
			return nil, err
		}
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("tlsconfig: client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	switch strings.ToLower(s.VerificationMode) {
	case "none":
		c.InsecureSkipVerify = true
	case "certificate":
		// Verify the chain ourselves, without the host name.
		c.InsecureSkipVerify = true
		c.VerifyConnection = verifyChain(c.RootCAs)
	}
	return c, nil
}

// verifyChain checks the server's chain against roots (the system's when
// nil), without the host name.
func verifyChain(roots *x509.CertPool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("tlsconfig: the server sent no certificate")
		}
		opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
		for _, ic := range cs.PeerCertificates[1:] {
			opts.Intermediates.AddCert(ic)
		}
		_, err := cs.PeerCertificates[0].Verify(opts)
		return err
	}
}
