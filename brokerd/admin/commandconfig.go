package admin

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"logpipe/pipeline/tlsconfig"
)

// This file reads --command-config: a Java properties file in the form
// Kafka's tools take (kafka-topics.sh --command-config, kafka-acls.sh,
// kafka-configs.sh ...), of which the security settings are applied.

// maxCommandConfigBytes bounds a --command-config file: a client's
// properties are a few hundred bytes, and anything much larger is not one.
const maxCommandConfigBytes = 1 << 20

// property is one key and value of a properties file, with the line its
// logical line starts on.
type property struct {
	key, value string
	line       int
}

// parseProperties reads data as java.util.Properties.load reads an input
// stream: ISO 8859-1 bytes, # and ! comments, key and value separated by
// '=', ':' or white space, a line ending in an odd number of backslashes
// continued on the next, and the escapes \t \n \r \f \uXXXX. It refuses
// what Java would silently accept but is surely a mistake: an empty key
// and a malformed \u escape. name is the file's name for the errors.
func parseProperties(name string, data []byte) ([]property, error) {
	// ISO 8859-1: every byte is the code point of the same value.
	text := make([]rune, len(data))
	for i, b := range data {
		text[i] = rune(b)
	}
	var out []property
	line := 1
	for pos := 0; pos < len(text); {
		start := line
		logical, next, lines := logicalLine(text, pos)
		pos, line = next, line+lines
		if logical == nil {
			continue
		}
		key, value, err := splitProperty(logical)
		if err != nil {
			return nil, usagef("%s:%d: %v", name, start, err)
		}
		if key == "" {
			return nil, usagef("%s:%d: a value without a key", name, start)
		}
		out = append(out, property{key: key, value: value, line: start})
	}
	return out, nil
}

func isPropSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\f' }

// logicalLine returns the logical line starting at pos (nil for a blank or
// comment line), where the next one starts, and how many line breaks it
// spans.
func logicalLine(text []rune, pos int) (logical []rune, next, lines int) {
	var out []rune
	first := true
	for {
		for pos < len(text) && isPropSpace(text[pos]) {
			pos++
		}
		end := pos
		for end < len(text) && text[end] != '\n' && text[end] != '\r' {
			end++
		}
		natural := text[pos:end]
		next = end
		if next < len(text) {
			lines++
			if text[next] == '\r' && next+1 < len(text) && text[next+1] == '\n' {
				next++
			}
			next++
		}
		if first && (len(natural) == 0 || natural[0] == '#' || natural[0] == '!') {
			return nil, next, lines
		}
		first = false
		slashes := 0
		for i := len(natural) - 1; i >= 0 && natural[i] == '\\'; i-- {
			slashes++
		}
		if slashes%2 == 0 || next >= len(text) {
			if slashes%2 == 1 {
				natural = natural[:len(natural)-1] // a continuation at the end of the file continues into nothing
			}
			return append(out, natural...), next, lines
		}
		out = append(out, natural[:len(natural)-1]...)
		pos = next
	}
}

// splitProperty splits a logical line into its unescaped key and value.
func splitProperty(l []rune) (key, value string, err error) {
	i := 0
	for i < len(l) {
		if l[i] == '\\' {
			i += 2
			continue
		}
		if l[i] == '=' || l[i] == ':' || isPropSpace(l[i]) {
			break
		}
		i++
	}
	rawKey := l[:min(i, len(l))]
	for i < len(l) && isPropSpace(l[i]) {
		i++
	}
	if i < len(l) && (l[i] == '=' || l[i] == ':') {
		i++
	}
	for i < len(l) && isPropSpace(l[i]) {
		i++
	}
	if key, err = unescapeProperty(rawKey); err != nil {
		return "", "", err
	}
	if value, err = unescapeProperty(l[min(i, len(l)):]); err != nil {
		return "", "", fmt.Errorf("%s: %w", key, err)
	}
	return key, value, nil
}

