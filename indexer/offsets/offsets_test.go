package offsets

import (
	"errors"
	"fmt"
	"testing"
)

// step is one operation of a scenario: add or ack an offset, then expect
// the committable offset and the pending count.
type step struct {
	op      string // "add" or "ack"
	offset  int64
	commit  int64
	pending int
	err     error
}

func TestScenarios(t *testing.T) {
	cases := []struct {
		name  string
		start int64
		steps []step
	}{
		{"in order", 10, []step{
			{"add", 10, 10, 1, nil},
			{"add", 11, 10, 2, nil},
			{"ack", 10, 11, 1, nil},
			{"ack", 11, 12, 0, nil},
		}},
		{"out of order waits for the oldest", 0, []step{
			{"add", 0, 0, 1, nil},
			{"add", 1, 0, 2, nil},
			{"add", 2, 0, 3, nil},
			{"ack", 2, 0, 3, nil},
			{"ack", 1, 0, 3, nil},
			{"ack", 0, 3, 0, nil},
		}},
		{"a hole in the middle", 5, []step{
			{"add", 5, 5, 1, nil},
			{"add", 6, 5, 2, nil},
			{"add", 7, 5, 3, nil},
			{"ack", 5, 6, 2, nil},
			{"ack", 7, 6, 2, nil},
			{"ack", 6, 8, 0, nil},
		}},
		{"gaps in offsets (compaction, markers)", 100, []step{
			{"add", 103, 103, 1, nil},
			{"add", 110, 103, 2, nil},
			{"ack", 103, 110, 1, nil},
			{"ack", 110, 111, 0, nil},
		}},
		{"unknown start commits nothing before a record", -1, []step{
			{"add", 42, 42, 1, nil},
			{"ack", 42, 43, 0, nil},
		}},
		{"errors", 0, []step{
			{"add", 3, 3, 1, nil},
			{"add", 3, 3, 1, ErrOrder},
			{"add", 2, 3, 1, ErrOrder},
			{"ack", 4, 3, 1, ErrUnknown},
			{"ack", 3, 4, 0, nil},
			{"ack", 3, 4, 0, ErrUnknown},
			{"add", -5, 4, 0, ErrOrder},
		}},
		{"double ack of a held entry", 0, []step{
			{"add", 0, 0, 1, nil},
			{"add", 1, 0, 2, nil},
			{"ack", 1, 0, 2, nil},
			{"ack", 1, 0, 2, ErrUnknown},
			{"ack", 0, 2, 0, nil},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := New(c.start)
			if c.start < 0 && tr.Committable() != -1 {
				t.Fatalf("Committable before any record = %d, want -1", tr.Committable())
			}
			for i, s := range c.steps {
				var err error
				switch s.op {
				case "add":
					err = tr.Add(s.offset)
				case "ack":
					_, err = tr.Ack(s.offset)
				}
				if !errors.Is(err, s.err) || (s.err == nil && err != nil) {
					t.Fatalf("step %d %s %d: err %v, want %v", i, s.op, s.offset, err, s.err)
				}
				if got := tr.Committable(); got != s.commit {
					t.Fatalf("step %d %s %d: Committable %d, want %d", i, s.op, s.offset, got, s.commit)
				}
				if got := tr.Pending(); got != s.pending {
					t.Fatalf("step %d %s %d: Pending %d, want %d", i, s.op, s.offset, got, s.pending)
				}
			}
		})
	}
}

func TestAckReportsAdvance(t *testing.T) {
	tr := New(0)
	tr.Add(0)
	tr.Add(1)
	if moved, _ := tr.Ack(1); moved {
		t.Fatal("acking a younger record moved the committable offset")
	}
	if moved, _ := tr.Ack(0); !moved {
		t.Fatal("acking the oldest record did not move the committable offset")
	}
}

// BenchmarkAddAck adds offsets and acknowledges each one 4096 offsets
// behind the newest: offsets one apart, as a topic without compaction or
// transactions has them, and two apart.
func BenchmarkAddAck(b *testing.B) {
	for _, step := range []int64{1, 2} {
		b.Run(fmt.Sprintf("step=%d", step), func(b *testing.B) {
			tr := New(0)
			const window = 4096
			for i := int64(0); b.Loop(); i++ {
				tr.Add(i * step)
				if i >= window {
					tr.Ack((i - window) * step)
				}
			}
		})
	}
}
