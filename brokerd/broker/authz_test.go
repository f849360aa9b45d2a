package broker_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/broker"
	"logpipe/brokerd/wire"
	"logpipe/internal/await"
)

// namedClients is the wire handler of a test broker whose clients are
// who their client id says: client id "alice" is the principal
// User:alice. The brokers' own connections (client ids "brokerd-…") stay
// User:ANONYMOUS, as on a PLAINTEXT listener. This stands in for the
// authentication brokerd does not have yet.
type namedClients struct{ *broker.Broker }

func (n namedClients) Handle(ctx context.Context, c *wire.Conn, h wire.Header, req kmsg.Request) (kmsg.Response, error) {
	if h.ClientID != "" && !strings.HasPrefix(h.ClientID, "brokerd-") {
		c.SetPrincipal("User:" + h.ClientID)
	}
	return n.Broker.Handle(ctx, c, h, req)
}

// authzConfig turns authorization on with User:admin and the brokers'
// own principal as super users.
func authzConfig(cfg *broker.Config) {
	cfg.AuthorizerClassName = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
	cfg.SuperUsers = "User:ANONYMOUS;User:admin"
}

// startAuthzCluster starts n combined nodes in this process, each serving
// clients through namedClients, and returns their client addresses.
func startAuthzCluster(t *testing.T, n int) []string {
	t.Helper()
	var clientLns []net.Listener
	var voters []string
	ctrlAddrs := make([]string, n)
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		clientLns = append(clientLns, ln)
		cl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctrlAddrs[i] = cl.Addr().String()
		cl.Close()
		voters = append(voters, fmt.Sprintf("%d@%s", i+1, ctrlAddrs[i]))
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	brokers := make([]*broker.Broker, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		cfg := broker.DefaultConfig()
		cfg.NodeID = int32(i + 1)
		cfg.Listeners = fmt.Sprintf("PLAINTEXT://%s,CONTROLLER://%s", clientLns[i].Addr(), ctrlAddrs[i])
		cfg.ControllerQuorumVoters = strings.Join(voters, ",")
		cfg.LogDirs = []string{t.TempDir()}
		cfg.GroupInitialRebalanceDelayMs = 0
		authzConfig(&cfg)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			brokers[i], errs[i] = broker.New(ctx, cfg, log, broker.Hooks{})
		}()
	}
	wg.Wait()
	var addrs []string
	for i, b := range brokers {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i+1, errs[i])
		}
		srv := &wire.Server{Handler: namedClients{b}, Log: log}
		go srv.Serve(clientLns[i])
		addrs = append(addrs, clientLns[i].Addr().String())
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
			b.Close()
		})
	}
	return addrs
}

// as returns an admin client of principal User:name talking to addr
// only.
func as(t *testing.T, name string, addr string) (*kgo.Client, *kadm.Client) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID(name), kgo.RequestRetries(0), kgo.RetryTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl, kadm.NewClient(cl)
}