// unescapeProperty resolves the backslash escapes of a key or value.
func unescapeProperty(s []rune) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			b.WriteRune(c)
			continue
		}
		i++
		if i == len(s) {
			break
		}
		switch s[i] {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if i+4 >= len(s) {
				return "", errors.New(`malformed \uXXXX escape`)
			}
			n, err := strconv.ParseUint(string(s[i+1:i+5]), 16, 16)
			if err != nil {
				return "", errors.New(`malformed \uXXXX escape`)
			}
			b.WriteRune(rune(n))
			i += 4
		default:
			b.WriteRune(s[i])
		}
	}
	return b.String(), nil
}

// commandConfig is what a --command-config file says about reaching the
// brokers.
type commandConfig struct {
	protocol string              // PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL
	tls      *tlsconfig.Settings // nil without TLS
	policy   tlsconfig.Policy    // TLS versions and suites
	sasl     sasl.Mechanism      // nil without SASL
}

// The settings read from a --command-config file.
var appliedKeys = []string{
	"security.protocol",
	"ssl.truststore.type", "ssl.truststore.location", "ssl.truststore.certificates",
	"ssl.keystore.type", "ssl.keystore.location", "ssl.keystore.certificate.chain", "ssl.keystore.key",
	"ssl.key.password", "ssl.endpoint.identification.algorithm", "ssl.enabled.protocols",
	"ssl.cipher.suites", "ssl.protocol", "sasl.mechanism", "sasl.jaas.config",
}

// Kafka client settings of the security.*, ssl.* and sasl.* families that
// do not apply to these commands and are ignored: the passwords of JKS
// and PKCS12 stores, the JVM's TLS provider and algorithms, and the
// settings of the mechanisms not supported (GSSAPI, OAUTHBEARER) and of
// custom login classes.
var (
	ignoredKeys = []string{
		"security.providers",
		"ssl.keystore.password", "ssl.truststore.password", "ssl.provider",
		"ssl.engine.factory.class", "ssl.keymanager.algorithm",
		"ssl.trustmanager.algorithm", "ssl.secure.random.implementation",
		"sasl.client.callback.handler.class",
	}
	ignoredPrefixes = []string{"sasl.kerberos.", "sasl.login.", "sasl.oauthbearer."}
)

// The login modules of sasl.jaas.config that carry a user name and password.
const (
	plainLoginModule = "org.apache.kafka.common.security.plain.PlainLoginModule"
	scramLoginModule = "org.apache.kafka.common.security.scram.ScramLoginModule"
)

