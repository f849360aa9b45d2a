package admin

import (
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"logpipe/brokerd/broker"
	"logpipe/internal/devstack"
	"logpipe/internal/testcerts"
)

// TestCommandConfigProperties reads properties files as Java's
// Properties.load does.
func TestCommandConfigProperties(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []property
	}{
		{"separators", "a=1\nb: 2\nc 3\nd\t=\t4\ne\n", []property{{"a", "1", 1}, {"b", "2", 2}, {"c", "3", 3}, {"d", "4", 4}, {"e", "", 5}}},
		{"comments and blank lines", "# one\n  ! two\n\n   \nk=v # not a comment\n", []property{{"k", "v # not a comment", 5}}},
		{"continuation", "k = a\\\n    b\\\n\tc\nnext=1\n", []property{{"k", "abc", 1}, {"next", "1", 4}}},
		{"escaped backslash is no continuation", "k=a\\\\\nn=1\n", []property{{"k", `a\`, 1}, {"n", "1", 2}}},
		{"CRLF and CR", "a=1\r\nb=2\rc=3", []property{{"a", "1", 1}, {"b", "2", 2}, {"c", "3", 3}}},
		{"escapes", `k\=ey\ x=\t\u00e9\"\:` + "\n", []property{{"k=ey x", "\t\u00e9\":", 1}}},
		{"ISO 8859-1 bytes", "k=caf\xe9\n", []property{{"k", "caf\u00e9", 1}}},
		{"continuation at the end", "k=v\\", []property{{"k", "v", 1}}},
		{"jaas on one line", `sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="a" password="b";`,
			[]property{{"sasl.jaas.config", `org.apache.kafka.common.security.plain.PlainLoginModule required username="a" password="b";`, 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProperties("f", []byte(tc.in))
			if err != nil {
				t.Fatalf("got error %v, want %v", err, tc.want)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestCommandConfigRefusals checks that a mistake is refused with the
// file, the line and the key.
func TestCommandConfigRefusals(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcerts.NewCA("refusals CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	notPEM := filepath.Join(dir, "not.pem")
	for path, body := range map[string][]byte{caFile: ca.PEM, notPEM: []byte("hello\n")} {
		if err := os.WriteFile(path, body, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const plainJAAS = `sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";`
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty key", "a=1\n=2\n", `:2: a value without a key`},
		{"bad unicode escape", "k=\\u12g4\n", `:1: k: malformed \\uXXXX escape`},
		{"short unicode escape", "k=\\u12", `:1: k: malformed \\uXXXX escape`},
		{"unknown protocol", "security.protocol=TLS\n", `:1: security.protocol: want PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, got "TLS"`},
		{"misspelt key", "security.protocol=SSL\nssl.endpoint.identification.algoritm=\n", `:2: ssl.endpoint.identification.algoritm: not a setting of Kafka's clients`},
		{"set twice", "security.protocol=SSL\n#\nsecurity.protocol=SASL_SSL\n", `:3: security.protocol: set again \(first on line 1\)`},
		{"JKS", "security.protocol=SSL\nssl.truststore.type=JKS\nssl.truststore.location=/x.jks\n", `:2: ssl.truststore.type: want PEM`},
		{"store type missing", "security.protocol=SSL\nssl.truststore.location=" + caFile + "\n", `:2: ssl.truststore.location: set without ssl.truststore.type=PEM`},
		{"no such file", "security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location=" + dir + "/none.pem\n", `:3: ssl.truststore.location: open .*none.pem: no such file`},
		{"not PEM", "security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.location=" + notPEM + "\n", `:3: ssl.truststore.location: no PEM certificate`},
		{"keystore without key", "security.protocol=SSL\nssl.keystore.type=PEM\nssl.keystore.certificate.chain=" + caFile + "\n", `:3: ssl.keystore.certificate.chain: ssl.keystore.certificate.chain and ssl.keystore.key go together`},
		{"keystore not a key pair", "security.protocol=SSL\nssl.keystore.type=PEM\nssl.keystore.location=" + caFile + "\n", `:3: ssl.keystore.location: client certificate`},
		{"encrypted key", "security.protocol=SSL\nssl.key.password=secret\n", `:2: ssl.key.password: encrypted PEM keys are not supported`},
		{"hostname check", "security.protocol=SSL\nssl.endpoint.identification.algorithm=dns\n", `:2: ssl.endpoint.identification.algorithm: want https or empty`},
		{"old TLS", "security.protocol=SSL\nssl.enabled.protocols=TLSv1.2,TLSv1.1\n", `:2: ssl.enabled.protocols: want TLSv1.2 or TLSv1.3, got "TLSv1.1"`},
		{"TLS keys without TLS", "security.protocol=SASL_PLAINTEXT\nssl.truststore.type=PEM\nssl.truststore.location=" + caFile + "\n", `:3: ssl.truststore.location: set, but security.protocol SASL_PLAINTEXT does not use TLS`},
		{"SASL keys without SASL", "sasl.mechanism=PLAIN\n", `:1: sasl.mechanism: set, but security.protocol PLAINTEXT does not use SASL`},
		{"GSSAPI by default", "security.protocol=SASL_PLAINTEXT\n" + plainJAAS, `: sasl.mechanism: not set, so Kafka's default GSSAPI`},
		{"OAUTHBEARER", "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=OAUTHBEARER\n", `:2: sasl.mechanism: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got "OAUTHBEARER"`},
		{"no JAAS", "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n", `: sasl.jaas.config: not set`},
		{"JAAS without semicolon", "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"p\"\n", `:3: sasl.jaas.config: no closing ';'`},
		{"JAAS unterminated", "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u;\n", `:3: sasl.jaas.config: unterminated quoted string`},
		{"JAAS no flag", "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule username=\"u\";\n", `:3: sasl.jaas.config: want a control flag`},
		{"JAAS other module", "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.jaas.config=com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true;\n", `:3: sasl.jaas.config: login module com.sun.security.auth.module.Krb5LoginModule: want org.apache.kafka.common.security.plain.PlainLoginModule`},
		{"JAAS two modules", "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n" + plainJAAS + " " + strings.TrimPrefix(plainJAAS, "sasl.jaas.config=") + "\n", `:3: sasl.jaas.config: more than one login module`},
		{"JAAS no user", "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required password=\"p\";\n", `:3: sasl.jaas.config: no username`},
		{"JAAS no password", "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\";\n", `:3: sasl.jaas.config: no password`},
		{"JAAS junk", "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"p\"; <script>\n", `:3: sasl.jaas.config: unexpected character '<'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, _, err := loadText(t, dir, tc.in)
			var ue *usageError
			if err == nil || !errors.As(err, &ue) {
				t.Fatalf("got %v, want a usage error matching %s", err, tc.want)
			}
			r := result{stderr: "brokerd topics: " + oneLine(err) + "\n", code: exitUsage}
			r.fails(t, exitUsage, "^brokerd topics: "+regexp.QuoteMeta(path)+tc.want)
		})
	}
	big := filepath.Join(dir, "big.properties")
	if err := os.WriteFile(big, []byte(strings.Repeat("# padding\n", maxCommandConfigBytes/10+1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadCommandConfig(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("a file over %d bytes: got %v, want it refused as too large", maxCommandConfigBytes, err)
	}
}

// loadText reads text as a --command-config file in dir.
func loadText(t *testing.T, dir, text string) (string, *commandConfig, error) {
	t.Helper()
	path := filepath.Join(dir, "client.properties")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadCommandConfig(path)
	return path, c, err
}

// TestCommandConfigAccepted reads files Kafka's tools take: what is
// ignored, the JAAS forms, the TLS settings.
func TestCommandConfigAccepted(t *testing.T) {
	dir := t.TempDir()
	ca, err := testcerts.NewCA("accepted CA")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	inline := strings.ReplaceAll(strings.TrimSpace(string(ca.PEM)), "\n", "\\n\\\n  ")
	for _, tc := range []struct {
		name, in     string
		protocol     string
		tls, sasl    bool
		verification string
	}{
		{"empty", "", "PLAINTEXT", false, false, ""},
		{"other client settings", "client.id=x\nrequest.timeout.ms=5\nacks=all\nssl.truststore.password=changeit\nsasl.login.refresh.buffer.seconds=1\n", "PLAINTEXT", false, false, ""},
		{"lower case protocol", "security.protocol=ssl\nssl.truststore.type=PEM\nssl.truststore.location=" + caFile + "\n", "SSL", true, false, ""},
		{"inline CA without hostname check", "security.protocol=SSL\nssl.truststore.type=PEM\nssl.truststore.certificates=" + inline + "\nssl.endpoint.identification.algorithm=\n", "SSL", true, false, "certificate"},
		{"SCRAM, unquoted option, comments in JAAS", "security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\nsasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\\n  username=shipper password=\"p \\\\\\\"w\";\n", "SASL_SSL", true, true, ""},
		{"PLAIN", "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\nsasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"a=b;c\";\n", "SASL_PLAINTEXT", false, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, c, err := loadText(t, dir, tc.in)
			if err != nil {
				t.Fatalf("got %v, want it accepted", err)
			}
			if got := fmt.Sprint(c.protocol, c.tls != nil, c.sasl != nil); got != fmt.Sprint(tc.protocol, tc.tls, tc.sasl) {
				t.Errorf("protocol, TLS, SASL: got %s, want %s", got, fmt.Sprint(tc.protocol, tc.tls, tc.sasl))
			}
			if c.tls != nil && c.tls.VerificationMode != tc.verification {
				t.Errorf("verification mode: got %q, want %q", c.tls.VerificationMode, tc.verification)
			}
		})
	}
	for _, tc := range []struct{ in, user, pass string }{
		{`org.apache.kafka.common.security.scram.ScramLoginModule required username="shipper" password="p \\\"w";`, "shipper", `p \"w`},
		{`org.apache.kafka.common.security.plain.PlainLoginModule optional username=admin password="a=b;c" ;`, "admin", "a=b;c"},
		{"org.apache.kafka.common.security.plain.PlainLoginModule required\n  username=\"x\"\n  password=\"\";", "x", ""},
	} {
		_, opts, err := parseJAAS(tc.in)
		if err != nil || opts["username"] != tc.user || opts["password"] != tc.pass {
			t.Errorf("parseJAAS(%q): got %q, %v, want username %q password %q", tc.in, opts, err, tc.user, tc.pass)
		}
	}
}

// FuzzCommandConfig feeds hostile files to the reader: it never panics,
// and what it refuses it refuses as a usage error naming the file.
func FuzzCommandConfig(f *testing.F) {
	for _, s := range []string{
		"security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"u\" password=\"p\";\n",
		"k=\\u00", "\\\n\\\n\\", "ssl.x\x00=1", "sasl.jaas.config=\"\\", "=\n:\n \\u", "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\nsasl.jaas.config=a b c=\"\";",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		props, err := parseProperties("fuzz.properties", data)
		if err == nil {
			_, err = newCommandConfig("fuzz.properties", props)
		}
		var ue *usageError
		if err != nil && (!errors.As(err, &ue) || !strings.HasPrefix(err.Error(), "admin: fuzz.properties")) {
			t.Fatalf("got error %q, want a usage error naming the file", err)
		}
	})
}

// securedBroker is an in-process brokerd whose only listener is SASL_SSL,
// with an SSL listener beside it for clients with certificates, and
// authorization on: super users are the PLAIN account admin and the
// client certificate CN=admin-cert.
type securedBroker struct {
	saslSSL, ssl string
	dir          string
	ca           *testcerts.CA
	caFile       string
}

func startSecuredBroker(t *testing.T) *securedBroker {
	t.Helper()
	dir := t.TempDir()
	ca, err := testcerts.NewCA("admin test CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue(testcerts.Options{Subject: pkix.Name{CommonName: "brokerd"}, Hosts: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := srv.Write(dir, "broker")
	if err != nil {
		t.Fatal(err)
	}
	// The admin's PLAIN account, hashed as the bootstrap does it.
	hashed := run(t, nil, "users", "plain-hash", "--user", "admin", "--password", "admin-pw").ok(t).stdout
	hashed += run(t, nil, "users", "plain-hash", "--user", "operator", "--password", "op-pw", "--hash", "argon2id").ok(t).stdout
	run(t, nil, "users", "plain-hash", "--user", "x", "--password", "pw", "--hash", "md5").fails(t, exitUsage, `--hash must be bcrypt or argon2id, not "md5"`)
	run(t, nil, "users", "list", "--hash", "argon2id").fails(t, exitUsage, `--hash goes with plain-hash only`)
	run(t, nil, "users", "plain-hash", "--user", "ad:min", "--password", "pw").fails(t, exitUsage, `cannot hold ':'`)
	run(t, nil, "users", "plain-hash", "--user", "admin").fails(t, exitUsage, `plain-hash needs --password`)
	sb := &securedBroker{dir: dir, ca: ca, caFile: filepath.Join(dir, "ca.pem"), saslSSL: freeLocalAddr(t), ssl: freeLocalAddr(t)}
	users := filepath.Join(dir, "users.yml")
	for path, body := range map[string]string{sb.caFile: string(ca.PEM), users: hashed} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	startBrokerdWith(t, func(cfg *broker.Config) {
		cfg.Listeners = "SASL_SSL://" + sb.saslSSL + ",SSL://" + sb.ssl
		cfg.AuthorizerClassName = "standard"
		cfg.SuperUsers = "User:admin;User:CN=admin-cert"
		cfg.Security.SSLKeystoreType = "PEM"
		cfg.Security.SSLKeystoreCertificateChain, cfg.Security.SSLKeystoreKey = certFile, keyFile
		cfg.Security.SSLTruststoreLocation = sb.caFile
		cfg.Security.SSLClientAuth = "requested"
		cfg.Security.SASLEnabledMechanisms = "PLAIN,SCRAM-SHA-512"
		cfg.Security.SASLPlainUsersFile = users
		cfg.Security.ConnectionFailedAuthenticationDelayMs = 20
	})
	return sb
}

// freeLocalAddr returns a loopback address nothing listens on, below the
// ephemeral port range, so that no client's connection takes its port
// between now and the broker's bind (devstack.FreePort).
func freeLocalAddr(t *testing.T) string {
	t.Helper()
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// properties writes a client properties file of lines into the broker's
// folder and returns its path.
func (sb *securedBroker) properties(t *testing.T, name string, lines ...string) string {
	t.Helper()
	p := filepath.Join(sb.dir, name)
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCommandConfigSecuredBroker runs the subcommands against a brokerd
// whose client listener is SASL_SSL, with authorization on: as the PLAIN
// admin they add a SCRAM user and its ACLs and create a topic; as that
// user the console producer writes and, without READ, the console
// consumer is refused; the admin reads back what was written. A wrong
// password and a missing --command-config are refused; on the SSL
// listener a client certificate is the admin's identity.
func TestCommandConfigSecuredBroker(t *testing.T) {
	sb := startSecuredBroker(t)
	tg := &target{name: "brokerd", bootstrap: sb.saslSSL}
	truststore := []string{"ssl.truststore.type=PEM", "ssl.truststore.location=" + sb.caFile}
	admin := sb.properties(t, "admin.properties", append([]string{"security.protocol=SASL_SSL", "sasl.mechanism=PLAIN",
		`sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-pw";`}, truststore...)...)
	// The writer's file has the CA inline, as Kafka's PEM truststore may.
	inlineCA := "ssl.truststore.certificates=" + strings.ReplaceAll(strings.TrimSpace(string(sb.ca.PEM)), "\n", "\\n\\\n    ")
	writer := sb.properties(t, "writer.properties", "security.protocol=SASL_SSL", "sasl.mechanism=SCRAM-SHA-512",
		`sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="writer" password="writer-pw";`,
		"ssl.truststore.type=PEM", inlineCA, "client.id=ignored")
	wrong := sb.properties(t, "wrong.properties", append([]string{"security.protocol=SASL_SSL", "sasl.mechanism=SCRAM-SHA-512",
		`sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="writer" password="nope";`}, truststore...)...)

	run(t, tg, "users", "add", "--command-config", admin, "--user", "writer", "--password", "writer-pw", "--mechanism", "SCRAM-SHA-512").ok(t)
	run(t, tg, "topics", "--command-config", admin, "--create", "--topic", "secured", "--partitions", "1").ok(t)
	run(t, tg, "acls", "--command-config", admin, "--add", "--allow-principal", "User:writer", "--operation", "Write", "--topic", "secured").ok(t)
	var acls []map[string]any
	run(t, tg, "acls", "--command-config", admin, "--list", "--topic", "secured", "--output", "json").ok(t).decode(t, &acls)
	if len(acls) != 1 {
		t.Fatalf("acls --list: got %v, want the one ACL added", acls)
	}

	runIn(t, tg, "one\ntwo\nthree\n", "console-producer", "--producer.config", writer, "--topic", "secured").ok(t)
	r := run(t, tg, "console-consumer", "--consumer.config", writer, "--topic", "secured", "--from-beginning", "--max-messages", "3", "--timeout-ms", "20000")
	if r.code != exitError || !strings.Contains(r.stderr, "TOPIC_AUTHORIZATION_FAILED") {
		t.Errorf("console-consumer as writer: got exit %d, stderr %q; want exit %d with TOPIC_AUTHORIZATION_FAILED", r.code, r.stderr, exitError)
	}
	got := run(t, tg, "console-consumer", "--command-config", admin, "--topic", "secured", "--from-beginning", "--max-messages", "3", "--timeout-ms", "60000").ok(t, "Processed a total of 3 messages\n").lines()
	if want := []string{"one", "two", "three"}; !slices.Equal(got, want) {
		t.Errorf("console-consumer as admin: got %q, want %q", got, want)
	}
	run(t, tg, "consumer-groups", "--command-config", admin, "--list").ok(t)

	run(t, tg, "topics", "--command-config", wrong, "--list").fails(t, exitError, `SASL_AUTHENTICATION_FAILED`)
	// The operator's PLAIN account has an argon2id hash from plain-hash.
	operator := func(pass string) string {
		return sb.properties(t, "operator.properties", append([]string{"security.protocol=SASL_SSL", "sasl.mechanism=PLAIN",
			`sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="operator" password="` + pass + `";`}, truststore...)...)
	}
	run(t, tg, "topics", "--command-config", operator("op-pw"), "--list").ok(t)
	run(t, tg, "topics", "--command-config", operator("admin-pw"), "--list").fails(t, exitError, `SASL_AUTHENTICATION_FAILED`)
	run(t, tg, "topics", "--list", "--timeout", "3000").fails(t, exitError, `brokerd topics: `)

	// On the SSL listener the certificate is the principal: CN=admin-cert
	// is a super user, a client without a certificate is User:ANONYMOUS.
	cert, err := sb.ca.Issue(testcerts.Options{Subject: pkix.Name{CommonName: "admin-cert"}})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := cert.Write(sb.dir, "admin-cert")
	if err != nil {
		t.Fatal(err)
	}
	ssl := &target{name: "brokerd", bootstrap: sb.ssl}
	mtls := sb.properties(t, "mtls.properties", append([]string{"security.protocol=SSL", "ssl.keystore.type=PEM",
		"ssl.keystore.certificate.chain=" + certFile, "ssl.keystore.key=" + keyFile}, truststore...)...)
	anonymous := sb.properties(t, "anonymous.properties", append([]string{"security.protocol=SSL"}, truststore...)...)
	run(t, ssl, "topics", "--command-config", mtls, "--create", "--topic", "by-certificate").ok(t)
	run(t, ssl, "topics", "--command-config", anonymous, "--create", "--topic", "anonymous").fails(t, exitError, `AUTHORIZATION_FAILED`)
	names := run(t, ssl, "topics", "--command-config", mtls, "--list").ok(t).lines()
	if !slices.Contains(names, "by-certificate") || slices.Contains(names, "anonymous") {
		t.Errorf("topics --list: got %q, want by-certificate and not anonymous", names)
	}
}

// TestCommandConfigTLSPolicy checks that ssl.protocol and
// ssl.cipher.suites bound the subcommands' connections as they bound
// Kafka's clients: against a listener taking TLS 1.3 only and one taking
// TLS 1.2 with a single suite, a file capped at TLS 1.2 or offering
// another suite is refused, and one matching the listener gets through.
func TestCommandConfigTLSPolicy(t *testing.T) {
	sb := &securedBroker{dir: t.TempDir(), ssl: freeLocalAddr(t)}
	tls12 := freeLocalAddr(t)
	var err error
	if sb.ca, err = testcerts.NewCA("policy CA"); err != nil {
		t.Fatal(err)
	}
	srv, err := sb.ca.Issue(testcerts.Options{Subject: pkix.Name{CommonName: "brokerd"}, Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := srv.Write(sb.dir, "broker")
	if err != nil {
		t.Fatal(err)
	}
	sb.caFile = filepath.Join(sb.dir, "ca.pem")
	if err := os.WriteFile(sb.caFile, sb.ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	const suite = "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
	startBrokerdWith(t, func(cfg *broker.Config) {
		cfg.Listeners = "SSL://" + sb.ssl + ",TLS12://" + tls12
		cfg.ListenerSecurityProtocolMap = "SSL:SSL,TLS12:SSL"
		cfg.Security.SSLKeystoreType = "PEM"
		cfg.Security.SSLKeystoreCertificateChain, cfg.Security.SSLKeystoreKey = certFile, keyFile
		cfg.Security.SSLEnabledProtocols = "TLSv1.3"
		cfg.ListenerOverrides = map[string]string{"tls12.ssl.enabled.protocols": "TLSv1.2", "tls12.ssl.cipher.suites": suite}
	})
	file := func(lines ...string) string {
		return sb.properties(t, "policy.properties", append([]string{"security.protocol=SSL", "ssl.truststore.type=PEM", "ssl.truststore.location=" + sb.caFile}, lines...)...)
	}
	for _, tc := range []struct {
		name, line string
		on13, on12 bool // whether each listener takes the file
	}{
		{"defaults", "client.id=policy", true, true},
		{"ssl.protocol TLSv1.2", "ssl.protocol=TLSv1.2", false, true},
		{"the listener's suite", "ssl.cipher.suites=" + suite, false, true},
		{"another suite", "ssl.cipher.suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", false, false},
		{"TLS 1.3 only", "ssl.enabled.protocols=TLSv1.3", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := file(tc.line)
			for _, l := range []struct {
				addr  string
				takes bool
			}{{sb.ssl, tc.on13}, {tls12, tc.on12}} {
				r := run(t, &target{name: "brokerd", bootstrap: l.addr}, "topics", "--command-config", path, "--list", "--timeout", "3000")
				if l.takes {
					r.ok(t)
				} else {
					r.fails(t, exitError, `brokerd topics: .*tls: `)
				}
			}
		})
	}
	run(t, nil, "topics", "--bootstrap-server", sb.ssl, "--command-config", file("ssl.protocol=TLSv1.1"), "--list").fails(t, exitUsage, `ssl.protocol: want TLSv1.3, TLSv1.2 or TLS, got "TLSv1.1"`)
}
