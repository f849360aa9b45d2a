package brokerd_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"golang.org/x/crypto/bcrypt"

	"logpipe/internal/devstack"
	"logpipe/internal/testcerts"
)

// javaSecFixture is TestJavaSecurity's certificates and files.
type javaSecFixture struct {
	dir     string
	ca      *testcerts.CA
	caFile  string // the brokers' CA
	broker  [2]string
	client  string // PEM keystore: the client's certificate and key
	expired string // PEM keystore of an expired certificate of the CA
	otherCA string // a CA that did not sign the brokers' certificate
	users   string // sasl.plain.users.file
}

func newJavaSecFixture(t *testing.T) javaSecFixture {
	t.Helper()
	f := javaSecFixture{dir: t.TempDir()}
	var err error
	if f.ca, err = testcerts.NewCA("java CA"); err != nil {
		t.Fatal(err)
	}
	other, err := testcerts.NewCA("other CA")
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, parts ...[]byte) string {
		p := filepath.Join(f.dir, name)
		if err := os.WriteFile(p, bytes.Join(parts, nil), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	issue := func(cn string, notBefore, notAfter time.Time) testcerts.Leaf {
		leaf, err := f.ca.Issue(testcerts.Options{Subject: pkix.Name{CommonName: cn}, Hosts: []string{"127.0.0.1", "localhost"}, NotBefore: notBefore, NotAfter: notAfter})
		if err != nil {
			t.Fatal(err)
		}
		return leaf
	}
	srv := issue("brokerd", time.Time{}, time.Time{})
	f.broker[0], f.broker[1], err = srv.Write(f.dir, "broker")
	if err != nil {
		t.Fatal(err)
	}
	cli := issue("java-client", time.Time{}, time.Time{})
	old := issue("java-old", time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	f.caFile = write("ca.pem", f.ca.PEM)
	f.otherCA = write("other-ca.pem", other.PEM)
	f.client = write("client.pem", cli.KeyPEM, cli.CertPEM)
	f.expired = write("expired.pem", old.KeyPEM, old.CertPEM)
	hash, err := bcrypt.GenerateFromPassword([]byte("plain-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	f.users = write("users.yml", []byte(fmt.Sprintf("plainer: %q\n", hash)))
	return f
}

// props writes a Java client properties file of the lines given and
// returns its path.
func (f javaSecFixture) props(t *testing.T, name string, lines ...string) string {
	t.Helper()
	p := filepath.Join(f.dir, name+".properties")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// trust and keystore are the Java client's PEM truststore and keystore
// lines.
func trust(ca string) []string {
	return []string{"ssl.truststore.type=PEM", "ssl.truststore.location=" + ca}
}
func keystore(pem string) []string {
	return []string{"ssl.keystore.type=PEM", "ssl.keystore.location=" + pem}
}

func jaas(mech, user, pass string) string {
	module := "org.apache.kafka.common.security.scram.ScramLoginModule"
	if mech == "PLAIN" {
		module = "org.apache.kafka.common.security.plain.PlainLoginModule"
	}
	return fmt.Sprintf(`sasl.jaas.config=%s required username="%s" password="%s";`, module, user, pass)
}

// TestJavaSecurity runs Kafka's Java client (the console producer and
// consumer, and the admin client of kafka-topics) against brokerd with
// PEM truststores and keystores: over SSL, mutual TLS, and SASL_SSL with
// PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 it writes and reads a topic; a
// truststore of the wrong CA, an expired client certificate, no client
// certificate where one is required, a wrong password, an unknown user, a
// mechanism that is not enabled, TLS 1.2 where the listener takes TLS 1.3
// only and a cipher suite the listener does not list are refused, with the
// Java client's exception and brokerd's log line checked. One brokerd asks
// for client certificates, enables every mechanism and takes TLS 1.3 only
// on SASL_SSL; a second requires client certificates, enables PLAIN only
// and lists one TLS 1.2 suite.
func TestJavaSecurity(t *testing.T) {
	f := newJavaSecFixture(t)
	addr := func() string {
		port, err := devstack.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return "127.0.0.1:" + strconv.Itoa(port)
	}
	common := []string{"ssl.keystore.type=PEM", "ssl.keystore.certificate.chain=" + f.broker[0], "ssl.keystore.key=" + f.broker[1],
		"ssl.truststore.location=" + f.caFile, "sasl.plain.users.file=" + f.users}
	sslA, saslA := addr(), addr()
	a := startNode(t, sslA, filepath.Join(t.TempDir(), "data"), append([]string{
		"listeners=SSL://" + sslA + ",SASL_SSL://" + saslA,
		"ssl.client.auth=requested", "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
		"listener.name.sasl_ssl.ssl.enabled.protocols=TLSv1.3"}, common...)...)
	sslB, saslB := addr(), addr()
	b := startNode(t, sslB, filepath.Join(t.TempDir(), "data"), append([]string{
		"listeners=SSL://" + sslB + ",SASL_PLAINTEXT://" + saslB,
		"ssl.client.auth=required", "sasl.enabled.mechanisms=PLAIN",
		"ssl.cipher.suites=TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384,TLS_CHACHA20_POLY1305_SHA256"}, common...)...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("brokerd A's log:\n%s\nbrokerd B's log:\n%s", a.proc.Tail(6000), b.proc.Tail(6000))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	// The SCRAM users, added as the PLAIN user with franz-go.
	cl, err := kgo.NewClient(kgo.SeedBrokers(saslA), kgo.DialTLSConfig(&tls.Config{RootCAs: f.ca.Pool(), MinVersion: tls.VersionTLS12}),
		kgo.SASL(plain.Auth{User: "plainer", Pass: "plain-pw"}.AsMechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// A request names a user once.
	for _, m := range []kadm.ScramMechanism{kadm.ScramSha256, kadm.ScramSha512} {
		res, err := kadm.NewClient(cl).AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "scrammer", Mechanism: m, Iterations: 4096, Password: "scram-pw"}})
		if err == nil {
			err = res.Error()
		}
		if err != nil {
			t.Fatalf("adding scrammer's %v credential: %v", m, err)
		}
	}
	sc, err := kgo.NewClient(kgo.SeedBrokers(saslA), kgo.DialTLSConfig(&tls.Config{RootCAs: f.ca.Pool(), MinVersion: tls.VersionTLS12}),
		kgo.SASL(scram.Auth{User: "scrammer", Pass: "scram-pw"}.AsSha256Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if err := sc.Ping(ctx); err != nil {
		t.Fatalf("franz-go as scrammer: %v", err)
	}

	for _, c := range []struct {
		name, addr string
		lines      []string
	}{
		{"ssl", sslA, append([]string{"security.protocol=SSL"}, trust(f.caFile)...)},
		{"mtls", sslA, append(append([]string{"security.protocol=SSL"}, trust(f.caFile)...), keystore(f.client)...)},
		{"plain", saslA, append([]string{"security.protocol=SASL_SSL", "sasl.mechanism=PLAIN", jaas("PLAIN", "plainer", "plain-pw")}, trust(f.caFile)...)},
		{"scram256", saslA, append([]string{"security.protocol=SASL_SSL", "sasl.mechanism=SCRAM-SHA-256", jaas("SCRAM-SHA-256", "scrammer", "scram-pw")}, trust(f.caFile)...)},
		{"scram512", saslA, append([]string{"security.protocol=SASL_SSL", "sasl.mechanism=SCRAM-SHA-512", jaas("SCRAM-SHA-512", "scrammer", "scram-pw")}, trust(f.caFile)...)},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := f.props(t, c.name, c.lines...)
			tool := kafkaTool(t, ctx, c.addr)
			topic := "java-" + c.name
			want := []string{"one " + c.name, "two " + c.name, "three " + c.name}
			tool(strings.Join(want, "\n")+"\n", "kafka.tools.ConsoleProducer", "--topic", topic, "--producer.config", p, "--producer-property", "acks=all")
			out := tool("", "org.apache.kafka.tools.consumer.ConsoleConsumer", "--topic", topic, "--from-beginning", "--max-messages", "3", "--timeout-ms", "60000", "--consumer.config", p)
			var got []string
			for _, l := range strings.Split(out, "\n") {
				if strings.HasSuffix(l, " "+c.name) {
					got = append(got, l)
				}
			}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("the Java consumer over %s: got %q, want %q; output:\n%s", c.name, got, want, out)
			}
		})
	}

	// Each refusal: kafka-topics --list with the client properties fails
	// with javaErr, and brokerd logs a line with each of logged.
	for _, c := range []struct {
		name   string
		node   *node
		addr   string
		lines  []string
		javaEr string
		logged []string
	}{
		{"wrong CA", a, sslA, append([]string{"security.protocol=SSL"}, trust(f.otherCA)...),
			"SslAuthenticationException", []string{"TLS handshake on listener SSL", "remote error"}},
		{"expired certificate", b, sslB, append(append([]string{"security.protocol=SSL"}, trust(f.caFile)...), keystore(f.expired)...),
			"SslAuthenticationException", []string{"TLS handshake on listener SSL", "expired"}},
		{"no certificate where required", b, sslB, append([]string{"security.protocol=SSL"}, trust(f.caFile)...),
			"SslAuthenticationException", []string{"TLS handshake on listener SSL", "client didn't provide a certificate"}},
		{"wrong password", a, saslA, append([]string{"security.protocol=SASL_SSL", "sasl.mechanism=SCRAM-SHA-512", jaas("SCRAM-SHA-512", "scrammer", "wrong")}, trust(f.caFile)...),
			"SaslAuthenticationException", []string{"SASL authentication failed", "user=scrammer"}},
		{"unknown user", a, saslA, append([]string{"security.protocol=SASL_SSL", "sasl.mechanism=PLAIN", jaas("PLAIN", "ghost", "plain-pw")}, trust(f.caFile)...),
			"SaslAuthenticationException", []string{"SASL authentication failed", "user=ghost"}},
		{"TLS 1.2 on a TLSv1.3 listener", a, saslA, append([]string{"security.protocol=SASL_SSL", "sasl.mechanism=PLAIN", jaas("PLAIN", "plainer", "plain-pw"), "ssl.enabled.protocols=TLSv1.2", "ssl.protocol=TLSv1.2"}, trust(f.caFile)...),
			"SslAuthenticationException", []string{"TLS handshake on listener SASL_SSL", "unsupported versions"}},
		{"a cipher suite not listed", b, sslB, append(append([]string{"security.protocol=SSL", "ssl.enabled.protocols=TLSv1.2", "ssl.cipher.suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}, trust(f.caFile)...), keystore(f.client)...),
			"SslAuthenticationException", []string{"TLS handshake on listener SSL", "no cipher suite supported by both"}},
		{"mechanism not enabled", b, saslB, []string{"security.protocol=SASL_PLAINTEXT", "sasl.mechanism=SCRAM-SHA-512", jaas("SCRAM-SHA-512", "scrammer", "scram-pw")},
			"UnsupportedSaslMechanismException", []string{"SASL mechanism refused", "mechanism=SCRAM-SHA-512"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := f.props(t, strings.ReplaceAll(c.name, " ", "-"), append(c.lines, "default.api.timeout.ms=30000", "request.timeout.ms=10000")...)
			cmd, err := devstack.KafkaToolCommand(ctx, "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", c.addr, "--command-config", p, "--list")
			if err != nil {
				t.Fatal(err)
			}
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), c.javaEr) {
				t.Fatalf("kafka-topics --list with %s: got err %v and output\n%s\nwant a failure with %s", c.name, err, tail(out, 3000), c.javaEr)
			}
			logged := func(line string) bool {
				for _, want := range c.logged {
					if !strings.Contains(line, want) {
						return false
					}
				}
				return true
			}
			if lines := strings.Split(c.node.proc.Tail(400000), "\n"); !slices.ContainsFunc(lines, logged) {
				t.Errorf("brokerd's log after %s: got\n%s\nwant a line with %q", c.name, tail([]byte(strings.Join(lines, "\n")), 3000), c.logged)
			}
		})
	}
}
