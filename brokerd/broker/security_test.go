package broker_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"golang.org/x/crypto/bcrypt"

	"logpipe/brokerd/broker"
	"logpipe/brokerd/wire"
	"logpipe/internal/devstack"
	"logpipe/internal/testcerts"
	pscram "logpipe/pipeline/scram"
)

// The accounts of secureBroker: PLAIN accounts from the users file, one
// with a bcrypt hash and one with an argon2id hash (made by the reference
// argon2 tool: echo -n argon-pw-3 | argon2 saltysaltsalt -id -t 2 -p 2 -e),
// and SCRAM accounts created through AlterUserScramCredentials.
const (
	plainUser, plainPass = "plainer", "plain-pw-1"
	argonUser, argonPass = "argoner", "argon-pw-3"
	argonHash            = "$argon2id$v=19$m=4096,t=2,p=2$c2FsdHlzYWx0c2FsdA$MtDcXAQ9UCTyg/g/Ex+64Yyi3zXq/UFqO0GfCHRtbnU"
	scramUser, scramPass = "scrammer", "scram-pw-2"
)

// secureBroker is a real broker serving PLAINTEXT, SSL, SASL_PLAINTEXT and
// SASL_SSL listeners at once, with test certificates and accounts.
type secureBroker struct {
	addrs map[string]string // by listener name
	ca    *testcerts.CA
	dir   string
	// client is a certificate the CA issued for CN=client,OU=eng,O=logpipe.
	client tls.Certificate
	b      *broker.Broker
}

