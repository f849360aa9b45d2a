package checker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// want is the part of a Finding a test pins down.
type want struct {
	kind      Kind
	partition int32
	offset    int64
	value     string
	reader    string
}

func (w want) String() string {
	return fmt.Sprintf("%s t/%d@%d value=%q reader=%q", w.kind, w.partition, w.offset, w.value, w.reader)
}

func wantsOf(fs []Finding) []want {
	ws := make([]want, len(fs))
	for i, f := range fs {
		ws[i] = want{f.Kind, f.Partition, f.Offset, f.Value, f.Reader}
	}
	return ws
}

// sendAck records a send of value to topic "t" and its acknowledgement at
// (partition, offset).
func sendAck(h *History, producer, value string, partition int32, offset int64) {
	h.Send(producer, "t", "", value)
	h.Acked(value, partition, offset)
}

// readAll records reader reading values at offsets from..from+len(values)-1
// of partition of topic "t".
func readAll(h *History, reader string, partition int32, from int64, values ...string) {
	for i, v := range values {
		h.Read(reader, "t", partition, from+int64(i), v)
	}
}

var errTimeout = errors.New("request timed out")

func TestCheck(t *testing.T) {
	cases := []struct {
		name    string
		history func(h *History)
		want    []want
	}{
		{
			name: "clean with indeterminate writes present and absent, gaps, rebalances and redelivery",
			history: func(h *History) {
				// Partition 0: a b at 0 1, a transaction marker at 2 that
				// nobody reads, then c (indeterminate, written) at 3 and d at
				// 4. e is indeterminate and was not written; f failed.
				sendAck(h, "p1", "a", 0, 0)
				sendAck(h, "p1", "b", 0, 1)
				h.Send("p1", "t", "k", "c")
				h.Indeterminate("c", errTimeout)
				sendAck(h, "p1", "d", 0, 4)
				h.Send("p1", "t", "", "e")
				h.Indeterminate("e", errTimeout)
				h.Send("p1", "t", "", "f")
				h.Failed("f", kerr.NotEnoughReplicas)
				// Partition 1: a second producer interleaved; its last
				// value (y at 2) is beyond every read: unseen, not lost.
				sendAck(h, "p2", "w", 1, 0)
				sendAck(h, "p2", "x", 1, 1)
				sendAck(h, "p2", "y", 1, 2)
				h.Send("p2", "t", "", "z") // no outcome yet
				// A group member reads partition 0 up to b, loses it, and
				// gets it back later at a committed offset past what the
				// other member read.
				readAll(h, "g1", 0, 0, "a", "b")
				readAll(h, "g2", 0, 3, "c")
				h.Seek("g1", "t", 0, UnknownOffset)
				readAll(h, "g1", 0, 4, "d")
				// Redelivery after a rewind: no finding.
				h.Seek("g2", "t", 0, UnknownOffset)
				readAll(h, "g2", 0, 3, "c", "d")
				readAll(h, "g1", 1, 0, "w", "x")
				// The final reader covers partition 0 from its start.
				h.Seek("final", "t", 0, 0)
				readAll(h, "final", 0, 0, "a", "b")
				readAll(h, "final", 0, 3, "c", "d")
				h.ReadToEnd("t", 0)
				// Acknowledged after the final read: not required.
				sendAck(h, "p1", "late", 0, 5)
			},
		},
		{
			name: "lost write read past",
			history: func(h *History) {
				sendAck(h, "p1", "a", 0, 0)
				sendAck(h, "p1", "b", 0, 1)
				sendAck(h, "p1", "c", 0, 2)
				readAll(h, "r1", 0, 0, "a")
				readAll(h, "r1", 0, 2, "c")
			},
			want: []want{{Lost, 0, 1, "b", ""}},
		},
		{
			name: "lost write at the tail, caught by the final read",
			history: func(h *History) {
				sendAck(h, "p1", "a", 0, 0)
				sendAck(h, "p1", "b", 0, 1)
				readAll(h, "final", 0, 0, "a")
				h.ReadToEnd("t", 0)
			},
			want: []want{{Lost, 0, 1, "b", ""}},
		},
		{
			name: "lost write overwritten by a later one at its offset",
			history: func(h *History) {
				sendAck(h, "p1", "a", 0, 0)
				sendAck(h, "p1", "b", 0, 1)
				// The log is truncated to offset 1 and c is written there.
				sendAck(h, "p2", "c", 0, 1)
				readAll(h, "r1", 0, 0, "a", "c")
			},
			want: []want{{Lost, 0, 1, "b", ""}},
		},
		{
			name: "duplicate",
			history: func(h *History) {
				sendAck(h, "p1", "a", 0, 0)
				sendAck(h, "p1", "b", 0, 1)
				readAll(h, "r1", 0, 0, "a", "b", "a")
			},
			want: []want{{Duplicate, 0, 0, "a", ""}},
		},
		{
			name: "duplicate of a producer that is not idempotent is allowed",
			history: func(h *History) {
				h.NotIdempotent("p1")
				sendAck(h, "p1", "a", 0, 2)
				sendAck(h, "p1", "b", 0, 1)
				readAll(h, "r1", 0, 0, "a", "b", "a")
			},
		},
		{
			name: "out of order",
			history: func(h *History) {
				h.Send("p1", "t", "", "a")
				h.Send("p1", "t", "", "b")
				h.Send("p1", "t", "", "c")
				h.Acked("a", 0, 0)
				h.Acked("c", 0, 1)
				h.Acked("b", 0, 2)
				// Another producer's value in between is no concern.
				sendAck(h, "p2", "q", 0, 3)
				readAll(h, "r1", 0, 0, "a", "c", "b", "q")
			},
			want: []want{{OutOfOrder, 0, 1, "c", ""}},
		},
		{
			name: "order across partitions is not compared",
			history: func(h *History) {
				sendAck(h, "p1", "a", 0, 5)
				sendAck(h, "p1", "b", 1, 0)
				readAll(h, "r1", 0, 5, "a")
				readAll(h, "r1", 1, 0, "b")
			},
		},
		{
			name: "readers disagree on an offset",
			history: func(h *History) {
				sendAck(h, "p1", "a", 0, 0)
				sendAck(h, "p1", "b", 0, 1)
				h.Send("p2", "t", "", "x")
				h.Indeterminate("x", errTimeout)
				readAll(h, "r1", 0, 0, "a", "b")
				readAll(h, "r2", 0, 0, "a", "x")
			},
			want: []want{{DisagreeingOffsets, 0, 1, "", ""}},
		},
		{
			name: "value read away from its acknowledged offset",
			history: func(h *History) {
				sendAck(h, "p1", "a", 0, 7)
				readAll(h, "r1", 0, 0, "a")
			},
			want: []want{{DisagreeingOffsets, 0, 7, "a", ""}},
		},
		{
			name: "value read in another partition than acknowledged",
			history: func(h *History) {
				sendAck(h, "p1", "a", 1, 0)
				readAll(h, "r1", 0, 0, "a")
			},
			want: []want{{DisagreeingOffsets, 1, 0, "a", ""}},
		},
		{
			name: "skipped offsets",
			history: func(h *History) {
				for i, v := range []string{"a", "b", "c", "d", "e"} {
					sendAck(h, "p1", v, 0, int64(i))
				}
				readAll(h, "r1", 0, 0, "a", "b", "c", "d", "e")
				readAll(h, "r2", 0, 0, "a", "b")
				readAll(h, "r2", 0, 4, "e")
			},
			want: []want{{SkippedOffsets, 0, 2, "", "r2"}},
		},
		{
			name: "skipped offsets right after a seek",
			history: func(h *History) {
				for i, v := range []string{"a", "b", "c"} {
					sendAck(h, "p1", v, 0, int64(i))
				}
				readAll(h, "r1", 0, 0, "a", "b", "c")
				h.Seek("final", "t", 0, 0)
				readAll(h, "final", 0, 1, "b", "c")
			},
			want: []want{{SkippedOffsets, 0, 0, "", "final"}},
		},
		{
			name: "phantom",
			history: func(h *History) {
				sendAck(h, "p1", "a", 0, 0)
				readAll(h, "r1", 0, 0, "a", "ghost")
			},
			want: []want{{Phantom, 0, 1, "ghost", ""}},
		},
		{
			name: "definitely failed write read",
			history: func(h *History) {
				sendAck(h, "p1", "a", 0, 0)
				h.Send("p1", "t", "", "b")
				h.Failed("b", kerr.NotEnoughReplicas)
				readAll(h, "r1", 0, 0, "a", "b")
			},
			want: []want{{FailedRead, 0, 1, "b", ""}},
		},
		{
			name: "invalid history",
			history: func(h *History) {
				sendAck(h, "p1", "twice", 0, 0)
				h.Send("p1", "t", "", "twice")
				h.Acked("never-sent", 0, 1)
				sendAck(h, "p1", "two-outcomes", 0, 2)
				h.Indeterminate("two-outcomes", errTimeout)
				readAll(h, "r1", 0, 0, "twice", "never-sent", "two-outcomes")
			},
			want: []want{{InvalidHistory, 0, -1, "never-sent", ""}, {InvalidHistory, 0, -1, "twice", ""}, {InvalidHistory, 0, -1, "two-outcomes", ""}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := New()
			tc.history(h)
			r := Check(h)
			got := wantsOf(r.Findings)
			if !slices.Equal(got, tc.want) {
				t.Errorf("findings:\ngot  %v\nwant %v\nreport:\n%s", got, tc.want, r)
			}
			if (r.Err() == nil) != (len(tc.want) == 0) {
				t.Errorf("Err() = %v, want nil exactly when there are no findings", r.Err())
			}
			for _, f := range r.Findings {
				if f.Detail == "" || f.Topic != "t" && f.Kind != InvalidHistory {
					t.Errorf("finding %+v: want a detail and topic t", f)
				}
			}
		})
	}
}

