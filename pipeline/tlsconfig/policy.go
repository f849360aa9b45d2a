package tlsconfig

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"

	"logpipe/pipeline/config"
)

// Policy is which TLS versions and cipher suites a connection may use,
// as Kafka's ssl.enabled.protocols and ssl.cipher.suites say. The zero
// Policy is TLS 1.2 and 1.3 with Go's default suites.
type Policy struct {
	// MinVersion and MaxVersion bound the version; zero means TLS 1.2
	// and TLS 1.3.
	MinVersion, MaxVersion uint16
	// CipherSuites are the TLS 1.2 suites offered or accepted; nil means
	// Go's defaults. TLS 1.3's suites are not configurable in Go.
	CipherSuites []uint16
}

// PolicyError is a mistake in one of the keys NewPolicy reads.
type PolicyError struct {
	// Key is ssl.enabled.protocols or ssl.cipher.suites.
	Key    string
	Reason string
}

// Error returns the key and the reason.
func (e *PolicyError) Error() string { return e.Key + ": " + e.Reason }

// Protocols returns the lowest and highest of names, each TLSv1.2 or
// TLSv1.3 (as Kafka and Filebeat spell them).
func Protocols(names []string) (lo, hi uint16, err error) {
	if len(names) == 0 {
		return 0, 0, fmt.Errorf("no protocol given")
	}
	lo, hi = tls.VersionTLS13, tls.VersionTLS12
	for _, n := range names {
		v, ok := tlsVersions[n]
		if !ok {
			return 0, 0, fmt.Errorf("want TLSv1.2 or TLSv1.3, got %q (older versions are not served)", n)
		}
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi, nil
}

// NewPolicy builds the policy of ssl.enabled.protocols (protocols) and
// ssl.cipher.suites (suites), each a list of names; an empty list keeps
// the default. Suites are named as IANA and Java name them
// (TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256). As
// with Kafka on Java, a list without TLS 1.3 suites leaves TLS 1.3 out,
// and one with only TLS 1.3 suites leaves TLS 1.2 out. Go offers all of
// TLS 1.3's suites or none, so a list naming some of them but not all is
// refused rather than silently widened.
func NewPolicy(protocols, suites []string) (Policy, error) {
	p := Policy{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13}
	if len(protocols) > 0 {
		var err error
		if p.MinVersion, p.MaxVersion, err = Protocols(protocols); err != nil {
			return Policy{}, &PolicyError{"ssl.enabled.protocols", err.Error()}
		}
	}
	if len(suites) == 0 {
		return p, nil
	}
	byName := map[string]*tls.CipherSuite{}
	var tls13 []string
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		byName[cs.Name] = cs
		if slices.Contains(cs.SupportedVersions, tls.VersionTLS13) {
			tls13 = append(tls13, cs.Name)
		}
	}
	var named13 []string
	for _, n := range suites {
		cs, ok := byName[n]
		switch {
		case !ok:
			return Policy{}, suitesError("unknown suite %q (give IANA names, such as TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)", n)
		case insecure(cs.ID):
			return Policy{}, suitesError("%s is insecure and not offered", n)
		case slices.Contains(cs.SupportedVersions, tls.VersionTLS13):
			if !slices.Contains(named13, n) {
				named13 = append(named13, n)
			}
		case !slices.Contains(p.CipherSuites, cs.ID):
			p.CipherSuites = append(p.CipherSuites, cs.ID)
		}
	}
	switch {
	case len(named13) == 0:
		p.MaxVersion = min(p.MaxVersion, tls.VersionTLS12)
	case len(named13) < len(tls13):
		return Policy{}, suitesError("TLS 1.3's suites are all offered or none (%s), not some", strings.Join(tls13, ", "))
	}
	if len(p.CipherSuites) == 0 {
		p.MinVersion = max(p.MinVersion, tls.VersionTLS13)
	}
	if p.MinVersion > p.MaxVersion {
		return Policy{}, suitesError("no suite of an enabled protocol (%s) is listed", strings.Join(versionNames(protocols), ", "))
	}
	return p, nil
}

// ParsePolicy is NewPolicy of the values of ssl.enabled.protocols and
// ssl.cipher.suites as Kafka's configurations write them: names separated
// by commas, blanks around them ignored.
func ParsePolicy(protocols, suites string) (Policy, error) {
	return NewPolicy(config.CommaList(protocols), config.CommaList(suites))
}

// insecure reports whether Go counts the cipher suite id insecure.
func insecure(id uint16) bool {
	return slices.ContainsFunc(tls.InsecureCipherSuites(), func(cs *tls.CipherSuite) bool { return cs.ID == id })
}

// suitesError is a mistake in ssl.cipher.suites.
func suitesError(format string, args ...any) error {
	return &PolicyError{"ssl.cipher.suites", fmt.Sprintf(format, args...)}
}

// versionNames is names, or both versions when it is empty.
func versionNames(names []string) []string {
	if len(names) == 0 {
		return []string{"TLSv1.2", "TLSv1.3"}
	}
	return names
}

// Apply puts p's versions and suites into c.
func (p Policy) Apply(c *tls.Config) {
	c.MinVersion = max(p.MinVersion, tls.VersionTLS12)
	c.MaxVersion = p.MaxVersion
	c.CipherSuites = p.CipherSuites
}

// Dialling returns the policy of the connections made under p by a
// Kafka client whose ssl.protocol is protocol: TLSv1.2 keeps them at
// TLS 1.2; TLSv1.3 (Kafka's default), TLS and empty leave p as it is.
func (p Policy) Dialling(protocol string) (Policy, error) {
	switch protocol {
	case "", "TLS", "TLSv1.3":
		return p, nil
	case "TLSv1.2":
		if p.MinVersion > tls.VersionTLS12 {
			return Policy{}, &PolicyError{"ssl.protocol", "TLSv1.2 would leave no version to connect with, as ssl.enabled.protocols and ssl.cipher.suites leave TLS 1.3 only"}
		}
		p.MaxVersion = tls.VersionTLS12
		return p, nil
	}
	return Policy{}, &PolicyError{"ssl.protocol", fmt.Sprintf("want TLSv1.3, TLSv1.2 or TLS, got %q (older versions are not served)", protocol)}
}