// loadCommandConfig reads and checks the --command-config file path.
func loadCommandConfig(path string) (*commandConfig, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("--command-config: %v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCommandConfigBytes+1))
	if err != nil {
		return nil, usagef("--command-config: %v", err)
	}
	if len(data) > maxCommandConfigBytes {
		return nil, usagef("%s: larger than %d bytes: not a client's properties file", path, maxCommandConfigBytes)
	}
	props, err := parseProperties(path, data)
	if err != nil {
		return nil, err
	}
	return newCommandConfig(path, props)
}

// newCommandConfig checks the properties of the file name and builds the
// connection settings they describe.
func newCommandConfig(name string, props []property) (*commandConfig, error) {
	set := map[string]property{}
	for _, p := range props {
		switch {
		case slices.Contains(appliedKeys, p.key):
			if prev, dup := set[p.key]; dup {
				return nil, usagef("%s:%d: %s: set again (first on line %d)", name, p.line, p.key, prev.line)
			}
			set[p.key] = p
		case slices.Contains(ignoredKeys, p.key) || slices.ContainsFunc(ignoredPrefixes, func(pre string) bool { return strings.HasPrefix(p.key, pre) }):
		case strings.HasPrefix(p.key, "security.") || strings.HasPrefix(p.key, "ssl.") || strings.HasPrefix(p.key, "sasl."):
			// A misspelt security setting must not pass unnoticed: the
			// connection would be less protected than the file says.
			return nil, usagef("%s:%d: %s: not a setting of Kafka's clients", name, p.line, p.key)
		}
		// Other settings of Kafka's clients (client.id, request.timeout.ms,
		// ...) do not apply here.
	}
	bad := func(key, format string, args ...any) error {
		return usagef("%s:%d: %s: %s", name, set[key].line, key, fmt.Sprintf(format, args...))
	}
	value := func(key string) string { return set[key].value }
	given := func(key string) bool { _, ok := set[key]; return ok }

	c := &commandConfig{protocol: "PLAINTEXT"}
	if given("security.protocol") {
		c.protocol = strings.ToUpper(strings.TrimSpace(value("security.protocol")))
	}
	var useTLS, useSASL bool
	switch c.protocol {
	case "PLAINTEXT":
	case "SSL":
		useTLS = true
	case "SASL_PLAINTEXT":
		useSASL = true
	case "SASL_SSL":
		useTLS, useSASL = true, true
	default:
		return nil, bad("security.protocol", "want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, got %q", value("security.protocol"))
	}

	tlsKeys := []string{"ssl.truststore.location", "ssl.truststore.certificates", "ssl.keystore.location",
		"ssl.keystore.certificate.chain", "ssl.keystore.key", "ssl.key.password", "ssl.enabled.protocols",
		"ssl.cipher.suites", "ssl.protocol"}
	if !useTLS {
		for _, k := range tlsKeys {
			if given(k) {
				return nil, bad(k, "set, but security.protocol %s does not use TLS (SSL or SASL_SSL do)", c.protocol)
			}
		}
	} else {
		s, err := tlsSettings(set, bad)
		if err != nil {
			return nil, err
		}
		p, err := tlsPolicy(set, bad)
		if err != nil {
			return nil, err
		}
		c.tls, c.policy = s, p
	}

	if !useSASL {
		for _, k := range []string{"sasl.mechanism", "sasl.jaas.config"} {
			if given(k) {
				return nil, bad(k, "set, but security.protocol %s does not use SASL (SASL_PLAINTEXT or SASL_SSL do)", c.protocol)
			}
		}
		return c, nil
	}
	mech := "GSSAPI" // Kafka's default
	if given("sasl.mechanism") {
		mech = strings.TrimSpace(value("sasl.mechanism"))
	}
	if !slices.Contains([]string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}, mech) {
		if !given("sasl.mechanism") {
			return nil, usagef("%s: sasl.mechanism: not set, so Kafka's default GSSAPI, which is not supported: set PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", name)
		}
		return nil, bad("sasl.mechanism", "want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", mech)
	}
	if !given("sasl.jaas.config") {
		return nil, usagef("%s: sasl.jaas.config: not set; SASL %s needs `%s required username=\"...\" password=\"...\";`", name, mech, loginModuleFor(mech))
	}
	module, opts, err := parseJAAS(value("sasl.jaas.config"))
	if err != nil {
		return nil, bad("sasl.jaas.config", "%v", err)
	}
	if module != plainLoginModule && module != scramLoginModule {
		return nil, bad("sasl.jaas.config", "login module %s: want %s (a user name and password)", module, loginModuleFor(mech))
	}
	user, pass := opts["username"], opts["password"]
	if user == "" {
		return nil, bad("sasl.jaas.config", `no username="..."`)
	}
	if _, ok := opts["password"]; !ok {
		return nil, bad("sasl.jaas.config", `no password="..."`)
	}
	switch mech {
	case "PLAIN":
		c.sasl = plain.Auth{User: user, Pass: pass}.AsMechanism()
	case "SCRAM-SHA-256":
		c.sasl = scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		c.sasl = scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
	}
	return c, nil
}

func loginModuleFor(mech string) string {
	if mech == "PLAIN" {
		return plainLoginModule
	}
	return scramLoginModule
}

