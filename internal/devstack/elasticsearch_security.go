package devstack

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/bcrypt"
)

// esSecurityFlag makes the launcher load X-Pack core and security.
const esSecurityFlag = "--xpack-security"

// The files writeConfig puts in the node's config folder, which
// esSecuritySettings name relative to it.
const (
	esHTTPCert = "http.crt"
	esHTTPKey  = "http.key"
	esHTTPCA   = "http-ca.crt"
)

// esSecuritySettings turn security on with TLS on the HTTP layer. The
// transport layer stays plain: a single-node cluster only talks to itself
// on it, bound to 127.0.0.1. Only the file and native realms are used.
var esSecuritySettings = []string{
	"xpack.security.enabled=true",
	"xpack.security.http.ssl.enabled=true",
	"xpack.security.http.ssl.certificate=" + esHTTPCert,
	"xpack.security.http.ssl.key=" + esHTTPKey,
	"xpack.security.http.ssl.certificate_authorities=" + esHTTPCA,
	"xpack.security.http.ssl.supported_protocols=TLSv1.3,TLSv1.2",
	// No trial license: the self-generated basic license has TLS, the
	// file and native realms, roles and API keys.
	"xpack.license.self_generated.type=basic",
}

// writeConfig writes the TLS files and the file realm's users (the
// superuser, bcrypt-hashed as elasticsearch-users does) into dir.
func (s *ElasticsearchSecurity) writeConfig(dir string) error {
	if len(s.CertPEM) == 0 || len(s.KeyPEM) == 0 || len(s.CAPEM) == 0 {
		return errors.New("devstack: elasticsearch security needs CertPEM, KeyPEM and CAPEM")
	}
	if s.Username == "" || s.Password == "" {
		return errors.New("devstack: elasticsearch security needs a superuser's Username and Password")
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(s.Password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("devstack: elasticsearch superuser: %w", err)
	}
	files := map[string][]byte{
		esHTTPCert:    s.CertPEM,
		esHTTPKey:     s.KeyPEM,
		esHTTPCA:      s.CAPEM,
		"users":       []byte(s.Username + ":" + string(hash) + "\n"),
		"users_roles": []byte("superuser:" + s.Username + "\n"),
		"roles.yml":   nil,
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return fmt.Errorf("devstack: %w", err)
		}
	}
	return nil
}
