package producers

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestCheckScenarios(t *testing.T) {
	var s State
	type step struct {
		id          int64
		epoch       int16
		first, last int32
		wantDup     bool
		wantErr     error
		offset      int64
	}
	steps := []step{
		{id: 1, epoch: 0, first: 0, last: 4, offset: 0},
		{id: 1, epoch: 0, first: 5, last: 9, offset: 5},
		{id: 1, epoch: 0, first: 5, last: 9, wantDup: true}, // retry of the last batch
		{id: 1, epoch: 0, first: 0, last: 4, wantDup: true}, // retry of an older one
		{id: 1, epoch: 0, first: 12, last: 13, wantErr: ErrOutOfOrder},
		{id: 1, epoch: 0, first: 10, last: 10, offset: 10},
		{id: 2, epoch: 0, first: 3, last: 3, wantErr: ErrOutOfOrder}, // unknown producer mid-stream
		{id: 2, epoch: 0, first: 0, last: 0, offset: 11},
		{id: 1, epoch: 1, first: 4, last: 4, wantErr: ErrOutOfOrder}, // new epoch must restart at 0
		{id: 1, epoch: 1, first: 0, last: 1, offset: 12},
		{id: 1, epoch: 0, first: 11, last: 11, wantErr: ErrFencedEpoch},
		{id: 1, epoch: 1, first: -1, last: 1, wantErr: ErrInvalidBatch},
	}
	for i, st := range steps {
		dup, err := s.Check(st.id, st.epoch, st.first, st.last)
		if !errors.Is(err, st.wantErr) {
			t.Fatalf("step %d: err %v, want %v", i, err, st.wantErr)
		}
		if (dup != nil) != st.wantDup {
			t.Fatalf("step %d: dup %v", i, dup)
		}
		if err == nil && dup == nil {
			n := int64(st.last - st.first)
			s.Update(st.id, st.epoch, Batch{FirstSeq: st.first, LastSeq: st.last, FirstOffset: st.offset, LastOffset: st.offset + n, Timestamp: int64(i)})
		}
	}
	if dup, _ := s.Check(1, 1, 0, 1); dup == nil || dup.FirstOffset != 12 {
		t.Fatalf("dup after epoch bump = %+v", dup)
	}
}

func TestOnlyFiveBatchesRemembered(t *testing.T) {
	var s State
	for i := int32(0); i < 8; i++ {
		s.Update(7, 0, Batch{FirstSeq: i, LastSeq: i, FirstOffset: int64(i), LastOffset: int64(i)})
	}
	if dup, err := s.Check(7, 0, 2, 2); dup != nil || !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("a batch older than five is not a known duplicate: %v %v", dup, err)
	}
	if dup, _ := s.Check(7, 0, 3, 3); dup == nil {
		t.Fatal("fifth newest batch forgotten")
	}
}

func TestSequenceWraps(t *testing.T) {
	var s State
	s.Update(1, 0, Batch{FirstSeq: 1<<31 - 2, LastSeq: 1<<31 - 1})
	if _, err := s.Check(1, 0, 0, 3); err != nil {
		t.Fatalf("wrap refused: %v", err)
	}
}

func TestExpireAndTruncate(t *testing.T) {
	var s State
	s.Update(1, 0, Batch{FirstSeq: 0, LastSeq: 0, FirstOffset: 0, LastOffset: 0, Timestamp: 100})
	s.Update(2, 0, Batch{FirstSeq: 0, LastSeq: 0, FirstOffset: 1, LastOffset: 1, Timestamp: 200})
	s.Update(2, 0, Batch{FirstSeq: 1, LastSeq: 1, FirstOffset: 5, LastOffset: 5, Timestamp: 300})
	if n := s.Expire(150); n != 1 || s.Len() != 1 {
		t.Fatalf("expired %d, left %d", n, s.Len())
	}
	s.TruncateTo(5)
	if dup, _ := s.Check(2, 0, 1, 1); dup != nil {
		t.Fatal("truncated batch still a duplicate")
	}
	if _, err := s.Check(2, 0, 1, 1); err != nil {
		t.Fatalf("after truncation the producer continues from its last kept batch: %v", err)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	dir := t.TempDir()
	var s State
	s.Update(1, 3, Batch{FirstSeq: 0, LastSeq: 9, FirstOffset: 0, LastOffset: 9, Timestamp: 42})
	for _, off := range []int64{10, 20, 30} {
		if err := WriteSnapshot(dir, off, &s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, SnapshotName(10))); !os.IsNotExist(err) {
		t.Fatal("old snapshot not pruned")
	}
	var got State
	off, err := LoadSnapshot(dir, 25, &got)
	if err != nil || off != 20 {
		t.Fatalf("load: %d %v", off, err)
	}
	if _, err := os.Stat(filepath.Join(dir, SnapshotName(30))); !os.IsNotExist(err) {
		t.Fatal("snapshot past the log end not removed")
	}
	if dup, _ := got.Check(1, 3, 0, 9); dup == nil || dup.Timestamp != 42 {
		t.Fatalf("state not restored: %+v", got.Producers())
	}
	// A corrupt snapshot is ignored.
	os.WriteFile(filepath.Join(dir, SnapshotName(20)), []byte("1\n123\n[]"), 0o644)
	var none State
	if off, err := LoadSnapshot(dir, 100, &none); err != nil || off != -1 || none.Len() != 0 {
		t.Fatalf("corrupt snapshot loaded: %d %v", off, err)
	}
}
