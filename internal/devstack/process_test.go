package devstack_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"logpipe/internal/await"
	"logpipe/internal/devstack"
)

// startShell runs script with sh as a devstack process named name, its
// log in a temporary folder, and stops it when the test ends.
func startShell(t *testing.T, name, script string) *devstack.Process {
	t.Helper()
	p, err := devstack.StartProcess(name, exec.Command("sh", "-c", script), filepath.Join(t.TempDir(), name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Kill() })
	return p
}

// logHolds waits until p's log holds s.
func logHolds(t *testing.T, p *devstack.Process, s string) {
	t.Helper()
	await.Eventually(t, fmt.Sprintf("%s's log to hold %q", p.Name, s), func() error {
		if tail := p.Tail(4000); !strings.Contains(tail, s) {
			return await.NotYet(fmt.Sprintf("%q", tail), fmt.Sprintf("a log holding %q", s))
		}
		return nil
	})
}

// TestWaitForEndsWhenTheProcessExits: a process that dies while WaitFor
// waits for it ends the wait at once, with its exit status, its log and
// the last check in the error.
func TestWaitForEndsWhenTheProcessExits(t *testing.T) {
	p := startShell(t, "failing", "echo cannot bind; exit 3")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := devstack.WaitFor(ctx, 5*time.Millisecond, p, func(context.Context) error {
		return await.NotYet("no listener", "a listener")
	})
	if err == nil {
		t.Fatal("WaitFor: got nil, want an error")
	}
	if _, timedOut := errors.AsType[*await.TimeoutError](err); timedOut {
		t.Fatalf("WaitFor: got a timeout (%v), want the exit noticed at once", err)
	}
	for _, want := range []string{"failing exited", "exit status 3", "cannot bind", "got no listener, want a listener"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("WaitFor's error: got %q, want it to hold %q", err, want)
		}
	}
	if p.Alive() == nil {
		t.Error("Alive: got nil after the exit, want an error")
	}
}

// TestWaitForTimeout: a process that never gets ready makes WaitFor time
// out with the last check and the process's log; Alive holds while it
// runs, and Stop ends it.
func TestWaitForTimeout(t *testing.T) {
	p := startShell(t, "slow", "echo still starting; exec sleep 600")
	logHolds(t, p, "still starting")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := devstack.WaitFor(ctx, time.Millisecond, p, func(context.Context) error {
		return await.NotYet("no answer", "an answer")
	})
	if _, timedOut := errors.AsType[*await.TimeoutError](err); !timedOut {
		t.Fatalf("WaitFor: got %v, want an *await.TimeoutError", err)
	}
	for _, want := range []string{"slow not ready", "got no answer, want an answer", "still starting"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("WaitFor's error: got %q, want it to hold %q", err, want)
		}
	}
	if err := p.Alive(); err != nil {
		t.Fatalf("Alive: got %v while it runs, want nil", err)
	}
	p.Stop(10 * time.Second)
	if exited, _ := p.Exited(); !exited {
		t.Error("Exited: got false after Stop, want true")
	}
}

// TestStopEndsTheProcessGroup: Stop signals the whole group, so a child
// that the process started ends too.
func TestStopEndsTheProcessGroup(t *testing.T) {
	p := startShell(t, "parent", "sleep 600 & echo child $!; wait")
	logHolds(t, p, "child ")
	line := p.Tail(4000)
	child, err := strconv.Atoi(strings.TrimSpace(line[strings.LastIndex(line, "child ")+len("child "):]))
	if err != nil {
		t.Fatalf("child pid in %q: %v", line, err)
	}
	p.Stop(10 * time.Second)
	// The ended child is reparented and reaped by init; until then it is
	// a zombie.
	await.Eventually(t, fmt.Sprintf("child %d to end", child), func() error {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", child))
		if err != nil {
			return nil
		}
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if state := fields[0]; state != "Z" {
			return await.NotYet("state "+state, "gone or a zombie (Z)")
		}
		return nil
	})
}
