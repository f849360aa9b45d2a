package broker_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/producers"
)

// TestIdlePartitionKeepsItsProducerSnapshot stops a broker cleanly three
// times: the first stop writes the producer-state snapshot at the log
// end; the second, with nothing appended since the start, leaves that
// file as it is (no rewrite, no fsync: a node with thousands of idle
// partitions stops at once); the retried batch is still recognised from
// it; after a new append the third stop writes a new snapshot.
func TestIdlePartitionKeepsItsProducerSnapshot(t *testing.T) {
	dir := t.TempDir()
	cb := clStart(t, dir, nil)
	ctx := ctxT(t)
	cl := clClient(t, cb.addr)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "idle"); err != nil {
		t.Fatal(err)
	}
	init, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctx, cl)
	if err != nil || init.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %v %d", err, init.ErrorCode)
	}
	produce := func(addr string, seq int32) (int16, int64) {
		t.Helper()
		c := clClient(t, addr)
		defer c.Close()
		return produceIdempotent(t, ctx, c, "idle", init.ProducerID, 0, seq)
	}
	if code, off := produce(cb.addr, 0); code != 0 || off != 0 {
		t.Fatalf("sequence 0: %v at offset %d, want no error at 0", kerr.ErrorForCode(code), off)
	}
	cl.Close()
	cb.stop()

	snapshot := func(offset int64) (uint64, time.Time) {
		t.Helper()
		fi, err := os.Stat(filepath.Join(dir, "idle-0", producers.SnapshotName(offset)))
		if err != nil {
			t.Fatalf("the snapshot at %d: %v", offset, err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino, fi.ModTime()
	}
	ino, mod := snapshot(1)

	cb = clStart(t, dir, nil)
	cb.stop()
	if ino2, mod2 := snapshot(1); ino2 != ino || !mod2.Equal(mod) {
		t.Errorf("an idle partition's snapshot was rewritten at a stop: inode %d, modified %v; before: %d, %v", ino2, mod2, ino, mod)
	}

	cb = clStart(t, dir, nil)
	if code, off := produce(cb.addr, 0); code != 0 || off != 0 {
		t.Fatalf("the retry of sequence 0 after restarts: %v at offset %d, want its first offset 0 back", kerr.ErrorForCode(code), off)
	}
	if code, off := produce(cb.addr, 1); code != 0 || off != 1 {
		t.Fatalf("sequence 1: %v at offset %d, want no error at 1", kerr.ErrorForCode(code), off)
	}
	cb.stop()
	snapshot(2)
}
