package shipper_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"logpipe/internal/await"
)

// writer appends numbered lines to a log file at a steady rate, as a web
// server would, and lets rotations pause it.
type writer struct {
	t    *testing.T
	path string

	mu  sync.Mutex // held while a rotation works on the files
	f   *os.File
	n   int // the last line number written
	pad int // extra bytes per line
}

func newWriter(t *testing.T, path string) *writer {
	w := &writer{t: t, path: path}
	w.reopen()
	return w
}

// accessLog is where the file tests start: a temporary folder for the
// shipper, a logs folder in it with access_log written by a writer, and a
// topic unique to the test.
type accessLog struct {
	dir   string // the shipper's folder
	logs  string // dir/logs
	path  string // logs/access_log
	topic string
	w     *writer
}

func newAccessLog(t *testing.T) accessLog {
	t.Helper()
	a := accessLog{dir: t.TempDir(), topic: topicName(t)}
	a.logs = filepath.Join(a.dir, "logs")
	if err := os.Mkdir(a.logs, 0o755); err != nil {
		t.Fatal(err)
	}
	a.path = filepath.Join(a.logs, "access_log")
	a.w = newWriter(t, a.path)
	return a
}

// config returns a shipper configuration that ships access_log and its
// rotated copies in the logs folder to the topic on b; input is more YAML
// for the input, each line indented by two spaces.
func (a accessLog) config(b broker, input string) string {
	return fmt.Sprintf(`
filebeat.inputs:
- type: log
  paths: ["%s/access_log*"]
%soutput.kafka:
  hosts: [%q]
  topic: %s
`, a.logs, input, b.bootstrap, a.topic)
}

// reopen opens path for appending, as a server does after rotation.
// Callers hold mu (or are the constructor).
func (w *writer) reopen() {
	if w.f != nil {
		w.f.Close()
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		w.t.Fatal(err)
	}
	w.f = f
}

func line(n, pad int) string {
	return fmt.Sprintf("%08d GET /item/%d HTTP/1.1 200 %s\n", n, n, strings.Repeat("x", 30+pad))
}

func lineNumber(msg string) (int, bool) {
	var n int
	_, err := fmt.Sscanf(msg, "%08d ", &n)
	return n, err == nil
}

// write appends the next line.
func (w *writer) write() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.n++
	if _, err := w.f.WriteString(line(w.n, w.pad)); err != nil {
		w.t.Error(err)
	}
}

// run writes a line every interval until ctx ends.
func (w *writer) run(ctx context.Context, every time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				w.write()
			}
		}
	}()
	return done
}

// size returns the live file's size.
func (w *writer) size() int64 {
	st, err := w.f.Stat()
	if err != nil {
		w.t.Fatal(err)
	}
	return st.Size()
}

// waitSize waits until the live file holds at least n bytes.
func (w *writer) waitSize(n int64) {
	w.t.Helper()
	await.Eventually(w.t, fmt.Sprintf("%s to grow to %d bytes", w.path, n), func() error {
		w.mu.Lock()
		sz := w.size()
		w.mu.Unlock()
		if sz < n {
			return await.NotYet(sz, fmt.Sprintf("at least %d", n))
		}
		return nil
	}, await.Within(waitTime), await.Every(10*time.Millisecond))
}

func inode(t *testing.T, path string) uint64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// holdsDeleted reports whether process pid has a deleted file open whose
// name was path.
func holdsDeleted(pid int, path string) bool {
	return hasOpen(pid, path+" (deleted)")
}

// holds reports whether process pid has the file at path open.
func holds(pid int, path string) bool {
	return hasOpen(pid, path)
}

// hasOpen reports whether one of process pid's open files is named target
// in /proc/<pid>/fd.
func hasOpen(pid int, target string) bool {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		t, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err == nil && t == target {
			return true
		}
	}
	return false
}

