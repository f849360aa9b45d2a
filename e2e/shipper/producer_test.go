package shipper_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"logpipe/e2e/harness"
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

// publishAll publishes perFile events of each file, run at a time, on a
// goroutine; it sends how far it has got on progress (without waiting),
// and closes progress at the end.
func publishAll(t *testing.T, k *output.Kafka, files []string, perFile, run int) <-chan int {
	progress := make(chan int, 1)
	go func() {
		defer close(progress)
		for n := 0; n < perFile; n += run {
			for _, f := range files {
				if err := publishRun(k, f, n, run); err != nil {
					t.Error(err)
					return
				}
			}
			select {
			case <-progress:
			default:
			}
			progress <- n + run
		}
	}()
	return progress
}

// waitProgress waits until a publishAll has published atLeast events of
// each file.
func waitProgress(progress <-chan int, atLeast int) {
	for n := range progress {
		if n >= atLeast {
			return
		}
	}
}

// runPipelined runs the output with small batches, so that several
// requests are in flight at once, and a short backoff; the counter it
// returns counts the events sent again.
func runPipelined(t *testing.T, hosts []string, topic string) (*output.Kafka, func() map[any]int, *atomic.Int64) {
	t.Helper()
	retried := new(atomic.Int64)
	hooks := output.Hooks{Retried: func(n int) { retried.Add(int64(n)) }}
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
	return out, acks, retried
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
// replicated topic on a three-node Apache Kafka while the output has
// several small requests in flight, and starts it again later: every
// event arrives exactly once, each file's events in order.
func TestProducerLeaderFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTime)
	defer cancel()
	k, err := harness.StartKafka(ctx, harness.KafkaOptions{Nodes: 3, HeapMB: 384})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop()
	topic := topicName(t)
	adm := adminClient(t, k.Bootstrap())
	minISR := "2"
	if _, err := adm.CreateTopic(ctx, 3, 3, map[string]*string{"min.insync.replicas": &minISR}, topic); err != nil {
		t.Fatal(err)
	}

	out, acks, retried := runPipelined(t, k.Addrs(), topic)

	files := []string{"/f/a", "/f/b", "/f/c", "/f/d", "/f/e", "/f/f"}
	const perFile, run = 3000, 50
	progress := publishAll(t, out, files, perFile, run)
	waitProgress(progress, perFile/4)
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	leader := md.Topics[topic].Partitions[0].Leader
	node := -1
	for i := 0; i < k.Nodes(); i++ {
		if k.NodeID(i) == leader {
			node = i
		}
	}
	if node < 0 {
		t.Fatalf("leader %d of partition 0 is not a node of the cluster", leader)
	}
	k.KillNode(node)
	t.Logf("killed node %d, leader of partition 0", leader)
	waitProgress(progress, perFile*3/4)
	if err := k.StartNode(ctx, node); err != nil {
		t.Fatal(err)
	}
	waitProgress(progress, perFile)
	drain(t, out)
	if retried.Load() == 0 {
		t.Fatal("no event was sent again: the kill came when nothing was in flight")
	}
	t.Logf("%d events sent again", retried.Load())

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
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	opts := harness.BrokerdOptions{Bin: brokerdBin, Addr: fmt.Sprintf("127.0.0.1:%d", port), DataDir: filepath.Join(t.TempDir(), "data"),
		Settings: []string{"num.partitions=2"}}
	start := func() *harness.Process {
		ctx, cancel := context.WithTimeout(context.Background(), waitTime)
		defer cancel()
		p, err := harness.StartBrokerd(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	proc := start()
	defer func() { proc.Stop(10 * time.Second) }()
	topic := topicName(t)
	createTopic(t, opts.Addr, topic, 2)
	out, acks, retried := runPipelined(t, []string{opts.Addr}, topic)

	files := []string{"/g/a", "/g/b", "/g/c"}
	const perFile, run = 4000, 40
	progress := publishAll(t, out, files, perFile, run)
	waitProgress(progress, perFile/2)
	proc.Kill()
	proc = start()
	waitProgress(progress, perFile)
	drain(t, out)
	if retried.Load() == 0 {
		t.Fatal("no event was sent again: the kill came when nothing was in flight")
	}
	t.Logf("%d events sent again", retried.Load())
	got := acks()
	for _, f := range files {
		if got[f] != perFile {
			t.Errorf("%s: %d acknowledgements, want %d", f, got[f], perFile)
		}
	}
	c := consume(t, opts.Addr, topic)
	checkFiles(t, waitConsumed(t, c, len(files)*perFile), files, perFile)
}
