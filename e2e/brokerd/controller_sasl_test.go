package brokerd_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"golang.org/x/crypto/bcrypt"

	"logpipe/brokerd/quorum"
	"logpipe/internal/await"
	"logpipe/internal/devstack"
)

// ctlSASLSettings are the settings of TestControllerSASL's nodes: the
// client listener (named PLAINTEXT by the cluster helpers) is SASL_SSL,
// the controller listener proto, both with PLAIN accounts of users and
// no client certificates; the nodes log in to the controller listener as
// broker with password, and User:broker and User:admin are the only super
// users.
func ctlSASLSettings(f ctlTLSFixture, users, proto, password string) []string {
	return []string{
		"listener.security.protocol.map=PLAINTEXT:SASL_SSL,CONTROLLER:" + proto,
		"ssl.keystore.type=PEM", "ssl.keystore.certificate.chain=" + f.certFile, "ssl.keystore.key=" + f.keyFile,
		"ssl.truststore.location=" + f.caFile,
		"ssl.client.auth=none",
		"sasl.enabled.mechanisms=PLAIN",
		"sasl.plain.users.file=" + users,
		"inter.broker.listener.name=PLAINTEXT",
		`sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" password="` + password + `";`,
		"authorizer.class.name=standard",
		"super.users=User:broker;User:admin",
	}
}

// ctlSASLClient are the options of an admin client of ctlSASLSettings'
// nodes: TLS trusting the cluster's CA, SASL PLAIN as admin.
func ctlSASLClient(f ctlTLSFixture) []kgo.Opt {
	return []kgo.Opt{
		kgo.DialTLSConfig(&tls.Config{RootCAs: f.ca.Pool(), MinVersion: tls.VersionTLS12}),
		kgo.SASL(plain.Auth{User: "admin", Pass: "admin-pw"}.AsMechanism()),
	}
}

// plainUsersFile writes a sasl.plain.users.file of accounts (user to
// password) and returns its path.
func plainUsersFile(t *testing.T, accounts map[string]string) string {
	t.Helper()
	var lines []string
	for user, pass := range accounts {
		hash, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, user+": "+string(hash))
	}
	path := filepath.Join(t.TempDir(), "users.yml")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// raftHandshake is a Raft stream's handshake without SASL (version 1).
var raftHandshake = []byte{0xFF, 'L', 'R', 1, 0}

// saslRaftHandshake is a Raft stream's handshake logging in with SASL
// PLAIN as user with pass (version 2).
func saslRaftHandshake(user, pass string) []byte {
	tok := "\x00" + user + "\x00" + pass
	h := append([]byte{0xFF, 'L', 'R', 2, 0, 5}, "PLAIN"...)
	return append(binary.BigEndian.AppendUint16(h, uint16(len(tok))), tok...)
}

// noAnswer is what raftAnswer returns when the connection failed or
// closed without answering: refused too.
const noAnswer = 0xFF

// raftAnswer connects to addr as a Raft stream does (over TLS with cfg,
// offering quorum.RaftALPN, when cfg is set), sends handshake and returns
// the first byte of the answer: 0x00 accepted, else a refusal code or
// noAnswer.
func raftAnswer(t *testing.T, addr string, cfg *tls.Config, handshake []byte) byte {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if cfg != nil {
		cfg = cfg.Clone()
		cfg.NextProtos = []string{quorum.RaftALPN}
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(conn, cfg)
		if err := tc.Handshake(); err != nil {
			return noAnswer
		}
		conn = tc
	}
	if _, err := conn.Write(handshake); err != nil {
		return noAnswer
	}
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		return noAnswer
	}
	return b[0]
}

