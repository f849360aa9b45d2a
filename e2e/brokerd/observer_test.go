package brokerd_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/internal/await"
	"logpipe/internal/devstack"
)

// brokerOnlySettings are the KRaft keys of a process.roles: broker node:
// a client listener and the voters, no controller listener.
func (c *cluster) brokerOnlySettings(id int32, addr string) []string {
	return append([]string{
		"group.initial.rebalance.delay.ms=0",
		fmt.Sprintf("node.id=%d", id),
		"process.roles=broker",
		"listeners=PLAINTEXT://" + addr,
		"controller.listener.names=CONTROLLER",
		"controller.quorum.voters=" + c.voters,
	}, c.settings...)
}

// addBrokerOnly adds a broker-only node to the cluster, as node.id n+1
// at index n, starts it and returns its index.
func (c *cluster) addBrokerOnly() int {
	c.t.Helper()
	i := len(c.addrs)
	port, err := devstack.FreePort()
	if err != nil {
		c.t.Fatal(err)
	}
	c.addrs = append(c.addrs, fmt.Sprintf("127.0.0.1:%d", port))
	c.dirs = append(c.dirs, filepath.Join(c.t.TempDir(), fmt.Sprintf("node%d", i+1), "data"))
	c.nodes = append(c.nodes, nil)
	c.startBrokerOnly(i)
	return i
}

// startBrokerOnly starts broker-only node i (again, on its data) and
// returns once it is registered, unfenced and serving: it lists itself in
// its own Metadata answer. (Its listener accepts connections earlier, as
// the metadata log comes to it there.)
func (c *cluster) startBrokerOnly(i int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := os.MkdirAll(filepath.Dir(c.dirs[i]), 0o755); err != nil {
		c.t.Fatal(err)
	}
	p, err := devstack.StartBrokerd(ctx, devstack.BrokerdOptions{Bin: brokerdBin, Addr: c.addrs[i], DataDir: c.dirs[i],
		Settings: c.brokerOnlySettings(int32(i+1), c.addrs[i])})
	if err != nil {
		c.t.Fatalf("broker-only node %d: %v", i+1, err)
	}
	c.nodes[i] = &node{t: c.t, addr: c.addrs[i], dir: c.dirs[i], proc: p}
	c.t.Cleanup(func() { p.Stop(10 * time.Second) })
	adm := c.admin(i)
	err = devstack.WaitFor(ctx, 100*time.Millisecond, p, func(ctx context.Context) error {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		m, err := adm.Metadata(rctx)
		if err != nil {
			return err
		}
		if !slices.Contains(m.Brokers.NodeIDs(), int32(i+1)) {
			return await.NotYet(m.Brokers.NodeIDs(), fmt.Sprintf("node %d among them", i+1))
		}
		return nil
	})
	if err != nil {
		c.t.Fatalf("broker-only node %d serving: %v", i+1, err)
	}
}

// askNode sends req to node i alone (a client sends Metadata to any
// broker it knows of; this one does not).
func (c *cluster) askNode(ctx context.Context, i int, req kmsg.Request) (kmsg.Response, error) {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.addrs[i])}, c.clientOpts...)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return cl.SeedBrokers()[0].Request(rctx, req)
}

// nodeSees polls node i alone with Metadata (every topic) until check
// returns nil.
func (c *cluster) nodeSees(i int, what string, check func(*kmsg.MetadataResponse) error) {
	c.t.Helper()
	await.Eventually(c.t, fmt.Sprintf("node %d to see %s", i+1, what), func() error {
		resp, err := c.askNode(context.Background(), i, kmsg.NewPtrMetadataRequest())
		if err != nil {
			return err
		}
		return check(resp.(*kmsg.MetadataResponse))
	}, await.Within(time.Minute), await.While(c.nodes[i].proc.Alive))
}

