package broker_test

import (
	"cmp"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/brokerd/broker"
)

// TestAuthenticatedPrincipalsAreAuthorized joins authentication and
// authorization: the principal a SASL login or a client certificate gives
// a connection is the one the ACLs are checked against.
func TestAuthenticatedPrincipalsAreAuthorized(t *testing.T) {
	sb := startSecureBroker(t, func(cfg *broker.Config) {
		cfg.AuthorizerClassName = "standard"
		// The test sets up topics, users and ACLs on the PLAINTEXT
		// listener.
		cfg.SuperUsers = "User:ANONYMOUS"
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := kadm.NewClient(clClient(t, sb.addrs["PLAINTEXT"]))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "granted"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "other"); err != nil {
		t.Fatal(err)
	}
	const certPrincipal = "User:CN=client,OU=eng,O=logpipe"
	for _, b := range []*kadm.ACLBuilder{
		kadm.NewACLs().Allow("User:" + scramUser).Topics("granted").Operations(kadm.OpWrite),
		kadm.NewACLs().Allow(certPrincipal).Topics("other").Operations(kadm.OpWrite),
		kadm.NewACLs().Allow("User:" + scramUser).Clusters().Operations(kadm.OpIdempotentWrite),
		kadm.NewACLs().Allow(certPrincipal).Clusters().Operations(kadm.OpIdempotentWrite),
	} {
		res, err := adm.CreateACLs(ctx, b)
		if err == nil {
			for _, r := range res {
				err = cmp.Or(err, r.Err)
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	produce := func(who string, opts []kgo.Opt, topic string) error {
		t.Helper()
		cl, err := kgo.NewClient(append(opts, kgo.RequestRetries(0), kgo.RecordRetries(1))...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		return cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte(who)}).FirstErr()
	}
	scramOpts := []kgo.Opt{kgo.SeedBrokers(sb.addrs["SASL_PLAINTEXT"]), kgo.SASL(mechanism("SCRAM-SHA-512", scramUser, scramPass))}
	certOpts := []kgo.Opt{kgo.SeedBrokers(sb.addrs["SSL"]), kgo.DialTLSConfig(sb.tlsConfig(true))}
	for _, c := range []struct {
		who, topic string
		opts       []kgo.Opt
		want       error
	}{
		{"the SCRAM user", "granted", scramOpts, nil},
		{"the SCRAM user", "other", scramOpts, kerr.TopicAuthorizationFailed},
		{"the certificate's subject", "other", certOpts, nil},
		{"the certificate's subject", "granted", certOpts, kerr.TopicAuthorizationFailed},
	} {
		if err := produce(c.who, c.opts, c.topic); !errors.Is(err, c.want) && !(c.want == nil && err == nil) {
			t.Errorf("%s producing to %s: %v, want %v", c.who, c.topic, err, c.want)
		}
	}
	// Managing users needs ALTER on the cluster, which the SCRAM user
	// lacks.
	cl, err := kgo.NewClient(append(scramOpts, kgo.RequestRetries(0))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	res, err := kadm.NewClient(cl).AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: scramUser, Mechanism: kadm.ScramSha256}}, nil)
	if err == nil {
		err = res[scramUser].Err
	}
	if !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Errorf("the SCRAM user deleting a credential: %v, want CLUSTER_AUTHORIZATION_FAILED", err)
	}
}
