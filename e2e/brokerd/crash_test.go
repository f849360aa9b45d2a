// Package brokerd_test runs the real brokerd binary and kills it.
package brokerd_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/e2e/harness"
	"logpipe/internal/devstack"
)

var brokerdBin string

func TestMain(m *testing.M) {
	bins, err := harness.BuildPrograms(devstack.Program{Package: "logpipe/brokerd", Race: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	brokerdBin = bins[0]
	harness.Main(m)
}

// node is a brokerd process on a fixed port and data directory.
type node struct {
	t    *testing.T
	addr string
	dir  string
	proc *devstack.Process
}

// startNode starts brokerd listening on addr with its data in dir and the
// settings ("key=value") given, until the test ends.
func startNode(t *testing.T, addr, dir string, settings ...string) *node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p, err := devstack.StartBrokerd(ctx, devstack.BrokerdOptions{Bin: brokerdBin, Addr: addr, DataDir: dir,
		Settings: append([]string{"group.initial.rebalance.delay.ms=0"}, settings...)})
	if err != nil {
		t.Fatal(err)
	}
	n := &node{t: t, addr: addr, dir: dir, proc: p}
	t.Cleanup(func() { p.Stop(10 * time.Second) })
	return n
}

// TestKill9KeepsAcknowledgedRecords produces from several producers with
// acks=1 and acks=all, idempotent or not, kills the broker with SIGKILL in
// the middle, restarts it, and checks that every acknowledged record is
// there, offsets are contiguous, and the idempotent producers' records are
// not duplicated although they retried through the crash.
func TestKill9KeepsAcknowledgedRecords(t *testing.T) {
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	base := t.TempDir()
	dir := filepath.Join(base, "data")
	n := startNode(t, addr, dir)

	type producer struct {
		name string
		opts []kgo.Opt
		idem bool
	}
	producers := []producer{
		{"idem-all", []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks())}, true},
		{"plain-all", []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite()}, false},
		{"plain-one", []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}, false},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// A group has committed an offset before the crash.
	admCl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "crash"); err != nil {
		t.Fatal(err)
	}
	var toCommit kadm.Offsets
	toCommit.AddOffset("crash", 0, 500, -1)
	if err := adm.CommitAllOffsets(ctx, "crash-group", toCommit); err != nil {
		t.Fatal(err)
	}
	const perProducer = 3000
	var mu sync.Mutex
	acked := map[string]bool{}
	failed := map[string]int{}
	var wg sync.WaitGroup
	produced := make(chan struct{}, 1)
	for _, pr := range producers {
		// A connection made just before the kill ends at its first read:
		// franz-go takes that for a configuration error (missing SASL)
		// and gives up unless told to retry it.
		opts := append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("crash"), kgo.AllowAutoTopicCreation(),
			kgo.RecordRetries(1 << 30), kgo.ProduceRequestTimeout(5 * time.Second), kgo.RetryTimeout(2 * time.Minute), kgo.AlwaysRetryEOF()}, pr.opts...)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		wg.Add(1)
		go func(pr producer, cl *kgo.Client) {
			defer wg.Done()
			for i := 0; i < perProducer && ctx.Err() == nil; i++ {
				v := fmt.Sprintf("%s-%d", pr.name, i)
				cl.Produce(ctx, &kgo.Record{Value: []byte(v)}, func(r *kgo.Record, err error) {
					if err != nil {
						mu.Lock()
						failed[pr.name+": "+err.Error()]++
						mu.Unlock()
					}
					if err == nil {
						mu.Lock()
						acked[string(r.Value)] = true
						if len(acked) == 1000 {
							select {
							case produced <- struct{}{}:
							default:
							}
						}
						mu.Unlock()
					}
				})
				if i%50 == 0 {
					time.Sleep(time.Millisecond) // spread the load over the crash
				}
			}
			cl.Flush(ctx)
		}(pr, cl)
	}
	select {
	case <-produced:
	case <-ctx.Done():
		t.Fatal("nothing acknowledged")
	}
	n.proc.Kill()
	mu.Lock()
	ackedAtKill := len(acked)
	mu.Unlock()
	t.Logf("killed brokerd with %d records acknowledged", ackedAtKill)
	// Producers keep retrying while the broker is away.
	n = startNode(t, addr, dir)
	wg.Wait()
	t.Logf("producers done: %d acknowledged", len(acked))
	committed, err := adm.FetchOffsets(ctx, "crash-group")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := committed.Lookup("crash", 0); !ok || o.At != 500 {
		t.Fatalf("committed group offset after the crash: %+v", o)
	}
	for f, c := range failed {
		t.Errorf("%d records failed: %s", c, f)
	}
	end := endOffset(t, addr, "crash")

	consumer, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("crash"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	seen := map[string]int{}
	var next int64
	for next < end {
		fs := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%v after %d records; broker log:\n%s", ctx.Err(), next, n.proc.Tail(3000))
		}
		fs.EachError(func(tp string, p int32, err error) { t.Logf("fetch %s-%d: %v", tp, p, err) })
		recs := fs.Records()
		for _, r := range recs {
			if r.Offset != next {
				t.Fatalf("offset %d follows %d: offsets are not contiguous", r.Offset, next-1)
			}
			next++
			seen[string(r.Value)]++
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for v := range acked {
		if seen[v] == 0 {
			t.Errorf("acknowledged record %q lost", v)
		}
	}
	for v, c := range seen {
		if c > 1 && len(v) > 5 && v[:5] == "idem-" {
			t.Errorf("idempotent record %q stored %d times", v, c)
		}
	}
	t.Logf("%d acknowledged, %d stored, log end %d", len(acked), len(seen), next)
}

func endOffset(t *testing.T, addr, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := ends.Lookup(topic, 0)
	if !ok || o.Err != nil {
		t.Fatalf("end offset of %s: %v", topic, o.Err)
	}
	return o.Offset
}

// TestSigtermDrainsAndExitsCleanly stops brokerd with SIGTERM: it exits 0,
// leaves every log marked as cleanly shut down, and restarts with the data.
func TestSigtermDrainsAndExitsCleanly(t *testing.T) {
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	dir := filepath.Join(t.TempDir(), "data")
	n := startNode(t, addr, dir)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("term"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	n.proc.Stop(30 * time.Second)
	if exited, err := n.proc.Exited(); !exited || err != nil {
		t.Fatalf("brokerd did not exit cleanly: %v\n%s", err, n.proc.Tail(2000))
	}
	if _, err := os.Stat(filepath.Join(dir, "term-0", "clean-shutdown")); err != nil {
		t.Fatalf("log not marked clean: %v", err)
	}
	startNode(t, addr, dir)
	if end := endOffset(t, addr, "term"); end != 100 {
		t.Fatalf("end offset after restart %d", end)
	}
}
