package await_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"logpipe/internal/await"
)

// counter is a check that fails with a *Mismatch until its n-th call.
type counter struct{ calls, n int }

func (c *counter) check() error {
	c.calls++
	if c.calls < c.n {
		return await.NotYet(c.calls, c.n)
	}
	return nil
}

func TestPollReturnsWhenTheCheckPasses(t *testing.T) {
	c := &counter{n: 3}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := await.Poll(ctx, time.Millisecond, func(context.Context) error { return c.check() }); err != nil {
		t.Fatalf("Poll: got %v, want nil", err)
	}
	if c.calls != 3 {
		t.Errorf("checks: got %d, want 3", c.calls)
	}
}

func TestPollStopsAtOnceOnStop(t *testing.T) {
	gone := errors.New("the process exited")
	calls := 0
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := await.Poll(ctx, time.Millisecond, func(context.Context) error {
		calls++
		return await.Stop(gone)
	})
	if err != gone {
		t.Errorf("Poll: got %v, want the error given to Stop, %v", err, gone)
	}
	if calls != 1 {
		t.Errorf("checks: got %d, want 1", calls)
	}
}

func TestPollTimeoutHoldsTheLastCheck(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c := &counter{n: 5}
	err := await.Poll(ctx, time.Hour, func(context.Context) error { return c.check() })
	te, ok := errors.AsType[*await.TimeoutError](err)
	if !ok {
		t.Fatalf("Poll: got %v (%T), want a *await.TimeoutError", err, err)
	}
	if te.Checks != 1 || c.calls != 1 {
		t.Errorf("checks: got %d (counted %d), want 1", te.Checks, c.calls)
	}
	if !errors.Is(te.Cause, context.Canceled) {
		t.Errorf("Cause: got %v, want %v", te.Cause, context.Canceled)
	}
	m, ok := errors.AsType[*await.Mismatch](err)
	if !ok || m.Got != 1 || m.Want != 5 {
		t.Errorf("last check: got %#v, want a Mismatch of 1 and 5", m)
	}
	if want := "the last check said: got 1, want 5"; !strings.Contains(err.Error(), want) {
		t.Errorf("error text: got %q, want it to hold %q", err, want)
	}
}

func TestPollDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	c := &counter{n: 1 << 30}
	err := await.Poll(ctx, time.Millisecond, func(context.Context) error { return c.check() })
	te, ok := errors.AsType[*await.TimeoutError](err)
	if !ok {
		t.Fatalf("Poll: got %v, want a *await.TimeoutError", err)
	}
	if !errors.Is(te.Cause, context.DeadlineExceeded) {
		t.Errorf("Cause: got %v, want %v", te.Cause, context.DeadlineExceeded)
	}
	if te.Checks != c.calls || c.calls < 2 {
		t.Errorf("checks: got %d, counted %d, want the same and more than one", te.Checks, c.calls)
	}
}

// recorder is a TB that keeps the failure message. Like testing.T's
// Fatalf, its Fatalf ends the goroutine that calls it.
type recorder struct {
	failed bool
	msg    string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = true
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// eventually runs await.Eventually on a new goroutine, as a test would,
// and returns what it reported.
func eventually(what string, check func() error, opts ...await.Option) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		await.Eventually(r, what, check, opts...)
	}()
	<-done
	return r
}

func TestEventuallyPasses(t *testing.T) {
	c := &counter{n: 4}
	r := eventually("the fourth check", c.check, await.Every(time.Millisecond))
	if r.failed {
		t.Fatalf("Eventually failed: %s", r.msg)
	}
	if c.calls != 4 {
		t.Errorf("checks: got %d, want 4", c.calls)
	}
}

func TestEventuallySaysWhatGotAndWant(t *testing.T) {
	r := eventually("the count to reach 5", func() error { return await.NotYet(2, 5) },
		await.Within(30*time.Millisecond), await.Every(time.Millisecond))
	if !r.failed {
		t.Fatal("Eventually passed on a check that never does")
	}
	for _, want := range []string{"waiting for the count to reach 5: still not there after ", "got 2, want 5"} {
		if !strings.Contains(r.msg, want) {
			t.Errorf("message: got %q, want it to hold %q", r.msg, want)
		}
	}
}

func TestEventuallyWhileEndsTheWait(t *testing.T) {
	calls := 0
	r := eventually("lines to arrive", func() error { calls++; return await.NotYet(0, 10) },
		await.Within(time.Minute), await.While(func() error { return errors.New("shipper exited (exit status 1)") }))
	if !r.failed {
		t.Fatal("Eventually passed on a check that never does")
	}
	if calls != 1 {
		t.Errorf("checks: got %d, want 1 (the While condition ends the wait)", calls)
	}
	for _, want := range []string{"waiting for lines to arrive", "got 0, want 10", "shipper exited (exit status 1)"} {
		if !strings.Contains(r.msg, want) {
			t.Errorf("message: got %q, want it to hold %q", r.msg, want)
		}
	}
}

func TestEventuallyWhileOnlyAfterAFailedCheck(t *testing.T) {
	r := eventually("a check that passes", func() error { return nil },
		await.While(func() error { return errors.New("gone") }))
	if r.failed {
		t.Errorf("Eventually failed on a passing check: %s", r.msg)
	}
}

func TestOptionsAppliesEveryOption(t *testing.T) {
	calls, consulted := 0, 0
	alive := func() error { consulted++; return nil }
	gone := func() error { return errors.New("the second While") }
	r := eventually("nothing", func() error { calls++; return await.NotYet("no", "yes") },
		await.Options(await.Within(time.Minute), await.While(alive), await.While(gone)))
	if !r.failed {
		t.Fatal("Eventually passed on a check that never does")
	}
	if calls != 1 || consulted != 1 {
		t.Errorf("checks and first While: got %d and %d, want 1 and 1", calls, consulted)
	}
	for _, want := range []string{"got no, want yes", "the second While"} {
		if !strings.Contains(r.msg, want) {
			t.Errorf("message: got %q, want it to hold %q", r.msg, want)
		}
	}
}