// freeAddr returns a loopback address nothing listens on, below the
// ephemeral port range, so that no client's connection takes its port
// between now and the broker's bind (devstack.FreePort).
func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// startSecureBroker starts the broker; change, if set, edits its
// configuration last.
func startSecureBroker(t *testing.T, change func(*broker.Config)) *secureBroker {
	t.Helper()
	dir := t.TempDir()
	ca, err := testcerts.NewCA("logpipe test CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue(testcerts.Options{Subject: pkix.Name{CommonName: "brokerd"}, Hosts: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := ca.Issue(testcerts.Options{Subject: pkix.Name{CommonName: "client", OrganizationalUnit: []string{"eng"}, Organization: []string{"logpipe"}}})
	if err != nil {
		t.Fatal(err)
	}
	sb := &secureBroker{addrs: map[string]string{}, ca: ca, dir: dir}
	if sb.client, err = cli.TLS(); err != nil {
		t.Fatal(err)
	}
	// The keystore as one PEM file holding the chain and the key, the
	// truststore as a PEM file of CAs.
	write := func(name string, parts ...[]byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, bytes.Join(parts, nil), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(plainPass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	var listeners []string
	for _, name := range []string{"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"} {
		sb.addrs[name] = freeAddr(t)
		listeners = append(listeners, name+"://"+sb.addrs[name])
	}
	cfg := broker.DefaultConfig()
	cfg.Listeners = strings.Join(listeners, ",")
	cfg.LogDirs = []string{filepath.Join(dir, "data")}
	cfg.GroupInitialRebalanceDelayMs = 0
	cfg.Security.SSLKeystoreType = "PEM"
	cfg.Security.SSLKeystoreLocation = write("broker.pem", srv.CertPEM, srv.KeyPEM)
	cfg.Security.SSLTruststoreLocation = write("ca.pem", ca.PEM)
	cfg.Security.SSLClientAuth = "requested"
	cfg.Security.SASLPlainUsersFile = write("users.yml", []byte(plainUser+": "+string(hash)+"\n"+argonUser+": "+argonHash+"\n"))
	cfg.Security.ConnectionFailedAuthenticationDelayMs = 20
	if change != nil {
		change(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	b, err := broker.New(context.Background(), cfg, log, broker.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	sb.b = b
	lns, err := b.ClientListeners()
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	ws := &wire.Server{Handler: b, Log: log}
	for _, ln := range lns {
		go ws.ServeSecured(ln.Listener, ln.Security)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ws.Shutdown(ctx)
		if err := b.Close(); err != nil {
			t.Errorf("closing broker: %v", err)
		}
	})
	if cfg.Listeners == strings.Join(listeners, ",") {
		sb.addSCRAMUsers(t)
	}
	return sb
}

// addSCRAMUsers creates scramUser for both SCRAM mechanisms with the admin
// client, over the PLAINTEXT listener.
func (sb *secureBroker) addSCRAMUsers(t *testing.T) {
	t.Helper()
	adm := kadm.NewClient(clClient(t, sb.addrs["PLAINTEXT"]))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A request changes a user once, as in Kafka: the second credential
	// in the same request is refused.
	res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: scramUser, Mechanism: kadm.ScramSha256, Iterations: 4096, Password: scramPass},
		{User: scramUser, Mechanism: kadm.ScramSha512, Iterations: 8192, Password: scramPass},
	})
	if err != nil || !errors.Is(res[scramUser].Err, kerr.DuplicateResource) {
		t.Fatalf("changing a user twice in one request: got %v, %v; want %v", err, res[scramUser].Err, kerr.DuplicateResource)
	}
	for _, up := range []kadm.UpsertSCRAM{
		{User: scramUser, Mechanism: kadm.ScramSha256, Iterations: 4096, Password: scramPass},
		{User: scramUser, Mechanism: kadm.ScramSha512, Iterations: 8192, Password: scramPass},
	} {
		res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{up})
		if err == nil {
			err = res.Error()
		}
		if err != nil {
			t.Fatalf("AlterUserScramCredentials: %v", err)
		}
	}
}

// tlsConfig is a client configuration trusting the test CA.
func (sb *secureBroker) tlsConfig(withCert bool) *tls.Config {
	c := &tls.Config{RootCAs: sb.ca.Pool(), MinVersion: tls.VersionTLS12}
	if withCert {
		c.Certificates = []tls.Certificate{sb.client}
	}
	return c
}

// mechanism is a franz-go SASL mechanism for a test account.
func mechanism(name, user, pass string) sasl.Mechanism {
	switch name {
	case "PLAIN":
		return plain.Auth{User: user, Pass: pass}.AsMechanism()
	case "SCRAM-SHA-256":
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
	}
	return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
}

// account returns the test account of a mechanism.
func account(mech string) (string, string) {
	if mech == "PLAIN" {
		return plainUser, plainPass
	}
	return scramUser, scramPass
}

// roundTrip produces n records to topic through cl and reads them back
// with a new client made of the same options.
func roundTrip(t *testing.T, topic string, n int, opts ...kgo.Opt) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(append(opts, kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprintf("%s-%d-%s", topic, i, strings.Repeat("x", i%300)))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
	cons, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got int
	for got < n {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records of %s: %v", got, n, topic, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("consume %s: %v", topic, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if want := recs[got].Value; string(r.Value) != string(want) {
				t.Fatalf("record %d of %s: got %q, want %q", got, topic, r.Value, want)
			}
			got++
		})
	}
}

