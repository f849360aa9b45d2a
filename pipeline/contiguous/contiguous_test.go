package contiguous

import (
	"math"
	"math/rand/v2"
	"testing"
)

// step is one call on a tracker and what it must answer, then the state
// the tracker must be in: its Reached value, how many items it holds and
// the value of the oldest (-1 for none).
type step struct {
	op     string // add, done (Add an item done), ack, start, find
	arg    int64  // the value to add, start at or find; the sequence number to ack
	seq    uint64 // add, done, find: the sequence number answered
	ok     bool   // ack, start, find: the ok answered
	moved  bool   // ack: whether Reached moved
	reach  int64
	held   int
	oldest int64
}

func TestTracker(t *testing.T) {
	cases := []struct {
		name  string
		steps []step
	}{
		{"in order", []step{
			{op: "add", arg: 10, seq: 0, reach: 0, held: 1, oldest: 10},
			{op: "add", arg: 20, seq: 1, reach: 0, held: 2, oldest: 10},
			{op: "ack", arg: 0, ok: true, moved: true, reach: 10, held: 1, oldest: 20},
			{op: "ack", arg: 1, ok: true, moved: true, reach: 20, held: 0, oldest: -1},
			{op: "add", arg: 30, seq: 2, reach: 20, held: 1, oldest: 30},
		}},
		{"a late acknowledgement holds the ones after it", []step{
			{op: "add", arg: 1, seq: 0, held: 1, oldest: 1},
			{op: "add", arg: 2, seq: 1, held: 2, oldest: 1},
			{op: "add", arg: 3, seq: 2, held: 3, oldest: 1},
			{op: "ack", arg: 2, ok: true, held: 3, oldest: 1},
			{op: "ack", arg: 1, ok: true, held: 3, oldest: 1},
			{op: "ack", arg: 0, ok: true, moved: true, reach: 3, held: 0, oldest: -1},
		}},
		{"a gap in the middle", []step{
			{op: "add", arg: 5, seq: 0, held: 1, oldest: 5},
			{op: "add", arg: 6, seq: 1, held: 2, oldest: 5},
			{op: "add", arg: 7, seq: 2, held: 3, oldest: 5},
			{op: "ack", arg: 0, ok: true, moved: true, reach: 5, held: 2, oldest: 6},
			{op: "ack", arg: 2, ok: true, reach: 5, held: 2, oldest: 6},
			{op: "ack", arg: 1, ok: true, moved: true, reach: 7, held: 0, oldest: -1},
		}},
		{"items added done", []step{
			{op: "done", arg: 10, seq: 0, reach: 10, held: 0, oldest: -1},
			{op: "add", arg: 20, seq: 1, reach: 10, held: 1, oldest: 20},
			{op: "done", arg: 30, seq: 2, reach: 10, held: 2, oldest: 20},
			{op: "done", arg: 40, seq: 3, reach: 10, held: 3, oldest: 20},
			{op: "add", arg: 50, seq: 4, reach: 10, held: 4, oldest: 20},
			{op: "ack", arg: 2, ok: false, reach: 10, held: 4, oldest: 20},
			{op: "ack", arg: 1, ok: true, moved: true, reach: 40, held: 1, oldest: 50},
			{op: "ack", arg: 4, ok: true, moved: true, reach: 50, held: 0, oldest: -1},
		}},
		{"start", []step{
			{op: "start", arg: 100, ok: true, reach: 100, oldest: -1},
			{op: "add", arg: 110, seq: 0, reach: 100, held: 1, oldest: 110},
			{op: "start", arg: 500, ok: false, reach: 100, held: 1, oldest: 110},
			{op: "ack", arg: 0, ok: true, moved: true, reach: 110, oldest: -1},
			{op: "start", arg: -7, ok: true, reach: -7, oldest: -1},
			{op: "add", arg: 3, seq: 1, reach: -7, held: 1, oldest: 3},
		}},
		{"acknowledgements that name nothing waiting", []step{
			{op: "ack", arg: 0, ok: false, oldest: -1},
			{op: "add", arg: 1, seq: 0, held: 1, oldest: 1},
			{op: "add", arg: 2, seq: 1, held: 2, oldest: 1},
			{op: "ack", arg: 2, ok: false, held: 2, oldest: 1},
			{op: "ack", arg: math.MaxInt64, ok: false, held: 2, oldest: 1},
			{op: "ack", arg: 1, ok: true, held: 2, oldest: 1},
			{op: "ack", arg: 1, ok: false, held: 2, oldest: 1},
			{op: "ack", arg: 0, ok: true, moved: true, reach: 2, oldest: -1},
			{op: "ack", arg: 0, ok: false, reach: 2, oldest: -1},
		}},
		{"find", []step{
			{op: "find", arg: 4, ok: false, oldest: -1},
			{op: "add", arg: 103, seq: 0, held: 1, oldest: 103},
			{op: "add", arg: 110, seq: 1, held: 2, oldest: 103},
			{op: "add", arg: 111, seq: 2, held: 3, oldest: 103},
			{op: "find", arg: 110, seq: 1, ok: true, held: 3, oldest: 103},
			{op: "find", arg: 104, ok: false, held: 3, oldest: 103},
			{op: "ack", arg: 0, ok: true, moved: true, reach: 103, held: 2, oldest: 110},
			{op: "find", arg: 103, ok: false, reach: 103, held: 2, oldest: 110},
			{op: "find", arg: 111, seq: 2, ok: true, reach: 103, held: 2, oldest: 110},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var tr Tracker
			for i, s := range c.steps {
				switch s.op {
				case "add", "done":
					if seq := tr.Add(s.arg, s.op == "done"); seq != s.seq {
						t.Fatalf("step %d: %s %d: got sequence number %d, want %d", i, s.op, s.arg, seq, s.seq)
					}
				case "ack":
					moved, ok := tr.Ack(uint64(s.arg))
					if moved != s.moved || ok != s.ok {
						t.Fatalf("step %d: ack %d: got moved %v ok %v, want %v %v", i, s.arg, moved, ok, s.moved, s.ok)
					}
				case "start":
					if ok := tr.Start(s.arg); ok != s.ok {
						t.Fatalf("step %d: start %d: got %v, want %v", i, s.arg, ok, s.ok)
					}
				case "find":
					seq, ok := tr.Find(s.arg)
					if seq != s.seq || ok != s.ok {
						t.Fatalf("step %d: find %d: got %d %v, want %d %v", i, s.arg, seq, ok, s.seq, s.ok)
					}
				default:
					t.Fatalf("step %d: unknown op %q", i, s.op)
				}
				if got := tr.Reached(); got != s.reach {
					t.Fatalf("step %d: %s %d: got Reached %d, want %d", i, s.op, s.arg, got, s.reach)
				}
				if got := tr.Pending(); got != s.held {
					t.Fatalf("step %d: %s %d: got Pending %d, want %d", i, s.op, s.arg, got, s.held)
				}
				oldest, ok := tr.Oldest()
				if !ok {
					oldest = -1
				}
				if oldest != s.oldest || ok != (s.held > 0) {
					t.Fatalf("step %d: %s %d: got Oldest %d %v, want %d", i, s.op, s.arg, oldest, ok, s.oldest)
				}
			}
		})
	}
}

