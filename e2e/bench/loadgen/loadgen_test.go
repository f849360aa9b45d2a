package loadgen_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/e2e/bench/loadgen"
	"logpipe/e2e/harness"
	"logpipe/internal/await"
	"logpipe/internal/devstack"
)

var (
	buildOnce  sync.Once
	brokerdBin string
	buildErr   error
)

// TestMain removes the built binary and stops what the tests started.
func TestMain(m *testing.M) { harness.Main(m) }

// brokerd builds the brokerd binary the first time a test needs it, so a
// run that selects no test (go test -bench) builds nothing.
func brokerd(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		var bins []string
		if bins, buildErr = harness.BuildPrograms(devstack.Program{Package: "logpipe/brokerd"}); buildErr == nil {
			brokerdBin = bins[0]
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return brokerdBin
}

// startBrokerd runs the real brokerd binary on a free port and a fresh data
// folder and returns its address.
func startBrokerd(t *testing.T) string {
	t.Helper()
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := devstack.StartBrokerd(ctx, devstack.BrokerdOptions{Bin: brokerd(t), Addr: addr, DataDir: filepath.Join(t.TempDir(), "data")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(10 * time.Second) })
	return addr
}

func createTopic(t *testing.T, addr, topic string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// TestProduceThenConsumeCountsEveryRecord produces at full speed with
// acks=1 and at a fixed rate with acks=all, then reads each topic back: the
// consumer must see exactly the records and bytes the producer had
// acknowledged, and every acknowledged record must have a latency. One at
// a time, every record must have gone in a batch of its own.
func TestProduceThenConsumeCountsEveryRecord(t *testing.T) {
	addr := startBrokerd(t)
	for _, tc := range []struct {
		name       string
		partitions int32
		allAcks    bool
		rate       int
		warmup     time.Duration
		oneAtATime bool
	}{
		{"full-speed-acks1", 3, false, 0, 0, false},
		{"fixed-rate-acksall", 2, true, 2000, 0, false},
		{"fixed-rate-warmup", 2, true, 2000, 500 * time.Millisecond, false},
		{"one-at-a-time", 2, true, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := "loadgen-" + tc.name
			createTopic(t, addr, topic, tc.partitions)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			const size = 1024
			hook := &batchCounter{counts: map[int32]int64{}}
			pr, err := loadgen.Produce(ctx, loadgen.ProduceConfig{
				Brokers:    []string{addr},
				Topic:      topic,
				RecordSize: size,
				AllAcks:    tc.allAcks,
				Duration:   time.Second,
				Rate:       tc.rate,
				Warmup:     tc.warmup,
				OneAtATime: tc.oneAtATime,
				Linger:     -1,
				Opts:       []kgo.Opt{kgo.WithHooks(hook)},
			})
			if err != nil {
				t.Fatal(err)
			}
			if pr.Failed != 0 || pr.FirstError != nil {
				t.Fatalf("%d records failed, first: %v", pr.Failed, pr.FirstError)
			}
			if pr.Records == 0 || pr.Records != pr.Sent {
				t.Fatalf("sent %d, acknowledged %d", pr.Sent, pr.Records)
			}
			if pr.Bytes != pr.Records*size {
				t.Fatalf("acknowledged %d bytes for %d records of %d bytes", pr.Bytes, pr.Records, size)
			}
			switch n := int64(len(pr.Latencies)); {
			case tc.warmup == 0 && n != pr.Records:
				t.Fatalf("%d latencies for %d records", n, pr.Records)
			case tc.warmup > 0 && (n == 0 || n >= pr.Records):
				t.Fatalf("%d latencies for %d records, half of them sent in the warm-up; want some, not all", n, pr.Records)
			}
			if tc.oneAtATime {
				hook.caughtUp(t, pr.Records)
				if n := hook.batches(); n != pr.Records {
					t.Fatalf("%d records went in %d batches; one at a time, each goes alone", pr.Records, n)
				}
			}
			if tc.rate > 0 && pr.Sent > int64(tc.rate)+1 {
				t.Fatalf("sent %d records in one second at %d records/s", pr.Sent, tc.rate)
			}
			p50, p99 := pr.Latencies.Percentile(50), pr.Latencies.Percentile(99)
			if p50 <= 0 || p99 < p50 || pr.Latencies.Percentile(100) != pr.Latencies[len(pr.Latencies)-1] {
				t.Fatalf("inconsistent percentiles: p50 %v, p99 %v, max %v", p50, p99, pr.Latencies[len(pr.Latencies)-1])
			}

			cr, err := loadgen.Consume(ctx, []string{addr}, topic)
			if err != nil {
				t.Fatal(err)
			}
			if cr.Records != pr.Records || cr.Bytes != pr.Bytes {
				t.Fatalf("consumed %d records (%d bytes), produced %d (%d bytes)", cr.Records, cr.Bytes, pr.Records, pr.Bytes)
			}
			t.Logf("produced %d records (%.0f records/s), p50 %v, p99 %v; consumed at %.0f records/s",
				pr.Records, pr.RecordsPerSec(), p50, p99, cr.RecordsPerSec())
		})
	}
}

// batchCounter is a franz-go hook counting the records each partition had
// acknowledged, and the batches they went in.
type batchCounter struct {
	mu      sync.Mutex
	counts  map[int32]int64
	written int64
}

func (c *batchCounter) OnProduceBatchWritten(_ kgo.BrokerMetadata, _ string, partition int32, m kgo.ProduceBatchMetrics) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.counts[partition] += int64(m.NumRecords)
	c.written++
}

