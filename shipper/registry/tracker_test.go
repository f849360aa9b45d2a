package registry

import (
	"testing"
)

func TestTrackerInOrder(t *testing.T) {
	var tr Tracker
	tr.Start("f", 100)
	a := tr.Publish("f", 110)
	b := tr.Publish("f", 125)
	if tr.Pending("f") != 2 || tr.Acked("f") != 100 {
		t.Fatal("before acks")
	}
	if off, moved := tr.Ack(a); !moved || off != 110 {
		t.Fatalf("ack a: %d %v", off, moved)
	}
	if off, moved := tr.Ack(b); !moved || off != 125 {
		t.Fatalf("ack b: %d %v", off, moved)
	}
	if off, moved := tr.Ack(b); moved || off != 125 {
		t.Fatalf("repeated ack: %d %v", off, moved)
	}
	if tr.Pending("f") != 0 {
		t.Fatal("pending after all acks")
	}
}

func TestTrackerOutOfOrderHoldsTheGap(t *testing.T) {
	var tr Tracker
	a := tr.Publish("f", 10)
	b := tr.Publish("f", 20)
	c := tr.Publish("f", 30)
	if _, moved := tr.Ack(c); moved || tr.Acked("f") != 0 {
		t.Fatal("ack after a gap moved the offset")
	}
	if _, moved := tr.Ack(b); moved || tr.Acked("f") != 0 {
		t.Fatal("ack after a gap moved the offset")
	}
	if off, moved := tr.Ack(a); !moved || off != 30 {
		t.Fatalf("filling the gap: %d %v", off, moved)
	}
}

func TestTrackerFilesAreIndependent(t *testing.T) {
	var tr Tracker
	a := tr.Publish("a", 5)
	b := tr.Publish("b", 7)
	tr.Ack(b)
	if tr.Acked("a") != 0 || tr.Acked("b") != 7 {
		t.Fatal("files mixed")
	}
	tr.Ack(a)
	if tr.Acked("a") != 5 {
		t.Fatal("a")
	}
}

func TestTrackerSkipAndStart(t *testing.T) {
	var tr Tracker
	a := tr.Publish("f", 10)
	tr.Skip("f", 20) // a filtered line after a pending one
	if tr.Acked("f") != 0 {
		t.Fatal("skip jumped a pending event")
	}
	if tr.Start("f", 500) {
		t.Fatal("Start with events pending")
	}
	tr.Ack(a)
	if tr.Acked("f") != 20 {
		t.Fatalf("acked %d", tr.Acked("f"))
	}
	if !tr.Start("f", 500) || tr.Acked("f") != 500 {
		t.Fatal("Start")
	}
}

func TestTrackerForgetIgnoresOldTickets(t *testing.T) {
	var tr Tracker
	old := tr.Publish("f", 10)
	tr.Forget("f")
	n := tr.Publish("f", 3)
	if _, moved := tr.Ack(old); moved || tr.Acked("f") != 0 {
		t.Fatal("ticket from before Forget acknowledged a new event")
	}
	if off, _ := tr.Ack(n); off != 3 {
		t.Fatal("new ticket")
	}
}

// TestTrackerPublishAll publishes batches with skipped events among them,
// after a single event, and acknowledges them out of order: the offset
// moves over skipped events as soon as everything before them is
// acknowledged, and never past an unacknowledged one.
func TestTrackerPublishAll(t *testing.T) {
	var tr Tracker
	tr.Start("f", 100)
	single := tr.Publish("f", 110)
	type ev struct {
		end  int64
		skip bool
	}
	batch := []ev{{120, true}, {130, false}, {140, true}, {150, true}, {160, false}}
	span := tr.PublishAll("f", len(batch), func(i int) (int64, bool) { return batch[i].end, batch[i].skip })
	if span.Len() != len(batch) || tr.Pending("f") != 6 {
		t.Fatalf("span %d, pending %d", span.Len(), tr.Pending("f"))
	}
	if _, moved := tr.Ack(span.Ticket(4)); moved || tr.Acked("f") != 100 {
		t.Fatal("moved past unacknowledged events")
	}
	if off, _ := tr.Ack(single); off != 120 {
		t.Fatalf("after the single event: %d, want 120 (over the skipped event)", off)
	}
	if off, _ := tr.Ack(span.Ticket(1)); off != 160 {
		t.Fatalf("after the batch: %d, want 160", off)
	}
	if tr.Pending("f") != 0 {
		t.Fatalf("pending %d", tr.Pending("f"))
	}

	// A batch of skipped events alone moves the offset at once, and an
	// empty one changes nothing.
	tr.PublishAll("f", 2, func(i int) (int64, bool) { return 170 + 10*int64(i), true })
	tr.PublishAll("f", 0, nil)
	if tr.Acked("f") != 180 || tr.Pending("f") != 0 {
		t.Fatalf("skips alone: offset %d, pending %d", tr.Acked("f"), tr.Pending("f"))
	}
}

// BenchmarkTrackerBatch publishes events of one file a batch at a time,
// as a harvester does, and acknowledges each batch in order with one
// pending behind it, as the output does; it reports the time per event.
func BenchmarkTrackerBatch(b *testing.B) {
	const batch = 1024
	var tr Tracker
	end := int64(0)
	var prev Span
	for b.Loop() {
		span := tr.PublishAll("f", batch, func(i int) (int64, bool) { return end + int64(i+1)*100, false })
		end += batch * 100
		for i := range prev.Len() {
			tr.Ack(prev.Ticket(i))
		}
		prev = span
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/event")
}
