// Package devstack runs the real services of logpipe's development stack:
// an Elasticsearch 8 node and Apache Kafka brokers, both run from jars
// fetched from Maven Central by the project's own pom files, and this
// module's own programs (brokerd). It finds the repository's deploy/ and
// .cache/ folders, picks free ports and builds commands.
//
// Services run as child processes in their own process group and are
// killed if the process that started them dies. devstack does not import
// testing: `make run` (e2e/cmd/stack) and the benchmark commands use it
// as they are, and tests use it through e2e/harness, which adds services
// shared by every test of a test binary.
package devstack

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"logpipe/internal/await"
)

// RepoRoot returns the directory holding logpipe's go.mod, found by walking
// up from the working directory. Tests run in their package directory, so
// this is how devstack finds deploy/ and .cache/ from there.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("devstack: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "deploy", "maven")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("devstack: no logpipe go.mod with deploy/maven above the working directory")
		}
		dir = parent
	}
}

// CacheDir returns <repo>/.cache/<sub>, creating it. The folder is
// git-ignored and survives between runs so jars are downloaded once.
func CacheDir(sub string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, ".cache", sub)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("devstack: %w", err)
	}
	return dir, nil
}

// FreePort returns a loopback TCP port that was free a moment ago, never
// the same one twice in a process. It is picked at random below the
// kernel's ephemeral range (net.ipv4.ip_local_port_range), where the
// kernel takes the local ports of outgoing connections: a port from that
// range may be taken by any client connection while the service meant to
// listen on it is starting, or restarting after a stop.
func FreePort() (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	if lo, hi := portRange(); hi > lo {
		for range 1000 {
			p := lo + rand.IntN(hi-lo)
			if portsGiven[p] {
				continue
			}
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				continue
			}
			l.Close()
			portsGiven[p] = true
			return p, nil
		}
	}
	// No room below the ephemeral range: let the kernel pick.
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("devstack: free port: %w", err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !portsGiven[p] {
			portsGiven[p] = true
			return p, nil
		}
	}
}

var (
	portMu     sync.Mutex
	portsGiven = map[int]bool{}
)

// portRange is where FreePort picks ports: from 20000 up to the start of
// the ephemeral range, or an empty range when that starts lower.
func portRange() (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0, 0
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 0, 0
	}
	start, err := strconv.Atoi(f[0])
	if err != nil {
		return 0, 0
	}
	return 20000, start
}

// Process is a service child process with its output captured to a log file.
type Process struct {
	Name    string // a short name used in errors
	LogPath string // where stdout and stderr go

	cmd      *exec.Cmd
	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
}

// StartProcess starts cmd in its own process group with stdout and stderr
// appended to logPath. The child gets SIGKILL if the starting process dies
// (Linux parent-death signal), so an aborted test run leaves no JVM behind.
func StartProcess(name string, cmd *exec.Cmd, logPath string) (*Process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("devstack: %s log: %w", name, err)
	}
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("devstack: start %s: %w", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// Pid returns the operating system's id of the process.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Stop sends SIGTERM to the process group, waits up to grace, then kills the
// group. It is safe to call more than once.
func (p *Process) Stop(grace time.Duration) {
	p.stopOnce.Do(func() {
		pgid := p.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
	})
}

// Kill sends SIGKILL to the process group at once and waits for it to end,
// as `kill -9` would. It is safe to call more than once.
func (p *Process) Kill() {
	p.stopOnce.Do(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	})
}

// Pause stops the process with SIGSTOP and returns once every one of its
// threads is stopped. kill(2) returns before that: Linux stops a
// multi-threaded process only once one of its threads has been scheduled
// to take the signal, and on a busy machine the others run meanwhile.
func (p *Process) Pause(timeout time.Duration) error {
	pid := p.cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("devstack: SIGSTOP %s: %w", p.Name, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		stopped, err := allThreadsStopped(pid)
		if err != nil || stopped {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("devstack: %s not stopped %v after SIGSTOP", p.Name, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// Resume continues a process stopped by Pause.
func (p *Process) Resume() error {
	if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGCONT); err != nil {
		return fmt.Errorf("devstack: SIGCONT %s: %w", p.Name, err)
	}
	return nil
}

// allThreadsStopped reports whether every thread of process pid is in
// the stopped state ("T" in /proc/PID/task/TID/stat).
func allThreadsStopped(pid int) (bool, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return false, fmt.Errorf("devstack: threads of %d: %w", pid, err)
	}
	for _, task := range tasks {
		stat, err := os.ReadFile(filepath.Join(dir, task.Name(), "stat"))
		if err != nil {
			return false, nil // a thread that just ended: look again
		}
		// The state follows the command name, which is in parentheses
		// and may itself hold ") ".
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 || i+2 >= len(stat) {
			return false, fmt.Errorf("devstack: unexpected %s/%s/stat: %q", dir, task.Name(), stat)
		}
		if stat[i+2] != 'T' {
			return false, nil
		}
	}
	return true, nil
}

// Tail returns the last n bytes of the process log, for error messages.
func (p *Process) Tail(n int64) string {
	return tailFile(p.LogPath, n)
}

func tailFile(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := st.Size() - n
	if off < 0 {
		off = 0
	}
	buf := make([]byte, st.Size()-off)
	_, _ = f.ReadAt(buf, off)
	return string(buf)
}

// Alive returns nil while the process runs; once it has ended, an error
// that says how, with the end of its log. It suits await.While.
func (p *Process) Alive() error { return p.ended(nil) }

// ended is Alive with the last error of a wait on the process, if any, in
// the message.
func (p *Process) ended(last error) error {
	exited, err := p.Exited()
	if !exited {
		return nil
	}
	waited := ""
	if last != nil {
		waited = fmt.Sprintf(" before it was ready (the last check said: %v)", last)
	}
	return fmt.Errorf("devstack: %s exited%s: %v; log %s:\n%s", p.Name, waited, err, p.LogPath, p.Tail(4000))
}

// WaitFor calls check every interval until it returns nil or ctx ends,
// giving up at once if proc (when not nil) exits first. Its errors hold the
// last check's error and, with proc, the end of proc's log.
func WaitFor(ctx context.Context, interval time.Duration, proc *Process, check func(context.Context) error) error {
	err := await.Poll(ctx, interval, func(ctx context.Context) error {
		err := check(ctx)
		if err != nil && proc != nil {
			if gone := proc.ended(err); gone != nil {
				return await.Stop(gone)
			}
		}
		return err
	})
	if _, timedOut := errors.AsType[*await.TimeoutError](err); timedOut {
		if proc != nil {
			return fmt.Errorf("devstack: %s not ready: %w; log %s:\n%s", proc.Name, err, proc.LogPath, proc.Tail(4000))
		}
		return fmt.Errorf("devstack: not ready: %w", err)
	}
	return err
}
