package brokerd_test

import (
	"context"
	"crypto/tls"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/brokerd/quorum"
	"logpipe/internal/await"
	"logpipe/internal/devstack"
	"logpipe/internal/testcerts"
)

// ctlTLSFixture is the certificates of TestControllerTLS: the cluster's CA
// with a broker and an admin certificate, and a certificate of another CA.
type ctlTLSFixture struct {
	ca                        *testcerts.CA
	caFile, certFile, keyFile string
	admin                     tls.Certificate
	broker                    tls.Certificate
	rogueCA, rogueCert        string
	rogueKey                  string
}

func newCtlTLSFixture(t *testing.T) ctlTLSFixture {
	t.Helper()
	dir := t.TempDir()
	var f ctlTLSFixture
	issue := func(ca *testcerts.CA, cn, name string) (testcerts.Leaf, string, string) {
		leaf, err := ca.Issue(testcerts.Options{Subject: pkix.Name{CommonName: cn}, Hosts: []string{"127.0.0.1", "localhost"}})
		if err != nil {
			t.Fatal(err)
		}
		cert, key, err := leaf.Write(dir, name)
		if err != nil {
			t.Fatal(err)
		}
		return leaf, cert, key
	}
	writeCA := func(ca *testcerts.CA, name string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, ca.PEM, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var err error
	if f.ca, err = testcerts.NewCA("cluster CA"); err != nil {
		t.Fatal(err)
	}
	rogue, err := testcerts.NewCA("rogue CA")
	if err != nil {
		t.Fatal(err)
	}
	f.caFile, f.rogueCA = writeCA(f.ca, "ca.pem"), writeCA(rogue, "rogue-ca.pem")
	var leaf testcerts.Leaf
	leaf, f.certFile, f.keyFile = issue(f.ca, "brokerd", "broker")
	if f.broker, err = leaf.TLS(); err != nil {
		t.Fatal(err)
	}
	leaf, _, _ = issue(f.ca, "admin", "admin")
	if f.admin, err = leaf.TLS(); err != nil {
		t.Fatal(err)
	}
	_, f.rogueCert, f.rogueKey = issue(rogue, "brokerd", "rogue")
	return f
}

// ctlTLSSettings are the security keys of TestControllerTLS's nodes with
// keystore cert/key and truststore ca: the client listener (named
// PLAINTEXT by the cluster helpers) and the controller listener are SSL,
// client certificates are required, and User:brokerd (the brokers'
// certificate, CN brokerd, mapped) and User:admin are the only super
// users. The controller listener takes TLS 1.3 only, so the Raft streams
// and controller requests dial under that listener's policy.
func ctlTLSSettings(ca, cert, key string) []string {
	return []string{
		"listener.security.protocol.map=PLAINTEXT:SSL,CONTROLLER:SSL",
		"listener.name.controller.ssl.enabled.protocols=TLSv1.3",
		"ssl.keystore.type=PEM", "ssl.keystore.certificate.chain=" + cert, "ssl.keystore.key=" + key,
		"ssl.truststore.location=" + ca,
		"ssl.client.auth=required",
		"ssl.principal.mapping.rules=RULE:^CN=([^,]+)$/$1/,DEFAULT",
		"authorizer.class.name=standard",
		"super.users=User:brokerd;User:admin",
	}
}

// TestControllerTLS runs three nodes whose controller listener is SSL
// with client certificates required, under an authorizer whose super
// users are the brokers' certificate principal and an admin (no
// User:ANONYMOUS): the cluster forms, replicates with acks=all and
// min.insync.replicas 2, and survives a kill -9 of the controller. A node
// with a certificate of another CA cannot join, each side logging why,
// and the cluster goes on; a plaintext Raft handshake on the controller
// listener is refused.
func TestControllerTLS(t *testing.T) {
	f := newCtlTLSFixture(t)
	c := layoutCluster(t, 3, nil, ctlTLSSettings(f.caFile, f.certFile, f.keyFile)...)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() { errs[i] = c.startErr(i) })
	}
	wg.Wait()
	c.logsOnFailure()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	clientTLS := &tls.Config{RootCAs: f.ca.Pool(), Certificates: []tls.Certificate{f.admin}, MinVersion: tls.VersionTLS12}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.DialTLSConfig(clientTLS), kgo.DefaultProduceTopic("ctl"),
		kgo.ConsumeTopics("ctl"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	brokersAndController := func(want int, not int32) kadm.Metadata {
		t.Helper()
		var m kadm.Metadata
		await.Eventually(t, fmt.Sprintf("%d live brokers and a controller other than %d", want, not), func() error {
			var err error
			cl.ForceMetadataRefresh()
			if m, err = adm.Metadata(ctx); err != nil {
				return err
			}
			if len(m.Brokers) != want || m.Controller < 1 || m.Controller == not {
				return await.NotYet(fmt.Sprintf("brokers %v, controller %d", m.Brokers.NodeIDs(), m.Controller), fmt.Sprintf("%d brokers, a controller other than %d", want, not))
			}
			return nil
		}, await.Within(2*time.Minute))
		return m
	}
	m := brokersAndController(3, -1)
	if r, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": ptr("2")}, "ctl"); err != nil || r.Err != nil {
		t.Fatalf("creating ctl: %v %v", err, r.Err)
	}
	produce := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "r%d", i)}).FirstErr(); err != nil {
				t.Fatalf("producing r%d with acks=all: %v", i, err)
			}
		}
	}
	produce(0, 20)
	fullISR := func(what string) {
		t.Helper()
		await.Eventually(t, what, func() error {
			td, err := adm.ListTopics(ctx, "ctl")
			if err != nil {
				return err
			}
			if isr := td["ctl"].Partitions[0].ISR; len(isr) != 3 {
				return await.NotYet(isr, "3 replicas")
			}
			return nil
		}, await.Within(time.Minute))
	}
	fullISR("ctl's ISR to hold all three replicas")

	// kill -9 the controller: another takes over, writes go on.
	old := m.Controller
	c.nodes[old-1].proc.Kill()
	brokersAndController(2, old)
	produce(20, 20)

	// The killed node comes back with a certificate of another CA: it
	// cannot reach the quorum, and says so; the others refuse it.
	i := int(old - 1)
	notServing(t, ctx, "a node with another CA's certificate", devstack.BrokerdOptions{Addr: c.addrs[i], DataDir: c.dirs[i],
		Settings: append(devstack.VoterSettings(i+1, c.addrs[i], c.ctls[i], c.voters), ctlTLSSettings(f.rogueCA, f.rogueCert, f.rogueKey)...)},
		"metadata quorum connection refused", "certificate signed by unknown authority")
	for j, n := range c.nodes {
		if int32(j+1) == old {
			continue
		}
		if got := n.proc.Tail(200000); !strings.Contains(got, "controller listener: TLS handshake refused") {
			t.Errorf("node %d's log: got\n%s\nwant a refused TLS handshake on the controller listener", j+1, tail([]byte(got), 3000))
		}
	}
	produce(40, 10)

	// A plaintext Raft handshake on a controller listener is not
	// accepted; the same handshake over TLS with the cluster's
	// certificate and the Raft protocol is (the check can fail).
	live := c.ctls[old%3]
	raftHandshake := []byte{0xFF, 'L', 'R', 1, 0}
	answer := func(conn net.Conn) (byte, error) {
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write(raftHandshake); err != nil {
			return 0, err
		}
		var b [1]byte
		_, err := io.ReadFull(conn, b[:])
		return b[0], err
	}
	plain, err := net.DialTimeout("tcp", live, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := answer(plain); err == nil && b == 0 {
		t.Errorf("a plaintext Raft handshake on %s: got accepted (0x00), want the connection refused", live)
	}
	secured, err := tls.Dial("tcp", live, &tls.Config{RootCAs: f.ca.Pool(), Certificates: []tls.Certificate{f.broker}, NextProtos: []string{quorum.RaftALPN}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("TLS dial of %s with the cluster's certificate: %v", live, err)
	}
	if b, err := answer(secured); err != nil || b != 0 {
		t.Errorf("a Raft handshake over TLS on %s: got %#x, %v; want accepted (0x00)", live, b, err)
	}

	// With its own certificate the node rejoins and has every record.
	c.start(i)
	brokersAndController(3, -1)
	produce(50, 10)
	seen := map[string]bool{}
	for len(seen) < 60 {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consuming ctl: got %d distinct records, want 60 (%v)", len(seen), fs.Errors())
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	fullISR("the rejoined node back in ctl's ISR")
}

// tail is the last n bytes of b.
func tail(b []byte, n int) string { return string(b[max(0, len(b)-n):]) }

// notServing starts a brokerd node that must be kept from serving clients
// and checks that its log says why (every one of want) before its client
// listener opens; the node is stopped once it has said so, or after 20
// seconds.
func notServing(t *testing.T, ctx context.Context, what string, opts devstack.BrokerdOptions, want ...string) {
	t.Helper()
	opts.Bin = brokerdBin
	opts.LogPath = filepath.Join(t.TempDir(), "brokerd.log")
	said := func() bool {
		logged, _ := os.ReadFile(opts.LogPath)
		for _, w := range want {
			if !strings.Contains(string(logged), w) {
				return false
			}
		}
		return true
	}
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	go func() {
		for !said() && sctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
	}()
	p, err := devstack.StartBrokerd(sctx, opts)
	if err == nil {
		p.Stop(10 * time.Second)
		t.Fatalf("%s started serving clients; want it kept from the cluster", what)
	}
	if !said() {
		logged, _ := os.ReadFile(opts.LogPath)
		t.Errorf("%s: start ended with %v; its log: got\n%s\nwant %q", what, err, tail(logged, 3000), want)
	}
}