// TestControllerSASL runs three nodes whose controller listener is
// SASL_SSL, then SASL_PLAINTEXT, under an authorizer without
// User:ANONYMOUS: the quorum forms, the brokers register, and a topic of
// replication factor 3 is produced to with acks=all and consumed. On the
// controller listener a Raft handshake without SASL, or with a wrong
// password, is refused; a node restarted with a wrong controller
// password cannot register and its log says why.
func TestControllerSASL(t *testing.T) {
	f := newCtlTLSFixture(t)
	users := plainUsersFile(t, map[string]string{"broker": "broker-pw", "admin": "admin-pw"})
	for _, proto := range []string{"SASL_SSL", "SASL_PLAINTEXT"} {
		t.Run(proto, func(t *testing.T) {
			c := newCluster(t, 3, ctlSASLSettings(f, users, proto, "broker-pw")...)
			c.logsOnFailure()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			topic := "ctl-" + strings.ToLower(proto)
			cl, err := kgo.NewClient(append(ctlSASLClient(f),
				kgo.SeedBrokers(c.addrs...), kgo.DefaultProduceTopic(topic), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			adm := kadm.NewClient(cl)
			await.Eventually(t, "3 registered brokers and a controller", func() error {
				m, err := adm.Metadata(ctx)
				if err != nil {
					return err
				}
				if len(m.Brokers) != 3 || m.Controller < 1 {
					return await.NotYet(fmt.Sprintf("brokers %v, controller %d", m.Brokers.NodeIDs(), m.Controller), "3 brokers and a controller")
				}
				return nil
			}, await.Within(time.Minute))
			if r, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": ptr("3")}, topic); err != nil || r.Err != nil {
				t.Fatalf("creating %s: %v %v", topic, err, r.Err)
			}
			for i := range 20 {
				if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "r%d", i)}).FirstErr(); err != nil {
					t.Fatalf("producing r%d with acks=all to 3 in-sync replicas: %v", i, err)
				}
			}
			seen := map[string]bool{}
			for len(seen) < 20 {
				fs := cl.PollFetches(ctx)
				if err := ctx.Err(); err != nil {
					t.Fatalf("consuming %s: got %d distinct records, want 20 (%v)", topic, len(seen), fs.Errors())
				}
				fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
			}

			// Raw Raft handshakes on node 1's controller listener.
			var overTLS *tls.Config
			if proto == "SASL_SSL" {
				overTLS = &tls.Config{RootCAs: f.ca.Pool(), MinVersion: tls.VersionTLS12}
			}
			if b := raftAnswer(t, c.ctls[0], overTLS, raftHandshake); b == 0 {
				t.Errorf("a Raft handshake without SASL: got accepted (0x00), want refused")
			}
			if b := raftAnswer(t, c.ctls[0], overTLS, saslRaftHandshake("broker", "wrong")); b == 0 {
				t.Errorf("a Raft handshake with a wrong password: got accepted (0x00), want refused")
			}
			if b := raftAnswer(t, c.ctls[0], overTLS, saslRaftHandshake("broker", "broker-pw")); b != 0 {
				t.Errorf("a Raft handshake with the brokers' account: got %#x, want accepted (0x00)", b)
			}
			if got := c.nodes[0].proc.Tail(200000); !strings.Contains(got, "did not authenticate with SASL") || !strings.Contains(got, "invalid user name or password") {
				t.Errorf("node 1's log: got\n%s\nwant both refused Raft streams logged", tail([]byte(got), 3000))
			}
			if proto != "SASL_SSL" {
				return
			}

			// Node 3 comes back with a wrong controller password: the
			// leader's Raft streams still reach it (they carry the
			// leader's password), but it cannot register with the
			// controller, and says so.
			c.nodes[2].proc.Kill()
			notServing(t, ctx, "a node with a wrong controller password", devstack.BrokerdOptions{Addr: c.addrs[2], DataDir: c.dirs[2],
				Settings: append(devstack.VoterSettings(3, c.addrs[2], c.ctls[2], c.voters), append(ctlSASLSettings(f, users, proto, "not-the-password"), "request.timeout.ms=4000")...)},
				"registering with the controller", "SASL PLAIN", "authentication failed")
		})
	}
}