// brokerIDs returns the ids of the brokers in a Metadata or
// DescribeCluster answer, sorted.
func brokerIDs[B any](brokers []B, id func(B) int32) []int32 {
	ids := make([]int32, 0, len(brokers))
	for _, b := range brokers {
		ids = append(ids, id(b))
	}
	slices.Sort(ids)
	return ids
}

// TestBrokerOnlyNodeJoinsACluster starts three combined nodes, then a
// fourth with process.roles: broker, which joins by starting: every node
// lists it, a new topic's replicas and leaders spread over all four, it
// serves produce (acks=all) and fetch for what it leads, and `brokerd
// topics --describe` shows it. Killed with SIGKILL, or stopped with
// SIGTERM, and restarted, it catches up and its replicas rejoin the ISR;
// when the active controller is killed, it follows the new one.
func TestBrokerOnlyNodeJoinsACluster(t *testing.T) {
	c := newCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	four := c.addBrokerOnly()
	all := []int32{1, 2, 3, 4}

	// Every node lists it, in Metadata and DescribeCluster.
	for i := range 4 {
		c.nodeSees(i, "four brokers in Metadata", func(m *kmsg.MetadataResponse) error {
			if ids := brokerIDs(m.Brokers, func(b kmsg.MetadataResponseBroker) int32 { return b.NodeID }); !slices.Equal(ids, all) {
				return await.NotYet(ids, all)
			}
			return nil
		})
		await.Eventually(t, fmt.Sprintf("DescribeCluster of node %d to list four brokers", i+1), func() error {
			resp, err := c.askNode(ctx, i, kmsg.NewPtrDescribeClusterRequest())
			if err != nil {
				return err
			}
			brokers := resp.(*kmsg.DescribeClusterResponse).Brokers
			if ids := brokerIDs(brokers, func(b kmsg.DescribeClusterResponseBroker) int32 { return b.NodeID }); !slices.Equal(ids, all) {
				return await.NotYet(ids, all)
			}
			return nil
		}, await.Within(30*time.Second))
	}

	// A topic created afterwards, through the broker-only node (which
	// forwards it to the controller), spreads over all four.
	adm := c.admin(four)
	if r, err := adm.CreateTopic(ctx, 8, 3, nil, "spread"); err != nil || r.Err != nil {
		t.Fatalf("create spread through node 4: %v %v", err, r.Err)
	}
	m := c.waitMeta(ctx, four, "spread with leaders", func(m kadm.Metadata) bool {
		td, ok := m.Topics["spread"]
		return ok && len(td.Partitions) == 8 && leadersOf(td)[-1] == 0
	})
	td := m.Topics["spread"]
	hosted := map[int32]int{}
	var onFour []int32
	for _, p := range td.Partitions.Sorted() {
		if len(p.Replicas) != 3 || len(p.ISR) != 3 {
			t.Errorf("spread-%d: replicas %v, ISR %v; want 3 of each", p.Partition, p.Replicas, p.ISR)
		}
		for _, r := range p.Replicas {
			hosted[r]++
		}
		if p.Leader == 4 {
			onFour = append(onFour, p.Partition)
		}
	}
	if l := leadersOf(td); len(l) != 4 || l[1] != 2 || l[2] != 2 || l[3] != 2 || l[4] != 2 {
		t.Errorf("spread: leaders %v, want two partitions led by each of the four nodes", l)
	}
	if got := slices.Sorted(maps.Keys(hosted)); !slices.Equal(got, all) || hosted[4] != 6 {
		t.Errorf("spread: replicas per node %v, want all four nodes, six on node 4", hosted)
	}
	if len(onFour) == 0 {
		t.Fatalf("node 4 leads no partition of spread: %+v", td.Partitions)
	}

	// Produce (acks=all) to what node 4 leads, and read it back.
	sent := map[int32][]string{}
	produce := func(addrs []string, prefix string) {
		for _, p := range onFour {
			vs := values(fmt.Sprintf("%s-%d", prefix, p), 50)
			if err := produceTo(ctx, addrs, "spread", p, kgo.AllISRAcks(), vs...); err != nil {
				t.Fatalf("producing %s to spread-%d: %v", prefix, p, err)
			}
			sent[p] = append(sent[p], vs...)
		}
	}
	produce(c.addrs, "before")
	readBack(t, ctx, c.addrs, "spread", sent)

	// brokerd topics --describe, asking node 4, shows it.
	out, err := exec.CommandContext(ctx, brokerdBin, "topics", "--describe", "--topic", "spread", "--bootstrap-server", c.addrs[four], "--output", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("brokerd topics --describe: %v\n%s", err, out)
	}
	var described []struct {
		Partitions []struct {
			Partition int32   `json:"partition"`
			Leader    int32   `json:"leader"`
			Replicas  []int32 `json:"replicas"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal(out, &described); err != nil || len(described) != 1 {
		t.Fatalf("brokerd topics --describe: %v\n%s", err, out)
	}
	var describedOnFour []int32
	for _, p := range described[0].Partitions {
		if p.Leader == 4 {
			describedOnFour = append(describedOnFour, p.Partition)
		}
	}
	if !slices.Equal(describedOnFour, onFour) {
		t.Errorf("brokerd topics --describe: node 4 leads %v, want %v\n%s", describedOnFour, onFour, out)
	}

	// SIGKILL: its partitions get other leaders and take more records;
	// restarted on its data, it registers again, catches up and is back
	// in every ISR it belongs to.
	c.nodes[four].proc.Kill()
	c.waitMeta(ctx, 0, "node 4 fenced and its partitions led by others", func(m kadm.Metadata) bool {
		return !slices.Contains(m.Brokers.NodeIDs(), 4) && leadersOf(m.Topics["spread"])[4] == 0 && leadersOf(m.Topics["spread"])[-1] == 0
	})
	produce(c.addrs[:3], "while-away")
	c.startBrokerOnly(four)
	fullISRs := func(m kadm.Metadata) bool {
		td, ok := m.Topics["spread"]
		if !ok || len(td.Partitions) != 8 {
			return false
		}
		for _, p := range td.Partitions {
			if len(p.ISR) != 3 {
				return false
			}
		}
		return true
	}
	c.waitMeta(ctx, four, "node 4 back in every ISR of spread", fullISRs)
	readBack(t, ctx, c.addrs, "spread", sent)

	// The same after SIGTERM (a controlled shutdown).
	c.nodes[four].proc.Stop(30 * time.Second)
	c.waitMeta(ctx, 0, "node 4 gone after its controlled shutdown", func(m kadm.Metadata) bool {
		return !slices.Contains(m.Brokers.NodeIDs(), 4)
	})
	produce(c.addrs[:3], "while-stopped")
	c.startBrokerOnly(four)
	c.waitMeta(ctx, four, "node 4 back in every ISR of spread after SIGTERM", fullISRs)
	readBack(t, ctx, c.addrs, "spread", sent)

	// The active controller dies: node 4 follows the one elected after
	// it, whose changes reach it.
	var old int32 = -1
	c.nodeSees(four, "a controller", func(m *kmsg.MetadataResponse) error {
		if old = m.ControllerID; old < 1 {
			return await.NotYet(old, "a node id")
		}
		return nil
	})
	if old == 4 {
		t.Fatal("node 4 names itself the controller")
	}
	c.nodes[old-1].proc.Kill()
	c.nodeSees(four, "a new controller and the old one fenced", func(m *kmsg.MetadataResponse) error {
		ids := brokerIDs(m.Brokers, func(b kmsg.MetadataResponseBroker) int32 { return b.NodeID })
		if m.ControllerID < 1 || m.ControllerID == old || slices.Contains(ids, old) {
			return await.NotYet(fmt.Sprintf("controller %d, brokers %v", m.ControllerID, ids), fmt.Sprintf("another controller than %d, which is not listed", old))
		}
		if m.ControllerID == 4 {
			return await.Stop(errors.New("the broker-only node became the controller"))
		}
		return nil
	})
	if r, err := c.admin(four).CreateTopic(ctx, 3, 3, nil, "after-failover"); err != nil || r.Err != nil {
		t.Fatalf("create after-failover through node 4: %v %v", err, r.Err)
	}
	c.nodeSees(four, "after-failover with leaders", func(m *kmsg.MetadataResponse) error {
		for _, td := range m.Topics {
			if td.Topic == nil || *td.Topic != "after-failover" {
				continue
			}
			leaders := map[int32]int{}
			for _, p := range td.Partitions {
				leaders[p.Leader]++
			}
			if len(td.Partitions) != 3 || leaders[-1] != 0 {
				return await.NotYet(fmt.Sprintf("%d partitions, leaders %v", len(td.Partitions), leaders), "3, all led")
			}
			return nil
		}
		return errors.New("no after-failover topic yet")
	})
}

// readBack reads the partitions of topic in want from their start, with
// a client of opts (if any) besides, and checks that each holds exactly
// the values want lists, in order.
func readBack(t *testing.T, ctx context.Context, seeds []string, topic string, want map[int32][]string, opts ...kgo.Opt) {
	t.Helper()
	offsets := map[int32]kgo.Offset{}
	n := 0
	for p, vs := range want {
		offsets[p] = kgo.NewOffset().AtStart()
		n += len(vs)
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets})}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[int32][]string{}
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for read := 0; read < n; {
		fs := cl.PollFetches(rctx)
		if err := rctx.Err(); err != nil {
			t.Fatalf("reading %s back: %v after %d of %d records", topic, err, read, n)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = append(got[r.Partition], string(r.Value))
			read++
		})
	}
	for p, vs := range want {
		if !slices.Equal(got[p], vs) {
			t.Errorf("%s-%d: got %d records %v, want %d %v", topic, p, len(got[p]), got[p], len(vs), vs)
		}
	}
}

// refused starts a brokerd process that must not start and checks that it
// exits, with an error, saying want. A broker-only node accepts
// connections before it registers, so its refusal may come after the
// start.
func refused(t *testing.T, what string, opts devstack.BrokerdOptions, want ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts.Bin = brokerdBin
	p, err := devstack.StartBrokerd(ctx, opts)
	out := ""
	if err == nil {
		t.Cleanup(func() { p.Stop(10 * time.Second) })
		var exitErr error
		await.Eventually(t, what+": the process to exit", func() error {
			exited, err := p.Exited()
			if !exited {
				return errors.New("still running")
			}
			exitErr = err
			return nil
		}, await.Within(time.Minute))
		if exitErr == nil {
			t.Fatalf("%s: exited with status 0, want an error; log:\n%s", what, p.Tail(4000))
		}
		out = p.Tail(8000)
	} else {
		out = err.Error()
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Fatalf("%s: the refusal does not say %q; got:\n%s", what, w, out)
		}
	}
}

// metaProperties returns the meta.properties of the log dir dir and the
// cluster id it names.
func metaProperties(t *testing.T, dir string) (props, cluster string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "meta.properties"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "cluster.id="); ok {
			cluster = v
		}
	}
	if cluster == "" {
		t.Fatalf("%s/meta.properties names no cluster:\n%s", dir, b)
	}
	return string(b), cluster
}

// TestBrokerOnlyNodeRefusals: a broker-only node with a voter's node.id,
// with the data of another cluster, or with the node.id of a live
// broker-only node, and a voter on another cluster's data, do not start,
// and say why; the cluster and the other data are left as they were.
func TestBrokerOnlyNodeRefusals(t *testing.T) {
	c := newCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	newAddr := func() string {
		port, err := devstack.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("127.0.0.1:%d", port)
	}
	newDir := func() string { return filepath.Join(t.TempDir(), "data") }

	// A voter's node.id: a configuration error naming the key.
	addr := newAddr()
	refused(t, "a broker-only node with node.id 2", devstack.BrokerdOptions{Addr: addr, DataDir: newDir(),
		Settings: c.brokerOnlySettings(2, addr)}, "node.id", "is one of controller.quorum.voters")

	// Another cluster's data: node 4 of a single-node cluster, Y.
	yAddr, yDir := newAddr(), newDir()
	y := startNode(t, yAddr, yDir, "node.id=4")
	y.proc.Stop(10 * time.Second)
	yProps, yCluster := metaProperties(t, yDir)
	// Its metadata folder is a quorum in which node 4 votes.
	addr = newAddr()
	refused(t, "a broker-only node on cluster Y's folders", devstack.BrokerdOptions{Addr: addr, DataDir: yDir,
		LogPath: filepath.Join(t.TempDir(), "brokerd.log"), Settings: c.brokerOnlySettings(4, addr)},
		"another quorum", yCluster)
	// With a metadata folder of its own, its log dirs still say cluster
	// Y: the controller refuses the registration.
	addr = newAddr()
	refused(t, "a broker-only node on cluster Y's log dirs", devstack.BrokerdOptions{Addr: addr, DataDir: yDir,
		LogPath:  filepath.Join(t.TempDir(), "brokerd.log"),
		Settings: append(c.brokerOnlySettings(4, addr), "metadata.log.dir="+newDir())},
		"INCONSISTENT_CLUSTER_ID", yCluster)
	if got, _ := metaProperties(t, yDir); got != yProps {
		t.Errorf("cluster Y's meta.properties after the refusals:\n%s\nwant unchanged:\n%s", got, yProps)
	}

	// A voter on another cluster's data: node 3 of the cluster, stopped,
	// started again on the folder of cluster Z, a single node 3.
	zAddr, zDir := newAddr(), newDir()
	z := startNode(t, zAddr, zDir, "node.id=3")
	z.proc.Stop(10 * time.Second)
	zProps, zCluster := metaProperties(t, zDir)
	c.nodes[2].proc.Stop(10 * time.Second)
	refused(t, "voter 3 on cluster Z's folder", devstack.BrokerdOptions{Addr: c.addrs[2], DataDir: zDir,
		LogPath: filepath.Join(t.TempDir(), "brokerd.log"), Settings: devstack.VoterSettings(3, c.addrs[2], c.ctls[2], c.voters)},
		zCluster)
	if got, _ := metaProperties(t, zDir); got != zProps {
		t.Errorf("cluster Z's meta.properties after the refusal:\n%s\nwant unchanged:\n%s", got, zProps)
	}
	// On its own folder it rejoins.
	c.start(2)
	m := c.waitMeta(ctx, 0, "the three brokers", func(m kadm.Metadata) bool { return len(m.Brokers) == 3 })
	if ids := m.Brokers.NodeIDs(); slices.Contains(ids, 4) {
		t.Errorf("brokers after the refusals: %v, want node 4 not registered", ids)
	}

	// A second process with the node.id of a live broker-only node.
	four := c.addBrokerOnly()
	addr = newAddr()
	refused(t, "a second node 4", devstack.BrokerdOptions{Addr: addr, DataDir: newDir(), Settings: c.brokerOnlySettings(4, addr)},
		"DUPLICATE_BROKER_REGISTRATION", "node 4")
	// The first one is still node 4, serving at its address.
	m = c.waitMeta(ctx, four, "node 4 still registered", func(m kadm.Metadata) bool { return len(m.Brokers) == 4 })
	i := slices.IndexFunc(m.Brokers, func(b kadm.BrokerDetail) bool { return b.NodeID == 4 })
	if got := net.JoinHostPort(m.Brokers[i].Host, strconv.Itoa(int(m.Brokers[i].Port))); got != c.addrs[four] {
		t.Errorf("node 4 after a duplicate's refusal: at %s, want the first process's %s", got, c.addrs[four])
	}
}
