package shipper_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"logpipe/e2e/harness"
	"logpipe/internal/await"
	"logpipe/internal/devstack"
)

// outage is how long the broker is away under load.
const outage = 30 * time.Second

// TestBrokerOutage stops the broker for a while under load and starts it
// again: no line may be lost, and the shipper's memory must not grow with
// the backlog that piles up in the file meanwhile.
func TestBrokerOutage(t *testing.T) {
	t.Run("brokerd", func(t *testing.T) { testOutage(t, startBrokerd(t)) })
	t.Run("kafka", func(t *testing.T) {
		// The shared broker, taken away and brought back: tests run one
		// at a time, and the cleanup brings it back should this one fail.
		k := harness.SharedKafka(t)
		start := func(t *testing.T) {
			if k.Pid(0) != 0 {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			if err := k.StartNode(ctx, 0); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() { start(t) })
		testOutage(t, broker{name: "kafka", bootstrap: k.Bootstrap(), stop: func() { k.StopNode(0) }, start: start})
	})
}

func testOutage(t *testing.T, b broker) {
	a := newAccessLog(t)
	path, topic, w := a.path, a.topic, a.w
	w.pad = 1500 // long lines: a large backlog in bytes, few records to read back
	// No race detector: its memory is what is measured.
	s := startShipperBin(t, plainShipperBin, a.dir, fmt.Sprintf(`
filebeat.inputs:
- type: log
  paths: [%q]
output.kafka:
  hosts: [%q]
  topic: %s
  backoff.max: 2s
queue.mem.bytes: 4MiB
`, path, b.bootstrap, topic))

	// Load: 2 lines (about 3 KB) every millisecond.
	ctx, stopWriting := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for ctx.Err() == nil {
			<-tick.C
			for i := 0; i < 2; i++ {
				w.write()
			}
		}
	}()
	defer func() { stopWriting(); wg.Wait() }()

	await.Eventually(t, "events to flow", func() error {
		if n := s.metric("shipper_events_acked_total"); n < 1000 {
			return await.NotYet(fmt.Sprintf("%v acknowledged", n), "at least 1000")
		}
		return nil
	}, s.alive())
	b.stop()
	outStart := time.Now()
	sizeAtStop := w.sizeLocked()
	// RSS is sampled through the outage. The garbage collector lets the
	// heap grow to twice what is live before it collects, and RSS follows
	// that high-water mark, so it takes a collection cycle or two to settle;
	// the first half of the outage gives it that time. Memory that grew
	// with the backlog would keep growing through the second half, while
	// the backlog doubles.
	var early, half, late int64
	for time.Since(outStart) < outage {
		time.Sleep(250 * time.Millisecond)
		r, err := devstack.RSS(s.proc.Pid())
		if err != nil {
			t.Fatal(err)
		}
		switch el := time.Since(outStart); {
		case el > 2*time.Second && el < 4*time.Second:
			early = max(early, r)
		case el > outage/2-2*time.Second && el < outage/2:
			half = max(half, r)
		case el > outage-2*time.Second:
			late = max(late, r)
		}
	}
	backlog := w.sizeLocked() - sizeAtStop
	queued := s.metric("shipper_queue_bytes")
	b.start(t)
	t.Logf("broker away %v: backlog %d MiB in the file, queue %0.1f MiB, RSS %d MiB early in the outage, %d MiB halfway, %d MiB at its end",
		time.Since(outStart).Round(time.Second), backlog>>20, queued/(1<<20), early>>20, half>>20, late>>20)
	if backlog < 48<<20 {
		t.Fatalf("the writer made only %d MiB of backlog", backlog>>20)
	}
	if late-half > 6<<20 {
		t.Errorf("RSS grew by %d MiB in the second half of the outage, while the backlog grew by about %d MiB", (late-half)>>20, backlog>>21)
	}

	time.Sleep(time.Second) // a little more load with the broker back
	stopWriting()
	wg.Wait()
	total := w.n
	c := consume(t, b.bootstrap, topic)
	c.waitLines(s, total)
	m, _ := s.metrics()
	t.Logf("%d lines; published %.0f, acked %.0f, retried %.0f, dropped %.0f",
		total, m["shipper_events_published_total"], m["shipper_events_acked_total"], m["shipper_events_retried_total"], m[`shipper_events_dropped_total{reason="filter"}`])
	s.stop()
	if log, _ := os.ReadFile(s.log); !strings.Contains(string(log), "level=WARN") {
		t.Errorf("no warning logged about the broker being away")
	}
}

// sizeLocked is size for callers that do not hold mu.
func (w *writer) sizeLocked() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.size()
}
