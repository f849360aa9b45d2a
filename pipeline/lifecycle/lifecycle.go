// Package lifecycle gives every logpipe binary the same handling of
// process signals and shutdown: the first SIGINT or SIGTERM cancels the
// root context so the binary can drain; a second one exits at once.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// ExitCodeForced is the exit status after a second signal.
const ExitCodeForced = 130

// exit is os.Exit, replaced in tests.
var exit = os.Exit

// SignalContext returns a context that is cancelled by the first SIGINT or
// SIGTERM. A second signal logs and exits the process with ExitCodeForced
// without waiting for the drain. stop releases the signal handlers.
func SignalContext(parent context.Context, log *slog.Logger) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			log.Info("signal received, shutting down; send it again to exit at once", "signal", sig.String())
			cancel(fmt.Errorf("lifecycle: %s", sig))
		case <-done:
			return
		}
		select {
		case sig := <-ch:
			log.Warn("second signal, exiting without draining", "signal", sig.String())
			exit(ExitCodeForced)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		select {
		case <-done:
		default:
			close(done)
		}
		cancel(nil)
	}
}

// ErrDrainTimeout is returned by Drain when the drain did not finish in time.
var ErrDrainTimeout = errors.New("lifecycle: drain did not finish in time")

// Drain runs fn with a context that ends after timeout, and returns fn's
// error, or ErrDrainTimeout (wrapping nothing else) if fn was still running
// when the time was up. fn should stop promptly when its context ends; Drain
// does not wait for it beyond the timeout.
func Drain(timeout time.Duration, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res := make(chan error, 1)
	go func() { res <- fn(ctx) }()
	select {
	case err := <-res:
		return err
	case <-ctx.Done():
		return ErrDrainTimeout
	}
}
