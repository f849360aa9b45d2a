package pipeline_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"logpipe/e2e/harness"
	"logpipe/internal/await"
	"logpipe/internal/devstack"
)

// Waits of the make run test: starting three nodes, the indexer's group
// and the shipper, or stopping them all, on two shared cores.
var settle = await.Options(await.Within(3*time.Minute), await.Every(250*time.Millisecond))

// launcher is one `stack run` process.
type launcher struct {
	t    *testing.T
	proc *devstack.Process
	out  string
}

// runStack starts the make run launcher from the repository (it finds the
// configs from its working directory) with args after `run`, its output
// going to the file out.
func runStack(t *testing.T, out string, args ...string) *launcher {
	t.Helper()
	root, err := devstack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(stackBin, append([]string{"run"}, args...)...)
	cmd.Dir = root
	p, err := devstack.StartProcess("stack run", cmd, out)
	if err != nil {
		t.Fatal(err)
	}
	l := &launcher{t: t, proc: p, out: out}
	t.Cleanup(func() {
		p.Stop(2 * time.Minute)
		if t.Failed() {
			t.Logf("the output of %s:\n%s", out, p.Tail(6000))
		}
	})
	return l
}

// output returns what the launcher printed so far.
func (l *launcher) output() string {
	b, _ := os.ReadFile(l.out)
	return string(b)
}

// interrupt sends SIGINT, as Ctrl-C does, and waits for a clean exit.
func (l *launcher) interrupt() {
	l.t.Helper()
	if err := syscall.Kill(l.proc.Pid(), syscall.SIGINT); err != nil {
		l.t.Fatal(err)
	}
	await.Eventually(l.t, "the launcher to exit after SIGINT", func() error {
		if exited, _ := l.proc.Exited(); !exited {
			return await.NotYet("running", "exited")
		}
		return nil
	}, settle)
	if _, err := l.proc.Exited(); err != nil {
		l.t.Fatalf("launcher exit after SIGINT: got %v, want status 0; output:\n%s", err, l.proc.Tail(6000))
	}
	if out := l.output(); !strings.Contains(out, "stack: stopped;") {
		l.t.Errorf("launcher output after SIGINT does not say it stopped:\n%s", out)
	}
}

// killAndAwaitRestart kills pid, the launcher's program, with SIGKILL and
// waits until the launcher says it is running again.
func (l *launcher) killAndAwaitRestart(program string, pid int) {
	l.t.Helper()
	before := strings.Count(l.output(), "stack: "+program+" is running again")
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		l.t.Fatal(err)
	}
	await.Eventually(l.t, "the launcher to start "+program+" again after kill -9", func() error {
		if n := strings.Count(l.output(), "stack: "+program+" is running again"); n == before {
			return await.NotYet("not yet", "running again")
		}
		return nil
	}, settle, await.While(l.proc.Alive))
}

// pidOf returns the pid of the one running program whose executable is
// named exe and one of whose arguments contains arg.
func pidOf(t *testing.T, exe, arg string) int {
	t.Helper()
	dirs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	var found []int
	for _, path := range dirs {
		b, err := os.ReadFile(path)
		if err != nil || len(b) == 0 {
			continue // gone, or a kernel thread
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if filepath.Base(args[0]) != exe || !slices.ContainsFunc(args[1:], func(a string) bool { return strings.Contains(a, arg) }) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(path)))
		if err == nil {
			found = append(found, pid)
		}
	}
	if len(found) != 1 {
		t.Fatalf("processes of %s with an argument holding %q: %v, want one", exe, arg, found)
	}
	return found[0]
}