// TestRotationTorture writes numbered lines at a steady rate while the
// file is rotated by rename ten times, by copytruncate ten times, deleted
// and recreated, and replaced by a new file on the same inode. Every line
// must reach the topic, and exactly once after de-duplicating by event.id.
func TestRotationTorture(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b broker) {
		a := newAccessLog(t)
		dir, logs, path, topic, w := a.dir, a.logs, a.path, a.topic, a.w
		c := consume(t, b.bootstrap, topic)
		s := startShipper(t, dir, a.config(b, "  tags: [access]\n"))
		ctx, stop := context.WithCancel(context.Background())
		done := w.run(ctx, time.Millisecond)
		defer func() { stop(); <-done }()

		// Rename rotation: the server keeps writing to the renamed file for
		// a moment before it reopens the name.
		for i := 1; i <= 10; i++ {
			w.waitSize(3000)
			w.mu.Lock()
			if err := os.Rename(path, fmt.Sprintf("%s.r%02d", path, i)); err != nil {
				t.Fatal(err)
			}
			w.mu.Unlock()
			time.Sleep(20 * time.Millisecond) // lines still go to the old file
			w.mu.Lock()
			w.reopen()
			w.mu.Unlock()
		}
		// Copytruncate: copied straight to the rotated name (which the
		// paths match, so the copy appears while it is written), then
		// truncated. The writer pauses so no line falls between copy and
		// truncation, which no shipper could see.
		for i := 1; i <= 10; i++ {
			w.waitSize(3000) // past the fingerprint size
			w.mu.Lock()
			copyFile(t, path, fmt.Sprintf("%s.c%02d", path, i))
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
			w.mu.Unlock()
		}
		// Delete and recreate.
		w.waitSize(3000)
		w.mu.Lock()
		os.Remove(path)
		w.reopen()
		w.mu.Unlock()

		// A new file on the inode of a deleted one, while both are short
		// (identity by inode and head). The shipper must have the first
		// one open before it goes: lines of a file created and deleted
		// before any shipper looks are beyond reach (a loaded machine can
		// delay the look by more than the few milliseconds this file
		// lives).
		w.waitSize(300)
		w.mu.Lock() // the writer pauses: the file stays short
		await.Eventually(t, "the shipper to open the recreated file", func() error {
			if !holds(s.proc.Pid(), path) {
				return await.NotYet("not open", "open")
			}
			return nil
		}, s.alive())
		old := inode(t, path)
		os.Remove(path)
		w.f.Close()
		await.Eventually(t, "the shipper to let the deleted file go", func() error {
			if holdsDeleted(s.proc.Pid(), path) {
				return await.NotYet("still open", "closed")
			}
			return nil
		}, s.alive())
		reused := false
		for i := 0; i < 200 && !reused; i++ {
			probe := filepath.Join(logs, fmt.Sprintf("probe-%d", i))
			f, err := os.Create(probe)
			if err != nil {
				t.Fatal(err)
			}
			f.Close()
			if inode(t, probe) == old {
				os.Rename(probe, path)
				reused = true
			}
		}
		for i := 0; i < 200; i++ {
			os.Remove(filepath.Join(logs, fmt.Sprintf("probe-%d", i)))
		}
		w.f = nil
		w.reopen()
		w.mu.Unlock()
		t.Logf("new file on the deleted file's inode: %v", reused)

		w.waitSize(3000)
		stop()
		<-done
		total := w.n
		c.waitLines(s, total)
		s.stop() // drains: every line read is acknowledged before exit
		recs := c.records()
		checkExactlyOnce(t, recs, total)
		t.Logf("%d lines written, %d records", total, len(recs))
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// checkExactlyOnce checks that lines 1..total are each in the records,
// and that after de-duplicating by event.id each is there once.
func checkExactlyOnce(t *testing.T, recs []record, total int) {
	t.Helper()
	byID := map[string]int{}
	ids := map[int]map[string]bool{}
	for _, r := range recs {
		n, ok := lineNumber(r.Message)
		if !ok {
			t.Fatalf("unexpected message %q", r.Message)
		}
		if m, dup := byID[r.Event.Event.ID]; dup && m != n {
			t.Fatalf("event.id %s names lines %d and %d", r.Event.Event.ID, m, n)
		}
		byID[r.Event.Event.ID] = n
		if ids[n] == nil {
			ids[n] = map[string]bool{}
		}
		ids[n][r.Event.Event.ID] = true
	}
	var missing, twice []int
	for n := 1; n <= total; n++ {
		switch len(ids[n]) {
		case 0:
			missing = append(missing, n)
		case 1:
		default:
			twice = append(twice, n)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d lines missing: %v", len(missing), head(missing))
	}
	if len(twice) > 0 {
		t.Errorf("%d lines under more than one event.id: %v", len(twice), head(twice))
		for _, n := range head(twice) {
			for _, r := range recs {
				if m, _ := lineNumber(r.Message); m == n {
					t.Logf("line %d: id %s path %s offset %d", n, r.Event.Event.ID, r.Log.File.Path, r.Log.Offset)
				}
			}
		}
	}
}

func head(ns []int) []int {
	if len(ns) > 10 {
		return ns[:10]
	}
	return ns
}
