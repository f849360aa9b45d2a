package bulk

import (
	"context"
	"sync"
)

// budget bounds the bytes of documents the sink holds (gathered, being
// sent, waiting for a retry). Acquire blocks while the budget is spent, which
// is how a slow or absent Elasticsearch slows the consumer down instead of
// letting memory grow.
type budget struct {
	mu   sync.Mutex
	max  int64
	used int64
	// wake is closed, and replaced, when bytes are released while someone
	// waits; waiting says someone took it since it was last replaced.
	wake    chan struct{}
	waiting bool
}

func newBudget(max int64) *budget {
	return &budget{max: max, wake: make(chan struct{})}
}

// acquire takes n bytes, waiting until they are free or ctx ends. A request
// larger than the whole budget is clamped to it, so one huge document can
// still pass when nothing else is held. It returns the amount taken, to be
// given back to release.
func (b *budget) acquire(ctx context.Context, n int64) (int64, error) {
	if n > b.max {
		n = b.max
	}
	for {
		b.mu.Lock()
		if b.used+n <= b.max {
			b.used += n
			b.mu.Unlock()
			return n, nil
		}
		wake := b.wake
		b.waiting = true
		b.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// release gives back n bytes taken by acquire.
func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	if b.waiting {
		close(b.wake)
		b.wake = make(chan struct{})
		b.waiting = false
	}
	b.mu.Unlock()
}

// inUse returns the bytes held.
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
