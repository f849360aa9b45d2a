package bulk

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestBudget takes bytes up to the limit, waits for a release, gives up
// with its context, and clamps a request larger than the whole budget.
func TestBudget(t *testing.T) {
	b := newBudget(10)
	ctx := context.Background()
	if n, err := b.acquire(ctx, 8); n != 8 || err != nil {
		t.Fatalf("acquire 8 = %d, %v", n, err)
	}
	got := make(chan int64)
	go func() {
		n, _ := b.acquire(ctx, 5) // waits: 8 + 5 > 10
		got <- n
	}()
	// Wait until it waits, then check that it got nothing.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		b.mu.Lock()
		waiting := b.waiting
		b.mu.Unlock()
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("acquire of 5 with 8 of 10 held never waited")
		}
	}
	select {
	case n := <-got:
		t.Fatalf("acquire of 5 passed with 8 of 10 held (%d)", n)
	default:
	}
	b.release(0) // gives nothing back: the waiter stays
	b.release(4)
	select {
	case n := <-got:
		if n != 5 || b.inUse() != 9 {
			t.Fatalf("acquired %d, %d in use", n, b.inUse())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a release of 4 did not let an acquire of 5 through with 4 of 10 held")
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := b.acquire(cctx, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquire past the budget with an ending context: %v", err)
	}
	b.release(9)
	if n, err := b.acquire(ctx, 50); n != 10 || err != nil {
		t.Fatalf("acquire of more than the budget = %d, %v; want it clamped to 10", n, err)
	}
}
