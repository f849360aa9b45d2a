package broker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"time"

	"logpipe/brokerd/quorum"
	"logpipe/brokerd/sasl"
	"logpipe/brokerd/wire"
	"logpipe/pipeline/config"
	"logpipe/pipeline/scram"
	"logpipe/pipeline/tlsconfig"
)

// SecurityConfig is TLS and SASL, under Kafka's key names. Kafka's keystore
// and truststore are JKS or PKCS12 files; brokerd takes PEM only:
// ssl.keystore.location is a PEM file holding the certificate chain and
// its unencrypted private key (or give them inline as
// ssl.keystore.certificate.chain and ssl.keystore.key), and
// ssl.truststore.location a PEM file of CA certificates (or inline,
// ssl.truststore.certificates). The files are read again when they change.
type SecurityConfig struct {
	SSLKeystoreType             string `yaml:"ssl.keystore.type"`
	SSLKeystoreLocation         string `yaml:"ssl.keystore.location"`
	SSLKeystoreCertificateChain string `yaml:"ssl.keystore.certificate.chain"`
	SSLKeystoreKey              string `yaml:"ssl.keystore.key"`
	// SSLKeyPassword is refused: encrypted PEM keys are not supported.
	SSLKeyPassword string `yaml:"ssl.key.password"`
	// SSLKeystorePassword and SSLTruststorePassword, the passwords of JKS
	// and PKCS12 stores, are refused: PEM files have none.
	SSLKeystorePassword       string `yaml:"ssl.keystore.password"`
	SSLTruststorePassword     string `yaml:"ssl.truststore.password"`
	SSLTruststoreType         string `yaml:"ssl.truststore.type"`
	SSLTruststoreLocation     string `yaml:"ssl.truststore.location"`
	SSLTruststoreCertificates string `yaml:"ssl.truststore.certificates"`
	// SSLClientAuth is none, requested or required: whether TLS
	// listeners ask clients for a certificate signed by the truststore.
	SSLClientAuth string `yaml:"ssl.client.auth"`
	// SSLPrincipalMappingRules turns a client certificate's subject into
	// the principal's name on SSL listeners; DEFAULT keeps the whole DN.
	SSLPrincipalMappingRules string `yaml:"ssl.principal.mapping.rules"`
	// SSLEndpointIdentificationAlgorithm is https (check the host name of
	// the broker a replica fetcher connects to) or empty (do not).
	SSLEndpointIdentificationAlgorithm *string `yaml:"ssl.endpoint.identification.algorithm"`
	// SSLEnabledProtocols lists the TLS versions served and dialled,
	// TLSv1.2 and/or TLSv1.3, comma-separated; empty means both.
	SSLEnabledProtocols string `yaml:"ssl.enabled.protocols"`
	// SSLCipherSuites lists the cipher suites by their IANA names,
	// comma-separated; empty means Go's defaults (see
	// tlsconfig.NewPolicy for how TLS 1.3's suites are taken).
	SSLCipherSuites string `yaml:"ssl.cipher.suites"`
	// SSLProtocol is Kafka's ssl.protocol: TLSv1.2 keeps the connections
	// this node dials at TLS 1.2, as it keeps Kafka's clients; TLSv1.3
	// (the default) and TLS do not. Listeners follow
	// ssl.enabled.protocols alone, as Kafka's do.
	SSLProtocol string `yaml:"ssl.protocol"`

	// SASLEnabledMechanisms are those SASL listeners offer.
	SASLEnabledMechanisms string `yaml:"sasl.enabled.mechanisms"`
	// SASLPlainUsersFile holds PLAIN accounts as "user: bcrypt hash"
	// lines of YAML; it is read again when it changes.
	SASLPlainUsersFile string `yaml:"sasl.plain.users.file"`
	// SASLMechanismInterBrokerProtocol and SASLJaasConfig are how this
	// node logs in to other brokers when the inter-broker listener uses
	// SASL: the mechanism, and a JAAS line of which brokerd reads
	// username="…" and password="…".
	SASLMechanismInterBrokerProtocol string `yaml:"sasl.mechanism.inter.broker.protocol"`
	SASLJaasConfig                   string `yaml:"sasl.jaas.config"`
	// SASLMechanismControllerProtocol is the mechanism this node logs in
	// to the controller listener with (its Raft streams and controller
	// requests) when that listener is SASL_PLAINTEXT or SASL_SSL, with
	// the credentials of the controller listener's sasl.jaas.config.
	// Kafka's default is GSSAPI; brokerd's is PLAIN, the only one it
	// takes there.
	SASLMechanismControllerProtocol string `yaml:"sasl.mechanism.controller.protocol"`
	// ConnectionsMaxReauthMs is KIP-368's session lifetime: a client must
	// authenticate again this long after it did; 0 means never.
	ConnectionsMaxReauthMs int64 `yaml:"connections.max.reauth.ms"`
	// ConnectionFailedAuthenticationDelayMs delays the answer to a failed
	// login, slowing password guessing.
	ConnectionFailedAuthenticationDelayMs int64 `yaml:"connection.failed.authentication.delay.ms"`
	// SASLServerMaxReceiveSize bounds a request before authentication.
	SASLServerMaxReceiveSize int32 `yaml:"sasl.server.max.receive.size"`
	// SASLServerAuthenticationTimeoutMs (brokerd's own key) closes a
	// connection that has not finished its TLS handshake and SASL
	// exchange this long after connecting.
	SASLServerAuthenticationTimeoutMs int64 `yaml:"sasl.server.authentication.timeout.ms"`
}

