package output

import (
	"container/list"
	"context"
	"sync"
)

// Queue bounds what has been handed to an output and not yet
// acknowledged, by count and by bytes: Acquire waits while either bound
// is reached, which is how a slow or absent broker makes harvesters wait
// instead of filling memory. Room is taken and given back a batch at a
// time. A batch bigger than a bound still goes through when the queue is
// empty.
//
// Waiting callers get room in the order they asked for it, and Release
// wakes only those it has room for, so a hundred harvesters waiting on one
// queue neither starve each other nor all wake at every release. It is
// safe for concurrent use.
type Queue struct {
	maxEvents int
	maxBytes  int64

	mu     sync.Mutex
	events int
	bytes  int64
	// waiters are the blocked Acquire calls, oldest first; empty are the
	// blocked WaitEmpty calls.
	waiters list.List // of *waiter
	empty   []chan struct{}
}

// waiter is one blocked Acquire. ready is closed once its room is taken
// for it.
type waiter struct {
	n     int
	size  int64
	ready chan struct{}
}

// NewQueue returns a queue of at most maxEvents events and maxBytes bytes.
func NewQueue(maxEvents int, maxBytes int64) *Queue {
	return &Queue{maxEvents: max(maxEvents, 1), maxBytes: max(maxBytes, 1)}
}

// fits reports whether n events of size bytes fit now. Callers hold mu.
func (q *Queue) fits(n int, size int64) bool {
	return q.events == 0 || (q.events+n <= q.maxEvents && q.bytes+size <= q.maxBytes)
}

// Acquire takes room for n events of size bytes in all, waiting for it
// until ctx ends.
func (q *Queue) Acquire(ctx context.Context, n int, size int64) error {
	q.mu.Lock()
	if q.waiters.Len() == 0 && q.fits(n, size) {
		q.events += n
		q.bytes += size
		q.mu.Unlock()
		return nil
	}
	w := &waiter{n: n, size: size, ready: make(chan struct{})}
	elem := q.waiters.PushBack(w)
	q.mu.Unlock()

	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	q.mu.Lock()
	select {
	case <-w.ready:
		// Granted meanwhile: give the room back.
		q.events -= n
		q.bytes -= size
	default:
		q.waiters.Remove(elem)
	}
	q.grant()
	q.mu.Unlock()
	return ctx.Err()
}

// grant gives room to the waiters it fits, oldest first, and wakes
// WaitEmpty callers when nothing is held. Callers hold mu.
func (q *Queue) grant() {
	for e := q.waiters.Front(); e != nil; e = q.waiters.Front() {
		w := e.Value.(*waiter)
		if !q.fits(w.n, w.size) {
			break
		}
		q.events += w.n
		q.bytes += w.size
		q.waiters.Remove(e)
		close(w.ready)
	}
	if q.events == 0 && len(q.empty) > 0 {
		for _, ch := range q.empty {
			close(ch)
		}
		q.empty = q.empty[:0]
	}
}

// Release gives back the room of n events of size bytes in all.
func (q *Queue) Release(n int, size int64) {
	q.mu.Lock()
	q.events -= n
	q.bytes -= size
	q.grant()
	q.mu.Unlock()
}

// Len returns the events and bytes held now.
func (q *Queue) Len() (events int, bytes int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.events, q.bytes
}

// WaitEmpty waits until nothing is held, or ctx ends.
func (q *Queue) WaitEmpty(ctx context.Context) error {
	q.mu.Lock()
	if q.events == 0 {
		q.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	q.empty = append(q.empty, ch)
	q.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