// tlsSettings turns the ssl.* properties into the TLS settings the
// shipper's and indexer's ssl sections use; the versions and cipher
// suites are tlsPolicy's.
func tlsSettings(set map[string]property, bad func(key, format string, args ...any) error) (*tlsconfig.Settings, error) {
	// Kafka trims its settings' values.
	value := func(key string) string { return strings.TrimSpace(set[key].value) }
	given := func(key string) bool { _, ok := set[key]; return ok }
	s := &tlsconfig.Settings{}

	// Stores: PEM only, and said so, as Kafka reads JKS unless told.
	for _, store := range []struct {
		typ  string
		keys []string
	}{
		{"ssl.truststore.type", []string{"ssl.truststore.location", "ssl.truststore.certificates"}},
		{"ssl.keystore.type", []string{"ssl.keystore.location", "ssl.keystore.certificate.chain", "ssl.keystore.key"}},
	} {
		if given(store.typ) && !strings.EqualFold(value(store.typ), "PEM") {
			return nil, bad(store.typ, "want PEM (JKS and PKCS12 stores are not read; `openssl pkcs12 -in store.p12 -nodes` makes PEM of one), got %q", value(store.typ))
		}
		for _, k := range store.keys {
			if given(k) && !given(store.typ) {
				return nil, bad(k, "set without %s=PEM (Kafka's tools would read it as JKS)", store.typ)
			}
		}
	}
	if given("ssl.truststore.location") && given("ssl.truststore.certificates") {
		return nil, bad("ssl.truststore.certificates", "set with ssl.truststore.location; give one of them")
	}
	for _, k := range []string{"ssl.truststore.location", "ssl.truststore.certificates"} {
		if given(k) {
			if value(k) == "" {
				return nil, bad(k, "empty")
			}
			s.CertificateAuthorities = []string{value(k)}
		}
	}
	switch {
	case given("ssl.keystore.location") && (given("ssl.keystore.certificate.chain") || given("ssl.keystore.key")):
		return nil, bad("ssl.keystore.location", "set with ssl.keystore.certificate.chain or ssl.keystore.key; give the one file or the two")
	case given("ssl.keystore.location"):
		// One PEM file with the chain and the key.
		s.Certificate, s.Key = value("ssl.keystore.location"), value("ssl.keystore.location")
	case given("ssl.keystore.certificate.chain") != given("ssl.keystore.key"):
		k := "ssl.keystore.certificate.chain"
		if !given(k) {
			k = "ssl.keystore.key"
		}
		return nil, bad(k, "ssl.keystore.certificate.chain and ssl.keystore.key go together")
	case given("ssl.keystore.certificate.chain"):
		s.Certificate, s.Key = value("ssl.keystore.certificate.chain"), value("ssl.keystore.key")
	}
	if given("ssl.key.password") && value("ssl.key.password") != "" {
		return nil, bad("ssl.key.password", "encrypted PEM keys are not supported; decrypt the key (openssl pkey -in key.pem -out plain.pem) and leave this out")
	}
	if given("ssl.endpoint.identification.algorithm") {
		switch strings.ToLower(value("ssl.endpoint.identification.algorithm")) {
		case "https":
		case "":
			// The chain is checked, not the host name.
			s.VerificationMode = "certificate"
		default:
			return nil, bad("ssl.endpoint.identification.algorithm", "want https or empty, got %q", value("ssl.endpoint.identification.algorithm"))
		}
	}
	// Read the files now, so that a wrong path is reported before
	// connecting: the CAs alone first, to name the key at fault.
	cas := &tlsconfig.Settings{CertificateAuthorities: s.CertificateAuthorities}
	if _, err := cas.Config(); err != nil {
		k := "ssl.truststore.location"
		if !given(k) {
			k = "ssl.truststore.certificates"
		}
		return nil, bad(k, "%v", strings.TrimPrefix(err.Error(), "tlsconfig: "))
	}
	if _, err := s.Config(); err != nil {
		k := "ssl.keystore.location"
		if !given(k) {
			k = "ssl.keystore.certificate.chain"
		}
		return nil, bad(k, "%v", strings.TrimPrefix(err.Error(), "tlsconfig: "))
	}
	return s, nil
}

// tlsPolicy reads ssl.enabled.protocols and ssl.cipher.suites as the
// broker does; ssl.protocol TLSv1.2 caps the connection at TLS 1.2, as it
// caps Kafka's clients.
func tlsPolicy(set map[string]property, bad func(key, format string, args ...any) error) (tlsconfig.Policy, error) {
	value := func(key string) string { return strings.TrimSpace(set[key].value) }
	p, err := tlsconfig.ParsePolicy(value("ssl.enabled.protocols"), value("ssl.cipher.suites"))
	if err == nil {
		p, err = p.Dialling(value("ssl.protocol"))
	}
	var perr *tlsconfig.PolicyError
	if errors.As(err, &perr) {
		return tlsconfig.Policy{}, bad(perr.Key, "%s", perr.Reason)
	}
	return p, err
}

