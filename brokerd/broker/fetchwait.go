package broker

import (
	"slices"
	"sync"
	"sync/atomic"
)

// A long-polling fetch waits for the partitions it reads to change. It
// registers one waiter on each of them before it reads them, then blocks on
// that one waiter; a change notifies every waiter registered on the
// partition, under the partition's watch lock. A change that happens after
// the registration therefore always finds the waiter, whether the fetch is
// still reading, about to block or blocked, and no goroutine is needed per
// partition or per wait.

// waiter is one long poll's wake-up: a channel with room for one signal, so
// that a notification arriving while its fetch is not receiving is kept,
// and several arriving before it receives count as one.
type waiter chan struct{}

func newWaiter() waiter { return make(waiter, 1) }

// wake signals w without blocking; a signal already pending is enough.
func (w waiter) wake() {
	select {
	case w <- struct{}{}:
	default:
	}
}

// watchers are the waiters registered on one partition. The zero value is
// ready to use. mu is a leaf lock: it is taken under Broker.mu and under
// partition.appendMu, never the other way round.
type watchers struct {
	mu  sync.Mutex
	set map[waiter]struct{}
	// dropped is set once the partition is no longer hosted: nothing will
	// notify it again, so a waiter registered later is woken at once.
	dropped bool
}

// watch registers w: every later notify of p wakes it, until unwatch.
func (p *partition) watch(w waiter) {
	p.watchers.mu.Lock()
	defer p.watchers.mu.Unlock()
	if p.watchers.dropped {
		w.wake()
		return
	}
	if p.watchers.set == nil {
		p.watchers.set = map[waiter]struct{}{}
	}
	p.watchers.set[w] = struct{}{}
}

// unwatch removes w from p's waiters.
func (p *partition) unwatch(w waiter) {
	p.watchers.mu.Lock()
	delete(p.watchers.set, w)
	p.watchers.mu.Unlock()
}

// notify wakes every waiter registered on p. Call it after any change of p
// that a fetch may be waiting for; today that is an append.
func (p *partition) notify() {
	p.watchers.mu.Lock()
	defer p.watchers.mu.Unlock()
	p.watchers.wakeAll()
}

// drop marks p as no longer hosted (its topic was deleted) and wakes its
// waiters, which then find it gone.
func (p *partition) drop() {
	p.watchers.mu.Lock()
	defer p.watchers.mu.Unlock()
	p.watchers.dropped = true
	p.watchers.wakeAll()
}

// wakeAll wakes every registered waiter; mu is held.
func (ws *watchers) wakeAll() {
	for w := range ws.set {
		w.wake()
	}
}

// fetchWait is a long-polling fetch's registration: its waiter and the
// partitions it is registered on.
type fetchWait struct {
	w       waiter
	watched []*partition
}

// add registers the fetch's waiter on p, once.
func (f *fetchWait) add(p *partition) {
	if slices.Contains(f.watched, p) {
		return
	}
	p.watch(f.w)
	f.watched = append(f.watched, p)
}

// release unregisters the waiter from every partition.
func (f *fetchWait) release() {
	for _, p := range f.watched {
		p.unwatch(f.w)
	}
}

// beforeFetchWait, when set (by tests only), is called by a fetch that
// found too little data, after it registered on its partitions and read
// them again, just before it blocks.
var beforeFetchWait atomic.Pointer[func()]
