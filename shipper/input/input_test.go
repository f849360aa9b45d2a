package input

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"logpipe/internal/await"
	"logpipe/pipeline/config"
	"logpipe/pipeline/event"
	"logpipe/shipper/multiline"
	"logpipe/shipper/output"
	"logpipe/shipper/publish"
	"logpipe/shipper/registry"
)

// waitTime bounds every wait for the shipper to do something.
const waitTime = 15 * time.Second

// collector is the writer behind the console output: it decodes each JSON
// line the output writes.
type collector struct {
	mu     sync.Mutex
	events []event.Event
	raw    []map[string]any
	pr     *io.PipeReader
	pw     *io.PipeWriter
	done   chan struct{}
}

func newCollector() *collector {
	c := &collector{done: make(chan struct{})}
	c.pr, c.pw = io.Pipe()
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(c.pr)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			var ev event.Event
			var raw map[string]any
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				panic(fmt.Sprintf("bad JSON from the console output: %v: %s", err, sc.Bytes()))
			}
			_ = json.Unmarshal(sc.Bytes(), &raw)
			c.mu.Lock()
			c.events = append(c.events, ev)
			c.raw = append(c.raw, raw)
			c.mu.Unlock()
		}
	}()
	return c
}

func (c *collector) snapshot() []event.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]event.Event(nil), c.events...)
}

// messages returns the messages received, in order.
func (c *collector) messages() []string {
	var out []string
	for _, e := range c.snapshot() {
		out = append(out, e.Message)
	}
	return out
}

// rig runs a Manager over a registry in a temporary folder with the
// console output.
type rig struct {
	t       *testing.T
	dir     string
	regPath string
	reg     *registry.Registry
	out     *collector
	cancel  context.CancelFunc
	done    chan error
	hooks   *counters
}

type counters struct {
	mu         sync.Mutex
	lines      int
	filtered   int
	harvesters int
}

func (c *counters) get() (lines, filtered, harvesters int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lines, c.filtered, c.harvesters
}

func newRig(t *testing.T) *rig {
	dir := t.TempDir()
	return &rig{t: t, dir: dir, regPath: filepath.Join(dir, "data", "registry", "shipper.json")}
}

func (r *rig) path(name string) string { return filepath.Join(r.dir, name) }

// settings resolves an input config, with paths relative to the rig's
// folder.
func (r *rig) settings(c Config) *Settings {
	r.t.Helper()
	for i, p := range c.Paths {
		c.Paths[i] = r.path(p)
	}
	s, err := c.Resolve()
	if err != nil {
		r.t.Fatal(err)
	}
	return s
}