// parseJAAS reads a sasl.jaas.config value: one login module, its control
// flag, its options as name=value (a value quoted or one word), and a
// closing semicolon, as Kafka's JaasConfig reads it.
func parseJAAS(s string) (module string, opts map[string]string, err error) {
	toks, err := jaasTokens(s)
	if err != nil {
		return "", nil, err
	}
	word := func(i int) bool { return i < len(toks) && toks[i].kind == 'w' }
	if !word(0) {
		return "", nil, errors.New("want a login module class first, such as " + plainLoginModule)
	}
	module = toks[0].text
	if !word(1) || !slices.Contains([]string{"required", "requisite", "sufficient", "optional"}, toks[1].text) {
		return "", nil, fmt.Errorf("want a control flag (required) after %s", module)
	}
	opts = map[string]string{}
	i := 2
	for ; i < len(toks) && !(toks[i].kind == ';'); i += 3 {
		if !word(i) || i+2 >= len(toks) || toks[i+1].kind != '=' || (toks[i+2].kind != 'w' && toks[i+2].kind != '"') {
			return "", nil, errors.New(`want options as name="value" and a closing ';'`)
		}
		if _, dup := opts[toks[i].text]; dup {
			return "", nil, fmt.Errorf("option %s given twice", toks[i].text)
		}
		opts[toks[i].text] = toks[i+2].text
	}
	if i >= len(toks) {
		return "", nil, errors.New("no closing ';'")
	}
	if i+1 < len(toks) {
		return "", nil, errors.New("more than one login module; a client takes one")
	}
	return module, opts, nil
}

// jaasToken is a word ('w'), a quoted string ('"'), '=' or ';'.
type jaasToken struct {
	kind rune
	text string
}

func isJAASWordChar(r rune) bool {
	return r == '.' || r == '_' || r == '-' || r == '$' || r == '{' || r == '}' ||
		(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
}

// jaasTokens splits a JAAS configuration into tokens. Quoted strings take
// the backslash escapes of Java's StreamTokenizer that matter here: \" \\
// \n \t \r; any other escaped character stands for itself.
func jaasTokens(s string) ([]jaasToken, error) {
	var out []jaasToken
	r := []rune(s)
	for i := 0; i < len(r); {
		c := r[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
		case c == '=' || c == ';':
			out = append(out, jaasToken{kind: c})
			i++
		case c == '"':
			var b strings.Builder
			i++
			closed := false
			for i < len(r) && !closed {
				switch r[i] {
				case '"':
					closed = true
				case '\\':
					i++
					if i == len(r) {
						return nil, errors.New("unterminated quoted string")
					}
					switch r[i] {
					case 'n':
						b.WriteByte('\n')
					case 't':
						b.WriteByte('\t')
					case 'r':
						b.WriteByte('\r')
					default:
						b.WriteRune(r[i])
					}
				default:
					b.WriteRune(r[i])
				}
				i++
			}
			if !closed {
				return nil, errors.New("unterminated quoted string")
			}
			out = append(out, jaasToken{kind: '"', text: b.String()})
		case isJAASWordChar(c):
			j := i
			for j < len(r) && isJAASWordChar(r[j]) {
				j++
			}
			out = append(out, jaasToken{kind: 'w', text: string(r[i:j])})
			i = j
		default:
			return nil, fmt.Errorf("unexpected character %q", c)
		}
	}
	return out, nil
}

// opts returns the franz-go options that connect as the file says.
func (c *commandConfig) opts() ([]kgo.Opt, error) {
	var out []kgo.Opt
	if c.tls != nil {
		cfg, err := c.tls.Config()
		if err != nil {
			return nil, errorf("--command-config: %w", err)
		}
		c.policy.Apply(cfg)
		out = append(out, kgo.DialTLSConfig(cfg))
	}
	if c.sasl != nil {
		out = append(out, kgo.SASL(c.sasl))
	}
	return out, nil
}
