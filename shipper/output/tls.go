package output

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
)

// pem returns the PEM text of a setting that is either a file name or the
// PEM itself, as Beats accepts.
func pem(v string) ([]byte, error) {
	if strings.Contains(v, "-----BEGIN") {
		return []byte(v), nil
	}
	b, err := os.ReadFile(v)
	if err != nil {
		return nil, fmt.Errorf("output: ssl: %w", err)
	}
	return b, nil
}

// Config returns the crypto/tls configuration the settings describe.
func (t *TLS) Config() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if len(t.SupportedProtocols) > 0 {
		c.MinVersion, c.MaxVersion = tls.VersionTLS13, tls.VersionTLS12
		for _, p := range t.SupportedProtocols {
			v := tlsVersions[p]
			c.MinVersion = min(c.MinVersion, v)
			c.MaxVersion = max(c.MaxVersion, v)
		}
	}
	if len(t.CertificateAuthorities) > 0 {
		pool := x509.NewCertPool()
		for _, ca := range t.CertificateAuthorities {
			b, err := pem(ca)
			if err != nil {
				return nil, err
			}
			if !pool.AppendCertsFromPEM(b) {
				return nil, fmt.Errorf("output: ssl: no certificate in %s", shortPEM(ca))
			}
		}
		c.RootCAs = pool
	}
	if t.Certificate != "" {
		cert, err := pem(t.Certificate)
		if err != nil {
			return nil, err
		}
		key, err := pem(t.Key)
		if err != nil {
			return nil, err
		}
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("output: ssl: client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{pair}
	}
	switch strings.ToLower(t.VerificationMode) {
	case "", "full", "strict":
	case "none":
		c.InsecureSkipVerify = true
	case "certificate":
		// Check the chain but not the host name: skip Go's check and do
		// the chain ourselves.
		c.InsecureSkipVerify = true
		roots := c.RootCAs
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("output: ssl: the broker sent no certificate")
			}
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
			for _, ic := range cs.PeerCertificates[1:] {
				opts.Intermediates.AddCert(ic)
			}
			_, err := cs.PeerCertificates[0].Verify(opts)
			return err
		}
	}
	return c, nil
}

func shortPEM(v string) string {
	if strings.Contains(v, "-----BEGIN") {
		return "the inline PEM"
	}
	return v
}