func defaultSecurity() SecurityConfig {
	return SecurityConfig{
		SSLClientAuth:                         "none",
		SSLPrincipalMappingRules:              "DEFAULT",
		SASLEnabledMechanisms:                 strings.Join(sasl.Mechanisms, ","),
		SASLMechanismInterBrokerProtocol:      sasl.Plain,
		SASLMechanismControllerProtocol:       sasl.Plain,
		ConnectionFailedAuthenticationDelayMs: 100,
		SASLServerMaxReceiveSize:              wire.DefaultMaxPreAuthBytes,
		SASLServerAuthenticationTimeoutMs:     wire.DefaultAuthTimeout.Milliseconds(),
	}
}

func (s *SecurityConfig) hasKeystore() bool {
	return s.SSLKeystoreLocation != "" || s.SSLKeystoreCertificateChain != ""
}

// mechanisms returns sasl.enabled.mechanisms as a list.
func (s *SecurityConfig) mechanisms() []string {
	out := config.CommaList(s.SASLEnabledMechanisms)
	for i, m := range out {
		out[i] = strings.ToUpper(m)
	}
	return out
}

// tlsPolicy is ssl.enabled.protocols with ssl.cipher.suites.
func (s *SecurityConfig) tlsPolicy() (tlsconfig.Policy, error) {
	return tlsconfig.ParsePolicy(s.SSLEnabledProtocols, s.SSLCipherSuites)
}