func TestSummaryCounts(t *testing.T) {
	h := New()
	sendAck(h, "p1", "a", 0, 0)
	sendAck(h, "p1", "b", 0, 1)
	sendAck(h, "p1", "unseen", 0, 2)
	h.Send("p1", "t", "", "in-log")
	h.Indeterminate("in-log", errTimeout)
	h.Send("p1", "t", "", "nowhere")
	h.Send("p1", "t", "", "refused")
	h.Failed("refused", kerr.NotEnoughReplicas)
	readAll(h, "r1", 0, 0, "a", "b")
	readAll(h, "r2", 0, 0, "a", "b")
	readAll(h, "r2", 1, 0, "in-log")
	r := Check(h)
	want := Summary{Sent: 6, Acked: 3, Failed: 1, Indeterminate: 2, IndeterminateRead: 1, Unseen: 1, Reads: 5, DistinctRead: 3}
	if r.Summary != want {
		t.Errorf("summary:\ngot  %+v\nwant %+v", r.Summary, want)
	}
	if len(r.Findings) != 0 {
		t.Errorf("findings: got %v, want none", r)
	}
}

// recorder collects what FailOn reports.
type recorder struct{ msgs []string }

func (r *recorder) Errorf(format string, args ...any) {
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}

func TestReportText(t *testing.T) {
	clean := New()
	sendAck(clean, "p1", "a", 0, 0)
	readAll(clean, "r1", 0, 0, "a")
	var rec recorder
	if Check(clean).FailOn(&rec) || len(rec.msgs) != 0 {
		t.Errorf("FailOn on a clean report: got messages %q, want none", rec.msgs)
	}

	h := New()
	for i := range perKind + 5 {
		sendAck(h, "p1", fmt.Sprint("v", i), 0, int64(2*i))
	}
	readAll(h, "r1", 0, 2*(perKind+5), "end")
	r := Check(h)
	if !r.FailOn(&rec) || len(rec.msgs) != 1 {
		t.Fatalf("FailOn with findings: got %d messages, want 1", len(rec.msgs))
	}
	text := rec.msgs[0]
	for _, s := range []string{
		fmt.Sprintf("checker: %d findings", perKind+6),
		fmt.Sprintf("lost write: %d", perKind+5),
		"… and 5 more",
		"phantom: 1",
		`t/0@0 "v0": sent by p1 at t+`,
		"r1 read the partition up to offset 50",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("report lacks %q:\n%s", s, text)
		}
	}
	if strings.Contains(text, `"v24"`) {
		t.Errorf("report lists the 25th lost write, want at most %d per kind:\n%s", perKind, text)
	}
	if err := r.Err(); err == nil || err.Error() != text {
		t.Errorf("Err() = %v, want the report text", err)
	}
}

