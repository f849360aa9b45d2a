// Package harness starts the real services that logpipe's tests and local
// runs talk to: an Elasticsearch 8 node and Apache Kafka brokers, both run
// from jars fetched from Maven Central by the project's own pom files.
//
// A test binary that needs a service asks for it once (see SharedElasticsearch
// and SharedKafka) and wraps its TestMain with Main, which stops every service
// the binary started when the tests end. Services run as child processes of
// the test binary in their own process group and are killed if it dies.
package harness

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
	"testing"
	"time"
)

// RepoRoot returns the directory holding logpipe's go.mod, found by walking
// up from the working directory. Tests run in their package directory, so
// this is how the harness finds deploy/ and .cache/.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("harness: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "deploy", "maven")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("harness: no logpipe go.mod with deploy/maven above the working directory")
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
		return "", fmt.Errorf("harness: %w", err)
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
			return 0, fmt.Errorf("harness: free port: %w", err)
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
		return nil, fmt.Errorf("harness: %s log: %w", name, err)
	}
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("harness: start %s: %w", name, err)
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

// WaitFor calls check every interval until it returns nil, ctx ends, or
// proc (if not nil) exits. It returns the last check error on timeout.
func WaitFor(ctx context.Context, interval time.Duration, proc *Process, check func(context.Context) error) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	var last error
	for {
		if last = check(ctx); last == nil {
			return nil
		}
		if proc != nil {
			if exited, err := proc.Exited(); exited {
				return fmt.Errorf("harness: %s exited before it was ready (%v); log %s:\n%s", proc.Name, err, proc.LogPath, proc.Tail(4000))
			}
		}
		select {
		case <-ctx.Done():
			if proc != nil {
				return fmt.Errorf("harness: %s not ready: %v (last check: %v); log %s:\n%s", proc.Name, ctx.Err(), last, proc.LogPath, proc.Tail(4000))
			}
			return fmt.Errorf("harness: not ready: %v (last check: %v)", ctx.Err(), last)
		case <-t.C:
		}
	}
}

var (
	cleanupMu sync.Mutex
	cleanups  []func()
)

// atExit registers f to run when Main's tests have finished.
func atExit(f func()) {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	cleanups = append(cleanups, f)
}

// StopAll stops every shared service this process started, newest first.
func StopAll() {
	cleanupMu.Lock()
	fs := cleanups
	cleanups = nil
	cleanupMu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// Main runs the tests of a package and then stops the shared services they
// started. Use it as the body of TestMain:
//
//	func TestMain(m *testing.M) { harness.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	StopAll()
	os.Exit(code)
}
