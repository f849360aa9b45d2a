package brokerd_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/e2e/checker"
	"logpipe/internal/await"
)

// createAssigned creates topic with the given replicas per partition (the
// first leads) and configs.
func (c *cluster) createAssigned(ctx context.Context, topic string, assign [][]int32, configs map[string]string) {
	c.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.liveAddrs()...)}, c.clientOpts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	for i, rs := range assign {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = int32(i), rs
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	for k, v := range configs {
		cf := kmsg.NewCreateTopicsRequestTopicConfig()
		cf.Name, cf.Value = k, &v
		rt.Configs = append(rt.Configs, cf)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		c.t.Fatalf("creating %s: %v", topic, err)
	}
}

// liveAddrs are the client addresses of the nodes whose process runs.
func (c *cluster) liveAddrs() []string {
	var out []string
	for i, n := range c.nodes {
		if n != nil && n.proc.Alive() == nil {
			out = append(out, c.addrs[i])
		}
	}
	return out
}

// partitionState polls Metadata (from any live node) until cond holds for
// partition p of topic.
func (c *cluster) partitionState(ctx context.Context, topic string, p int32, what string, cond func(kadm.PartitionDetail) bool) kadm.PartitionDetail {
	c.t.Helper()
	var last kadm.PartitionDetail
	for {
		for _, addr := range c.liveAddrs() {
			cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
			if err != nil {
				continue
			}
			m, err := kadm.NewClient(cl).Metadata(ctx, topic)
			cl.Close()
			if err != nil {
				continue
			}
			if pd, ok := m.Topics[topic].Partitions[p]; ok {
				last = pd
				if cond(pd) {
					return pd
				}
			}
			break
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("waiting for %s-%d: %s: %v; last state: leader %d epoch %d ISR %v", topic, p, what, ctx.Err(), last.Leader, last.LeaderEpoch, last.ISR)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func signal(t *testing.T, n *node, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(n.proc.Pid(), sig); err != nil {
		t.Fatal(err)
	}
}

// produceTo writes values to one partition with acks and returns the
// first error.
func produceTo(ctx context.Context, addrs []string, topic string, p int32, acks kgo.Acks, values ...string) error {
	return produceWith(ctx, nil, addrs, nil, topic, p, acks, values...)
}

// produceOnce is produceTo that tries each record once, at the broker
// addr says leads (no retry, so no other broker is asked).
func produceOnce(ctx context.Context, addr string, topic string, p int32, acks kgo.Acks, values ...string) error {
	return produceWith(ctx, nil, []string{addr}, []kgo.Opt{kgo.RecordRetries(0), kgo.ProduceRequestTimeout(5 * time.Second)}, topic, p, acks, values...)
}

// produceChecked is produceTo recording each send and its outcome in h,
// for the checker.
func produceChecked(ctx context.Context, h *checker.History, addrs []string, topic string, p int32, values ...string) error {
	return produceWith(ctx, h, addrs, nil, topic, p, kgo.AllISRAcks(), values...)
}

// produceWith produces values to partition p of topic, one client, and
// returns the first error; with h, each send and outcome is recorded.
func produceWith(ctx context.Context, h *checker.History, addrs []string, more []kgo.Opt, topic string, p int32, acks kgo.Acks, values ...string) error {
	opts := []kgo.Opt{kgo.SeedBrokers(addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(acks),
		kgo.ProducerBatchCompression(kgo.NoCompression())} // values readable in the segment files
	if acks != kgo.AllISRAcks() || more != nil {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	opts = append(opts, more...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	var rs []*kgo.Record
	for _, v := range values {
		rs = append(rs, &kgo.Record{Topic: topic, Partition: p, Value: []byte(v)})
	}
	if h == nil {
		return cl.ProduceSync(ctx, rs...).FirstErr()
	}
	var mu sync.Mutex
	var first error
	for _, r := range rs {
		h.SendRecord("producer", r)
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			h.Promise(r, err)
			mu.Lock()
			defer mu.Unlock()
			if first == nil {
				first = err
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	mu.Lock()
	defer mu.Unlock()
	return first
}

// readChecked reads partition 0 of topic from the start up to its high
// watermark, at least n records, recording every read in h and that the
// reads cover the log, and returns the values read.
func readChecked(ctx context.Context, t *testing.T, h *checker.History, addrs []string, topic string, n int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []string
	next, hw := int64(0), int64(-1)
	for len(out) < n || next < hw {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v after %d of at least %d records", topic, ctx.Err(), len(out), n)
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			hw = max(hw, p.HighWatermark)
			p.EachRecord(func(r *kgo.Record) {
				h.ReadRecord("reader", r)
				out = append(out, string(r.Value))
				next = r.Offset + 1
			})
		})
	}
	h.ReadToEnd(topic, 0)
	return out
}

func values(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%04d", prefix, i)
	}
	return out
}

// TestDivergentTailIsTruncated: a leader cut off from its followers (in
// network namespaces) takes acks=1 writes they never get, and is killed; a
// follower takes over and is written to; the old leader returns, truncates
// the tail only it had, and every replica's log then holds the same
// batches, byte for byte.
func TestDivergentTailIsTruncated(t *testing.T) {
	c := newLabCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m := c.waitMeta(ctx, 0, "a controller", func(m kadm.Metadata) bool { return m.Controller >= 1 && len(m.Brokers) == 3 })
	lead := m.Controller%3 + 1
	c.createAssigned(ctx, "div", [][]int32{{lead, lead%3 + 1, (lead+1)%3 + 1}}, nil)
	c.partitionState(ctx, "div", 0, "led", func(p kadm.PartitionDetail) bool { return p.Leader == lead && len(p.ISR) == 3 })
	h := checker.New()
	if err := produceChecked(ctx, h, c.addrs, "div", 0, values("replicated", 100)...); err != nil {
		t.Fatal(err)
	}
	if err := c.lab.Isolate(int(lead - 1)); err != nil {
		t.Fatal(err)
	}
	lost := values("only-on-the-old-leader", 50)
	err := produceOnce(ctx, c.addrs[lead-1], "div", 0, kgo.LeaderAck(), lost...)
	c.nodes[lead-1].proc.Kill()
	if err != nil {
		t.Fatalf("acks=1 writes to the cut-off leader: %v", err)
	}
	// For the checker these writes are in doubt: acks=1 promises
	// nothing once the leader is gone.
	for _, v := range lost {
		h.Send("acks=1 producer", "div", "", v)
		h.Indeterminate(v, fmt.Errorf("acknowledged with acks=1 by node %d, cut off and killed", lead))
	}
	p := c.partitionState(ctx, "div", 0, "a new leader", func(p kadm.PartitionDetail) bool { return p.Leader >= 1 && p.Leader != lead })
	// Heal only now: the dead node's kernel still retransmits the fetch
	// answers it had sent, and a follower that has not yet moved to the
	// new leader would take them, as a Kafka follower would; once it has,
	// it drops them.
	if err := c.lab.Heal(); err != nil {
		t.Fatal(err)
	}
	t.Logf("node %d leads after node %d died (epoch %d)", p.Leader, lead, p.LeaderEpoch)
	if err := produceChecked(ctx, h, c.liveAddrs(), "div", 0, values("after-the-failover", 80)...); err != nil {
		t.Fatal(err)
	}
	c.start(int(lead - 1))
	c.partitionState(ctx, "div", 0, "the old leader back in the ISR", func(p kadm.PartitionDetail) bool {
		return len(p.ISR) == 3 && slices.Contains(p.ISR, lead)
	})
	readChecked(ctx, t, h, c.addrs, "div", 180)
	checker.Check(h).FailOn(t)
	if log := c.nodes[lead-1].proc.Tail(1 << 20); !strings.Contains(log, "truncating a diverged log") {
		t.Errorf("node %d did not log a truncation", lead)
	}
	// All three hold the same log: stop them (cleanly, so the files are
	// complete) and compare the segment files.
	for _, n := range c.nodes {
		n.proc.Stop(30 * time.Second)
	}
	var logs [][]byte
	for i := range c.nodes {
		b, err := os.ReadFile(filepath.Join(c.dirs[i], "div-0", "00000000000000000000.log"))
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, b)
	}
	for i := 1; i < 3; i++ {
		if !bytes.Equal(logs[0], logs[i]) {
			t.Errorf("node %d's log (%d bytes) differs from node 1's (%d bytes)", i+1, len(logs[i]), len(logs[0]))
		}
	}
	if bytes.Contains(logs[0], []byte("only-on-the-old-leader")) {
		t.Error("the unreplicated tail is still in the logs")
	}
	if !bytes.Contains(logs[0], []byte("after-the-failover-0079")) || !bytes.Contains(logs[0], []byte("replicated-0099")) {
		t.Error("the logs lack committed records")
	}
}

// TestMinISRRefusesWrites: with two of a partition's three replicas down
// (five nodes, so the metadata quorum survives), acks=all is refused with
// NOT_ENOUGH_REPLICAS while consumers still read what was committed; one
// replica returns and writes go on.
func TestMinISRRefusesWrites(t *testing.T) {
	c := newCluster(t, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c.waitMeta(ctx, 0, "five brokers", func(m kadm.Metadata) bool { return len(m.Brokers) == 5 })
	c.createAssigned(ctx, "minisr", [][]int32{{3, 4, 5}}, map[string]string{"min.insync.replicas": "2"})
	c.partitionState(ctx, "minisr", 0, "led by 3", func(p kadm.PartitionDetail) bool { return p.Leader == 3 && len(p.ISR) == 3 })
	h := checker.New()
	if err := produceChecked(ctx, h, c.addrs, "minisr", 0, values("committed", 20)...); err != nil {
		t.Fatal(err)
	}
	c.nodes[3].proc.Kill()
	c.nodes[4].proc.Kill()
	// The leader checks a write against the ISR of its own metadata: wait
	// until node 3 itself shows the shrink, so the refusal comes before
	// appending.
	leaderSees(ctx, t, c.addrs[2], 3, "minisr", func(isr []int32) bool { return slices.Equal(isr, []int32{3}) })

	cl, err := kgo.NewClient(kgo.SeedBrokers(c.liveAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RecordRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	r := &kgo.Record{Topic: "minisr", Value: []byte("refused")}
	h.SendRecord("producer", r)
	err = cl.ProduceSync(ctx, r).FirstErr()
	h.Promise(r, err)
	if !errorsIs(err, kerr.NotEnoughReplicas) {
		t.Fatalf("acks=all with one in-sync replica of three: got %v, want NOT_ENOUGH_REPLICAS", err)
	}
	read := readChecked(ctx, t, h, c.liveAddrs(), "minisr", 20)
	if len(read) != 20 || read[19] != "committed-0019" {
		t.Fatalf("reading with the ISR below min: %d records, want the 20 committed", len(read))
	}
	c.start(3)
	c.partitionState(ctx, "minisr", 0, "node 4 back in the ISR", func(p kadm.PartitionDetail) bool { return slices.Contains(p.ISR, 4) })
	if err := produceChecked(ctx, h, c.liveAddrs(), "minisr", 0, "after"); err != nil {
		t.Fatalf("acks=all after a replica returned: %v", err)
	}
	readChecked(ctx, t, h, c.liveAddrs(), "minisr", 21)
	checker.Check(h).FailOn(t)
}

// nodeMetadata asks the node at addr, node id, itself for the metadata of
// topic: that node's own view, not the first broker a client happens to
// ask.
func nodeMetadata(ctx context.Context, addr string, id int32, topic string) (*kmsg.MetadataResponse, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	return req.RequestWith(ctx, cl.Broker(int(id)))
}

// leaderSeesNone checks, once, that the node at addr, node id, answers
// Metadata with no partition of topic led by gone.
func leaderSeesNone(ctx context.Context, t *testing.T, addr string, id int32, topic string, gone int32) {
	t.Helper()
	resp, err := nodeMetadata(ctx, addr, id, topic)
	if err != nil {
		t.Fatalf("metadata from node %d: %v", id, err)
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rp.Leader == gone {
				t.Errorf("node %d, the controller, still names stopped node %d leader of %s-%d", id, gone, topic, rp.Partition)
			}
		}
	}
}

// leaderSees waits until the node at addr, node id, answers Metadata with
// an ISR of partition 0 of topic that cond accepts.
func leaderSees(ctx context.Context, t *testing.T, addr string, id int32, topic string, cond func(isr []int32) bool) {
	t.Helper()
	await.Eventually(t, fmt.Sprintf("node %d's own metadata to show the ISR of %s-0 wanted", id, topic), func() error {
		resp, err := nodeMetadata(ctx, addr, id, topic)
		if err != nil {
			return err
		}
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if rp.Partition != 0 {
					continue
				}
				if cond(rp.ISR) {
					return nil
				}
				return fmt.Errorf("ISR %v", rp.ISR)
			}
		}
		return fmt.Errorf("no partition 0 of %s in node %d's answer", topic, id)
	})
}

func errorsIs(err error, target error) bool {
	for err != nil {
		if err == target {
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// TestPausedFollowerLeavesAndRejoinsISR pauses a follower with SIGSTOP
// for longer than replica.lag.time.max.ms: it leaves the ISR and acks=all
// goes on with two; after SIGCONT it catches up and rejoins.
func TestPausedFollowerLeavesAndRejoinsISR(t *testing.T) {
	c := newCluster(t, 3, "replica.lag.time.max.ms=3000")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	m := c.waitMeta(ctx, 0, "a controller", func(m kadm.Metadata) bool { return m.Controller >= 1 && len(m.Brokers) == 3 })
	// Pause a follower that is not the controller.
	lead := m.Controller%3 + 1
	paused := lead%3 + 1
	if paused == m.Controller {
		paused = paused%3 + 1
	}
	var other int32 = 6 - lead - paused
	c.createAssigned(ctx, "pause", [][]int32{{lead, paused, other}}, map[string]string{"min.insync.replicas": "2"})
	c.partitionState(ctx, "pause", 0, "three in sync", func(p kadm.PartitionDetail) bool { return p.Leader == lead && len(p.ISR) == 3 })
	signal(t, c.nodes[paused-1], syscall.SIGSTOP)
	defer signal(t, c.nodes[paused-1], syscall.SIGCONT)
	h := checker.New()
	if err := produceChecked(ctx, h, c.addrs, "pause", 0, values("while-paused", 50)...); err != nil {
		t.Fatalf("acks=all while a follower is paused: %v", err)
	}
	c.partitionState(ctx, "pause", 0, "the paused follower out of the ISR", func(p kadm.PartitionDetail) bool {
		return !slices.Contains(p.ISR, paused) && len(p.ISR) == 2
	})
	if err := produceChecked(ctx, h, c.addrs, "pause", 0, values("with-two", 50)...); err != nil {
		t.Fatalf("acks=all with two in sync: %v", err)
	}
	text := c.metrics(int(lead - 1))
	for _, want := range []string{"brokerd_under_replicated_partitions 1", `brokerd_isr_size{partition="0",topic="pause"} 2`} {
		if !strings.Contains(text, want) {
			t.Errorf("the leader's /metrics lacks %q", want)
		}
	}
	if !strings.Contains(c.metrics(int(m.Controller-1)), "brokerd_active_controller 1") {
		t.Errorf("node %d, the controller, does not say so in /metrics", m.Controller)
	}
	signal(t, c.nodes[paused-1], syscall.SIGCONT)
	// Asked of the leader: the resumed node's own metadata still shows
	// the ISR of before its pause until it catches up.
	c.waitMeta(ctx, int(lead-1), "the follower back in the ISR, as the leader sees it", func(m kadm.Metadata) bool {
		p, ok := m.Topics["pause"].Partitions[0]
		return ok && len(p.ISR) == 3
	})
	if got := readChecked(ctx, t, h, c.addrs, "pause", 100); got[len(got)-1] != "with-two-0049" {
		t.Fatalf("last record %q, want with-two-0049", got[len(got)-1])
	}
	checker.Check(h).FailOn(t)
	// The leader counted the expand it proposed (the shrink came from
	// the controller, which fenced the paused node when its heartbeats
	// stopped, before replica.lag.time.max.ms ran out); the follower, no
	// controller, says so and reports its fetch lag.
	for node, wants := range map[int32][]string{
		lead:   {`brokerd_isr_changes_total{kind="expand"} [1-9]`},
		paused: {`brokerd_raft_role{role="follower"} 1`, `brokerd_replica_fetch_lag{partition="0",topic="pause"} \d`},
	} {
		text := c.metrics(int(node - 1))
		for _, want := range wants {
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(want[:strings.IndexByte(want, ' ')]) + want[strings.IndexByte(want, ' '):]).MatchString(text) {
				t.Errorf("node %d's /metrics lacks a line matching %q", node, want)
			}
		}
	}
}

// allInSync reports whether every partition of topics in m has all its
// replicas in the ISR.
func allInSync(m kadm.Metadata, topics ...string) bool {
	for _, topic := range topics {
		td, ok := m.Topics[topic]
		if !ok || td.Err != nil || len(td.Partitions) == 0 {
			return false
		}
		for _, p := range td.Partitions {
			if p.Err != nil || len(p.ISR) != len(p.Replicas) {
				return false
			}
		}
	}
	return true
}

// TestRollingRestartLosesNothing restarts every node in turn (SIGTERM: a
// controlled shutdown) under load: the checker finds nothing, and the
// consumer group's committed offsets never go back.
func TestRollingRestartLosesNothing(t *testing.T) {
	c := newCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	adm := c.admin()
	if r, err := adm.CreateTopic(ctx, 6, 3, map[string]*string{"min.insync.replicas": new("2")}, "roll"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	w := startWorkload(t, c, "roll")
	w.waitAcked(ctx, 1000, "before the restarts")
	// The group's committed offsets, once the coordinator answers (it may
	// be moving) and something is committed.
	committed := func() map[int32]int64 {
		out := map[int32]int64{}
		await.Eventually(t, "the group's committed offsets", func() error {
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.liveAddrs()...))
			if err != nil {
				return err
			}
			defer cl.Close()
			os, err := kadm.NewClient(cl).FetchOffsets(ctx, "workload")
			if err != nil {
				return err
			}
			os.Each(func(o kadm.OffsetResponse) { out[o.Partition] = o.At })
			if len(out) == 0 {
				return await.NotYet("no offset committed", "some")
			}
			return nil
		})
		return out
	}
	before := committed()
	for i := range c.nodes {
		// As an operator does, the next node is restarted once every
		// replica is in sync again: with a returning node still behind,
		// stopping another would leave some partitions a single replica
		// in sync, below min.insync.replicas, or none.
		ctl := c.waitMeta(ctx, (i+1)%3, "a controller and every replica in sync", func(m kadm.Metadata) bool {
			return m.Controller >= 1 && allInSync(m, "roll", "__consumer_offsets")
		}).Controller
		c.nodes[i].proc.Stop(30 * time.Second)
		// SIGTERM is a controlled shutdown: the node exits once the
		// controller has moved its leaderships away, so the controller's
		// own metadata shows none led by it, at once.
		if log := c.nodes[i].proc.Tail(1 << 20); !strings.Contains(log, "controlled shutdown: leadership moved to other brokers") {
			t.Errorf("node %d exited without a controlled shutdown", i+1)
		}
		if ctl != int32(i+1) {
			leaderSeesNone(ctx, t, c.addrs[ctl-1], ctl, "roll", int32(i+1))
		}
		w.waitAcked(ctx, 500, fmt.Sprintf("with node %d stopped", i+1))
		c.start(i)
		w.waitAcked(ctx, 500, fmt.Sprintf("after node %d restarted", i+1))
		now := committed()
		for p, o := range before {
			if now[p] < o {
				t.Errorf("after restarting node %d: the group's offset of partition %d went from %d back to %d", i+1, p, o, now[p])
			}
		}
		before = now
	}
	w.finish(ctx)
}