// TestListenersWithFranzGo produces and consumes on each kind of listener
// at once with franz-go: PLAINTEXT, SSL, and each SASL mechanism over
// SASL_PLAINTEXT and SASL_SSL. The records are large enough for fetches
// to take the spliced path, which under TLS copies through the connection.
func TestListenersWithFranzGo(t *testing.T) {
	sb := startSecureBroker(t, nil)
	roundTrip(t, "plaintext", 200, kgo.SeedBrokers(sb.addrs["PLAINTEXT"]))
	roundTrip(t, "ssl", 200, kgo.SeedBrokers(sb.addrs["SSL"]), kgo.DialTLSConfig(sb.tlsConfig(false)))
	roundTrip(t, "mtls", 50, kgo.SeedBrokers(sb.addrs["SSL"]), kgo.DialTLSConfig(sb.tlsConfig(true)))
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		user, pass := account(mech)
		roundTrip(t, "sasl-plaintext-"+mech, 50, kgo.SeedBrokers(sb.addrs["SASL_PLAINTEXT"]), kgo.SASL(mechanism(mech, user, pass)))
		roundTrip(t, "sasl-ssl-"+mech, 200, kgo.SeedBrokers(sb.addrs["SASL_SSL"]), kgo.SASL(mechanism(mech, user, pass)), kgo.DialTLSConfig(sb.tlsConfig(false)))
	}
	roundTrip(t, "sasl-ssl-argon2", 50, kgo.SeedBrokers(sb.addrs["SASL_SSL"]), kgo.SASL(mechanism("PLAIN", argonUser, argonPass)), kgo.DialTLSConfig(sb.tlsConfig(false)))
	// Each listener tells its clients its own addresses.
	for name, addr := range sb.addrs {
		opts := []kgo.Opt{kgo.SeedBrokers(addr)}
		if strings.Contains(name, "SSL") {
			opts = append(opts, kgo.DialTLSConfig(sb.tlsConfig(false)))
		}
		if strings.HasPrefix(name, "SASL") {
			opts = append(opts, kgo.SASL(mechanism("PLAIN", plainUser, plainPass)))
		}
		meta, err := kadm.NewClient(clClient(t, addr, opts...)).BrokerMetadata(context.Background())
		if err != nil {
			t.Fatalf("%s metadata: %v", name, err)
		}
		if got := net.JoinHostPort(meta.Brokers[0].Host, fmt.Sprint(meta.Brokers[0].Port)); len(meta.Brokers) != 1 || got != addr {
			t.Errorf("%s: brokers %+v, want one at %s", name, meta.Brokers, addr)
		}
	}
}

// TestSecurityRefusals checks what is refused, with the error the client
// gets: a wrong password, an unknown user, a mechanism that is not
// enabled, a server certificate of an unknown CA, and a client without a
// certificate where one is required.
func TestSecurityRefusals(t *testing.T) {
	sb := startSecureBroker(t, func(c *broker.Config) { c.Security.SASLEnabledMechanisms = "PLAIN,SCRAM-SHA-512" })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ping := func(opts ...kgo.Opt) error {
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		return cl.Ping(ctx)
	}
	saslAddr := sb.addrs["SASL_PLAINTEXT"]
	for _, c := range []struct {
		what string
		mech sasl.Mechanism
		want error
	}{
		{"wrong PLAIN password", mechanism("PLAIN", plainUser, "nope"), kerr.SaslAuthenticationFailed},
		{"wrong PLAIN password, argon2 account", mechanism("PLAIN", argonUser, plainPass), kerr.SaslAuthenticationFailed},
		{"unknown PLAIN user", mechanism("PLAIN", "ghost", plainPass), kerr.SaslAuthenticationFailed},
		{"wrong SCRAM password", mechanism("SCRAM-SHA-512", scramUser, "nope"), kerr.SaslAuthenticationFailed},
		{"unknown SCRAM user", mechanism("SCRAM-SHA-512", "ghost", scramPass), kerr.SaslAuthenticationFailed},
		{"mechanism not enabled", mechanism("SCRAM-SHA-256", scramUser, scramPass), kerr.UnsupportedSaslMechanism},
	} {
		if err := ping(kgo.SeedBrokers(saslAddr), kgo.SASL(c.mech)); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.what, err, c.want)
		}
	}
	// The message says neither which part was wrong.
	for _, mech := range []sasl.Mechanism{mechanism("PLAIN", plainUser, "nope"), mechanism("PLAIN", "ghost", plainPass)} {
		err := ping(kgo.SeedBrokers(saslAddr), kgo.SASL(mech))
		if msg := fmt.Sprint(err); !strings.Contains(msg, "invalid user name or password") {
			t.Errorf("refusal message %q, want it to say \"invalid user name or password\"", msg)
		}
	}
	other, _ := testcerts.NewCA("another CA")
	var unknownCA x509.UnknownAuthorityError
	if err := ping(kgo.SeedBrokers(sb.addrs["SSL"]), kgo.DialTLSConfig(&tls.Config{RootCAs: other.Pool()})); !errors.As(err, &unknownCA) {
		t.Errorf("server certificate of an unknown CA: got %v, want x509.UnknownAuthorityError", err)
	}
}

