package lifecycle

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestFirstSignalCancels(t *testing.T) {
	ctx, stop := SignalContext(context.Background(), quiet)
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("context not cancelled by SIGTERM")
	}
	if cause := context.Cause(ctx); cause == nil || cause.Error() != "lifecycle: terminated" {
		t.Fatalf("cause = %v", cause)
	}
}

// TestSecondSignalExits runs the test binary as a child that installs the
// handler and waits; two SIGTERMs must end it with ExitCodeForced.
func TestSecondSignalExits(t *testing.T) {
	if os.Getenv("LIFECYCLE_CHILD") == "1" {
		ctx, stop := SignalContext(context.Background(), quiet)
		defer stop()
		os.Stdout.WriteString("ready\n")
		<-ctx.Done()
		// A drain that would never finish on its own.
		select {}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSecondSignalExits$")
	cmd.Env = append(os.Environ(), "LIFECYCLE_CHILD=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("child did not start: %q %v", buf, err)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	// The child may not have read the first signal before the second comes:
	// repeat until it exits, each send counts.
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != ExitCodeForced {
				t.Fatalf("child ended with %v, want exit %d", err, ExitCodeForced)
			}
			return
		case <-tick.C:
			cmd.Process.Signal(syscall.SIGTERM)
		case <-deadline:
			cmd.Process.Kill()
			t.Fatal("child did not exit after repeated signals")
		}
	}
}

func TestDrain(t *testing.T) {
	if err := Drain(time.Second, func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	want := errors.New("flush failed")
	if err := Drain(time.Second, func(context.Context) error { return want }); err != want {
		t.Fatalf("err = %v", err)
	}
	block := make(chan struct{})
	defer close(block)
	if err := Drain(50*time.Millisecond, func(context.Context) error { <-block; return nil }); !errors.Is(err, ErrDrainTimeout) {
		t.Fatalf("err = %v, want timeout", err)
	}
}
