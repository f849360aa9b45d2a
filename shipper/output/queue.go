package output

import (
	"context"
	"sync"
)

// Queue bounds what has been handed to an output and not yet
// acknowledged, by count and by bytes: Acquire waits while either bound
// is reached, which is how a slow or absent broker makes harvesters wait
// instead of filling memory. An event bigger than the byte bound still
// goes through when the queue is empty. It is safe for concurrent use.
type Queue struct {
	maxEvents int
	maxBytes  int64

	mu     sync.Mutex
	events int
	bytes  int64
	freed  chan struct{} // closed (and replaced) when room is made
}

// NewQueue returns a queue of at most maxEvents events and maxBytes bytes.
func NewQueue(maxEvents int, maxBytes int64) *Queue {
	return &Queue{maxEvents: max(maxEvents, 1), maxBytes: max(maxBytes, 1), freed: make(chan struct{})}
}

// Acquire takes room for one event of size bytes, waiting for it until ctx
// ends.
func (q *Queue) Acquire(ctx context.Context, size int64) error {
	for {
		q.mu.Lock()
		if q.events == 0 || (q.events < q.maxEvents && q.bytes+size <= q.maxBytes) {
			q.events++
			q.bytes += size
			q.mu.Unlock()
			return nil
		}
		ch := q.freed
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Release gives back the room of one event of size bytes.
func (q *Queue) Release(size int64) {
	q.mu.Lock()
	q.events--
	q.bytes -= size
	close(q.freed)
	q.freed = make(chan struct{})
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
	for {
		q.mu.Lock()
		if q.events == 0 {
			q.mu.Unlock()
			return nil
		}
		ch := q.freed
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}