// TestClientCertificateRequired checks ssl.client.auth required: a client
// without a certificate, or with one of another CA, or with an expired
// one, is refused; one with a good certificate works.
func TestClientCertificateRequired(t *testing.T) {
	sb := startSecureBroker(t, func(c *broker.Config) { c.Security.SSLClientAuth = "required" })
	dial := func(certs ...tls.Certificate) error {
		cfg := sb.tlsConfig(false)
		cfg.Certificates = certs
		// TLS 1.3 reports the server's refusal of the client certificate
		// at the first read.
		cl, err := wire.DialSecured(sb.addrs["SSL"], "t", 10*time.Second, wire.ClientSecurity{TLS: cfg})
		if err != nil {
			return err
		}
		defer cl.Close()
		_, err = cl.Request(apiVersions(), time.Now().Add(10*time.Second))
		return err
	}
	if err := dial(sb.client); err != nil {
		t.Fatalf("good client certificate: %v", err)
	}
	other, _ := testcerts.NewCA("another CA")
	foreign, _ := other.Issue(testcerts.Options{Subject: pkix.Name{CommonName: "mallory"}})
	expired, _ := sb.ca.Issue(testcerts.Options{Subject: pkix.Name{CommonName: "old"}, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	for what, leaf := range map[string]testcerts.Leaf{"another CA's": foreign, "an expired": expired} {
		cert, err := leaf.TLS()
		if err != nil {
			t.Fatal(err)
		}
		if err := dial(cert); err == nil {
			t.Errorf("%s client certificate was accepted", what)
		}
	}
	if err := dial(); err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("no client certificate: got %v, want the server's \"certificate required\" alert", err)
	}
	roundTrip(t, "mtls-required", 20, kgo.SeedBrokers(sb.addrs["SSL"]), kgo.DialTLSConfig(sb.tlsConfig(true)))
}

// TestTLSVersionsAndCipherSuites checks ssl.enabled.protocols and
// ssl.cipher.suites with franz-go and kcat: a listener that takes only
// TLS 1.3 refuses a TLS 1.2 client, and so does it per listener
// (listener.name.<listener>.ssl.enabled.protocols) beside one that takes
// both; a listener with one TLS 1.2 suite listed speaks TLS 1.2 with that
// suite only (as Kafka on Java, a list without TLS 1.3 suites leaves
// TLS 1.3 out) and refuses clients offering none of it.
func TestTLSVersionsAndCipherSuites(t *testing.T) {
	kcat := requireTool(t, "kcat")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// handshake dials addr with cfg and returns what was agreed.
	handshake := func(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
		d := tls.Dialer{Config: cfg}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return tls.ConnectionState{}, err
		}
		defer c.Close()
		return c.(*tls.Conn).ConnectionState(), nil
	}
	ping := func(addr string, cfg *tls.Config) error {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTLSConfig(cfg))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		return cl.Ping(ctx)
	}

	sb := startSecureBroker(t, func(c *broker.Config) {
		c.Security.SSLEnabledProtocols = "TLSv1.3"
		c.ListenerOverrides = map[string]string{"ssl.ssl.enabled.protocols": "TLSv1.2,TLSv1.3"}
	})
	tls12 := sb.tlsConfig(false)
	tls12.MaxVersion = tls.VersionTLS12
	if _, err := handshake(sb.addrs["SASL_SSL"], tls12); err == nil || !strings.Contains(err.Error(), "protocol version") {
		t.Errorf("TLS 1.2 client on a TLSv1.3 listener: got %v, want a protocol version alert", err)
	}
	if st, err := handshake(sb.addrs["SASL_SSL"], sb.tlsConfig(false)); err != nil || st.Version != tls.VersionTLS13 {
		t.Errorf("TLSv1.3 listener: version %x, %v", st.Version, err)
	}
	if st, err := handshake(sb.addrs["SSL"], tls12); err != nil || st.Version != tls.VersionTLS12 {
		t.Errorf("TLS 1.2 client on the listener whose override takes both: version %x, %v", st.Version, err)
	}
	roundTrip(t, "tls12-override", 20, kgo.SeedBrokers(sb.addrs["SSL"]), kgo.DialTLSConfig(tls12))

	const suite = "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
	sb = startSecureBroker(t, func(c *broker.Config) { c.Security.SSLCipherSuites = suite })
	st, err := handshake(sb.addrs["SSL"], sb.tlsConfig(false))
	if err != nil || st.Version != tls.VersionTLS12 || tls.CipherSuiteName(st.CipherSuite) != suite {
		t.Errorf("one suite listed: version %x, suite %s, %v; want TLS 1.2 with %s", st.Version, tls.CipherSuiteName(st.CipherSuite), err, suite)
	}
	other := sb.tlsConfig(false)
	other.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
	if err := ping(sb.addrs["SSL"], other); err == nil || !strings.Contains(err.Error(), "handshake failure") {
		t.Errorf("client without the listed suite: got %v, want a handshake failure", err)
	}
	roundTrip(t, "one-suite", 20, kgo.SeedBrokers(sb.addrs["SSL"]), kgo.DialTLSConfig(sb.tlsConfig(false)))

	// kcat names suites as OpenSSL does.
	caFile := filepath.Join(sb.dir, "ca.pem")
	args := []string{"-b", sb.addrs["SSL"], "-X", "security.protocol=SSL", "-X", "ssl.ca.location=" + caFile}
	if out := run(t, "", kcat, append(args, "-X", "ssl.cipher.suites=ECDHE-ECDSA-AES256-GCM-SHA384", "-L", "-m", "10")...); !strings.Contains(out, "1 brokers") {
		t.Errorf("kcat with the listed suite: %s", out)
	}
	out, err := exec.Command(kcat, append(args, "-X", "ssl.cipher.suites=ECDHE-ECDSA-AES128-GCM-SHA256", "-L", "-m", "10")...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "handshake failure") {
		t.Errorf("kcat without the listed suite: err %v, output:\n%s", err, out)
	}
}

