package brokerd_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
	"logpipe/e2e/netns"
	"logpipe/internal/await"
	"logpipe/internal/devstack"
)

// cluster is a set of brokerd processes forming one metadata quorum, each
// a combined broker and controller, started from Kafka's KRaft keys only.
type cluster struct {
	t      *testing.T
	addrs  []string // PLAINTEXT listeners, by node id - 1
	ctls   []string // CONTROLLER listeners
	https  []string // /metrics listeners
	dirs   []string
	voters string
	nodes  []*node
	// settings are given to every node, after the cluster's own.
	settings []string
	// clientOpts are added to the clients the helpers make (admin,
	// askNode, createAssigned): TLS and SASL for a secured cluster.
	clientOpts []kgo.Opt
	// lab, when set, runs node i in the lab's network namespace i.
	lab *netns.Lab
}

func newCluster(t *testing.T, n int, settings ...string) *cluster {
	t.Helper()
	return startCluster(t, n, nil, settings...)
}

// newLabCluster is newCluster with each node in its own network namespace
// of a lab, so that the test can cut the network between nodes.
func newLabCluster(t *testing.T, n int, settings ...string) *cluster {
	t.Helper()
	return startCluster(t, n, netns.ForTest(t, n), settings...)
}

func startCluster(t *testing.T, n int, lab *netns.Lab, settings ...string) *cluster {
	t.Helper()
	c := layoutCluster(t, n, lab, settings...)
	// Each node waits for the quorum, so they start together.
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.startErr(i)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	return c
}

// layoutCluster chooses the addresses and folders of n nodes and starts
// none of them.
func layoutCluster(t *testing.T, n int, lab *netns.Lab, settings ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, nodes: make([]*node, n), settings: settings, lab: lab}
	var voters []string
	base := t.TempDir()
	for i := range n {
		if lab != nil {
			host := lab.Node(i).Addr().String()
			c.addrs = append(c.addrs, net.JoinHostPort(host, "9092"))
			c.ctls = append(c.ctls, net.JoinHostPort(host, "9093"))
			c.https = append(c.https, net.JoinHostPort(host, "9094"))
		} else {
			var ports [3]int
			for j := range ports {
				var err error
				if ports[j], err = devstack.FreePort(); err != nil {
					t.Fatal(err)
				}
			}
			c.addrs = append(c.addrs, fmt.Sprintf("127.0.0.1:%d", ports[0]))
			c.ctls = append(c.ctls, fmt.Sprintf("127.0.0.1:%d", ports[1]))
			c.https = append(c.https, fmt.Sprintf("127.0.0.1:%d", ports[2]))
		}
		c.dirs = append(c.dirs, filepath.Join(base, fmt.Sprintf("node%d", i+1), "data"))
		if err := os.MkdirAll(filepath.Dir(c.dirs[i]), 0o755); err != nil {
			t.Fatal(err)
		}
		voters = append(voters, fmt.Sprintf("%d@%s", i+1, c.ctls[i]))
	}
	c.voters = strings.Join(voters, ",")
	return c
}

// start starts node i+1 and returns once its client listener accepts,
// which is after it joined the quorum and was unfenced.
func (c *cluster) start(i int) {
	c.t.Helper()
	if err := c.startErr(i); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) startErr(i int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	httpHost, httpPort, _ := net.SplitHostPort(c.https[i])
	var command func(string, ...string) *exec.Cmd
	if c.lab != nil {
		command = c.lab.Node(i).Command
	}
	p, err := devstack.StartBrokerd(ctx, devstack.BrokerdOptions{Bin: brokerdBin, Addr: c.addrs[i], DataDir: c.dirs[i], Command: command, Settings: append(append(devstack.VoterSettings(i+1, c.addrs[i], c.ctls[i], c.voters),
		"group.initial.rebalance.delay.ms=0",
		"http.enabled=true", "http.host="+httpHost, "http.port="+httpPort,
	), c.settings...)})
	if err != nil {
		return fmt.Errorf("node %d: %w", i+1, err)
	}
	c.nodes[i] = &node{t: c.t, addr: c.addrs[i], dir: c.dirs[i], proc: p}
	c.t.Cleanup(func() { p.Stop(10 * time.Second) })
	return nil
}