func (s *SecurityConfig) validate(bad func(key, format string, args ...any)) {
	for key, v := range map[string]string{"ssl.keystore.type": s.SSLKeystoreType, "ssl.truststore.type": s.SSLTruststoreType} {
		if v != "" && !strings.EqualFold(v, "PEM") {
			bad(key, "only PEM is supported, got %q (convert a JKS or PKCS12 store with keytool and openssl)", v)
		}
	}
	if s.SSLKeyPassword != "" {
		bad("ssl.key.password", "encrypted private keys are not supported: give the key unencrypted in PEM")
	}
	for key, v := range map[string]string{"ssl.keystore.password": s.SSLKeystorePassword, "ssl.truststore.password": s.SSLTruststorePassword} {
		if v != "" {
			bad(key, "brokerd reads its stores as PEM files, which have no password: remove this key (openssl pkcs12 -nodes turns a PKCS12 store into PEM)")
		}
	}
	if s.SSLKeystoreLocation != "" && (s.SSLKeystoreCertificateChain != "" || s.SSLKeystoreKey != "") {
		bad("ssl.keystore.location", "set either ssl.keystore.location or ssl.keystore.certificate.chain with ssl.keystore.key, not both")
	}
	if (s.SSLKeystoreCertificateChain == "") != (s.SSLKeystoreKey == "") {
		bad("ssl.keystore.key", "ssl.keystore.certificate.chain and ssl.keystore.key go together")
	}
	if s.SSLTruststoreLocation != "" && s.SSLTruststoreCertificates != "" {
		bad("ssl.truststore.location", "set either ssl.truststore.location or ssl.truststore.certificates, not both")
	}
	if _, err := s.clientAuth(); err != nil {
		bad("ssl.client.auth", "%v", err)
	}
	if a := s.SSLEndpointIdentificationAlgorithm; a != nil && *a != "" && !strings.EqualFold(*a, "https") {
		bad("ssl.endpoint.identification.algorithm", "want https or empty, got %q", *a)
	}
	var perr *tlsconfig.PolicyError
	p, err := s.tlsPolicy()
	if err == nil {
		_, err = p.Dialling(s.SSLProtocol)
	}
	if errors.As(err, &perr) {
		bad(perr.Key, "%s", perr.Reason)
	}
	if _, err := parsePrincipalRules(s.SSLPrincipalMappingRules); err != nil {
		bad("ssl.principal.mapping.rules", "%v", err)
	}
	for _, m := range s.mechanisms() {
		if !slices.Contains(sasl.Mechanisms, m) {
			bad("sasl.enabled.mechanisms", "%s is not served; brokerd offers %s", m, strings.Join(sasl.Mechanisms, ", "))
		}
	}
	if m := strings.ToUpper(s.SASLMechanismInterBrokerProtocol); !slices.Contains(sasl.Mechanisms, m) {
		bad("sasl.mechanism.inter.broker.protocol", "want one of %s, got %q", strings.Join(sasl.Mechanisms, ", "), s.SASLMechanismInterBrokerProtocol)
	}
	if s.ConnectionsMaxReauthMs < 0 {
		bad("connections.max.reauth.ms", "must not be negative (0 turns re-authentication off)")
	}
	if s.ConnectionFailedAuthenticationDelayMs < 0 {
		bad("connection.failed.authentication.delay.ms", "must not be negative")
	}
	if s.SASLServerMaxReceiveSize < 64 {
		bad("sasl.server.max.receive.size", "must be at least 64 bytes")
	}
	if s.SASLServerAuthenticationTimeoutMs < 1 {
		bad("sasl.server.authentication.timeout.ms", "must be positive")
	}
}

// clientAuth maps ssl.client.auth to crypto/tls.
func (s *SecurityConfig) clientAuth() (tls.ClientAuthType, error) {
	switch strings.ToLower(s.SSLClientAuth) {
	case "", "none":
		return tls.NoClientCert, nil
	case "requested":
		return tls.VerifyClientCertIfGiven, nil
	case "required":
		return tls.RequireAndVerifyClientCert, nil
	}
	return 0, fmt.Errorf("want none, requested or required, got %q", s.SSLClientAuth)
}

// material returns the keystore and truststore as PEM material.
func (s *SecurityConfig) material() *tlsconfig.Material {
	m := &tlsconfig.Material{Certificate: s.SSLKeystoreLocation, Key: s.SSLKeystoreLocation}
	m.Policy, _ = s.tlsPolicy() // checked by validate
	if s.SSLKeystoreCertificateChain != "" {
		m.Certificate, m.Key = s.SSLKeystoreCertificateChain, s.SSLKeystoreKey
	}
	for _, ca := range []string{s.SSLTruststoreLocation, s.SSLTruststoreCertificates} {
		if ca != "" {
			m.CAs = append(m.CAs, ca)
		}
	}
	return m
}

