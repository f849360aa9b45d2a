package storage

import (
	"runtime"
	"testing"

	"logpipe/brokerd/recordbatch"
)

// TestReadAllocations bounds what a fetch's Read of a log costs in memory:
// the header reader's 8 KiB buffer comes from a pool, so in steady state
// a read allocates only its small bookkeeping, whatever the range. It
// counts bytes over many reads, not time.
func TestReadAllocations(t *testing.T) {
	clk := newClock()
	l := openLog(t, partitionDir(t), Config{Clock: clk.Now, SegmentBytes: 64 << 20, IndexIntervalBytes: 1 << 20})
	defer l.Close()
	var first []int64
	for i := range 200 {
		b := valueBatch(t, recordbatch.CodecNone, i*10, 10, 200, t0.UnixMilli())
		base, _ := mustAppend(t, l, b, 0, clk.Now())
		first = append(first, base)
	}
	read := func(i int) {
		r, err := l.Read(first[i%len(first)], 64<<10)
		if err != nil || r.Size == 0 {
			t.Fatalf("read at %d: %d bytes, %v", first[i%len(first)], r.Size, err)
		}
		r.Close()
	}
	// One P, so that what a read gives back to the pool is what the next
	// one takes.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	read(0)
	const n = 1000
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range n {
		read(i)
	}
	runtime.ReadMemStats(&after)
	perRead := float64(after.TotalAlloc-before.TotalAlloc) / n
	t.Logf("%.0f bytes and %.1f allocations per read", perRead, float64(after.Mallocs-before.Mallocs)/n)
	// The race detector's sync.Pool drops a quarter of what it is given.
	limit := 512.0
	if raceEnabled {
		limit = headerChunk/4 + 512
	}
	if perRead > limit {
		t.Errorf("a read allocates %.0f bytes, want at most %.0f (the header buffer pooled)", perRead, limit)
	}
}
