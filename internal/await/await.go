// Package await waits for a condition by checking it again and again until
// it holds, a deadline passes, or waiting has become pointless. A check
// reports what it saw: nil once the awaited state is there, otherwise an
// error that says what it got and what it wants (see NotYet), so a wait
// that runs out of time fails with those words rather than "timed out".
//
// Poll is the core, for code that waits under a context, such as the
// service launchers of internal/devstack. Eventually is the form for tests.
// It takes any value with Helper and Fatalf (*testing.T, *testing.B), so
// that this package does not import testing and programs may use it.
package await

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Poll calls check at once and then every interval until check returns
// nil, returns an error made by Stop, or ctx ends. It returns nil, the
// error that was given to Stop, or a *TimeoutError holding check's last
// error.
func Poll(ctx context.Context, interval time.Duration, check func(context.Context) error) error {
	start := time.Now()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for tries := 1; ; tries++ {
		err := check(ctx)
		if err == nil {
			return nil
		}
		if s, ok := errors.AsType[*stopError](err); ok {
			return s.err
		}
		select {
		case <-ctx.Done():
			return &TimeoutError{Waited: time.Since(start), Checks: tries, Cause: ctx.Err(), Last: err}
		case <-tick.C:
		}
	}
}

// Stop wraps err so that Poll returns err at once instead of checking
// again: a check returns it when the state it waits for can no longer come,
// for example because the process that was to bring it has exited.
func Stop(err error) error { return &stopError{err: err} }

type stopError struct{ err error }

// Error returns the wrapped error's text.
func (s *stopError) Error() string { return s.err.Error() }

func (s *stopError) Unwrap() error { return s.err }

// TimeoutError is Poll's error when its context ends before the check
// passes. It unwraps to the last check's error.
type TimeoutError struct {
	// Waited is the time from the first check to giving up.
	Waited time.Duration
	// Checks is how many times the check ran.
	Checks int
	// Cause is the context's error: a deadline or a cancellation.
	Cause error
	// Last is what the last check returned.
	Last error
}

// Error says how long Poll waited and what the last check said.
func (e *TimeoutError) Error() string {
	return fmt.Sprintf("await: gave up after %v and %d checks (%v); the last check said: %v",
		e.Waited.Round(time.Millisecond), e.Checks, e.Cause, e.Last)
}

// Unwrap returns the last check's error.
func (e *TimeoutError) Unwrap() error { return e.Last }

// Mismatch is a check's error for a value that is not yet the awaited one.
// Its text, "got G, want W", is meant to follow what was awaited in a
// longer message, so it has no package prefix.
type Mismatch struct {
	// Got is the value the check saw.
	Got any
	// Want is the value awaited, or words that describe it, such as
	// "at least 300".
	Want any
}

// Error returns "got G, want W".
func (m *Mismatch) Error() string { return fmt.Sprintf("got %v, want %v", m.Got, m.Want) }

// NotYet returns a *Mismatch: the check saw got and waits for want.
func NotYet(got, want any) error { return &Mismatch{Got: got, Want: want} }

// TB is the part of testing.TB that Eventually uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Option changes how Eventually waits.
type Option func(*settings)

type settings struct {
	within, every time.Duration
	while         []func() error
}

// Defaults of Eventually: how long it waits and how often it checks.
const (
	DefaultWithin = time.Minute
	DefaultEvery  = 20 * time.Millisecond
)

// Within sets how long Eventually waits in all; DefaultWithin otherwise.
func Within(d time.Duration) Option { return func(s *settings) { s.within = d } }

// Every sets the time between checks; DefaultEvery otherwise.
func Every(d time.Duration) Option { return func(s *settings) { s.every = d } }

// While ends the wait at once, failing the test with alive's error, when
// a check fails and alive returns an error: the thing that was to bring
// the awaited state has gone (a process exited, a connection closed).
func While(alive func() error) Option {
	return func(s *settings) { s.while = append(s.while, alive) }
}

// Options makes one Option of several, applied in order: a test package's
// usual way of waiting, such as
//
//	var settle = await.Options(await.Within(2*time.Minute), await.Every(200*time.Millisecond))
func Options(opts ...Option) Option {
	return func(s *settings) {
		for _, o := range opts {
			o(s)
		}
	}
}

// Eventually calls check until it returns nil. If it still fails once the
// wait's time is up, or a While condition ends the wait, Eventually fails t
// with a message that names what was awaited (what, such as "the topic to
// have 5 partitions") and what the last check said, its got and want when
// it returned a *Mismatch.
func Eventually(t TB, what string, check func() error, opts ...Option) {
	t.Helper()
	s := settings{within: DefaultWithin, every: DefaultEvery}
	for _, o := range opts {
		o(&s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.within)
	defer cancel()
	var last error // the last check's error when a While condition ended the wait
	err := Poll(ctx, s.every, func(context.Context) error {
		err := check()
		if err == nil {
			return nil
		}
		for _, alive := range s.while {
			if gone := alive(); gone != nil {
				last = err
				return Stop(gone)
			}
		}
		return err
	})
	switch te, timedOut := errors.AsType[*TimeoutError](err); {
	case err == nil:
	case timedOut:
		t.Fatalf("waiting for %s: still not there after %v (%d checks): %v", what, te.Waited.Round(time.Millisecond), te.Checks, te.Last)
	case last != nil:
		t.Fatalf("waiting for %s: the last check said: %v; and the wait cannot succeed any more: %v", what, last, err)
	default:
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