// jaasCredentials reads username="…" and password="…" of sasl.jaas.config.
func (s *SecurityConfig) jaasCredentials() (user, pass string) {
	field := func(name string) string {
		m := regexp.MustCompile(`\b` + name + `\s*=\s*"((?:[^"\\]|\\.)*)"`).FindStringSubmatch(s.SASLJaasConfig)
		if m == nil {
			return ""
		}
		return strings.NewReplacer(`\"`, `"`, `\\`, `\`).Replace(m[1])
	}
	return field("username"), field("password")
}

// security is a node's TLS material and SASL authenticators, built
// once at start: the base settings' and each listener's own (the base
// with its listener.name.<listener>. overrides).
type security struct {
	base      *listenerSec
	listeners map[string]*listenerSec
}

// listenerSec is the effective security of one listener.
type listenerSec struct {
	cfg      SecurityConfig
	material *tlsconfig.Material
	auth     *sasl.Authenticator
	rules    []principalRule
}

// of returns the security of the listener called name (upper case), the
// base settings' for a name it does not know.
func (s *security) of(name string) *listenerSec {
	if l, ok := s.listeners[name]; ok {
		return l
	}
	return s.base
}

// newSecurity builds the node's security, reading the certificates of
// its TLS listeners and the PLAIN users file once so that a mistake
// stops the start.
func (b *Broker) newSecurity() error {
	var users *sasl.PlainUsers
	if f := b.cfg.Security.SASLPlainUsersFile; f != "" {
		var err error
		if users, err = sasl.OpenPlainUsers(f); err != nil {
			return fmt.Errorf("broker: sasl.plain.users.file: %w", err)
		}
	}
	build := func(cfg SecurityConfig) *listenerSec {
		ls := &listenerSec{cfg: cfg, material: cfg.material()}
		ls.rules, _ = parsePrincipalRules(cfg.SSLPrincipalMappingRules)
		ls.auth = &sasl.Authenticator{Enabled: cfg.mechanisms(), SCRAM: b.scramCredential, Plain: users}
		return ls
	}
	sec := &security{base: build(b.cfg.Security), listeners: map[string]*listenerSec{}}
	ls, _ := b.cfg.clientListeners()
	ls = append(ls, b.cfg.controllerSpec())
	for _, l := range ls {
		s := build(b.cfg.listenerSecurity(l.Name))
		if l.tls() {
			if _, _, err := s.material.Load(); err != nil {
				return fmt.Errorf("broker: TLS certificates of listener %s: %w", l.Name, err)
			}
		}
		sec.listeners[l.Name] = s
	}
	b.sec = sec
	return nil
}

// scramCredential finds a user's credential in the metadata.
func (b *Broker) scramCredential(m scram.Mechanism, user string) (scram.Credential, bool) {
	c, ok := b.meta.Image().SCRAM[user][m.Name]
	if !ok {
		return scram.Credential{}, false
	}
	return scram.Credential{Salt: c.Salt, Iterations: int(c.Iterations), StoredKey: c.StoredKey, ServerKey: c.ServerKey}, true
}

// wireSecurity is how the wire server protects listener l.
func (b *Broker) wireSecurity(l listenerSpec) wire.Security {
	ls := b.sec.of(l.Name)
	ws := wire.Security{
		Listener:        l.Name,
		SASL:            l.sasl(),
		MaxPreAuthBytes: ls.cfg.SASLServerMaxReceiveSize,
		AuthTimeout:     ls.authTimeout(),
	}
	if l.tls() {
		ws.TLS = ls.serverTLS()
		ws.CertPrincipal = ls.certPrincipal
	}
	return ws
}

// serverTLS is the listener's TLS server configuration: its keystore,
// with client certificates asked for and checked against its truststore
// as its ssl.client.auth says.
func (ls *listenerSec) serverTLS() *tls.Config {
	auth, _ := ls.cfg.clientAuth()
	return ls.material.Server(auth)
}

// authTimeout is sasl.server.authentication.timeout.ms.
func (ls *listenerSec) authTimeout() time.Duration {
	return time.Duration(ls.cfg.SASLServerAuthenticationTimeoutMs) * time.Millisecond
}

// interBrokerSecurity is how this node connects to another broker's
// inter-broker listener at addr: with that listener's settings, TLS with
// the truststore (and the keystore as client certificate) and SASL with
// its sasl.jaas.config, as the listener's protocol asks.
func (b *Broker) interBrokerSecurity(addr string) (wire.ClientSecurity, error) {
	var cs wire.ClientSecurity
	l, err := b.cfg.interBrokerListener()
	if err != nil {
		return cs, err
	}
	ls := b.sec.of(l.Name)
	if l.tls() {
		if cs.TLS, err = ls.peerTLS(addr); err != nil {
			return cs, err
		}
	}
	if l.sasl() {
		cs.SASLMechanism = strings.ToUpper(b.cfg.Security.SASLMechanismInterBrokerProtocol)
		cs.SASLUser, cs.SASLPassword = ls.cfg.jaasCredentials()
	}
	return cs, nil
}

// controllerTLS is the TLS configuration this node dials the controller
// listener at addr with (the Raft streams and the lanes to the active
// controller): nil unless that listener is SSL or SASL_SSL, else the
// controller listener's truststore, with its keystore as client
// certificate.
func (b *Broker) controllerTLS(addr string) (*tls.Config, error) {
	if ctl := b.cfg.controllerSpec(); ctl.tls() {
		return b.sec.of(ctl.Name).peerTLS(addr)
	}
	return nil, nil
}

// controllerSASL is the mechanism and credentials this node logs in to
// the controller listener with; empty unless it is SASL_PLAINTEXT or
// SASL_SSL.
func (b *Broker) controllerSASL() (mechanism, user, pass string) {
	ctl := b.cfg.controllerSpec()
	if !ctl.sasl() {
		return "", "", ""
	}
	ls := b.sec.of(ctl.Name)
	user, pass = ls.cfg.jaasCredentials()
	return strings.ToUpper(ls.cfg.SASLMechanismControllerProtocol), user, pass
}

// raftStreamAuth authenticates the Raft streams of a SASL controller
// listener: this node sends a PLAIN token of its controller credentials;
// a peer's token is checked as a Kafka login on that listener would be,
// and its principal must be a super user while authorization is on (the
// ACLs live in the Raft log itself, which a node catching up has not
// read yet, so they cannot admit a Raft stream).
func (b *Broker) raftStreamAuth() *quorum.StreamAuth {
	ls := b.sec.of(b.cfg.controllerListener())
	return &quorum.StreamAuth{
		Token: func(string) (string, []byte, error) {
			mech, user, pass := b.controllerSASL()
			return mech, []byte("\x00" + user + "\x00" + pass), nil
		},
		Check: func(_ net.Addr, mech string, token []byte) error {
			ex, err := ls.auth.Start(mech)
			if err != nil {
				return err
			}
			if _, err := ex.Step(token); err != nil {
				return fmt.Errorf("SASL %s as %q: %w", mech, ex.User(), err)
			}
			if !ex.Done() {
				return fmt.Errorf("SASL %s needs more than one step, which Raft streams do not take", mech)
			}
			if p := "User:" + ex.User(); b.authz != nil && !b.authz.SuperUser(p) {
				return fmt.Errorf("%s is not a super user, which a Raft stream needs", p)
			}
			return nil
		},
	}
}

// peerTLS is the TLS configuration this node connects to another node at
// addr with: the truststore, the keystore as client certificate, the host
// name checked unless ssl.endpoint.identification.algorithm is empty, and
// the versions ssl.protocol leaves a client (tlsconfig.Policy.Dialling;
// validate has refused a value it would refuse).
func (ls *listenerSec) peerTLS(addr string) (*tls.Config, error) {
	a := ls.cfg.SSLEndpointIdentificationAlgorithm
	host, _, _ := net.SplitHostPort(addr)
	c, err := ls.material.Client(host, a == nil || *a != "")
	if err != nil {
		return nil, err
	}
	p, err := ls.material.Policy.Dialling(ls.cfg.SSLProtocol)
	if err != nil {
		return nil, err
	}
	p.Apply(c)
	return c, nil
}

// principalRule is one rule of ssl.principal.mapping.rules; a rule with a
// nil pattern is DEFAULT.
type principalRule struct {
	pattern     *regexp.Regexp
	replacement string
	toCase      byte // 'L', 'U' or 0
}

// javaGroupRef is a Java replacement's group reference, $1, which Go
// spells ${1} when a name character follows.
var javaGroupRef = regexp.MustCompile(`\$(\d+)`)

// parsePrincipalRules parses Kafka's rule list: "RULE:pattern/replacement/"
// with an optional L or U after it, and DEFAULT, separated by commas.
// A '/' inside the pattern or replacement is written "\/".
func parsePrincipalRules(s string) ([]principalRule, error) {
	var rules []principalRule
	rest := strings.TrimSpace(s)
	if rest == "" {
		rest = "DEFAULT"
	}
	// part reads up to the next unescaped '/'.
	part := func() (string, bool) {
		var b strings.Builder
		for i := 0; i < len(rest); i++ {
			switch {
			case rest[i] == '\\' && i+1 < len(rest) && rest[i+1] == '/':
				b.WriteByte('/')
				i++
			case rest[i] == '/':
				rest = rest[i+1:]
				return b.String(), true
			default:
				b.WriteByte(rest[i])
			}
		}
		return "", false
	}
	for rest != "" {
		switch {
		case strings.HasPrefix(rest, "DEFAULT"):
			rest = rest[len("DEFAULT"):]
			rules = append(rules, principalRule{})
		case strings.HasPrefix(rest, "RULE:"):
			rest = rest[len("RULE:"):]
			pat, ok1 := part()
			repl, ok2 := part()
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("rule %q is not RULE:pattern/replacement/[LU]", s)
			}
			re, err := regexp.Compile("^(?:" + pat + ")$")
			if err != nil {
				return nil, fmt.Errorf("rule pattern %q: %v", pat, err)
			}
			r := principalRule{pattern: re, replacement: javaGroupRef.ReplaceAllString(repl, "$${$1}")}
			if rest != "" && (rest[0] == 'L' || rest[0] == 'U') {
				r.toCase, rest = rest[0], rest[1:]
			}
			rules = append(rules, r)
		default:
			return nil, fmt.Errorf("%q: want RULE:… or DEFAULT", rest)
		}
		rest = strings.TrimSpace(rest)
		if rest != "" {
			if rest[0] != ',' {
				return nil, fmt.Errorf("%q: rules are separated by commas", rest)
			}
			rest = strings.TrimSpace(rest[1:])
		}
	}
	return rules, nil
}

// mapPrincipal applies the rules to a certificate subject's DN, as Kafka
// does: the first rule whose pattern matches the whole DN gives the name.
func mapPrincipal(rules []principalRule, dn string) (string, error) {
	for _, r := range rules {
		if r.pattern == nil {
			return dn, nil
		}
		if !r.pattern.MatchString(dn) {
			continue
		}
		name := r.pattern.ReplaceAllString(dn, r.replacement)
		switch r.toCase {
		case 'L':
			name = strings.ToLower(name)
		case 'U':
			name = strings.ToUpper(name)
		}
		if name != "" {
			return name, nil
		}
	}
	return "", fmt.Errorf("no ssl.principal.mapping.rules rule applies to %q", dn)
}

// certPrincipal is the principal of a client certificate: User: and the
// mapped subject DN (RFC 2253, as Java prints it).
func (s *listenerSec) certPrincipal(cert *x509.Certificate) (string, error) {
	name, err := mapPrincipal(s.rules, cert.Subject.String())
	if err != nil {
		return "", err
	}
	return "User:" + name, nil
}