// events returns how many events the shipper makes of the logs in dir:
// every access line, and every error line that starts with "[" (the
// shipped multiline setting joins the others to the line before).
func events(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	for _, name := range []string{"access_log", "error_log"} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if name == "access_log" || strings.HasPrefix(sc.Text(), "[") {
				n++
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// TestMakeRun runs `stack run` (what `make run` runs) on a run folder of
// its own with the shared Elasticsearch node: it waits until a generated
// line is searchable with its parsed fields, kills a node, the indexer and
// the shipper with SIGKILL in turn (the launcher starts each again), stops
// the launcher with SIGINT (exit status 0, every port closed), and runs it
// again on the same folder without the generator: every event of the logs
// is then indexed exactly once, the shipper resuming from its registry and
// the indexer from its committed offsets (nothing is indexed a second
// time). Last, the shipper killed three times in a row right after being
// started again makes the launcher give up and exit with a failure.
func TestMakeRun(t *testing.T) {
	node := harness.SharedElasticsearch(t)
	es := newSearch(t, node.URL)
	kafkaPort, err := devstack.FreePortBlock(2 * devstack.PipelineNodes)
	if err != nil {
		t.Fatal(err)
	}
	webPort, err := devstack.FreePortBlock(devstack.PipelineNodes + 2)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	run := filepath.Join(dir, "run")
	logs := filepath.Join(run, "logs")
	args := []string{"-dir", run, "-bin", binDir, "-elasticsearch", node.URL,
		"-kafka-port", strconv.Itoa(kafkaPort), "-http-port", strconv.Itoa(webPort)}
	ours := map[string]any{"prefix": map[string]any{"log.file.path": logs + "/"}}

	first := runStack(t, filepath.Join(dir, "first.out"), append(args, "-rate", "20")...)
	await.Eventually(t, "a generated access line to be searchable with its parsed fields", func() error {
		hits := es.all("httpd_access-*", ours, "http.request.method", "url.original", "http.response.status_code", "source.ip")
		for _, h := range hits {
			for _, f := range []string{"http.request.method", "url.original", "http.response.status_code", "source.ip"} {
				if harness.Field(h.Source, f) == nil {
					return await.Stop(fmt.Errorf("document %s in %s has no %s: %v", h.ID, h.Index, f, h.Source))
				}
			}
		}
		if len(hits) == 0 {
			return await.NotYet("no document", "one")
		}
		return nil
	}, settle, await.While(first.proc.Alive))
	today := time.Now().UTC().Format("2006.01.02")
	if out, want := first.output(), fmt.Sprintf("curl -s '%s/httpd_*-%s/_search", node.URL, today); !strings.Contains(out, want) {
		t.Errorf("launcher output: got\n%s\nwant a line with %q", out, want)
	}
	// kill -9 of a node, the indexer and the shipper, in turn, while the
	// generator goes on: the launcher starts each again.
	for _, victim := range []struct{ program, exe, arg string }{
		{"brokerd node 2", "brokerd", filepath.Join(run, "brokerd", "node2") + "/"},
		{"indexer", "indexer", fmt.Sprintf("127.0.0.1:%d", kafkaPort)},
		{"shipper", "shipper", filepath.Join(run, "shipper")},
	} {
		first.killAndAwaitRestart(victim.program, pidOf(t, victim.exe, victim.arg))
	}
	first.interrupt()
	for port := kafkaPort; port < kafkaPort+2*devstack.PipelineNodes; port++ {
		if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second); err == nil {
			c.Close()
			t.Errorf("port %d still accepts connections after the launcher exited", port)
		}
	}

	want := events(t, logs)
	second := runStack(t, filepath.Join(dir, "second.out"), append(args, "-rate", "0")...)
	// The first run may have indexed every event already: the count below
	// then holds at once, so wait for the second run's shipper and indexer
	// to be up first (their metrics are read after it).
	await.Eventually(t, "the second launcher to say logpipe is running", func() error {
		if !strings.Contains(second.output(), "stack: logpipe is running") {
			return await.NotYet("starting", "running")
		}
		return nil
	}, settle, await.While(second.proc.Alive))
	await.Eventually(t, fmt.Sprintf("the %d events of the logs to be indexed", want), func() error {
		n, err := es.count("httpd_*", ours)
		switch {
		case err != nil:
			return err
		case n > want:
			return await.Stop(fmt.Errorf("%d documents for %d events", n, want))
		case n < want:
			return await.NotYet(n, want)
		}
		return nil
	}, settle, await.While(second.proc.Alive))
	metrics, err := devstack.ScrapeMetrics("127.0.0.1:" + strconv.Itoa(webPort+devstack.PipelineNodes+1))
	if err != nil {
		t.Fatal(err)
	}
	if dup := metrics[`logpipe_indexer_documents_total{result="duplicate"}`]; dup != 0 {
		t.Errorf("the second run indexed %v documents a second time, want 0: the shipper or the indexer did not resume where the first run stopped", dup)
	}
	// A program that keeps ending right after being started again is not
	// started again: the run stops, saying so. The first kill ends the
	// shipper the launcher started, the next three the ones it started
	// again.
	shipperArg := filepath.Join(run, "shipper")
	for range 3 {
		second.killAndAwaitRestart("shipper", pidOf(t, "shipper", shipperArg))
	}
	if err := syscall.Kill(pidOf(t, "shipper", shipperArg), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	await.Eventually(t, "the launcher to give up on the shipper and exit", func() error {
		if exited, _ := second.proc.Exited(); !exited {
			return await.NotYet("running", "exited")
		}
		return nil
	}, settle)
	if _, err := second.proc.Exited(); err == nil {
		t.Error("the launcher exited with status 0 after giving up on the shipper, want a failure")
	}
	if out, want := second.output(), "shipper ended 3 times in a row within 30s of being started again; not starting it again"; !strings.Contains(out, want) {
		t.Errorf("launcher output does not say %q:\n%s", want, out)
	}
}
