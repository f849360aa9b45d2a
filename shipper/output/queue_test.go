package output

import (
	"context"
	"errors"
	"testing"

	"logpipe/internal/await"
)

// waiting reports how many Acquire calls are blocked.
func (q *Queue) waiting() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.waiters.Len()
}

// blocked is a check for await.Eventually: n Acquire calls are blocked.
func (q *Queue) blocked(n int) func() error {
	return func() error {
		if got := q.waiting(); got != n {
			return await.NotYet(got, n)
		}
		return nil
	}
}

// TestQueueFIFO fills the queue, blocks three callers in turn, and checks
// that room goes to them in the order they asked, each only once there is
// room for it.
func TestQueueFIFO(t *testing.T) {
	q := NewQueue(10, 1000)
	ctx := context.Background()
	if err := q.Acquire(ctx, 10, 100); err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 3)
	for i, n := range []int{6, 2, 2} {
		go func() {
			if err := q.Acquire(ctx, n, 10); err != nil {
				t.Error(err)
			}
			got <- i
		}()
		await.Eventually(t, "the caller to block", q.blocked(i+1))
	}
	q.Release(4, 40) // room for 4: not enough for the first (6); the others wait behind it
	if n := q.waiting(); n != 3 {
		t.Fatalf("%d callers still wait, want 3", n)
	}
	q.Release(2, 20) // room for 6: the first only
	if i := <-got; i != 0 {
		t.Fatalf("caller %d got room before caller 0", i)
	}
	if n := q.waiting(); n != 2 {
		t.Fatalf("%d callers still wait, want 2", n)
	}
	q.Release(4, 40) // room for the other two
	<-got
	<-got
	if n, b := q.Len(); n != 10 || b != 30 {
		t.Fatalf("queue holds %d events, %d bytes", n, b)
	}
}

// TestQueueCancelAndOversize: a cancelled caller gives up its turn (and
// the callers behind it move up), and a batch bigger than the queue goes
// through once the queue is empty.
func TestQueueCancelAndOversize(t *testing.T) {
	q := NewQueue(4, 1000)
	if err := q.Acquire(context.Background(), 3, 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { first <- q.Acquire(ctx, 4, 0) }()
	await.Eventually(t, "the first caller to block", q.blocked(1))
	second := make(chan error, 1)
	go func() { second <- q.Acquire(context.Background(), 1, 0) }()
	await.Eventually(t, "the second caller to block", q.blocked(2))
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Acquire returned %v", err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	q.Release(4, 0)
	if err := q.Acquire(context.Background(), 50, 5000); err != nil {
		t.Fatal(err)
	}
	empty := make(chan error, 1)
	go func() { empty <- q.WaitEmpty(context.Background()) }()
	q.Release(50, 5000)
	if err := <-empty; err != nil {
		t.Fatal(err)
	}
	if n, b := q.Len(); n != 0 || b != 0 {
		t.Fatalf("queue holds %d events, %d bytes", n, b)
	}
}
