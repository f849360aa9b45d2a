package brokerd_test

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"golang.org/x/crypto/bcrypt"

	"logpipe/brokerd/wire"
	"logpipe/internal/await"
	"logpipe/internal/devstack"
	"logpipe/internal/testcerts"
)

// TestSecuredClusterWithJavaTools runs three brokerd nodes whose only
// client listener is SASL_SSL, which is also their inter-broker listener:
// the replica fetchers log in to each other over TLS with the brokers' own
// PLAIN account. Kafka's kafka-configs tool, as the admin, adds a
// SCRAM-SHA-512 user; Kafka's console producer and consumer, as that user,
// write and read a topic that needs all three replicas in sync, and
// franz-go with a wrong password is refused.
func TestSecuredClusterWithJavaTools(t *testing.T) {
	c := layoutCluster(t, 3, nil)
	dir := t.TempDir()
	ca, err := testcerts.NewCA("e2e CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(testcerts.Options{Subject: pkix.Name{CommonName: "brokerd"}, Hosts: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := leaf.Write(dir, "broker")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	users := filepath.Join(dir, "users.yml")
	var hashes strings.Builder
	for _, u := range [][2]string{{"broker", "broker-pw"}, {"admin", "admin-pw"}} {
		h, err := bcrypt.GenerateFromPassword([]byte(u[1]), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&hashes, "%s: %q\n", u[0], h)
	}
	for path, body := range map[string]string{caFile: string(ca.PEM), users: hashes.String()} {
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Each node starts with its own listeners; they wait for each other's
	// quorum, so they start together.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	procs := make([]*devstack.Process, 3)
	for i := range 3 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			settings := append(devstack.VoterSettings(i+1, c.addrs[i], c.ctls[i], c.voters),
				"listeners=SASL_SSL://"+c.addrs[i]+",CONTROLLER://"+c.ctls[i],
				"listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
				"inter.broker.listener.name=SASL_SSL",
				"ssl.keystore.type=PEM", "ssl.keystore.certificate.chain="+certFile, "ssl.keystore.key="+keyFile,
				"ssl.truststore.location="+caFile,
				"sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512",
				"sasl.plain.users.file="+users,
				"sasl.mechanism.inter.broker.protocol=PLAIN",
				`sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" password="broker-pw";`,
				"group.initial.rebalance.delay.ms=0")
			p, err := devstack.StartBrokerd(ctx, devstack.BrokerdOptions{Bin: brokerdBin, Addr: c.addrs[i], DataDir: c.dirs[i], Settings: settings})
			if err != nil {
				errs[i] = fmt.Errorf("node %d: %w", i+1, err)
				return
			}
			procs[i] = p
			t.Cleanup(func() { p.Stop(10 * time.Second) })
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	boot := strings.Join(c.addrs, ",")
	tlsCfg := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	admin, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.DialTLSConfig(tlsCfg), kgo.SASL(plain.Auth{User: "admin", Pass: "admin-pw"}.AsMechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	adm := kadm.NewClient(admin)
	t.Cleanup(func() {
		if t.Failed() {
			for i, p := range procs {
				t.Logf("node %d's log:\n%s", i+1, p.Tail(8000))
			}
		}
	})
	// Each node lists the three brokers (asked directly: kadm's answer
	// can be the client's cached metadata, from before all registered).
	for i, addr := range c.addrs {
		await.Eventually(t, fmt.Sprintf("node %d to list three brokers over SASL_SSL", i+1), func() error {
			cl, err := wire.DialSecured(addr, "e2e", 10*time.Second, wire.ClientSecurity{TLS: tlsCfg, SASLMechanism: "PLAIN", SASLUser: "admin", SASLPassword: "admin-pw"})
			if err != nil {
				return err
			}
			defer cl.Close()
			req := kmsg.NewPtrMetadataRequest()
			req.SetVersion(9)
			resp, err := cl.Request(req, time.Now().Add(10*time.Second))
			if err != nil {
				return err
			}
			if brokers := resp.(*kmsg.MetadataResponse).Brokers; len(brokers) != 3 {
				return await.NotYet(fmt.Sprintf("%+v", brokers), "3 brokers")
			}
			return nil
		}, await.Within(2*time.Minute))
	}
	if _, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": ptr("3")}, "secured"); err != nil {
		t.Fatal(err)
	}

	props := func(name, mech, jaas string) string {
		p := filepath.Join(dir, name)
		body := strings.Join([]string{"security.protocol=SASL_SSL", "sasl.mechanism=" + mech, "sasl.jaas.config=" + jaas,
			"ssl.truststore.type=PEM", "ssl.truststore.location=" + caFile}, "\n") + "\n"
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	adminProps := props("admin.properties", "PLAIN", `org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-pw";`)
	shipperProps := props("shipper.properties", "SCRAM-SHA-512", `org.apache.kafka.common.security.scram.ScramLoginModule required username="shipper" password="shipper-pw";`)
	tool := kafkaTool(t, ctx, boot)
	tool("", "kafka.admin.ConfigCommand", "--command-config", adminProps, "--alter", "--add-config", "SCRAM-SHA-512=[iterations=8192,password=shipper-pw]", "--entity-type", "users", "--entity-name", "shipper")
	// Every node has the credential before the Java clients log in (the
	// metadata reaches the followers a moment later), as
	// DescribeUserScramCredentials says (kafka-configs --describe is
	// TestKafkaConfigsDescribesUsers').
	for id := range 3 {
		await.Eventually(t, fmt.Sprintf("node %d to describe the user kafka-configs added", id+1), func() error {
			req := kmsg.NewPtrDescribeUserSCRAMCredentialsRequest()
			req.Users = []kmsg.DescribeUserSCRAMCredentialsRequestUser{{Name: "shipper"}}
			resp, err := req.RequestWith(ctx, admin.Broker(id+1))
			if err != nil {
				return err
			}
			got := fmt.Sprintf("%+v", resp.Results)
			if len(resp.Results) != 1 || len(resp.Results[0].CredentialInfos) != 1 ||
				resp.Results[0].CredentialInfos[0].Mechanism != 2 || resp.Results[0].CredentialInfos[0].Iterations != 8192 {
				return await.NotYet(got, "shipper with SCRAM-SHA-512 (2) and 8192 iterations")
			}
			return nil
		}, await.Within(time.Minute))
	}
	var lines []string
	for i := range 100 {
		lines = append(lines, fmt.Sprintf("line %d", i))
	}
	tool(strings.Join(lines, "\n")+"\n", "kafka.tools.ConsoleProducer", "--topic", "secured", "--producer.config", shipperProps, "--producer-property", "acks=all")
	out := tool("", "org.apache.kafka.tools.consumer.ConsoleConsumer", "--topic", "secured", "--from-beginning", "--max-messages", "100", "--timeout-ms", "60000", "--consumer.config", shipperProps)
	var got []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "line ") {
			got = append(got, l)
		}
	}
	if strings.Join(got, "\n") != strings.Join(lines, "\n") {
		t.Fatalf("the Java consumer read %d of the 100 lines:\n%s", len(got), out)
	}

	// franz-go as the new user, and refused with a wrong password.
	for pass, want := range map[string]error{"shipper-pw": nil, "wrong": kerr.SaslAuthenticationFailed} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.DialTLSConfig(tlsCfg), kgo.SASL(scram.Auth{User: "shipper", Pass: pass}.AsSha512Mechanism()))
		if err != nil {
			t.Fatal(err)
		}
		if want == nil {
			err = cl.ProduceSync(ctx, &kgo.Record{Topic: "secured", Value: []byte("franz")}).FirstErr()
		} else {
			// A producer retries what it cannot send; a ping reports
			// the refusal itself.
			pctx, pcancel := context.WithTimeout(ctx, time.Minute)
			err = cl.Ping(pctx)
			pcancel()
		}
		cl.Close()
		if !errors.Is(err, want) {
			t.Errorf("franz-go as shipper with password %q: got %v, want %v", pass, err, want)
		}
	}
}

func ptr[T any](v T) *T { return &v }
