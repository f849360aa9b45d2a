// Package heapfloor keeps the Go garbage collector from starting a cycle
// before the heap has reached a given size.
//
// The collector starts a cycle once the heap has grown by GOGC percent
// over what the previous cycle left live. brokerd's live heap is a few
// MiB (records stay in the page cache, buffers are pooled), so under load
// it collected about four times a second, and each cycle's marking took
// CPU from requests in flight (with a 32 MiB floor, a steady produce's
// p99 was about a fifth lower on a 2-CPU machine). A floor makes
// the collector wait until the heap holds the larger of the floor and
// what GOGC asks for; once the live heap is large enough for GOGC to ask
// for more than the floor, the floor changes nothing.
//
// The floor is kept by setting GOGC after every cycle from the heap the
// cycle left live, so it costs at most the floor in memory, whatever the
// size of the live heap. GOGC=off turns it off; a GOMEMLIMIT still
// bounds the heap, as the runtime applies it over any GOGC.
package heapfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// runtimeMinimum is the Go runtime's smallest heap goal at GOGC=100,
// 4 MiB, which it scales with GOGC: with the live heap under it, a GOGC
// reaches the floor through this minimum rather than through the live
// heap.
const runtimeMinimum = 4 << 20

// liveHeap is the runtime metric of the heap the last cycle marked live.
const liveHeap = "/gc/heap/live:bytes"

// Floor is a floor under the collector's heap goal, set by Set.
type Floor struct {
	bytes int64
	base  int // GOGC when the floor was set

	mu      sync.Mutex
	stopped bool
	percent int // GOGC as last set
	sample  []metrics.Sample
}

// sentinel is allocated unreachable after each cycle so that its cleanup
// runs after the next one; it is large enough not to share a block with
// other small objects (which would delay its cleanup).
type sentinel struct{ _ [64]byte }

// Set puts the collector's heap goal at bytes or above and keeps it there
// until Stop. It does nothing when bytes is 0 or less or the collector is
// off (GOGC=off).
func Set(bytes int64) *Floor {
	base := debug.SetGCPercent(100)
	debug.SetGCPercent(base)
	f := &Floor{bytes: bytes, base: base, percent: base, sample: []metrics.Sample{{Name: liveHeap}}}
	if bytes <= 0 || base < 0 {
		f.stopped = true
		return f
	}
	f.adjust()
	return f
}

// Stop ends the floor and gives the collector back the GOGC it had when
// the floor was set.
func (f *Floor) Stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return
	}
	f.stopped = true
	debug.SetGCPercent(f.base)
	f.percent = f.base
}

// Percent returns the GOGC the floor last set (GOGC itself when the floor
// is off).
func (f *Floor) Percent() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.percent
}

// adjust sets GOGC for the live heap the last cycle left and arranges to
// run again after the next cycle.
func (f *Floor) adjust() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return
	}
	metrics.Read(f.sample)
	var live int64
	if v := f.sample[0].Value; v.Kind() == metrics.KindUint64 {
		live = int64(min(v.Uint64(), 1<<62))
	}
	if p := percent(f.base, f.bytes, live); p != f.percent {
		debug.SetGCPercent(p)
		f.percent = p
	}
	runtime.AddCleanup(new(sentinel), (*Floor).adjust, f)
}

// percent returns the smallest GOGC, and no less than base, whose heap
// goal reaches floor when a cycle has left live bytes live. The runtime's
// goal is the larger of live × (1 + GOGC/100) and runtimeMinimum ×
// GOGC/100 (it also counts goroutine stacks and globals with the live
// heap, which only raises it).
func percent(base int, floor, live int64) int {
	ceilDiv := func(a, b int64) int64 { return (a + b - 1) / b }
	p := ceilDiv(floor*100, runtimeMinimum)
	if live > 0 {
		p = min(p, ceilDiv((floor-live)*100, live))
	}
	return max(base, int(p))
}