// TestSaramaSASL runs sarama with each mechanism, with SaslHandshake v1
// (SaslAuthenticate) and v0 (bare tokens), over SASL_SSL.
func TestSaramaSASL(t *testing.T) {
	sb := startSecureBroker(t, nil)
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		for _, v := range []int16{sarama.SASLHandshakeV1, sarama.SASLHandshakeV0} {
			t.Run(fmt.Sprintf("%s-v%d", mech, v), func(t *testing.T) {
				user, pass := account(mech)
				cfg := sarama.NewConfig()
				cfg.Version = sarama.V3_6_0_0
				cfg.Producer.Return.Successes = true
				cfg.Net.TLS.Enable, cfg.Net.TLS.Config = true, sb.tlsConfig(false)
				cfg.Net.SASL.Enable, cfg.Net.SASL.Mechanism = true, sarama.SASLMechanism(mech)
				cfg.Net.SASL.User, cfg.Net.SASL.Password, cfg.Net.SASL.Version = user, pass, v
				if v == sarama.SASLHandshakeV0 {
					cfg.ApiVersionsRequest = false
				}
				if mech != "PLAIN" {
					cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return pscram.ForMechanism(mech) }
				}
				topic := fmt.Sprintf("sarama-%s-v%d", mech, v)
				sp, err := sarama.NewSyncProducer([]string{sb.addrs["SASL_SSL"]}, cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer sp.Close()
				for i := range 10 {
					if _, off, err := sp.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder(fmt.Sprint(i))}); err != nil || off != int64(i) {
						t.Fatalf("send %d: offset %d, %v", i, off, err)
					}
				}
				cfg.Net.SASL.Password = "wrong"
				if _, err := sarama.NewSyncProducer([]string{sb.addrs["SASL_SSL"]}, cfg); err == nil {
					t.Fatal("sarama logged in with a wrong password")
				}
			})
		}
	}
}

