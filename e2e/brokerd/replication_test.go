package brokerd_test

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/e2e/checker"
)

// workload writes unique values to a topic of a cluster with franz-go
// (idempotent, acks=all) and sarama (idempotent, acks=all) producers and
// reads it with a franz-go consumer group, recording everything into one
// checker history.
type workload struct {
	t     *testing.T
	c     *cluster
	topic string
	h     *checker.History
	acked atomic.Int64
	// read counts the records the consumer group read.
	read atomic.Int64
	stop chan struct{}
	wg   sync.WaitGroup
}

func startWorkload(t *testing.T, c *cluster, topic string) *workload {
	w := &workload{t: t, c: c, topic: topic, h: checker.New(), stop: make(chan struct{})}
	for i := range 2 {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.DefaultProduceTopic(topic),
			kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(1<<30), kgo.RetryTimeout(2*time.Minute),
			kgo.ProduceRequestTimeout(10*time.Second), kgo.MaxBufferedRecords(200))
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("franz%d", i)
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			defer cl.Close()
			for n := 0; ; n++ {
				select {
				case <-w.stop:
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					cl.Flush(ctx)
					cancel()
					return
				default:
				}
				r := &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(n % 64)), Value: []byte(fmt.Sprintf("%s-%06d", name, n))}
				w.h.SendRecord(name, r)
				cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
					w.h.Promise(r, err)
					if err == nil {
						w.acked.Add(1)
					}
				})
				if n%20 == 0 {
					time.Sleep(5 * time.Millisecond)
				}
			}
		}()
	}
	w.wg.Add(1)
	go w.sarama()
	w.wg.Add(1)
	go w.consume()
	return w
}

// sarama runs the sarama producer until stop.
func (w *workload) sarama() {
	defer w.wg.Done()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Retry.Max = 1 << 20
	cfg.Producer.Retry.Backoff = 100 * time.Millisecond
	cfg.Producer.Return.Successes = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Metadata.RefreshFrequency = time.Second
	p, err := sarama.NewAsyncProducer(w.c.addrs, cfg)
	if err != nil {
		w.t.Error(err)
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		succ, errs := p.Successes(), p.Errors()
		for succ != nil || errs != nil {
			select {
			case m, ok := <-succ:
				if !ok {
					succ = nil
					continue
				}
				w.h.Acked(string(m.Value.(sarama.StringEncoder)), m.Partition, m.Offset)
				w.acked.Add(1)
			case e, ok := <-errs:
				if !ok {
					errs = nil
					continue
				}
				w.h.Indeterminate(string(e.Msg.Value.(sarama.StringEncoder)), e.Err)
			}
		}
	}()
	for n := 0; ; n++ {
		select {
		case <-w.stop:
			p.AsyncClose()
			<-done
			return
		default:
		}
		v := fmt.Sprintf("sarama-%06d", n)
		w.h.Send("sarama", w.topic, "", v)
		p.Input() <- &sarama.ProducerMessage{Topic: w.topic, Value: sarama.StringEncoder(v)}
		if n%20 == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// consume reads with a consumer group until stop.
func (w *workload) consume() {
	defer w.wg.Done()
	cl, err := kgo.NewClient(kgo.SeedBrokers(w.c.addrs...), kgo.ConsumerGroup("workload"), kgo.ConsumeTopics(w.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			for t, ps := range a {
				for _, p := range ps {
					w.h.Seek("group", t, p, checker.UnknownOffset)
				}
			}
		}))
	if err != nil {
		w.t.Error(err)
		return
	}
	defer cl.Close()
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			w.h.ReadRecord("group", r)
			w.read.Add(1)
		})
		cl.AllowRebalance()
	}
}

// waitAcked waits until n more records than now were acknowledged.
func (w *workload) waitAcked(ctx context.Context, n int64, what string) {
	w.t.Helper()
	w.waitFor(ctx, &w.acked, n, "acknowledgements "+what)
}

// waitRead waits until the consumer group read n more records than now.
func (w *workload) waitRead(ctx context.Context, n int64, what string) {
	w.t.Helper()
	w.waitFor(ctx, &w.read, n, "records read by the group "+what)
}