func TestFranzGoHelpers(t *testing.T) {
	cases := []struct {
		err      error
		definite bool
	}{
		{kerr.NotEnoughReplicas, true},
		{fmt.Errorf("%w (uncompressed_bytes=1)", kerr.MessageTooLarge), true},
		{kerr.NotEnoughReplicasAfterAppend, false},
		{kerr.RequestTimedOut, false},
		{fmt.Errorf("%w, last err: %w", kgo.ErrRecordTimeout, kerr.NotEnoughReplicas), false},
		{kgo.ErrRecordRetries, false},
		{kgo.ErrClientClosed, false},
		{context.DeadlineExceeded, false},
		{errors.New("connection reset by peer"), false},
	}
	for _, tc := range cases {
		if got := Definite(tc.err); got != tc.definite {
			t.Errorf("Definite(%v) = %v, want %v", tc.err, got, tc.definite)
		}
	}

	h := New()
	send := func(value string, err error, partition int32, offset int64) {
		r := &kgo.Record{Topic: "t", Key: []byte("k"), Value: []byte(value)}
		h.SendRecord("p1", r)
		r.Partition, r.Offset = partition, offset
		h.Promise(r, err)
	}
	send("a", nil, 2, 0)
	send("refused", kerr.NotEnoughReplicas, 2, 0)
	send("unsure", fmt.Errorf("%w, last err: %w", kgo.ErrRecordTimeout, kerr.NotEnoughReplicas), 2, 0)
	for i, v := range []string{"a", "refused", "unsure"} {
		h.ReadRecord("r1", &kgo.Record{Topic: "t", Partition: 2, Offset: int64(i), Value: []byte(v)})
	}
	r := Check(h)
	got, wantF := wantsOf(r.Findings), []want{{FailedRead, 2, 1, "refused", ""}}
	if !slices.Equal(got, wantF) {
		t.Errorf("findings:\ngot  %v\nwant %v\nreport:\n%s", got, wantF, r)
	}
	sum := Summary{Sent: 3, Acked: 1, Failed: 1, Indeterminate: 1, IndeterminateRead: 1, Reads: 3, DistinctRead: 3}
	if r.Summary != sum {
		t.Errorf("summary:\ngot  %+v\nwant %+v", r.Summary, sum)
	}
}

