package checker

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/e2e/harness"
	"logpipe/internal/devstack"
)

func TestMain(m *testing.M) { harness.Main(m) }

// startBrokerd builds brokerd and runs one node for the test.
func startBrokerd(t *testing.T) (string, *devstack.Process) {
	t.Helper()
	bins, err := harness.BuildPrograms(devstack.Program{Package: "logpipe/brokerd"})
	if err != nil {
		t.Fatal(err)
	}
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := devstack.StartBrokerd(ctx, devstack.BrokerdOptions{Bin: bins[0], Addr: addr,
		DataDir: filepath.Join(t.TempDir(), "data"), Settings: []string{"group.initial.rebalance.delay.ms=0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(10 * time.Second) })
	return addr, p
}

// producer sends values named after it through one idempotent franz-go
// client, recording them in a History.
type producer struct {
	name string
	cl   *kgo.Client
	sent int
}

func newProducer(t *testing.T, addr, name string) *producer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &producer{name: name, cl: cl}
}

// send sends n more values to topic and waits for their outcomes.
func (p *producer) send(ctx context.Context, t *testing.T, h *History, topic string, n int) {
	for range n {
		r := &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, "%s-%06d", p.name, p.sent)}
		p.sent++
		h.SendRecord(p.name, r)
		p.cl.Produce(ctx, r, h.Promise)
	}
	if err := p.cl.Flush(ctx); err != nil {
		t.Error(err)
	}
}

// readToEnd reads every partition of topic from its start up to the end
// offsets the broker gives now, as reader, then records ReadToEnd.
func readToEnd(ctx context.Context, t *testing.T, h *History, addr, topic, reader string) {
	t.Helper()
	adm, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ends, err := kadm.NewClient(adm).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	left := map[int32]int64{}
	start := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		left[o.Partition] = o.Offset
		start[o.Partition] = kgo.NewOffset().AtStart()
		h.Seek(reader, topic, o.Partition, 0)
	})
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	done := func(p int32, next int64) {
		if next >= left[p] {
			delete(left, p)
		}
	}
	for p, end := range left {
		if end == 0 {
			done(p, 0)
		}
	}
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("final read of %s: %v with partitions %v left", topic, ctx.Err(), left)
		}
		fs.EachRecord(func(r *kgo.Record) {
			h.ReadRecord(reader, r)
			done(r.Partition, r.Offset+1)
		})
	}
	for p := range start {
		h.ReadToEnd(topic, p)
	}
}

// TestRealBrokerHistories records real franz-go clients against a real
// brokerd: a clean run with idempotent producers, a two-member consumer
// group and a final read must have no finding; records removed with
// DeleteRecords before anyone read them must come out as lost writes,
// exactly those.
func TestRealBrokerHistories(t *testing.T) {
	addr, proc := startBrokerd(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)

	t.Run("clean", func(t *testing.T) {
		const topic, producers, rounds, perRound = "clean", 2, 8, 250
		if _, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
		h := New()
		var ps []*producer
		for i := range producers {
			ps = append(ps, newProducer(t, addr, fmt.Sprint("p", i)))
		}
		// Group members read while the producers write in rounds; each
		// round waits until the group has read every value so far. The
		// second member joins before the third round, and that round
		// starts once it has partitions, so partitions move between
		// members that are reading.
		gctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		var mu sync.Mutex
		read := map[string]bool{}
		readsBy := map[string]int{}
		// member reads as name and tells assigned when it first gets
		// partitions.
		member := func(name string, assigned chan<- struct{}) {
			var once sync.Once
			cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("checker"), kgo.ConsumeTopics(topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.BlockRebalanceOnPoll(),
				kgo.HeartbeatInterval(100*time.Millisecond),
				kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, got map[string][]int32) {
					for _, p := range got[topic] {
						h.Seek(name, topic, p, UnknownOffset)
					}
					if len(got[topic]) > 0 {
						once.Do(func() { close(assigned) })
					}
				}))
			if err != nil {
				t.Error(err)
				return
			}
			defer cl.Close()
			for gctx.Err() == nil {
				fs := cl.PollFetches(gctx)
				fs.EachRecord(func(r *kgo.Record) {
					h.ReadRecord(name, r)
					mu.Lock()
					read[string(r.Value)] = true
					readsBy[name]++
					mu.Unlock()
				})
				cl.AllowRebalance()
			}
		}
		wg.Go(func() { member("g0", make(chan struct{})) })
		for round := range rounds {
			if round == 2 {
				assigned := make(chan struct{})
				wg.Go(func() { member("g1", assigned) })
				select {
				case <-assigned:
				case <-time.After(time.Minute):
					t.Fatalf("g1 got no partitions; broker log:\n%s", proc.Tail(3000))
				}
			}
			var sends sync.WaitGroup
			for _, p := range ps {
				sends.Go(func() { p.send(ctx, t, h, topic, perRound) })
			}
			sends.Wait()
			want := (round + 1) * producers * perRound
			deadline := time.Now().Add(time.Minute)
			for {
				mu.Lock()
				n := len(read)
				mu.Unlock()
				if n == want {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("round %d: the group read %d distinct values, want %d; broker log:\n%s", round, n, want, proc.Tail(3000))
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		stop()
		wg.Wait()
		if readsBy["g0"] == 0 || readsBy["g1"] == 0 {
			t.Errorf("reads by group member: got %v, want some by each of g0 and g1", readsBy)
		}
		readToEnd(ctx, t, h, addr, topic, "final")

		r := Check(h)
		r.FailOn(t)
		n := producers * rounds * perRound
		if r.Summary.Acked != n || r.Summary.DistinctRead != n || r.Summary.Reads < 2*n {
			t.Errorf("summary: got %+v, want %d acknowledged and %d distinct read by at least %d reads", r.Summary, n, n, 2*n)
		}
	})

	t.Run("deleted records are lost writes", func(t *testing.T) {
		const topic = "deleted"
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
		h := New()
		newProducer(t, addr, "p").send(ctx, t, h, topic, 10)
		var cut kadm.Offsets
		cut.AddOffset(topic, 0, 4, -1)
		deleted, err := adm.DeleteRecords(ctx, cut)
		if err != nil {
			t.Fatal(err)
		}
		if err := deleted.Error(); err != nil {
			t.Fatal(err)
		}
		readToEnd(ctx, t, h, addr, topic, "final")

		r := Check(h)
		got := wantsOf(r.Findings)
		var lost []want
		for i := range 4 {
			lost = append(lost, want{Lost, 0, int64(i), fmt.Sprintf("p-%06d", i), ""})
		}
		if !slices.Equal(got, lost) {
			t.Errorf("findings:\ngot  %v\nwant %v\nreport:\n%s", got, lost, r)
		}
	})
}