// waitFor waits until count grew by n, for at most waitLimit; on failure
// it reports the cluster's state (see diagnose).
func (w *workload) waitFor(ctx context.Context, count *atomic.Int64, n int64, what string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, waitLimit)
	defer cancel()
	want := count.Load() + n
	for count.Load() < want {
		select {
		case <-ctx.Done():
			w.t.Fatalf("waiting for %d %s: %d of %d (%v)\n%s", n, what, count.Load(), want, ctx.Err(), w.c.diagnose())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitLimit bounds one wait of the workload: long enough for a fenced
// node's session to run out and a leader to be elected on a busy machine,
// short enough to leave the test's own deadline time to report.
const waitLimit = 90 * time.Second

// finish stops the workload, reads every partition from its start to its
// high watermark and checks the history.
func (w *workload) finish(ctx context.Context) {
	w.t.Helper()
	close(w.stop)
	w.wg.Wait()
	adm := w.c.admin()
	ends, err := adm.ListEndOffsets(ctx, w.topic)
	if err != nil {
		w.t.Fatal(err)
	}
	parts := map[int32]kgo.Offset{}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			w.t.Fatalf("end offset of %s-%d: %v", w.topic, o.Partition, o.Err)
		}
		parts[o.Partition] = kgo.NewOffset().AtStart()
		left[o.Partition] = o.Offset
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(w.c.addrs...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{w.topic: parts}))
	if err != nil {
		w.t.Fatal(err)
	}
	defer cl.Close()
	next := map[int32]int64{}
	for {
		done := true
		for p, end := range left {
			if next[p] < end {
				done = false
			}
		}
		if done {
			break
		}
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			w.t.Fatalf("final read: %v; read up to %v of %v", ctx.Err(), next, left)
		}
		fs.EachRecord(func(r *kgo.Record) {
			w.h.ReadRecord("final", r)
			next[r.Partition] = r.Offset + 1
		})
	}
	for p := range left {
		w.h.ReadToEnd(w.topic, p)
	}
	rep := checker.Check(w.h)
	w.t.Logf("history: %+v", rep.Summary)
	rep.FailOn(w.t)
}

// leaders returns how many partitions of topic each node leads.
func (c *cluster) leaders(ctx context.Context, topic string) map[int32]int {
	m := c.waitMeta(ctx, 0, topic+" with every leader", func(m kadm.Metadata) bool {
		td, ok := m.Topics[topic]
		return ok && len(td.Partitions) > 0 && leadersOf(td)[-1] == 0
	})
	return leadersOf(m.Topics[topic])
}

// busiest returns the node leading most partitions of topic.
func (c *cluster) busiest(ctx context.Context, topic string) int32 {
	leaders := c.leaders(ctx, topic)
	return slices.MaxFunc(slices.Collect(maps.Keys(leaders)), func(a, b int32) int { return cmp.Compare(leaders[a], leaders[b]) })
}

// TestLeaderLossLosesNothing kills, with SIGKILL, the node leading most
// partitions of a replicated topic (min.insync.replicas 2) while franz-go
// and sarama producers write with acks=all and a consumer group reads: new
// leaders take over, the producers and the group go on, and the checker
// finds nothing lost, duplicated or out of order. Then the same with the
// node that is the active controller.
func TestLeaderLossLosesNothing(t *testing.T) {
	for _, victim := range []string{"most leaders", "controller"} {
		t.Run(victim, func(t *testing.T) {
			c := newCluster(t, 3)
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			adm := c.admin()
			minISR := "2"
			if r, err := adm.CreateTopic(ctx, 6, 3, map[string]*string{"min.insync.replicas": &minISR}, "repl"); err != nil || r.Err != nil {
				t.Fatal(err, r.Err)
			}
			// Three partitions of one replica: one on each node, so one
			// goes offline with whichever node dies.
			if r, err := adm.CreateTopic(ctx, 3, 1, nil, "solo"); err != nil || r.Err != nil {
				t.Fatal(err, r.Err)
			}
			w := startWorkload(t, c, "repl")
			w.waitAcked(ctx, 2000, "before the kill")
			var kill int32
			if victim == "controller" {
				m, err := adm.Metadata(ctx)
				if err != nil {
					t.Fatal(err)
				}
				kill = m.Controller
			} else {
				kill = c.busiest(ctx, "repl")
			}
			led := map[int32][]int32{} // partition: ISR, of those kill led
			for _, p := range c.waitMeta(ctx, int(kill%3), "repl", func(m kadm.Metadata) bool { return len(m.Topics["repl"].Partitions) == 6 }).Topics["repl"].Partitions {
				if p.Leader == kill {
					led[p.Partition] = p.ISR
				}
			}
			c.nodes[kill-1].proc.Kill()
			t.Logf("killed node %d, leader of %d partitions", kill, len(led))
			w.waitAcked(ctx, 2000, fmt.Sprintf("after node %d died", kill))
			w.waitRead(ctx, 1000, fmt.Sprintf("after node %d died", kill))
			// Every partition it led has a new leader, from its ISR.
			m := c.waitMeta(ctx, int(kill%3), "repl", func(m kadm.Metadata) bool { return len(m.Topics["repl"].Partitions) == 6 })
			for _, p := range m.Topics["repl"].Partitions {
				if isr, ok := led[p.Partition]; ok && (p.Leader == kill || !slices.Contains(isr, p.Leader)) {
					t.Errorf("repl-%d after node %d died: leader %d, want another member of its ISR %v", p.Partition, kill, p.Leader, isr)
				}
			}
			c.offline(ctx, int(kill%3), 1, fmt.Sprintf("with node %d dead", kill))
			c.start(int(kill - 1))
			w.waitAcked(ctx, 1000, fmt.Sprintf("after node %d returned", kill))
			c.offline(ctx, int(kill%3), 0, fmt.Sprintf("after node %d returned", kill))
			w.finish(ctx)
		})
	}
}

