package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"sync"
)

// Material is a certificate with its key and a set of CAs, each given as
// a file name or as the PEM text itself (as Settings' keys are), read again
// whenever a file's size or modification time changes, so certificates
// can be renewed without a restart. It is safe for concurrent use.
type Material struct {
	// Certificate and Key are the certificate chain and its private key;
	// they may name the same file. Empty: no certificate.
	Certificate, Key string
	// CAs are the trusted certificates; empty: none.
	CAs []string
	// Policy bounds the versions and cipher suites of the connections
	// served or dialled with m.
	Policy Policy

	mu    sync.Mutex
	stamp string
	pair  *tls.Certificate
	pool  *x509.CertPool
}

// stampOf identifies the current version of the files named in values.
func stampOf(values ...string) string {
	var b strings.Builder
	for _, v := range values {
		if v == "" || strings.Contains(v, "-----BEGIN") {
			continue
		}
		if st, err := os.Stat(v); err == nil {
			fmt.Fprintf(&b, "%s:%d:%d;", v, st.Size(), st.ModTime().UnixNano())
		} else {
			fmt.Fprintf(&b, "%s:missing;", v)
		}
	}
	return b.String()
}

// Load returns the certificate (nil if none is set) and the CA pool (nil if
// none is set), reading the files again if they changed since the last
// call. When a changed file does not load, the error is returned and the
// material read before stays in use for the next calls.
func (m *Material) Load() (*tls.Certificate, *x509.CertPool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	stamp := stampOf(append([]string{m.Certificate, m.Key}, m.CAs...)...)
	if m.stamp != "" && stamp == m.stamp {
		return m.pair, m.pool, nil
	}
	pair, pool, err := m.read()
	if err != nil {
		if m.stamp != "" {
			return m.pair, m.pool, err
		}
		return nil, nil, err
	}
	m.stamp, m.pair, m.pool = stamp, pair, pool
	if m.stamp == "" {
		m.stamp = "inline"
	}
	return pair, pool, nil
}

func (m *Material) read() (*tls.Certificate, *x509.CertPool, error) {
	var pair *tls.Certificate
	if m.Certificate != "" {
		cert, err := pemOf(m.Certificate)
		if err != nil {
			return nil, nil, err
		}
		key, err := pemOf(m.Key)
		if err != nil {
			return nil, nil, err
		}
		p, err := tls.X509KeyPair(cert, key)
		if err != nil {
			return nil, nil, fmt.Errorf("tlsconfig: certificate and key: %w", err)
		}
		pair = &p
	}
	var pool *x509.CertPool
	if len(m.CAs) > 0 {
		pool = x509.NewCertPool()
		for _, ca := range m.CAs {
			b, err := pemOf(ca)
			if err != nil {
				return nil, nil, err
			}
			if !pool.AppendCertsFromPEM(b) {
				return nil, nil, fmt.Errorf("tlsconfig: no PEM certificate in %.60q", ca)
			}
		}
	}
	return pair, pool, nil
}

// ClientAuth is how a server asks for client certificates.
type ClientAuth = tls.ClientAuthType

// Server returns a TLS 1.2+ server configuration under m's Policy that
// serves m's certificate and checks client certificates against m's CAs
// as auth says, picking up renewed files at each new connection.
func (m *Material) Server(auth ClientAuth) *tls.Config {
	c := &tls.Config{
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			pair, pool, err := m.Load()
			if pair == nil {
				if err == nil {
					err = fmt.Errorf("tlsconfig: no server certificate is set")
				}
				return nil, err
			}
			c := &tls.Config{Certificates: []tls.Certificate{*pair}, ClientCAs: pool, ClientAuth: auth}
			m.Policy.Apply(c)
			return c, nil
		},
	}
	m.Policy.Apply(c)
	return c
}

// Client returns a TLS 1.2+ client configuration under m's Policy
// trusting m's CAs (the system's when none is set) and presenting m's
// certificate, as read now. serverName is checked in the server's
// certificate unless verifyHost is false.
func (m *Material) Client(serverName string, verifyHost bool) (*tls.Config, error) {
	pair, pool, err := m.Load()
	if err != nil {
		return nil, err
	}
	c := &tls.Config{ServerName: serverName, RootCAs: pool}
	m.Policy.Apply(c)
	if pair != nil {
		c.Certificates = []tls.Certificate{*pair}
	}
	if !verifyHost {
		c.InsecureSkipVerify = true
		c.VerifyConnection = verifyChain(pool)
	}
	return c, nil
}