// TestKcatAndKafkaPythonSecured runs kcat (librdkafka) and kafka-python
// over SSL with a client certificate and over SASL_SSL with each
// mechanism, and checks a wrong password is refused.
func TestKcatAndKafkaPythonSecured(t *testing.T) {
	kcat := requireTool(t, "kcat")
	python := requireTool(t, "/usr/bin/python3")
	sb := startSecureBroker(t, nil)
	caFile := filepath.Join(sb.dir, "ca.pem")
	cliCert, cliKey := writeClientCert(t, sb)
	for _, c := range []struct {
		name, listener, mech string
	}{
		{"ssl", "SSL", ""}, {"plain", "SASL_SSL", "PLAIN"}, {"scram256", "SASL_SSL", "SCRAM-SHA-256"}, {"scram512", "SASL_SSL", "SCRAM-SHA-512"},
	} {
		t.Run(c.name, func(t *testing.T) {
			user, pass := account(c.mech)
			args := []string{"-b", sb.addrs[c.listener], "-X", "security.protocol=" + c.listener, "-X", "ssl.ca.location=" + caFile}
			if c.mech == "" {
				args = append(args, "-X", "ssl.certificate.location="+cliCert, "-X", "ssl.key.location="+cliKey)
			} else {
				args = append(args, "-X", "sasl.mechanisms="+c.mech, "-X", "sasl.username="+user, "-X", "sasl.password="+pass)
			}
			topic := "kcat-" + c.name
			run(t, "one\ntwo\nthree\n", kcat, append(args, "-P", "-t", topic)...)
			if out := run(t, "", kcat, append(args, "-C", "-t", topic, "-o", "beginning", "-e", "-q")...); out != "one\ntwo\nthree\n" {
				t.Fatalf("kcat consumed %q", out)
			}
			py := fmt.Sprintf(`
import kafka, sys
kw = dict(bootstrap_servers=%q, security_protocol=%q, ssl_cafile=%q, api_version_auto_timeout_ms=20000)
if %q:
    kw.update(sasl_mechanism=%q, sasl_plain_username=%q, sasl_plain_password=%q)
else:
    kw.update(ssl_certfile=%q, ssl_keyfile=%q)
p = kafka.KafkaProducer(**kw)
for i in range(5):
    p.send(%q, b"py-%%d" %% i).get(timeout=30)
p.close()
c = kafka.KafkaConsumer(%q, auto_offset_reset="earliest", **kw)
got = []
for _ in range(60):
    for recs in c.poll(timeout_ms=1000).values():
        got += [m.value.decode() for m in recs]
    if len(got) >= 5:
        break
print(",".join(got))
`, sb.addrs[c.listener], c.listener, caFile, c.mech, c.mech, user, pass, cliCert, cliKey, "py-"+c.name, "py-"+c.name)
			if out := strings.TrimSpace(run(t, "", python, "-c", py)); out != "py-0,py-1,py-2,py-3,py-4" {
				t.Fatalf("kafka-python consumed %q", out)
			}
			if c.mech != "" {
				bad := append([]string{}, args...)
				bad[len(bad)-1] = "sasl.password=wrong"
				cmd := exec.Command(kcat, append(bad, "-L", "-m", "10")...)
				out, err := cmd.CombinedOutput()
				if err == nil || !strings.Contains(string(out), "Authentication failed") {
					t.Fatalf("kcat with a wrong password: err %v, output:\n%s", err, out)
				}
			}
		})
	}
}