// offline waits until the active controller, asked through node i, counts
// want offline partitions in /metrics (brokerd_offline_partitions).
func (c *cluster) offline(ctx context.Context, i int, want int, when string) {
	c.t.Helper()
	line := fmt.Sprintf("\nbrokerd_offline_partitions %d\n", want)
	var last string
	for {
		ctl := c.waitMeta(ctx, i, "a controller", func(m kadm.Metadata) bool { return m.Controller >= 1 }).Controller
		text := ""
		// A node's metadata may still name a dead controller for a moment.
		if n := c.nodes[ctl-1]; n != nil && n.proc.Alive() == nil {
			text = c.metrics(int(ctl - 1))
		}
		if strings.Contains(text, line) {
			return
		}
		if j := strings.Index(text, "\nbrokerd_offline_partitions "); j >= 0 {
			last, _, _ = strings.Cut(text[j+1:], "\n")
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("%s: node %d, the controller, never reported %d offline partitions; last %q", when, ctl, want, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TestRepeatedFailovers kills a node with SIGKILL six times in a row while
// the workload runs, each time as soon as the previous victim is back and
// every replica is in sync again, alternating between a leader that is not
// the active controller and the active controller: the producers go on
// after every kill and nothing acknowledged is lost.
func TestRepeatedFailovers(t *testing.T) {
	c := newCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	adm := c.admin()
	minISR := "2"
	if r, err := adm.CreateTopic(ctx, 3, 3, map[string]*string{"min.insync.replicas": &minISR}, "again"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	w := startWorkload(t, c, "again")
	w.waitAcked(ctx, 1000, "before the first kill")
	for round := 1; round <= 6; round++ {
		m := c.waitMeta(ctx, 0, "a controller and every leader", func(m kadm.Metadata) bool {
			return m.Controller >= 1 && len(m.Topics["again"].Partitions) == 3 && leadersOf(m.Topics["again"])[-1] == 0
		})
		kill := m.Controller
		if round%2 == 1 {
			for _, p := range m.Topics["again"].Partitions.Sorted() {
				if p.Leader != m.Controller {
					kill = p.Leader
					break
				}
			}
		}
		c.nodes[kill-1].proc.Kill()
		t.Logf("round %d: killed node %d (controller %d)", round, kill, m.Controller)
		w.waitAcked(ctx, 500, fmt.Sprintf("after node %d died in round %d", kill, round))
		c.start(int(kill - 1))
		for p := range int32(3) {
			c.partitionState(ctx, "again", p, "every replica in sync", func(pd kadm.PartitionDetail) bool { return len(pd.ISR) == 3 })
		}
		w.waitAcked(ctx, 500, fmt.Sprintf("after node %d returned in round %d", kill, round))
	}
	w.finish(ctx)
}

// diagnose returns the cluster's metadata as each live node sees it and
// the end of every node's log.
func (c *cluster) diagnose() string {
	var b strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, n := range c.nodes {
		if n == nil {
			continue
		}
		fmt.Fprintf(&b, "--- node %d (%v)\n", i+1, n.proc.Alive())
		if n.proc.Alive() == nil {
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs[i]))
			if err == nil {
				if m, err := kadm.NewClient(cl).Metadata(ctx); err == nil {
					fmt.Fprintf(&b, "controller %d, brokers %v\n", m.Controller, m.Brokers.NodeIDs())
					for _, td := range m.Topics.Sorted() {
						for _, p := range td.Partitions.Sorted() {
							fmt.Fprintf(&b, "%s-%d leader %d epoch %d replicas %v isr %v err %v\n", td.Topic, p.Partition, p.Leader, p.LeaderEpoch, p.Replicas, p.ISR, p.Err)
						}
					}
				} else {
					fmt.Fprintf(&b, "metadata: %v\n", err)
				}
				cl.Close()
			}
		}
		b.WriteString(n.proc.Tail(6000))
		b.WriteString("\n")
	}
	return b.String()
}