// TestConcurrentRecording has producers, readers and checks run at once.
// Producer i owns partition i and its k-th value lands at offset k, so each
// reader can read values while they are still being acknowledged.
func TestConcurrentRecording(t *testing.T) {
	const producers, readers, perProducer = 8, 4, 500
	h := New()
	value := func(p, k int) string { return fmt.Sprintf("p%d-%06d", p, k) }
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			name := fmt.Sprint("p", p)
			for k := range perProducer {
				h.Send(name, "t", "", value(p, k))
				if k%100 == 99 {
					h.Indeterminate(value(p, k), errTimeout)
				} else {
					h.Acked(value(p, k), int32(p), int64(k))
				}
			}
		})
	}
	for r := range readers {
		wg.Go(func() {
			name := fmt.Sprint("r", r)
			for p := r; p < producers; p += readers {
				h.Seek(name, "t", int32(p), 0)
				for k := range perProducer {
					h.Read(name, "t", int32(p), int64(k), value(p, k))
				}
			}
		})
	}
	wg.Go(func() {
		for range 5 {
			Check(h)
		}
	})
	wg.Wait()
	for p := range producers {
		h.ReadToEnd("t", int32(p))
	}
	r := Check(h)
	r.FailOn(t)
	n := producers * perProducer
	want := Summary{Sent: n, Acked: n - n/100, Indeterminate: n / 100, IndeterminateRead: n / 100, Reads: n, DistinctRead: n}
	if r.Summary != want {
		t.Errorf("summary:\ngot  %+v\nwant %+v", r.Summary, want)
	}
}

// BenchmarkCheck checks a history of 100k sends to 8 partitions, each read
// by a group member and a final reader, 500k events in all.
func BenchmarkCheck(b *testing.B) {
	const parts, perPart = 8, 12500
	h := New()
	for p := range parts {
		for k := range perPart {
			sendAck(h, fmt.Sprint("p", p), fmt.Sprintf("p%d-%06d", p, k), int32(p), int64(k))
		}
	}
	for _, reader := range []string{"group", "final"} {
		for p := range parts {
			h.Seek(reader, "t", int32(p), 0)
			for k := range perPart {
				h.Read(reader, "t", int32(p), int64(k), fmt.Sprintf("p%d-%06d", p, k))
			}
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if r := Check(h); len(r.Findings) != 0 {
			b.Fatal(r)
		}
	}
}

// BenchmarkRecord measures recording a send, its acknowledgement and a read
// from parallel goroutines.
func BenchmarkRecord(b *testing.B) {
	h := New()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			v := strconv.FormatInt(i, 10)
			h.Send("p", "t", "", v)
			h.Acked(v, 0, i)
			h.Read("r", "t", 0, i, v)
		}
	})
}