// caughtUp waits until the hook has seen n records: franz-go runs it in
// a goroutine of its own after the batch's records are acknowledged, so
// Produce may return before it has seen the last batch.
func (c *batchCounter) caughtUp(t *testing.T, n int64) {
	t.Helper()
	await.Eventually(t, fmt.Sprintf("the hook to see %d records", n), func() error {
		if got := c.total(); got < n {
			return await.NotYet(got, n)
		}
		return nil
	})
}

func (c *batchCounter) batches() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.written
}

func (c *batchCounter) total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, v := range c.counts {
		n += v
	}
	return n
}

// TestProduceStopsWhenToldAndTakesOptions gives Produce a run far longer
// than the test may take, a hook and a round-robin partitioner, and closes
// Stop once some records are acknowledged: Produce must return before its
// context ends, with every record it sent acknowledged, the hook must have
// seen each of them, and round-robin must have spread them evenly.
func TestProduceStopsWhenToldAndTakesOptions(t *testing.T) {
	addr := startBrokerd(t)
	const topic, partitions, rate = "loadgen-stop", 3, 1000
	createTopic(t, addr, topic, partitions)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	hook := &batchCounter{counts: map[int32]int64{}}
	stop := make(chan struct{})
	go func() {
		defer close(stop)
		_ = await.Poll(ctx, 10*time.Millisecond, func(context.Context) error {
			if n := hook.total(); n < 300 {
				return await.NotYet(n, "at least 300")
			}
			return nil
		})
	}()
	pr, err := loadgen.Produce(ctx, loadgen.ProduceConfig{
		Brokers: []string{addr}, Topic: topic, RecordSize: 100, AllAcks: true,
		Duration: time.Hour, Rate: rate, Linger: 0, Stop: stop,
		Opts: []kgo.Opt{kgo.WithHooks(hook), kgo.RecordPartitioner(kgo.RoundRobinPartitioner())},
	})
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("Produce returned only when its context ended (%v), not when Stop closed", ctx.Err())
	}
	if pr.Failed != 0 || pr.Records != pr.Sent || pr.Records < 300 {
		t.Fatalf("sent %d, acknowledged %d, failed %d (first: %v); want at least 300, all acknowledged", pr.Sent, pr.Records, pr.Failed, pr.FirstError)
	}
	hook.caughtUp(t, pr.Records)
	if got := hook.total(); got != pr.Records {
		t.Fatalf("the hook saw %d records, Produce counted %d", got, pr.Records)
	}
	lo, hi := pr.Records, int64(0)
	for p := range int32(partitions) {
		lo, hi = min(lo, hook.counts[p]), max(hi, hook.counts[p])
	}
	if hi-lo > 1 {
		t.Fatalf("round-robin left partitions with %v records, want counts within one of each other", hook.counts)
	}
}

// TestProduceStopsAtMaxRecords: a full-speed run far longer than the test
// may take ends once MaxRecords records were sent, every one acknowledged.
func TestProduceStopsAtMaxRecords(t *testing.T) {
	addr := startBrokerd(t)
	const topic = "loadgen-max"
	createTopic(t, addr, topic, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pr, err := loadgen.Produce(ctx, loadgen.ProduceConfig{
		Brokers: []string{addr}, Topic: topic, RecordSize: 100, AllAcks: true,
		Duration: time.Hour, Linger: -1, MaxRecords: 5000,
	})
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatalf("Produce returned only when its context ended (%v), not at MaxRecords", ctx.Err())
	}
	if pr.Sent != 5000 || pr.Records != 5000 || pr.Failed != 0 {
		t.Fatalf("sent %d, acknowledged %d, failed %d (first: %v); want 5000 sent and acknowledged, none failed", pr.Sent, pr.Records, pr.Failed, pr.FirstError)
	}
}

// TestPercentileNearestRank checks the rank arithmetic on a known series.
func TestPercentileNearestRank(t *testing.T) {
	var l loadgen.Latencies
	for i := 1; i <= 200; i++ {
		l = append(l, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{
		{50, 100 * time.Millisecond},
		{99, 198 * time.Millisecond},
		{99.9, 200 * time.Millisecond},
		{100, 200 * time.Millisecond},
		{0, 1 * time.Millisecond},
	} {
		if got := l.Percentile(tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := loadgen.Latencies(nil).Percentile(50); got != 0 {
		t.Errorf("empty p50 = %v, want 0", got)
	}
}
