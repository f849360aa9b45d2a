package brokerd_test

import (
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/internal/await"
)

// TestBrokerOnlySecuredController runs three voters whose controller
// listener is SASL_SSL, SASL_PLAINTEXT or SSL, under an authorizer
// without User:ANONYMOUS (the clients' listener is SASL_SSL, or SSL with
// client certificates required beside an SSL controller listener), and a
// fourth node with process.roles: broker and the same settings, which
// joins by starting: it registers, is unfenced and every node lists it at
// its listener; a partition it leads, with replicas on two voters and
// min.insync.replicas 3, takes records with acks=all through it and gives
// them back. Its inter-broker listener, where the quorum leader's Raft
// streams come, refuses a stream that does not authenticate as the
// controller listener asks, and logs why; one that does is accepted.
func TestBrokerOnlySecuredController(t *testing.T) {
	f := newCtlTLSFixture(t)
	users := plainUsersFile(t, map[string]string{"broker": "broker-pw", "admin": "admin-pw"})
	trust := &tls.Config{RootCAs: f.ca.Pool(), MinVersion: tls.VersionTLS12}
	withCert := func(cert tls.Certificate) *tls.Config {
		c := trust.Clone()
		c.Certificates = []tls.Certificate{cert}
		return c
	}
	// probe is a raw Raft stream sent to node 4's inter-broker listener.
	type probe struct {
		what      string
		tls       *tls.Config // nil: plaintext
		handshake []byte
		accepted  bool
	}
	for _, tc := range []struct {
		proto    string
		settings []string
		client   []kgo.Opt
		probes   []probe
		logged   []string // what node 4's log says of the refusals
	}{
		{"SASL_SSL", ctlSASLSettings(f, users, "SASL_SSL", "broker-pw"), ctlSASLClient(f), []probe{
			{"in plaintext", nil, raftHandshake, false},
			{"over TLS without SASL", trust, raftHandshake, false},
			{"over TLS with a wrong password", trust, saslRaftHandshake("broker", "wrong"), false},
			{"over TLS as the brokers' user", trust, saslRaftHandshake("broker", "broker-pw"), true},
		}, []string{"inter-broker listener: TLS handshake refused", "did not authenticate with SASL", "invalid user name or password"}},
		{"SASL_PLAINTEXT", ctlSASLSettings(f, users, "SASL_PLAINTEXT", "broker-pw"), ctlSASLClient(f), []probe{
			{"without SASL", nil, raftHandshake, false},
			{"with a wrong password", nil, saslRaftHandshake("broker", "wrong"), false},
			{"as the brokers' user", nil, saslRaftHandshake("broker", "broker-pw"), true},
		}, []string{"did not authenticate with SASL", "invalid user name or password"}},
		{"SSL", ctlTLSSettings(f.caFile, f.certFile, f.keyFile), []kgo.Opt{kgo.DialTLSConfig(withCert(f.admin))}, []probe{
			{"in plaintext", nil, raftHandshake, false},
			{"over TLS without a client certificate", trust, raftHandshake, false},
			{"over TLS with the brokers' certificate", withCert(f.broker), raftHandshake, true},
		}, []string{"inter-broker listener: TLS handshake refused", "does not look like a TLS handshake", "didn't provide a certificate"}},
	} {
		t.Run(tc.proto, func(t *testing.T) {
			c := newCluster(t, 3, tc.settings...)
			c.clientOpts = tc.client
			c.logsOnFailure()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			four := c.addBrokerOnly()
			for i := range 4 {
				c.nodeSees(i, "node 4 at its listener", func(m *kmsg.MetadataResponse) error {
					for _, b := range m.Brokers {
						if b.NodeID == 4 {
							if got := net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))); got != c.addrs[four] {
								return await.NotYet(got, c.addrs[four])
							}
							return nil
						}
					}
					return await.NotYet(brokerIDs(m.Brokers, func(b kmsg.MetadataResponseBroker) int32 { return b.NodeID }), "node 4 among them")
				})
			}

			topic := "broker-only-" + strings.ToLower(tc.proto)
			c.createAssigned(ctx, topic, [][]int32{{4, 1, 2}}, map[string]string{"min.insync.replicas": "3"})
			c.waitMeta(ctx, four, topic+" led by node 4 with three replicas in sync", func(m kadm.Metadata) bool {
				p, ok := m.Topics[topic].Partitions[0]
				return ok && p.Leader == 4 && len(p.ISR) == 3
			})
			vs := values(topic, 50)
			if err := produceWith(ctx, nil, []string{c.addrs[four]}, tc.client, topic, 0, kgo.AllISRAcks(), vs...); err != nil {
				t.Fatalf("producing to %s with acks=all through node 4: %v", topic, err)
			}
			readBack(t, ctx, []string{c.addrs[four]}, topic, map[int32][]string{0: vs}, tc.client...)

			for _, p := range tc.probes {
				got := raftAnswer(t, c.addrs[four], p.tls, p.handshake)
				switch {
				case p.accepted && got != 0:
					t.Errorf("a Raft stream %s to node 4's inter-broker listener: got %#x, want accepted (0x00)", p.what, got)
				case !p.accepted && got == 0:
					t.Errorf("a Raft stream %s to node 4's inter-broker listener: got accepted (0x00), want refused", p.what)
				}
			}
			for _, w := range tc.logged {
				await.Eventually(t, "node 4 to log the refused Raft streams", func() error {
					if logged := c.nodes[four].proc.Tail(200000); !strings.Contains(logged, w) {
						return await.NotYet(tail([]byte(logged), 3000), "a line saying "+strconv.Quote(w))
					}
					return nil
				}, await.Within(10*time.Second))
			}
		})
	}
}