// TestTrackerAgainstModel adds runs of items, some done, with gaps between
// their values, acknowledges the others in random order, interleaved with
// more adds, and compares the tracker after every call with a plain model
// (and Find of each item acknowledged with its sequence number):
// Reached is the value of the last item of the longest acknowledged
// prefix. The runs are long enough for the tracker to drop passed items
// from its slice and to drain it.
func TestTrackerAgainstModel(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		var tr Tracker
		start := int64(r.IntN(1000))
		tr.Start(start)
		var values []int64
		var done []bool
		var waiting []uint64 // sequence numbers not acknowledged yet
		value := start
		prefix := 0 // items in the acknowledged prefix
		check := func(what string) {
			t.Helper()
			for prefix < len(done) && done[prefix] {
				prefix++
			}
			want := start
			if prefix > 0 {
				want = values[prefix-1]
			}
			if got := tr.Reached(); got != want {
				t.Fatalf("round %d, after %s: got Reached %d, want %d", round, what, got, want)
			}
			if got, want := tr.Pending(), len(values)-prefix; got != want {
				t.Fatalf("round %d, after %s: got Pending %d, want %d", round, what, got, want)
			}
		}
		for len(values) < 3000 || len(waiting) > 0 {
			if len(values) < 3000 && (len(waiting) == 0 || r.IntN(3) == 0) {
				for range 1 + r.IntN(40) {
					value += 1 + int64(r.IntN(5))
					isDone := r.IntN(4) == 0
					seq := tr.Add(value, isDone)
					if seq != uint64(len(values)) {
						t.Fatalf("round %d: got sequence number %d, want %d", round, seq, len(values))
					}
					values, done = append(values, value), append(done, isDone)
					if !isDone {
						waiting = append(waiting, seq)
					}
				}
				check("adding")
				continue
			}
			k := r.IntN(len(waiting))
			seq := waiting[k]
			waiting[k] = waiting[len(waiting)-1]
			waiting = waiting[:len(waiting)-1]
			if got, ok := tr.Find(values[seq]); !ok || got != seq {
				t.Fatalf("round %d: Find(%d) = %d %v, want %d true", round, values[seq], got, ok, seq)
			}
			before := tr.Reached()
			moved, ok := tr.Ack(seq)
			if !ok {
				t.Fatalf("round %d: Ack(%d) refused", round, seq)
			}
			done[seq] = true
			check("an ack")
			if moved != (tr.Reached() != before) {
				t.Fatalf("round %d: Ack(%d) reported moved %v, Reached went from %d to %d", round, seq, moved, before, tr.Reached())
			}
		}
	}
}