func (r *rig) start(inputs ...*Settings) {
	r.t.Helper()
	log := slog.New(slog.NewTextHandler(testWriter{r.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	reg, err := registry.Open(r.regPath, log, registry.Hooks{})
	if err != nil {
		r.t.Fatal(err)
	}
	r.reg = reg
	r.out = newCollector()
	r.hooks = &counters{}
	sink := output.NewConsole(r.out.pw, func(acks []publish.Ack) {
		reg.AckEach(len(acks), func(i int) registry.Ticket { return acks[i].Receipt.(registry.Span).Ticket(acks[i].Index) })
	})
	m, err := NewManager(inputs, Options{
		Registry: reg, Sink: sink, Log: log,
		Host:  Host{Name: "test-host", ID: "test-host"},
		Agent: event.Agent{Type: "shipper", Version: "test"},
		Hooks: Hooks{
			LinesRead:  func(n int) { r.hooks.mu.Lock(); r.hooks.lines += n; r.hooks.mu.Unlock() },
			Filtered:   func() { r.hooks.mu.Lock(); r.hooks.filtered++; r.hooks.mu.Unlock() },
			Harvesters: func(d int) { r.hooks.mu.Lock(); r.hooks.harvesters += d; r.hooks.mu.Unlock() },
		},
	})
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.done = make(chan error, 1)
	go func() { r.done <- m.Run(ctx) }()
	r.t.Cleanup(r.stop)
}

// stop ends the manager and writes the registry, as a shutdown does.
func (r *rig) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	if err := <-r.done; err != nil {
		r.t.Error(err)
	}
	if err := r.reg.Flush(); err != nil {
		r.t.Error(err)
	}
	r.out.pw.Close()
	<-r.out.done
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// The checks below are for await.Eventually.

// messagesAre is a check: the messages received are exactly want, in order.
func (r *rig) messagesAre(want ...string) func() error {
	return func() error {
		if got := r.out.messages(); !slices.Equal(got, want) {
			return await.NotYet(fmt.Sprintf("%q", got), fmt.Sprintf("%q", want))
		}
		return nil
	}
}

// messageCount is a check: n messages have been received.
func (r *rig) messageCount(n int) func() error {
	return func() error {
		if got := r.out.messages(); len(got) != n {
			return await.NotYet(fmt.Sprintf("%d messages %q", len(got), got), fmt.Sprintf("%d messages", n))
		}
		return nil
	}
}

// hasLines is a check: lines from..to (see numbered) have all been
// received, whatever else has been.
func (r *rig) hasLines(from, to int) func() error {
	return func() error {
		seen := map[int]bool{}
		for _, e := range r.out.snapshot() {
			var n int
			if _, err := fmt.Sscanf(e.Message, "line %d", &n); err == nil {
				seen[n] = true
			}
		}
		var missing []int
		for i := from; i <= to; i++ {
			if !seen[i] {
				missing = append(missing, i)
			}
		}
		if len(missing) > 0 {
			return await.NotYet(fmt.Sprintf("%d of them missing, the first line %d", len(missing), missing[0]), fmt.Sprintf("lines %d to %d", from, to))
		}
		return nil
	}
}

// registryHolds is a check: the registry knows n files.
func (r *rig) registryHolds(n int) func() error {
	return func() error {
		if got := r.reg.Len(); got != n {
			return await.NotYet(fmt.Sprintf("%d files", got), fmt.Sprintf("%d files", n))
		}
		return nil
	}
}

// harvesting is a check: n files are open for reading.
func (r *rig) harvesting(n int) func() error {
	return func() error {
		if _, _, got := r.hooks.get(); got != n {
			return await.NotYet(fmt.Sprintf("%d open", got), fmt.Sprintf("%d open", n))
		}
		return nil
	}
}

// waitSettled waits until every file in the rig's folder that pattern
// matches is known to the registry under its path and acknowledged to its
// end, with no event in flight. Then no line is left to read, and the
// harvesters must have read n lines, as many as events arrived: a line
// read twice (a file taken for a new one) shows in the count.
func (r *rig) waitSettled(pattern string, n int) {
	r.t.Helper()
	await.Eventually(r.t, "every file read to its end and acknowledged", func() error {
		paths, err := filepath.Glob(r.path(pattern))
		if err != nil {
			return await.Stop(err)
		}
		acked := map[string]int64{}
		for _, e := range r.reg.Entries() {
			acked[e.Path] = max(acked[e.Path], e.Offset)
		}
		for _, p := range paths {
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			if off, ok := acked[p]; !ok || off != fi.Size() {
				return await.NotYet(fmt.Sprintf("%s acknowledged to %d (known: %v)", p, off, ok), fmt.Sprintf("%d bytes", fi.Size()))
			}
		}
		for _, st := range r.reg.States("") {
			if info := r.reg.Info(st); info.Pending > 0 {
				return await.NotYet(fmt.Sprintf("%d events of %s in flight", info.Pending, info.Path), "none in flight")
			}
		}
		return nil
	}, await.Within(waitTime))
	if lines, _, _ := r.hooks.get(); lines != n || len(r.out.snapshot()) != n {
		r.t.Fatalf("got %d lines read and %d events, want %d of each", lines, len(r.out.snapshot()), n)
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func numbered(from, to int) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		fmt.Fprintf(&b, "line %06d %s\n", i, strings.Repeat("x", 40))
	}
	return b.String()
}

// checkNumbered checks that the events hold lines from..to, each once by
// event id, with the ids unique per line.
func checkNumbered(t *testing.T, events []event.Event, from, to int) {
	t.Helper()
	byID := map[string]string{}
	count := map[int]int{}
	for _, e := range events {
		if prev, ok := byID[e.Event.ID]; ok {
			if prev != e.Message {
				t.Fatalf("id %s names two lines: %q and %q", e.Event.ID, prev, e.Message)
			}
			continue
		}
		byID[e.Event.ID] = e.Message
		var n int
		if _, err := fmt.Sscanf(e.Message, "line %d", &n); err != nil {
			t.Fatalf("unexpected message %q", e.Message)
		}
		count[n]++
	}
	var missing, dup []int
	for i := from; i <= to; i++ {
		switch count[i] {
		case 0:
			missing = append(missing, i)
		case 1:
		default:
			dup = append(dup, i)
		}
	}
	if len(missing) > 0 || len(dup) > 0 || len(count) != to-from+1 {
		t.Fatalf("missing %v, duplicated (different ids) %v, %d distinct lines for %d", missing, dup, len(count), to-from+1)
	}
}

func TestReadsExistingAndNewLines(t *testing.T) {
	r := newRig(t)
	appendFile(t, r.path("access_log"), "one\r\ntwo\n")
	r.start(r.settings(Config{Paths: []string{"access_log"}, Tags: []string{"access"}, Fields: map[string]any{"log_topic": "t"}}))
	await.Eventually(t, "the messages to be exactly these", r.messagesAre("one", "two"), await.Within(waitTime))
	appendFile(t, r.path("access_log"), "three\npart")
	await.Eventually(t, "the messages to be exactly these", r.messagesAre("one", "two", "three"), await.Within(waitTime))
	appendFile(t, r.path("access_log"), "ial\n")
	await.Eventually(t, "the messages to be exactly these", r.messagesAre("one", "two", "three", "partial"), await.Within(waitTime))

	evs := r.out.snapshot()
	e := evs[1]
	if e.Log.File.Path != r.path("access_log") || e.Log.Offset != 5 || len(e.Tags) != 1 || e.Tags[0] != "access" ||
		e.Input.Type != "log" || e.Host.Name != "test-host" || e.Agent.Type != "shipper" || e.Fields["log_topic"] != "t" {
		t.Fatalf("event = %+v", e)
	}
	if e.Event.ID != event.ID("test-host", r.reg.Entries()[0].ID, 5) {
		t.Fatalf("event id %s is not the stable id", e.Event.ID)
	}
	r.stop()
	entries, err := registry.Load(r.regPath)
	if err != nil || len(entries) != 1 || entries[0].Offset != 23 || entries[0].Path != r.path("access_log") {
		t.Fatalf("registry %+v %v", entries, err)
	}
}

// TestRestartResumes checks that a restart continues where the
// acknowledged offset says, and that tail_files only applies to files
// found at the very first start.
func TestRestartResumes(t *testing.T) {
	r := newRig(t)
	appendFile(t, r.path("a.log"), numbered(1, 10))
	in := Config{Paths: []string{"*.log"}, TailFiles: true}
	r.start(r.settings(in))
	// The first scan must have seen a.log before it grows.
	await.Eventually(t, "a.log found", r.registryHolds(1), await.Within(waitTime))
	appendFile(t, r.path("a.log"), numbered(11, 12))
	await.Eventually(t, "lines 11 and 12", r.hasLines(11, 12), await.Within(waitTime))
	appendFile(t, r.path("b.log"), numbered(13, 14)) // appears later: from its start
	await.Eventually(t, "b.log", r.hasLines(13, 14), await.Within(waitTime))
	checkNumbered(t, r.out.snapshot(), 11, 14)
	r.stop()

	appendFile(t, r.path("a.log"), numbered(15, 16))
	r2 := newRig(t)
	r2.dir, r2.regPath = r.dir, r.regPath
	in.Paths = []string{"*.log"}
	r2.start(r2.settings(in))
	await.Eventually(t, "lines 15 and 16", r2.hasLines(15, 16), await.Within(waitTime))
	appendFile(t, r.path("b.log"), numbered(17, 17))
	await.Eventually(t, "line 17", r2.hasLines(17, 17), await.Within(waitTime))
	r2.waitSettled("*.log", 3)
	checkNumbered(t, r2.out.snapshot(), 15, 17)
}

func TestRenameRotation(t *testing.T) {
	r := newRig(t)
	log := r.path("access_log")
	r.start(r.settings(Config{Paths: []string{"access_log*"}}))
	n := 0
	for rot := 0; rot < 5; rot++ {
		appendFile(t, log, numbered(n+1, n+30))
		n += 30
		// logrotate: shift the old ones, rename the live file, and keep
		// writing to the old descriptor for a moment.
		for i := 4; i >= 1; i-- {
			os.Rename(fmt.Sprintf("%s.%d", log, i), fmt.Sprintf("%s.%d", log, i+1))
		}
		f, err := os.OpenFile(log, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(log, log+".1"); err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(f, numbered(n+1, n+5))
		f.Close()
		n += 5
		appendFile(t, log, numbered(n+1, n+5))
		n += 5
	}
	await.Eventually(t, "every line", r.hasLines(1, n), await.Within(waitTime))
	r.waitSettled("access_log*", n)
	checkNumbered(t, r.out.snapshot(), 1, n)
}

// copyTruncate rotates path as logrotate's copytruncate does.
func copyTruncate(t *testing.T, path, to string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to+".tmp", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(to+".tmp", to); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
}

func TestCopyTruncateWithCopyMatched(t *testing.T) {
	r := newRig(t)
	log := r.path("access_log")
	r.start(r.settings(Config{Paths: []string{"access_log*"}, ExcludeFiles: []string{`\.tmp$`}}))
	n := 0
	for rot := 0; rot < 5; rot++ {
		appendFile(t, log, numbered(n+1, n+40)) // over 1024 bytes: fingerprinted
		n += 40
		if rot%2 == 0 {
			// Sometimes let the shipper read it all first, sometimes not.
			await.Eventually(t, "lines so far", r.hasLines(1, n), await.Within(waitTime))
		}
		copyTruncate(t, log, log+".1")
	}
	appendFile(t, log, numbered(n+1, n+3))
	n += 3
	await.Eventually(t, "every line", r.hasLines(1, n), await.Within(waitTime))
	r.waitSettled("access_log*", n)
	checkNumbered(t, r.out.snapshot(), 1, n)
}

func TestTruncateInPlace(t *testing.T) {
	r := newRig(t)
	log := r.path("app.log")
	appendFile(t, log, numbered(1, 30))
	r.start(r.settings(Config{Paths: []string{"app.log"}}))
	await.Eventually(t, "first lines", r.hasLines(1, 30), await.Within(waitTime))
	if err := os.Truncate(log, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, log, numbered(31, 32))
	await.Eventually(t, "lines after truncation", r.hasLines(1, 32), await.Within(waitTime))
	checkNumbered(t, r.out.snapshot(), 1, 32)
}

func TestDeleteRecreateAndInodeReuse(t *testing.T) {
	r := newRig(t)
	log := r.path("app.log")
	appendFile(t, log, numbered(1, 5))
	r.start(r.settings(Config{Paths: []string{"app.log"}}))
	await.Eventually(t, "first file", r.hasLines(1, 5), await.Within(waitTime))
	var st syscall.Stat_t
	if err := syscall.Stat(log, &st); err != nil {
		t.Fatal(err)
	}
	oldIno := st.Ino
	n := 5
	reused := false
	for i := 0; i < 5; i++ {
		if err := os.Remove(log); err != nil {
			t.Fatal(err)
		}
		// Wait for the harvester to let the deleted file go, so that its
		// inode may be handed out again.
		await.Eventually(t, "the deleted file to be closed", r.harvesting(0), await.Within(waitTime))
		appendFile(t, log, numbered(n+1, n+3)) // shorter than what was read: same offset would skip
		n += 3
		if err := syscall.Stat(log, &st); err != nil {
			t.Fatal(err)
		}
		reused = reused || st.Ino == oldIno
		oldIno = st.Ino
		await.Eventually(t, "recreated file", r.hasLines(1, n), await.Within(waitTime))
	}
	checkNumbered(t, r.out.snapshot(), 1, n)
	t.Logf("inode reused at least once: %v", reused)
}

func TestMultilineTimeoutAndFilters(t *testing.T) {
	r := newRig(t)
	log := r.path("error_log")
	r.start(r.settings(Config{
		Paths:        []string{"error_log"},
		Multiline:    &multiline.Config{Pattern: `^\[`, Negate: true, Match: "after", Timeout: config.Duration(300 * time.Millisecond)},
		ExcludeLines: []string{"healthcheck"},
	}))
	appendFile(t, log, "[1] boom\njava.lang.Exception: x\n\tat a.b(C.java:1)\n[2] healthcheck ok\n[3] last\n\tat d.e(F.java:2)\n")
	// [3] is completed by the timeout, not by a following line.
	await.Eventually(t, "the messages to be exactly these", r.messagesAre("[1] boom\njava.lang.Exception: x\n\tat a.b(C.java:1)", "[3] last\n\tat d.e(F.java:2)"), await.Within(waitTime))
	evs := r.out.snapshot()
	if strings.Join(evs[0].Log.Flags, ",") != "multiline" {
		t.Fatalf("flags %v", evs[0].Log.Flags)
	}
	if _, filtered, _ := r.hooks.get(); filtered != 1 {
		t.Fatalf("filtered %d", filtered)
	}
	r.stop()
	entries, _ := registry.Load(r.regPath)
	if entries[0].Offset != int64(len("[1] boom\njava.lang.Exception: x\n\tat a.b(C.java:1)\n[2] healthcheck ok\n[3] last\n\tat d.e(F.java:2)\n")) {
		t.Fatalf("registry offset %d: filtered and multiline lines must count as done", entries[0].Offset)
	}
}

func TestCloseInactiveFlushesPartialLineAndReopens(t *testing.T) {
	r := newRig(t)
	log := r.path("app.log")
	appendFile(t, log, "complete\nno newline yet")
	r.start(r.settings(Config{Paths: []string{"app.log"}, CloseInactive: config.Duration(500 * time.Millisecond), ScanFrequency: config.Duration(200 * time.Millisecond)}))
	await.Eventually(t, "the messages to be exactly these", r.messagesAre("complete", "no newline yet"), await.Within(waitTime))
	await.Eventually(t, "the file to be closed", r.harvesting(0), await.Within(waitTime))
	appendFile(t, log, "more\n")
	await.Eventually(t, "the messages to be exactly these", r.messagesAre("complete", "no newline yet", "more"), await.Within(waitTime))
}

func TestBadInputKeepsOthersWorking(t *testing.T) {
	r := newRig(t)
	if err := os.Mkdir(r.path("dir.log"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(r.path("fifo.log"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("loop.log", r.path("loop.log")); err != nil {
		t.Fatal(err)
	}
	appendFile(t, r.path("empty.log"), "")
	appendFile(t, r.path("bad.log"), "ok\xff\xfe\x00end\n")
	appendFile(t, r.path("long.log"), strings.Repeat("y", 5000)+"\nshort\n")
	r.start(r.settings(Config{Paths: []string{"*.log"}, MaxBytes: 1000}))
	await.Eventually(t, "good files", r.messageCount(3), await.Within(waitTime))
	got := map[string]event.Event{}
	for _, e := range r.out.snapshot() {
		got[filepath.Base(e.Log.File.Path)+":"+strconv.FormatInt(e.Log.Offset, 10)] = e
	}
	if e := got["bad.log:0"]; e.Message != "ok\uFFFD\x00end" {
		t.Fatalf("bad.log: %q", e.Message)
	}
	if e := got["long.log:0"]; len(e.Message) != 1000 || strings.Join(e.Log.Flags, ",") != "truncated" {
		t.Fatalf("long line: %d bytes, flags %v", len(e.Message), e.Log.Flags)
	}
	if e := got["long.log:5001"]; e.Message != "short" {
		t.Fatalf("after the long line: %+v", got)
	}
}

func TestHarvesterLimitAndCleanRemoved(t *testing.T) {
	r := newRig(t)
	for i := 0; i < 4; i++ {
		appendFile(t, r.path(fmt.Sprintf("f%d.log", i)), fmt.Sprintf("line %d\n", i+1))
	}
	r.start(r.settings(Config{Paths: []string{"*.log"}, HarvesterLimit: 1, CloseEOF: true, ScanFrequency: config.Duration(100 * time.Millisecond)}))
	await.Eventually(t, "all four files, one at a time", r.hasLines(1, 4), await.Within(waitTime))
	if r.reg.Len() != 4 {
		t.Fatalf("registry knows %d files", r.reg.Len())
	}
	os.Remove(r.path("f0.log"))
	os.Remove(r.path("f1.log"))
	await.Eventually(t, "removed files forgotten", r.registryHolds(2), await.Within(waitTime))
	var ids []string
	for _, e := range r.reg.Entries() {
		ids = append(ids, filepath.Base(e.Path))
	}
	sort.Strings(ids)
	if strings.Join(ids, ",") != "f2.log,f3.log" {
		t.Fatalf("left: %v", ids)
	}
}