func writeClientCert(t *testing.T, sb *secureBroker) (string, string) {
	t.Helper()
	leaf, err := sb.ca.Issue(testcerts.Options{Subject: pkix.Name{CommonName: "kcat"}})
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := leaf.Write(sb.dir, "client")
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestHostileClients: a SASL exchange that never finishes is closed after
// sasl.server.authentication.timeout.ms; a 100 MiB size before
// authentication is refused before anything is allocated for it; a
// request other than ApiVersions and SASL before authenticating closes
// the connection; a thousand failed logins leave the broker serving an
// authenticated client throughout, and memory bounded.
func TestHostileClients(t *testing.T) {
	sb := startSecureBroker(t, func(c *broker.Config) {
		c.Security.SASLServerAuthenticationTimeoutMs = 1500
		c.Security.ConnectionFailedAuthenticationDelayMs = 5
	})
	addr := sb.addrs["SASL_PLAINTEXT"]
	t.Run("never finishing", func(t *testing.T) {
		c := rawConn(t, addr)
		sendFrame(t, c, 17, 1, []byte{0, 5, 'P', 'L', 'A', 'I', 'N'}) // SaslHandshake v1, then silence
		if _, err := readFrame(c); err != nil {
			t.Fatalf("handshake answer: %v", err)
		}
		expectClosed(t, c, 30*time.Second)
	})
	t.Run("100 MiB size", func(t *testing.T) {
		var before, after runtimeMem
		before.read()
		c := rawConn(t, addr)
		if _, err := c.Write([]byte{0x06, 0x40, 0x00, 0x00}); err != nil { // 100 MiB
			t.Fatal(err)
		}
		expectClosed(t, c, 10*time.Second)
		after.read()
		if grew := after.total - before.total; grew > 50<<20 {
			t.Fatalf("the process allocated %d MiB for a refused frame", grew>>20)
		}
	})
	t.Run("request before authentication", func(t *testing.T) {
		c := rawConn(t, addr)
		sendFrame(t, c, 3, 0, []byte{0, 0, 0, 0}) // Metadata v0, no topics
		expectClosed(t, c, 10*time.Second)
		// ApiVersions is answered.
		c = rawConn(t, addr)
		sendFrame(t, c, 18, 0, nil)
		if _, err := readFrame(c); err != nil {
			t.Fatalf("ApiVersions before authentication: %v", err)
		}
	})
	t.Run("a thousand failed logins", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		good := clClient(t, addr, kgo.SASL(mechanism("SCRAM-SHA-256", scramUser, scramPass)), kgo.DefaultProduceTopic("steady"), kgo.AllowAutoTopicCreation())
		var before, after runtimeMem
		before.read()
		var wg sync.WaitGroup
		failures := make(chan error, 1000)
		jobs := make(chan int)
		for range 20 {
			wg.Go(func() {
				for range jobs {
					_, err := wire.DialSecured(addr, "guesser", 10*time.Second, wire.ClientSecurity{SASLMechanism: "SCRAM-SHA-256", SASLUser: scramUser, SASLPassword: "guess"})
					failures <- err
				}
			})
		}
		done, stop := make(chan struct{}), make(chan struct{})
		var produced int
		var produceErr error
		go func() {
			defer close(done)
			for ctx.Err() == nil {
				select {
				case <-stop:
					return
				default:
				}
				if produceErr = good.ProduceSync(ctx, &kgo.Record{Value: []byte("still here")}).FirstErr(); produceErr != nil {
					return
				}
				produced++
			}
		}()
		for i := range 1000 {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		close(stop)
		<-done
		close(failures)
		var refused int
		for err := range failures {
			if !errors.Is(err, kerr.SaslAuthenticationFailed) {
				t.Fatalf("a guess got %v, want %v", err, kerr.SaslAuthenticationFailed)
			}
			refused++
		}
		if refused != 1000 || produceErr != nil || produced == 0 {
			t.Fatalf("refused %d of 1000 guesses; the authenticated client produced %d records, error %v", refused, produced, produceErr)
		}
		after.read()
		if grew := int64(after.heap) - int64(before.heap); grew > 64<<20 {
			t.Fatalf("live heap grew by %d MiB over 1000 failed logins", grew>>20)
		}
	})
}

// runtimeMem is the process's memory figures after a collection.
type runtimeMem struct{ total, heap uint64 }

func (m *runtimeMem) read() {
	runtime.GC()
	var st runtime.MemStats
	runtime.ReadMemStats(&st)
	m.total, m.heap = st.TotalAlloc, st.HeapAlloc
}

func apiVersions() kmsg.Request {
	r := kmsg.NewPtrApiVersionsRequest()
	r.SetVersion(0)
	return r
}

func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// sendFrame writes a request of API key and version with a v1 header (no
// client id) and body.
func sendFrame(t *testing.T, c net.Conn, key, version int16, body []byte) {
	t.Helper()
	b := binary.BigEndian.AppendUint32(nil, uint32(10+len(body)))
	b = binary.BigEndian.AppendUint16(b, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, 1)
	b = binary.BigEndian.AppendUint16(b, 0xffff) // null client id
	if _, err := c.Write(append(b, body...)); err != nil {
		t.Fatal(err)
	}
}

// readFrame reads one size-prefixed response frame.
func readFrame(c net.Conn) ([]byte, error) {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err := io.ReadFull(c, b)
	return b, err
}

// expectClosed waits up to within for the server to close c.
func expectClosed(t *testing.T, c net.Conn, within time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(within))
	n, err := c.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection is still open after %s", within)
	}
	if err == nil {
		t.Fatalf("read %d bytes, want the connection closed", n)
	}
}

