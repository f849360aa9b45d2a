package broker_test

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"logpipe/brokerd/broker"
	"logpipe/internal/syncbuf"
	"logpipe/internal/testcerts"
	pscram "logpipe/pipeline/scram"
)

// refusal is one thing TestRefusalsWithOtherClients has each client try.
type refusal struct {
	name string
	// listener is SSL or SASL_PLAINTEXT.
	listener string
	// caFile, cert and key are the client's truststore and certificate
	// (none when cert is "").
	caFile, cert, key string
	// mech, user and pass are the SASL login on SASL_PLAINTEXT.
	mech, user, pass string
	// want are what each client's error says, by client; "a|b" is a or
	// b.
	want map[string]string
}

// TestRefusalsWithOtherClients has sarama, kcat (librdkafka) and
// kafka-python try what a broker requiring client certificates and
// enabling PLAIN and SCRAM-SHA-512 refuses: a server certificate of an
// unknown CA, an expired client certificate, no client certificate, a
// wrong password, an unknown user and a mechanism that is not enabled; a
// good certificate works with each of them.
func TestRefusalsWithOtherClients(t *testing.T) {
	kcat := requireTool(t, "kcat")
	python := requireTool(t, "/usr/bin/python3")
	sb := startSecureBroker(t, func(c *broker.Config) {
		c.Security.SSLClientAuth = "required"
		c.Security.SASLEnabledMechanisms = "PLAIN,SCRAM-SHA-512"
	})
	caFile := filepath.Join(sb.dir, "ca.pem")
	cert, key := writeClientCert(t, sb)
	other, err := testcerts.NewCA("another CA")
	if err != nil {
		t.Fatal(err)
	}
	otherFile := filepath.Join(sb.dir, "other-ca.pem")
	if err := os.WriteFile(otherFile, other.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	old, err := sb.ca.Issue(testcerts.Options{Subject: pkix.Name{CommonName: "old"}, NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	oldCert, oldKey, err := old.Write(sb.dir, "old")
	if err != nil {
		t.Fatal(err)
	}
	// Under TLS 1.3 a client learns its certificate was refused at its
	// first read: kafka-python sees the alert, or only the connection
	// end, as its reads and the alert race.
	badCert := func(goAlert, sslAlert string) map[string]string {
		return map[string]string{"sarama": "remote error: tls: " + goAlert, "kcat": "alert " + sslAlert,
			"kafka-python": "SSLEOFError|ALERT_" + strings.ToUpper(strings.ReplaceAll(sslAlert, " ", "_"))}
	}
	// kafka-python logs in with SaslHandshake v0 and bare tokens, after
	// which a failed login is told by closing the connection, as Kafka
	// does.
	badLogin := map[string]string{"sarama": "SASL Authentication failed", "kcat": "Authentication failed", "kafka-python": "Connection reset during recv"}
	cases := []refusal{
		{name: "good certificate", listener: "SSL", caFile: caFile, cert: cert, key: key},
		{name: "unknown CA", listener: "SSL", caFile: otherFile, cert: cert, key: key,
			want: map[string]string{"sarama": "certificate signed by unknown authority", "kcat": "certificate verify failed", "kafka-python": "CERTIFICATE_VERIFY_FAILED"}},
		{name: "expired certificate", listener: "SSL", caFile: caFile, cert: oldCert, key: oldKey, want: badCert("expired certificate", "certificate expired")},
		{name: "no certificate", listener: "SSL", caFile: caFile, want: badCert("certificate required", "certificate required")},
		{name: "wrong password", listener: "SASL_PLAINTEXT", mech: "PLAIN", user: plainUser, pass: "nope", want: badLogin},
		{name: "unknown user", listener: "SASL_PLAINTEXT", mech: "SCRAM-SHA-512", user: "ghost", pass: scramPass, want: badLogin},
		{name: "mechanism not enabled", listener: "SASL_PLAINTEXT", mech: "SCRAM-SHA-256", user: scramUser, pass: scramPass,
			want: map[string]string{"sarama": "does not support the requested SASL mechanism", "kcat": "Unsupported SASL mechanism: broker's supported mechanisms: PLAIN,SCRAM-SHA-512", "kafka-python": "UnsupportedSaslMechanismError|NoBrokersAvailable"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr := sb.addrs[c.listener]
			for client, try := range map[string]func() error{
				"sarama": func() error { return trySarama(t, addr, c) },
				"kcat":   func() error { return tryKcat(kcat, addr, c) },
				"kafka-python": func() error {
					return tryKafkaPython(python, addr, c)
				},
			} {
				err := try()
				switch want, refused := c.want[client]; {
				case !refused && err != nil:
					t.Errorf("%s with %s: got %v, want success", client, c.name, err)
				case refused && err == nil:
					t.Errorf("%s with %s: got success, want a refusal saying %q", client, c.name, want)
				case refused && !says(err.Error(), want):
					t.Errorf("%s with %s: got %v, want a refusal saying %q", client, c.name, err, want)
				}
			}
		})
	}
}

// says reports whether text holds one of want's alternatives (split at |).
func says(text, want string) bool {
	return slices.ContainsFunc(strings.Split(want, "|"), func(w string) bool { return strings.Contains(text, w) })
}

// trySarama connects with sarama and asks for metadata.
func trySarama(t *testing.T, addr string, c refusal) error {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.Metadata.Retry.Max = 0
	cfg.Net.DialTimeout = 10 * time.Second
	if c.listener == "SSL" {
		ca, err := os.ReadFile(c.caFile)
		if err != nil {
			t.Fatal(err)
		}
		tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: poolOf(t, ca)}
		if c.cert != "" {
			pair, err := tls.LoadX509KeyPair(c.cert, c.key)
			if err != nil {
				t.Fatal(err)
			}
			tc.Certificates = []tls.Certificate{pair}
		}
		cfg.Net.TLS.Enable, cfg.Net.TLS.Config = true, tc
	} else {
		cfg.Net.SASL.Enable, cfg.Net.SASL.Mechanism = true, sarama.SASLMechanism(c.mech)
		cfg.Net.SASL.User, cfg.Net.SASL.Password = c.user, c.pass
		if c.mech != "PLAIN" {
			cfg.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return pscram.ForMechanism(c.mech) }
		}
	}
	// A sarama client reports only that no broker answered; a Broker
	// returns why.
	b := sarama.NewBroker(addr)
	if err := b.Open(cfg); err != nil {
		return err
	}
	defer b.Close()
	_, err := b.GetMetadata(&sarama.MetadataRequest{Version: 1})
	return err
}

// tryKcat lists the metadata with kcat. Where a refusal is expected, kcat
// is stopped as soon as it has said what is wanted, rather than left to
// retry until its timeout.
func tryKcat(kcat, addr string, c refusal) error {
	args := []string{"-b", addr, "-X", "security.protocol=" + c.listener, "-L", "-m", "10"}
	if c.listener == "SSL" {
		args = append(args, "-X", "ssl.ca.location="+c.caFile)
		if c.cert != "" {
			args = append(args, "-X", "ssl.certificate.location="+c.cert, "-X", "ssl.key.location="+c.key)
		}
	} else {
		args = append(args, "-X", "sasl.mechanisms="+c.mech, "-X", "sasl.username="+c.user, "-X", "sasl.password="+c.pass)
	}
	var out syncbuf.Buffer
	cmd := exec.Command(kcat, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var said <-chan time.Time
	if want := c.want["kcat"]; want != "" {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		said = tick.C
	}
	for {
		select {
		case err := <-exited:
			if err != nil {
				return fmt.Errorf("%v: %s", err, out.String())
			}
			return nil
		case <-said:
			if got := out.String(); says(got, c.want["kcat"]) {
				_ = cmd.Process.Kill()
				<-exited
				return fmt.Errorf("refused: %s", got)
			}
		}
	}
}

// tryKafkaPython lists the topics with kafka-python's consumer.
func tryKafkaPython(python, addr string, c refusal) error {
	py := fmt.Sprintf(`
import kafka, logging
logging.basicConfig(level=logging.ERROR)
logging.getLogger("kafka.conn").setLevel(logging.INFO)
kw = dict(bootstrap_servers=%q, security_protocol=%q, api_version_auto_timeout_ms=10000, request_timeout_ms=15000)
if %q == "SSL":
    kw.update(ssl_cafile=%q)
    if %q:
        kw.update(ssl_certfile=%q, ssl_keyfile=%q)
else:
    kw.update(sasl_mechanism=%q, sasl_plain_username=%q, sasl_plain_password=%q)
try:
    kafka.KafkaConsumer(**kw).topics()
except Exception as e:
    print(type(e).__name__, e)
    raise SystemExit(1)
`, addr, c.listener, c.listener, c.caFile, c.cert, c.cert, c.key, c.mech, c.user, c.pass)
	out, err := exec.Command(python, "-c", py).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// poolOf is a certificate pool of the PEM certificates in pem.
func poolOf(t *testing.T, pem []byte) *x509.CertPool {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(pem) {
		t.Fatal("no certificate in the PEM")
	}
	return p
}
