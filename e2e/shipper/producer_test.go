package shipper_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"logpipe/internal/await"
	"logpipe/internal/devstack"
	"logpipe/shipper/output"
	"logpipe/shipper/publish"
)

// publishRun hands count events of file, numbered from first, to the
// output in one batch, as a harvester does with the lines of one read.
func publishRun(k *output.Kafka, file string, first, count int) error {
	ev := testEvent(file, first, nil)
	b := &publish.Batch{
		Source:   &publish.Source{Template: *ev, HostID: "h", FileID: file},
		Path:     file,
		Time:     ev.Timestamp,
		Register: func(*publish.Batch) any { return file },
	}
	for n := first; n < first+count; n++ {
		msg := fmt.Sprintf("%08d from %s", n, file)
		b.Add([]byte(msg), int64(n), int64(n)+1, 0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	return k.Publish(ctx, b)
}

// publisher publishes perFile events of each file, run at a time, on a
// goroutine. Halfway it stops until the test has done what it wants done
// then (see midway); done is closed at the end.
type publisher struct {
	halfway chan struct{}
	resume  chan struct{}
	done    chan struct{}
}

func publishAll(t *testing.T, k *output.Kafka, files []string, perFile, run int) *publisher {
	p := &publisher{halfway: make(chan struct{}), resume: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for n := 0; n < perFile; n += run {
			if n == perFile/2 {
				close(p.halfway)
				<-p.resume
			}
			for _, f := range files {
				if err := publishRun(k, f, n, run); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	return p
}

// midway waits until half the events are published, runs kill, lets the
// publisher go on and waits until the output has seen a request fail
// (kill must make the broker refuse them), then runs restart and waits
// until every event is published.
func (p *publisher) midway(t *testing.T, c *outputCounts, kill, restart func()) {
	t.Helper()
	<-p.halfway
	kill()
	close(p.resume)
	await.Eventually(t, "a request to fail after the broker was killed", func() error {
		if c.failures.Load() == 0 {
			return await.NotYet("no failure", "a failure reported to the health hook")
		}
		return nil
	}, patient)
	restart()
	<-p.done
}

// outputCounts counts what the output's hooks report.
type outputCounts struct {
	retried  atomic.Int64 // events sent again
	failures atomic.Int64 // problems reported to the health hook
}

// runPipelined runs the output with small batches, so that several
// requests are in flight at once, and a short backoff.
func runPipelined(t *testing.T, hosts []string, topic string) (*output.Kafka, func() map[any]int, *outputCounts) {
	t.Helper()
	c := new(outputCounts)
	hooks := output.Hooks{
		Retried: func(n int) { c.retried.Add(int64(n)) },
		Health: func(err error) {
			if err != nil {
				c.failures.Add(1)
			}
		},
	}
	out, acks := runOutputHooks(t, fmt.Sprintf(`
kafka:
  hosts: [%s]
  topic: %s
  compression: none
  bulk_max_size: 25
  bulk_flush_frequency: 1ms
  backoff.init: 100ms
  backoff.max: 1s
`, strings.Join(hosts, ", "), topic), hooks)
	return out, acks, c
}

// checkFiles checks that recs hold every event of files 0..n-1 exactly
// once, and each file's events in order within their partition.
func checkFiles(t *testing.T, recs []record, files []string, n int) {
	t.Helper()
	type key struct {
		file string
		n    int
	}
	seen := map[key]int{}
	last := map[string]int{}
	for _, r := range recs {
		var num int
		var file string
		if _, err := fmt.Sscanf(r.Message, "%08d from %s", &num, &file); err != nil {
			t.Fatalf("record %d/%d: %q: %v", r.Partition, r.Offset, r.Message, err)
		}
		k := key{file, num}
		seen[k]++
		if seen[k] == 1 {
			if prev, ok := last[file]; ok && num < prev {
				t.Errorf("%s: event %d after %d (partition %d offset %d)", file, num, prev, r.Partition, r.Offset)
			}
			last[file] = num
		}
	}
	missing, dups := 0, 0
	for _, f := range files {
		for i := 0; i < n; i++ {
			switch c := seen[key{f, i}]; {
			case c == 0:
				missing++
			case c > 1:
				dups += c - 1
			}
		}
	}
	if missing > 0 || dups > 0 || len(recs) != len(files)*n {
		t.Fatalf("%d records for %d events: %d missing, %d duplicates", len(recs), len(files)*n, missing, dups)
	}
}

// TestProducerLeaderFailover kills the leader of a partition of a
// replicated topic on a three-node cluster, Apache Kafka's and brokerd's,
// while the output has several small requests in flight, and starts it
// again later: every event arrives exactly once, each file's events in
// order.
func TestProducerLeaderFailover(t *testing.T) {
	t.Run("kafka", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*waitTime)
		defer cancel()
		k, err := devstack.StartKafka(ctx, devstack.KafkaOptions{Nodes: 3, HeapMB: 384})
		if err != nil {
			t.Fatal(err)
		}
		defer k.Stop()
		leaderFailover(t, ctx, k)
	})
	t.Run("brokerd", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*waitTime)
		defer cancel()
		k, err := devstack.StartBrokerdCluster(ctx, devstack.BrokerdClusterOptions{Bin: brokerdBin, Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		defer k.Stop()
		leaderFailover(t, ctx, k)
	})
}

// threeNodes is a cluster whose nodes a test can kill and restart: Apache
// Kafka's or brokerd's.
type threeNodes interface {
	Addrs() []string
	Bootstrap() string
	Nodes() int
	NodeID(i int) int32
	KillNode(i int)
	StartNode(ctx context.Context, i int) error
}

func leaderFailover(t *testing.T, ctx context.Context, k threeNodes) {
	topic := topicName(t)
	adm := adminClient(t, k.Bootstrap())
	minISR := "2"
	if _, err := adm.CreateTopic(ctx, 3, 3, map[string]*string{"min.insync.replicas": &minISR}, topic); err != nil {
		t.Fatal(err)
	}

	out, acks, counts := runPipelined(t, k.Addrs(), topic)

	files := []string{"/f/a", "/f/b", "/f/c", "/f/d", "/f/e", "/f/f"}
	const perFile, run = 3000, 50
	pub := publishAll(t, out, files, perFile, run)
	node := -1
	pub.midway(t, counts, func() {
		// The leader of a partition the files' hashes use.
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		if err != nil {
			t.Fatal(err)
		}
		part := int32(-1)
		ends.Each(func(o kadm.ListedOffset) {
			if o.Offset > 0 && part < 0 {
				part = o.Partition
			}
		})
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		leader := md.Topics[topic].Partitions[part].Leader
		for i := 0; i < k.Nodes(); i++ {
			if k.NodeID(i) == leader {
				node = i
			}
		}
		if node < 0 {
			t.Fatalf("leader %d of partition %d is not a node of the cluster", leader, part)
		}
		k.KillNode(node)
		t.Logf("killed node %d, leader of partition %d", leader, part)
	}, func() {
		if err := k.StartNode(ctx, node); err != nil {
			t.Fatal(err)
		}
	})
	drain(t, out)
	if counts.retried.Load() == 0 {
		t.Fatal("no event was sent again after the broker was killed")
	}
	t.Logf("%d events sent again", counts.retried.Load())

	if got := acks(); len(got) != len(files) {
		t.Fatalf("acknowledgements for %d files, want %d", len(got), len(files))
	} else {
		for _, f := range files {
			if got[f] != perFile {
				t.Errorf("%s: %d acknowledgements, want %d", f, got[f], perFile)
			}
		}
	}
	c := consume(t, k.Bootstrap(), topic)
	checkFiles(t, waitConsumed(t, c, len(files)*perFile), files, perFile)
}

// TestProducerBrokerdKill kills brokerd (kill -9) while the output has
// several requests in flight, and starts it again on the same data: every
// event is acknowledged once and is in the topic once, each file's events
// in order.
func TestProducerBrokerdKill(t *testing.T) {
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	opts := devstack.BrokerdOptions{Bin: brokerdBin, Addr: fmt.Sprintf("127.0.0.1:%d", port), DataDir: filepath.Join(t.TempDir(), "data"),
		Settings: []string{"num.partitions=2"}}
	start := func() *devstack.Process {
		ctx, cancel := context.WithTimeout(context.Background(), waitTime)
		defer cancel()
		p, err := devstack.StartBrokerd(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	proc := start()
	defer func() { proc.Stop(10 * time.Second) }()
	topic := topicName(t)
	createTopic(t, opts.Addr, topic, 2)
	out, acks, counts := runPipelined(t, []string{opts.Addr}, topic)

	files := []string{"/g/a", "/g/b", "/g/c"}
	const perFile, run = 4000, 40
	pub := publishAll(t, out, files, perFile, run)
	pub.midway(t, counts, proc.Kill, func() { proc = start() })
	drain(t, out)
	if counts.retried.Load() == 0 {
		t.Fatal("no event was sent again after the broker was killed")
	}
	t.Logf("%d events sent again", counts.retried.Load())
	got := acks()
	for _, f := range files {
		if got[f] != perFile {
			t.Errorf("%s: %d acknowledgements, want %d", f, got[f], perFile)
		}
	}
	c := consume(t, opts.Addr, topic)
	checkFiles(t, waitConsumed(t, c, len(files)*perFile), files, perFile)
}