// TestReauthentication checks connections.max.reauth.ms (KIP-368): franz-go
// re-authenticates and keeps producing past the session lifetime; a
// connection that does not re-authenticate is closed at its next request
// after the lifetime; a user deleted while connected is refused at its
// re-authentication.
func TestReauthentication(t *testing.T) {
	sb := startSecureBroker(t, func(c *broker.Config) { c.Security.ConnectionsMaxReauthMs = 1000 })
	addr := sb.addrs["SASL_PLAINTEXT"]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The session starts when the broker accepts the login, between
	// these two instants: the close must come a second after the first.
	start := time.Now()
	raw, err := wire.DialSecured(addr, "raw", 10*time.Second, wire.ClientSecurity{SASLMechanism: "SCRAM-SHA-512", SASLUser: scramUser, SASLPassword: scramPass})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	meta := kmsg.NewPtrMetadataRequest()
	meta.SetVersion(1)
	if _, err := raw.Request(meta, time.Now().Add(10*time.Second)); err != nil {
		t.Fatalf("a request within the session: %v", err)
	}
	for {
		_, err := raw.Request(meta, time.Now().Add(10*time.Second))
		if err != nil {
			if since := time.Since(start); since < time.Second {
				t.Fatalf("closed %s after authenticating, before the 1s session ended: %v", since, err)
			}
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatal("a connection that never re-authenticated is still served 30s into a 1s session")
		}
		time.Sleep(100 * time.Millisecond) // pace the probe
	}

	adm := kadm.NewClient(clClient(t, sb.addrs["PLAINTEXT"]))
	if res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "temp", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "temp-pw"}}); err != nil || res.Error() != nil {
		t.Fatalf("adding user temp: %v %v", err, res.Error())
	}
	temp := clClient(t, addr, kgo.SASL(mechanism("SCRAM-SHA-256", "temp", "temp-pw")), kgo.DefaultProduceTopic("reauth"), kgo.AllowAutoTopicCreation())
	steady := clClient(t, addr, kgo.SASL(mechanism("SCRAM-SHA-256", scramUser, scramPass)), kgo.DefaultProduceTopic("reauth"), kgo.AllowAutoTopicCreation())
	for time.Since(start) < 4*time.Second {
		if err := steady.ProduceSync(ctx, &kgo.Record{Value: []byte("steady")}).FirstErr(); err != nil {
			t.Fatalf("producing across re-authentications: %v", err)
		}
		if err := temp.ProduceSync(ctx, &kgo.Record{Value: []byte("temp")}).FirstErr(); err != nil {
			t.Fatalf("temp producing before its deletion: %v", err)
		}
	}
	if res, err := adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "temp", Mechanism: kadm.ScramSha256}}, nil); err != nil || res.Error() != nil {
		t.Fatalf("deleting user temp: %v %v", err, res.Error())
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := temp.ProduceSync(ctx, &kgo.Record{Value: []byte("temp")}).FirstErr()
		if errors.Is(err, kerr.SaslAuthenticationFailed) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a deleted user still produces 30s later (last error %v), want %v", err, kerr.SaslAuthenticationFailed)
		}
	}
}