// logsOnFailure makes the test show the end of every node's log if it
// fails.
func (c *cluster) logsOnFailure() {
	c.t.Cleanup(func() {
		if !c.t.Failed() {
			return
		}
		for i, n := range c.nodes {
			if n != nil {
				c.t.Logf("node %d's log:\n%s", i+1, n.proc.Tail(6000))
			}
		}
	})
}

func (c *cluster) admin(nodes ...int) *kadm.Client {
	var seeds []string
	for _, i := range nodes {
		seeds = append(seeds, c.addrs[i])
	}
	if len(seeds) == 0 {
		seeds = c.addrs
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...)}, c.clientOpts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// waitMeta polls Metadata from node i until cond holds.
func (c *cluster) waitMeta(ctx context.Context, i int, what string, cond func(kadm.Metadata) bool) kadm.Metadata {
	c.t.Helper()
	adm := c.admin(i)
	var last kadm.Metadata
	var lastErr error
	for {
		m, err := adm.Metadata(ctx)
		if err == nil && cond(m) {
			return m
		}
		last, lastErr = m, err
		select {
		case <-ctx.Done():
			c.t.Fatalf("waiting for %s: %v; last metadata from node %d: brokers %v, controller %d, topics %v (err %v)", what, ctx.Err(), i+1, last.Brokers.NodeIDs(), last.Controller, last.Topics.Names(), lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func leadersOf(td kadm.TopicDetail) map[int32]int {
	out := map[int32]int{}
	for _, p := range td.Partitions {
		out[p.Leader]++
	}
	return out
}

// TestClusterFromConfigs starts three nodes from a YAML file each (Kafka's
// KRaft names, racks, a named listener advertised elsewhere) and
// checks that they form one cluster: every node lists the three brokers
// and the same controller, topics created through any node (forwarded to
// the controller) spread their leaders over all three, and records
// produced to partitions led by different nodes are read back.
func TestClusterFromConfigs(t *testing.T) {
	c := layoutCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Each node's whole configuration is a YAML file of Kafka's KRaft
	// names, its client listener named INTERNAL and advertised under
	// "localhost", each node in a rack of its own.
	advertised := make([]string, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		_, port, _ := net.SplitHostPort(c.addrs[i])
		advertised[i] = net.JoinHostPort("localhost", port)
		httpHost, httpPort, _ := net.SplitHostPort(c.https[i])
		conf := filepath.Join(filepath.Dir(c.dirs[i]), "brokerd.yml")
		yml := fmt.Sprintf(`node.id: %d
process.roles: broker,controller
listeners: INTERNAL://%s,CONTROLLER://%s
advertised.listeners: INTERNAL://%s
listener.security.protocol.map: INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name: INTERNAL
controller.listener.names: CONTROLLER
controller.quorum.voters: %s
log.dirs: [%s]
broker.rack: rack-%d
group.initial.rebalance.delay.ms: 0
http:
  enabled: true
  host: %s
  port: %s
`, i+1, c.addrs[i], c.ctls[i], advertised[i], c.voters, c.dirs[i], i+1, httpHost, httpPort)
		if err := os.WriteFile(conf, []byte(yml), 0o644); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := devstack.StartBrokerd(ctx, devstack.BrokerdOptions{Bin: brokerdBin, Addr: c.addrs[i], DataDir: c.dirs[i], ConfigFile: conf})
			if err != nil {
				errs[i] = fmt.Errorf("node %d: %w", i+1, err)
				return
			}
			c.nodes[i] = &node{t: t, addr: c.addrs[i], dir: c.dirs[i], proc: p}
			t.Cleanup(func() { p.Stop(10 * time.Second) })
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	var controller int32 = -1
	for i := range 3 {
		m := c.waitMeta(ctx, i, "three brokers and a controller", func(m kadm.Metadata) bool {
			return len(m.Brokers) == 3 && m.Controller >= 1
		})
		if controller >= 0 && m.Controller != controller {
			t.Fatalf("node %d names controller %d, another node named %d", i+1, m.Controller, controller)
		}
		controller = m.Controller
		for _, b := range m.Brokers {
			want := advertised[b.NodeID-1]
			if got := net.JoinHostPort(b.Host, fmt.Sprint(b.Port)); got != want || b.Rack == nil || *b.Rack != fmt.Sprintf("rack-%d", b.NodeID) {
				t.Errorf("node %d lists broker %d at %s in rack %v, want %s in rack-%d", i+1, b.NodeID, got, b.Rack, want, b.NodeID)
			}
		}
	}
	// Through a node that is not the controller.
	via := int(controller) % 3
	adm := c.admin(via)
	// Its broker configs name the cluster's settings as it runs them.
	rcs, err := adm.DescribeBrokerConfigs(ctx, int32(via+1))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, rc := range rcs {
		for _, kv := range rc.Configs {
			got[kv.Key] = kv.MaybeValue()
		}
	}
	for k, v := range map[string]string{"controller.quorum.voters": c.voters, "process.roles": "broker,controller", "broker.session.timeout.ms": "2000", "node.id": fmt.Sprint(via + 1)} {
		if got[k] != v {
			t.Errorf("node %d describes %s = %q, want %q", via+1, k, got[k], v)
		}
	}
	for _, rf := range []int16{1, 3} {
		name := fmt.Sprintf("rf%d", rf)
		r, err := adm.CreateTopic(ctx, 6, rf, nil, name)
		if err != nil || r.Err != nil {
			t.Fatalf("create %s through node %d: %v %v", name, via+1, err, r.Err)
		}
		m := c.waitMeta(ctx, via, name+" with leaders", func(m kadm.Metadata) bool {
			td, ok := m.Topics[name]
			return ok && len(td.Partitions) == 6 && leadersOf(td)[-1] == 0
		})
		td := m.Topics[name]
		if l := leadersOf(td); len(l) != 3 || l[1] != 2 || l[2] != 2 || l[3] != 2 {
			t.Errorf("%s: leaders %v, want two partitions led by each of the three nodes", name, l)
		}
		for _, p := range td.Partitions {
			if len(p.Replicas) != int(rf) || len(p.ISR) != int(rf) {
				t.Errorf("%s-%d: replicas %v, ISR %v; want %d of each", name, p.Partition, p.Replicas, p.ISR, rf)
			}
		}
	}
	// Records to every partition of rf1 (led by all three nodes) come back.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.DefaultProduceTopic("rf1"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 600
	for i := range n {
		cl.Produce(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, "rf1")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Errorf("end offset of rf1-%d: %v", o.Partition, o.Err)
		}
		total += o.Offset
	})
	if total != n {
		t.Fatalf("rf1 holds %d records, want %d", total, n)
	}

	// A produce to a follower is refused with the leader named (Produce
	// v10+, KIP-951), and the leader's endpoint in the answer.
	rf3 := c.waitMeta(ctx, via, "rf3's ISR complete", func(m kadm.Metadata) bool {
		return len(m.Topics["rf3"].Partitions) == 6 && len(m.Topics["rf3"].Partitions[0].ISR) == 3
	}).Topics["rf3"].Partitions[0]
	follower := rf3.Replicas[0]
	if follower == rf3.Leader {
		follower = rf3.Replicas[1]
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = 11, -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "rf3"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = []byte("not looked at: the follower refuses first")
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	kresp, err := req.RequestWith(ctx, cl.Broker(int(follower)))
	if err != nil {
		t.Fatal(err)
	}
	sp := kresp.Topics[0].Partitions[0]
	if sp.ErrorCode != kerr.NotLeaderForPartition.Code || sp.CurrentLeader.LeaderID != rf3.Leader || sp.CurrentLeader.LeaderEpoch != rf3.LeaderEpoch {
		t.Errorf("produce v11 to follower %d of rf3-0: error %d, current leader %+v; want NOT_LEADER_OR_FOLLOWER naming %d at epoch %d", follower, sp.ErrorCode, sp.CurrentLeader, rf3.Leader, rf3.LeaderEpoch)
	}
	if len(kresp.Brokers) != 1 || kresp.Brokers[0].NodeID != rf3.Leader || fmt.Sprintf("%s:%d", kresp.Brokers[0].Host, kresp.Brokers[0].Port) != advertised[rf3.Leader-1] {
		t.Errorf("endpoints in the answer: %+v, want node %d at %s", kresp.Brokers, rf3.Leader, advertised[rf3.Leader-1])
	}
}

// TestReadyOnceJoined: a node's /readyz answers 503 while it waits for
// the metadata quorum (alone of three), and 200 once the cluster formed
// and it serves clients.
func TestReadyOnceJoined(t *testing.T) {
	c := layoutCluster(t, 3, nil)
	first := make(chan error, 1)
	go func() { first <- c.startErr(0) }()
	ready := func() (int, string) {
		resp, err := http.Get("http://" + c.https[0] + "/readyz")
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	await.Eventually(t, "node 1 alone answering /readyz with 503", func() error {
		if code, body := ready(); code != http.StatusServiceUnavailable || !strings.Contains(body, "joining the cluster") {
			return await.NotYet(fmt.Sprintf("%d %q", code, body), "503 joining the cluster")
		}
		return nil
	})
	c.start(1)
	c.start(2)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if code, body := ready(); code != http.StatusOK {
		t.Fatalf("/readyz of node 1 serving in a cluster: %d %q, want 200", code, body)
	}
}

// TestClusterControllerFailover kills the active controller with SIGKILL:
// the two others elect a new one, which fences the dead node; its
// single-replica partitions are offline until it returns, then it leads
// them again with its records. Then the quorum is lost: requests the
// survivor forwards time out with an error code.
func TestClusterControllerFailover(t *testing.T) {
	// A short leader.imbalance.check.interval.seconds: the returning node
	// gets its preferred leaderships back (auto.leader.rebalance.enable).
	c := newCluster(t, 3, "request.timeout.ms=3000", "leader.imbalance.check.interval.seconds=1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m := c.waitMeta(ctx, 0, "a controller", func(m kadm.Metadata) bool { return len(m.Brokers) == 3 && m.Controller >= 1 })
	old := int(m.Controller) - 1
	adm := c.admin()
	if r, err := adm.CreateTopic(ctx, 3, 1, nil, "t"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	if r, err := adm.CreateTopic(ctx, 3, 3, nil, "r"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	m = c.waitMeta(ctx, 0, "t with leaders", func(m kadm.Metadata) bool {
		return len(m.Topics["t"].Partitions) == 3 && leadersOf(m.Topics["t"])[-1] == 0
	})
	var onOld int32 = -1
	for _, p := range m.Topics["t"].Partitions {
		if p.Leader == int32(old+1) {
			onOld = p.Partition
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.DefaultProduceTopic("t"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if onOld < 0 {
		t.Fatalf("node %d leads no partition of t: %+v", old+1, m.Topics["t"].Partitions)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Partition: onOld, Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}

	c.nodes[old].proc.Kill()
	other := (old + 1) % 3
	m = c.waitMeta(ctx, other, "a new controller and the dead node fenced, r led by the others", func(m kadm.Metadata) bool {
		return m.Controller >= 1 && m.Controller != int32(old+1) && len(m.Brokers) == 2 &&
			leadersOf(m.Topics["r"])[int32(old+1)] == 0 && leadersOf(m.Topics["r"])[-1] == 0
	})
	if p := m.Topics["t"].Partitions[onOld]; p.Leader != -1 {
		t.Errorf("t-%d after its only replica died: leader %d, want none", onOld, p.Leader)
	}
	// The metadata can still change: a topic is created.
	if r, err := c.admin(other).CreateTopic(ctx, 2, 1, nil, "after"); err != nil || r.Err != nil {
		t.Fatalf("create after the failover: %v %v", err, r.Err)
	}

	c.start(old)
	m = c.waitMeta(ctx, old, "the node back, leading again", func(m kadm.Metadata) bool {
		return len(m.Brokers) == 3 && m.Topics["t"].Partitions != nil && leadersOf(m.Topics["t"])[-1] == 0 && len(m.Topics["after"].Partitions) == 2
	})
	cons, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"t": {onOld: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	fs := cons.PollFetches(ctx)
	if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "before" {
		m, _ := c.admin().Metadata(context.Background())
		t.Fatalf("t-%d after the restart: %d records (errors %v), want the one written before; metadata %+v\nrestarted node's log:\n%s", onOld, len(recs), fs.Errors(), m.Topics["t"].Partitions[onOld], c.nodes[old].proc.Tail(4000))
	}
	// Once back in r's ISRs, the returned node leads r's partitions whose
	// preferred replica it is again.
	c.waitMeta(ctx, old, "r led by its preferred replicas", func(m kadm.Metadata) bool {
		ps := m.Topics["r"].Partitions
		return len(ps) == 3 && !slices.ContainsFunc(ps.Sorted(), func(p kadm.PartitionDetail) bool { return p.Leader != p.Replicas[0] })
	})

	// With the quorum lost (the controller and one more node killed), a
	// CreateTopics the survivor would forward is answered with
	// REQUEST_TIMED_OUT after request.timeout.ms, on a connection that
	// stays open.
	m = c.waitMeta(ctx, old, "a controller", func(m kadm.Metadata) bool { return len(m.Brokers) == 3 && m.Controller >= 1 })
	survivor := int(m.Controller) % 3
	for i := range 3 {
		if i != survivor {
			c.nodes[i].proc.Kill()
		}
	}
	conn, err := wire.Dial(c.addrs[survivor], "e2e", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	create := kmsg.NewPtrCreateTopicsRequest()
	create.Version, create.TimeoutMillis = 5, 1000
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "orphan", 1, 1
	create.Topics = append(create.Topics, ct)
	kresp, err := conn.Request(create, time.Now().Add(30*time.Second))
	if err != nil {
		t.Fatalf("CreateTopics without a quorum: %v; want an answer", err)
	}
	if r := kresp.(*kmsg.CreateTopicsResponse); len(r.Topics) != 1 || r.Topics[0].ErrorCode != kerr.RequestTimedOut.Code {
		t.Fatalf("CreateTopics without a quorum: %+v, want REQUEST_TIMED_OUT for orphan", r.Topics)
	}
	if _, err := conn.Request(kmsg.NewPtrApiVersionsRequest(), time.Now().Add(5*time.Second)); err != nil {
		t.Fatalf("the connection after the timed-out forward: %v", err)
	}
}

// TestClusterRefusesADuplicateNode starts a fourth process claiming node 2's
// id: it does not start, and says why.
//
// For a voter the refusal is the bind of its controller listener, not the
// controller's registration check (DUPLICATE_BROKER_REGISTRATION, tested
// for broker-only nodes in observer_test.go): controller.quorum.voters
// fixes node 2's controller address, and a voter's controller listener
// must be that address (its config is refused otherwise), so a second
// node 2 with the same voters can only collide with the live one's
// socket. One given another address for node 2 would be a different
// quorum configuration, not a duplicate of this one. The message must
// name the node id.
func TestClusterRefusesADuplicateNode(t *testing.T) {
	c := newCluster(t, 3)
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	dir := filepath.Join(t.TempDir(), "data")
	_, err = devstack.StartBrokerd(ctx, devstack.BrokerdOptions{Bin: brokerdBin, Addr: addr, DataDir: dir, Settings: []string{
		"node.id=2",
		fmt.Sprintf("listeners=PLAINTEXT://%s,CONTROLLER://%s", addr, c.ctls[1]),
		"controller.quorum.voters=" + c.voters,
	}})
	if err == nil || !strings.Contains(err.Error(), "is a node with node.id 2 already running?") {
		t.Fatalf("a second node 2: got %v, want a refusal naming node.id 2", err)
	}
}

// metrics scrapes node i's /metrics and returns the lines.
func (c *cluster) metrics(i int) string {
	c.t.Helper()
	resp, err := http.Get("http://" + c.https[i] + "/metrics")
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return string(b)
}