// TestForwardedRequestsAreAuthorizedAsTheClient sends admin requests to a
// node that is not the controller, which forwards them in an envelope:
// the controller must decide them as the client that sent them, not as
// the forwarding broker (a super user), and the ACLs they create must
// reach every node.
func TestForwardedRequestsAreAuthorizedAsTheClient(t *testing.T) {
	addrs := startAuthzCluster(t, 3)
	ctx := ctxT(t)
	_, admin := as(t, "admin", addrs[0])
	var follower string
	await.Eventually(t, "a controller to be elected", func() error {
		md, err := admin.BrokerMetadata(ctx)
		if err != nil {
			return err
		}
		if md.Controller < 1 {
			return errors.New("no controller yet")
		}
		follower = addrs[md.Controller%3] // node Controller+1 (wrapping)
		return nil
	})
	_, admin = as(t, "admin", follower)

	acls := kadm.NewACLs().Allow("User:alice").Topics("alice-").ResourcePatternType(kadm.ACLPatternPrefixed).Operations(kadm.OpCreate)
	res, err := admin.CreateACLs(ctx, acls)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("admin creating %s through node %s: got %v, want success", r.Name, follower, r.Err)
		}
	}
	describe := kadm.NewACLs().AnyResource().ResourcePatternType(kadm.ACLPatternAny).Operations(kadm.OpAny).Allow().AllowHosts()
	for i, addr := range addrs {
		_, a := as(t, "admin", addr)
		await.Eventually(t, fmt.Sprintf("node %d to list alice's ACL", i+1), func() error {
			got, err := a.DescribeACLs(ctx, describe)
			if err != nil {
				return err
			}
			var principals []string
			for _, r := range got {
				if r.Err != nil {
					return r.Err
				}
				for _, d := range r.Described {
					principals = append(principals, d.Principal)
				}
			}
			if !slices.Equal(principals, []string{"User:alice"}) {
				return await.NotYet(fmt.Sprint(principals), "[User:alice]")
			}
			return nil
		})
	}

	_, alice := as(t, "alice", follower)
	for _, c := range []struct {
		topic string
		want  error
	}{
		{"alice-logs", nil},
		{"bob-logs", kerr.TopicAuthorizationFailed},
	} {
		resp, err := alice.CreateTopic(ctx, 1, 1, nil, c.topic)
		if err == nil {
			err = resp.Err
		}
		if !errors.Is(err, c.want) && !(c.want == nil && err == nil) {
			t.Fatalf("alice creating %s through node %s: got %v, want %v", c.topic, follower, err, c.want)
		}
	}
	res, err = alice.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").Topics("*").Operations(kadm.OpAll))
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || !errors.Is(res[0].Err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("alice creating an ACL: got %+v, want CLUSTER_AUTHORIZATION_FAILED", res)
	}
	described, err := alice.DescribeACLs(ctx, describe)
	if err == nil && len(described) > 0 {
		err = described[0].Err
	}
	if !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("alice describing ACLs: got %v, want CLUSTER_AUTHORIZATION_FAILED", err)
	}

	// Deleting goes through the forwarding node too.
	del, err := admin.DeleteACLs(ctx, describe)
	if err != nil {
		t.Fatal(err)
	}
	deleted := 0
	for _, r := range del {
		if r.Err != nil {
			t.Fatalf("admin deleting every ACL: %v", r.Err)
		}
		deleted += len(r.Deleted)
	}
	if deleted != 1 {
		t.Fatalf("admin deleting every ACL: got %d deleted, want alice's one", deleted)
	}
	resp, err := alice.CreateTopic(ctx, 1, 1, nil, "alice-more")
	if err == nil {
		err = resp.Err
	}
	if !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("alice creating a topic once her ACL is gone: got %v, want TOPIC_AUTHORIZATION_FAILED", err)
	}
}

// TestAuthorizationOnOneNode checks a few APIs for a client with and
// without ACLs, and that ACLs survive a restart.
func TestAuthorizationOnOneNode(t *testing.T) {
	dir := t.TempDir()
	named := func(b *broker.Broker) wire.Handler { return namedClients{b} }
	tb := startBrokerServing(t, dir, "", authzConfig, named)
	ctx := ctxT(t)
	_, admin := as(t, "admin", tb.addr)
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, "logs"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.CreateTopic(ctx, 1, 1, nil, "secret"); err != nil {
		t.Fatal(err)
	}
	res, err := admin.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").Topics("logs").Operations(kadm.OpWrite))
	if err != nil || len(res) != 1 || res[0].Err != nil {
		t.Fatalf("creating alice's ACL: %v %+v", err, res)
	}

	check := func(addr string) {
		t.Helper()
		_, alice := as(t, "alice", addr)
		md, err := alice.Metadata(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := md.Topics.Names(); !slices.Equal(got, []string{"logs"}) {
			t.Fatalf("topics alice sees: got %v, want [logs]", got)
		}
		prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("alice"), kgo.DisableIdempotentWrite())
		if err != nil {
			t.Fatal(err)
		}
		defer prod.Close()
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "logs", Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatalf("alice producing to logs: got %v, want success", err)
		}
		req := kmsg.NewPtrProduceRequest()
		req.Acks, req.TimeoutMillis = 1, 5000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic = "secret"
		rp := kmsg.NewProduceRequestTopicPartition()
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		kresp, err := req.RequestWith(ctx, prod)
		if err != nil {
			t.Fatal(err)
		}
		if got := kresp.Topics[0].Partitions[0].ErrorCode; got != kerr.TopicAuthorizationFailed.Code {
			t.Fatalf("alice producing to secret: got %s, want TOPIC_AUTHORIZATION_FAILED", kerr.ErrorForCode(got))
		}
		_, bob := as(t, "bob", addr)
		md, err = bob.Metadata(ctx, "logs")
		if err == nil {
			err = md.Topics["logs"].Err
		}
		if !errors.Is(err, kerr.TopicAuthorizationFailed) {
			t.Fatalf("bob describing logs: got %v, want TOPIC_AUTHORIZATION_FAILED", err)
		}
	}
	check(tb.addr)
	tb.stop()
	tb = startBrokerServing(t, dir, "", authzConfig, named)
	check(tb.addr)
}
