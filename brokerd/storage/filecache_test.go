package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"logpipe/brokerd/recordbatch"
)

// openFDs counts this process's descriptors open on files under dir, as
// /proc/self/fd lists them.
func openFDs(t testing.TB, dir string) int {
	t.Helper()
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	return countFDs(t, d, dir)
}

// countFDs is openFDs with /proc/self/fd already open as d, for a test
// that has no descriptor left to open it.
func countFDs(t testing.TB, d *os.File, dir string) int {
	t.Helper()
	if _, err := d.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range names {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", name))
		if err == nil && strings.HasPrefix(target, dir+string(filepath.Separator)) {
			n++
		}
	}
	return n
}

// appendStored appends batch and returns it as stored (AppendAsLeader
// patches offsets and epoch into it).
func appendStored(t testing.TB, l *Log, batch []byte, now time.Time) []byte {
	t.Helper()
	mustAppend(t, l, batch, 0, now)
	return batch
}

// checkOpenFiles checks the cache's count of open files against
// /proc/self/fd for the files under root, with no read in progress, and
// that it stays within max.
func checkOpenFiles(t testing.TB, c *FileCache, root string, max int) {
	t.Helper()
	st := c.Stats()
	if got := openFDs(t, root); got != st.Open || st.InUse != 0 || st.Open > max {
		t.Fatalf("open segment files: /proc/self/fd has %d, the cache counts %d (%d in use), want the same and at most %d", got, st.Open, st.InUse, max)
	}
}

// TestFileCacheBoundsOpenFiles writes and reads 40 partitions of several
// segments each through a cache of 5 files: the open files never exceed
// the bound, and files closed and opened again read the same bytes.
func TestFileCacheBoundsOpenFiles(t *testing.T) {
	const maxOpen, parts = 5, 40
	c := NewFileCache(FileCacheConfig{MaxOpen: maxOpen})
	root := t.TempDir()
	clk := newClock()
	cfg := Config{Clock: clk.Now, SegmentBytes: 1000, IndexIntervalBytes: 200}
	logs := make([]*Log, parts)
	stored := make([][]byte, parts)
	for i := range logs {
		l, err := c.Open(filepath.Join(root, fmt.Sprintf("p-%d", i)), cfg)
		if err != nil {
			t.Fatal(err)
		}
		logs[i] = l
		for j := 0; j < 10; j++ {
			stored[i] = append(stored[i], appendStored(t, l, valueBatch(t, recordbatch.CodecNone, j*3, 3, 100, t0.UnixMilli()+int64(j)), clk.Now())...)
		}
		checkOpenFiles(t, c, root, maxOpen)
	}
	if n := len(logs[0].SegmentBases()); n < 3 {
		t.Fatalf("got %d segments per log, want several", n)
	}
	for round := 0; round < 2; round++ {
		for i, l := range logs {
			if got := logBytes(t, l); !bytes.Equal(got, stored[i]) {
				t.Fatalf("round %d, partition %d: read %d bytes that differ from the %d appended", round, i, len(got), len(stored[i]))
			}
			checkOpenFiles(t, c, root, maxOpen)
		}
	}
	for _, l := range logs {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	st := c.Stats()
	if st.Open != 0 || openFDs(t, root) != 0 {
		t.Fatalf("after closing every log: the cache counts %d open files, /proc/self/fd %d; want 0", st.Open, openFDs(t, root))
	}
	if st.Evicted == 0 || st.Opened <= parts {
		t.Fatalf("got %d opens and %d evictions, want files closed and opened again", st.Opened, st.Evicted)
	}
	// Reopened through the same cache after a clean close, the logs read
	// the same.
	for i := range logs {
		l, err := c.Open(filepath.Join(root, fmt.Sprintf("p-%d", i)), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := logBytes(t, l); !bytes.Equal(got, stored[i]) {
			t.Fatalf("reopened partition %d: read %d bytes that differ from the %d appended", i, len(got), len(stored[i]))
		}
		l.Close()
	}
}

// TestFileCacheKeepsFilesInUse holds a read of one partition while others
// go through a cache of one file: the file under the read is not closed,
// not even when its log is deleted, and it is closed once the read is.
func TestFileCacheKeepsFilesInUse(t *testing.T) {
	c := NewFileCache(FileCacheConfig{MaxOpen: 1})
	root := t.TempDir()
	clk := newClock()
	a, err := c.Open(filepath.Join(root, "a-0"), Config{Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	want := appendStored(t, a, valueBatch(t, recordbatch.CodecNone, 0, 5, 300, t0.UnixMilli()), clk.Now())
	r, err := a.Read(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		l, err := c.Open(filepath.Join(root, fmt.Sprintf("b-%d", i)), Config{Clock: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		appendStored(t, l, valueBatch(t, recordbatch.CodecNone, 0, 1, 10, t0.UnixMilli()), clk.Now())
		logBytes(t, l)
		l.Close()
	}
	if err := a.Delete(); err != nil {
		t.Fatal(err)
	}
	if st := c.Stats(); st.InUse != 1 || openFDs(t, root) != 1 {
		t.Fatalf("with one read held: %d files in use, %d open under the folder; want 1 and 1", st.InUse, openFDs(t, root))
	}
	got, err := r.Bytes()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("held read: %d bytes (%v), want the %d appended", len(got), err, len(want))
	}
	// And with sendfile, through a socket.
	if got := sendOverTCP(t, r); !bytes.Equal(got, want) {
		t.Fatalf("sent %d bytes, want the %d appended", len(got), len(want))
	}
	r.Close()
	if st := c.Stats(); st.InUse != 0 || st.Open != 0 || openFDs(t, root) != 0 {
		t.Fatalf("after the read: the cache counts %d open (%d in use), /proc/self/fd %d; want none", st.Open, st.InUse, openFDs(t, root))
	}
}

// TestIdlePartitionHoldsNoDescriptor: a partition unused for the idle
// timeout has its file closed while others are busy, and works as before
// when used again.
func TestIdlePartitionHoldsNoDescriptor(t *testing.T) {
	clk := newClock()
	c := NewFileCache(FileCacheConfig{MaxOpen: 100, IdleTimeout: time.Hour, Clock: clk.Now})
	root := t.TempDir()
	idleDir, busyDir := filepath.Join(root, "idle-0"), filepath.Join(root, "busy-0")
	idle := openLogIn(t, c, idleDir, clk)
	busy := openLogIn(t, c, busyDir, clk)
	defer idle.Close()
	defer busy.Close()
	want := appendStored(t, idle, valueBatch(t, recordbatch.CodecNone, 0, 2, 50, t0.UnixMilli()), clk.Now())
	appendStored(t, busy, valueBatch(t, recordbatch.CodecNone, 0, 2, 50, t0.UnixMilli()), clk.Now())
	if got := openFDs(t, idleDir); got != 1 {
		t.Fatalf("just written: %d descriptors on the partition, want 1", got)
	}
	clk.Advance(2 * time.Hour)
	appendStored(t, busy, valueBatch(t, recordbatch.CodecNone, 2, 2, 50, t0.UnixMilli()), clk.Now())
	if got, busyFDs := openFDs(t, idleDir), openFDs(t, busyDir); got != 0 || busyFDs != 1 {
		t.Fatalf("after two idle hours: %d descriptors on the idle partition, %d on the busy one; want 0 and 1", got, busyFDs)
	}
	if got := logBytes(t, idle); !bytes.Equal(got, want) {
		t.Fatalf("idle partition reads %d bytes, want the %d appended", len(got), len(want))
	}
	want = append(want, appendStored(t, idle, valueBatch(t, recordbatch.CodecNone, 2, 1, 50, t0.UnixMilli()), clk.Now())...)
	if got := logBytes(t, idle); !bytes.Equal(got, want) {
		t.Fatalf("idle partition after a new append reads %d bytes, want %d", len(got), len(want))
	}
}

func openLogIn(t testing.TB, c *FileCache, dir string, clk *fakeClock) *Log {
	t.Helper()
	l, err := c.Open(dir, Config{Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// noFileEnv, when set, runs TestOutOfDescriptors in a child process with
// RLIMIT_NOFILE set to its value.
const noFileEnv = "STORAGE_TEST_RLIMIT_NOFILE"

// TestOutOfDescriptors runs in a child process with a limit of 64 open
// files and a cache bound above it, so only the process limit stops it.
// Opening more partitions than descriptors works (the cache closes idle
// files and tries again). Once every descriptor is held by reads in
// progress, a read, an append and opening a partition fail with
// ErrTooManyOpenFiles, write nothing and leave no descriptor behind; once
// the reads end, all of them work and every record is there.
func TestOutOfDescriptors(t *testing.T) {
	limit := os.Getenv(noFileEnv)
	if limit == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestOutOfDescriptors$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), noFileEnv+"=64")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestOutOfDescriptors") {
			t.Fatalf("child with RLIMIT_NOFILE 64: %v\n%s", err, out)
		}
		t.Logf("child with RLIMIT_NOFILE 64:\n%s", out)
		return
	}
	n, err := strconv.Atoi(limit)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: uint64(n), Max: uint64(n)}); err != nil {
		t.Fatal(err)
	}
	const maxOpen = 10000
	c := NewFileCache(FileCacheConfig{MaxOpen: maxOpen})
	root := t.TempDir()
	fdDir, err := os.Open("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	defer fdDir.Close()
	clk := newClock()
	parts := 2 * n
	logs := make([]*Log, parts)
	stored := make([][]byte, parts)
	for i := range logs {
		logs[i] = openLogIn(t, c, filepath.Join(root, fmt.Sprintf("p-%d", i)), clk)
		stored[i] = appendStored(t, logs[i], valueBatch(t, recordbatch.CodecNone, 0, 2, 40, t0.UnixMilli()), clk.Now())
	}
	if st := c.Stats(); st.Retried == 0 || st.Exhausted != 0 {
		t.Fatalf("opening %d partitions with %d descriptors: %d retries, %d failures; want retries and no failure", parts, n, st.Retried, st.Exhausted)
	}

	var held []ReadResult
	victim := -1
	for i, l := range logs {
		r, err := l.Read(0, 1<<20)
		if err != nil {
			wantErr(t, err, ErrTooManyOpenFiles)
			if msg := fmt.Sprintf("the process limit is %d; log.max.open.files is %d", n, maxOpen); !strings.Contains(err.Error(), msg) {
				t.Fatalf("error %q does not say %q", err, msg)
			}
			victim = i
			break
		}
		held = append(held, r)
	}
	if victim < 0 {
		t.Fatalf("%d reads held with a limit of %d descriptors, want the limit reached", len(held), n)
	}
	t.Logf("%d reads held; the next one failed", len(held))
	v := logs[victim]
	if _, _, err := v.AppendAsLeader(valueBatch(t, recordbatch.CodecNone, 2, 1, 40, t0.UnixMilli()), 0, clk.Now()); !errors.Is(err, ErrTooManyOpenFiles) {
		t.Fatalf("append with no descriptor left: got %v, want %v", err, ErrTooManyOpenFiles)
	}
	if v.LogEndOffset() != 2 {
		t.Fatalf("log end after a failed append: got %d, want 2", v.LogEndOffset())
	}
	before := countFDs(t, fdDir, root)
	newDir := filepath.Join(root, "new-0")
	if _, err := c.Open(newDir, Config{Clock: clk.Now}); !errors.Is(err, ErrTooManyOpenFiles) {
		t.Fatalf("opening a partition with no descriptor left: got %v, want %v", err, ErrTooManyOpenFiles)
	}
	if after := countFDs(t, fdDir, root); after != before {
		t.Fatalf("a failed open left descriptors: %d before, %d after", before, after)
	}

	for _, r := range held {
		r.Close()
	}
	stored[victim] = append(stored[victim], appendStored(t, v, valueBatch(t, recordbatch.CodecNone, 2, 1, 40, t0.UnixMilli()), clk.Now())...)
	nl := openLogIn(t, c, newDir, clk)
	want := appendStored(t, nl, valueBatch(t, recordbatch.CodecNone, 0, 1, 40, t0.UnixMilli()), clk.Now())
	if got := logBytes(t, nl); !bytes.Equal(got, want) {
		t.Fatalf("new partition reads %d bytes, want %d", len(got), len(want))
	}
	nl.Close()
	for i, l := range logs {
		if got := logBytes(t, l); !bytes.Equal(got, stored[i]) {
			t.Fatalf("partition %d reads %d bytes, want the %d appended", i, len(got), len(stored[i]))
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
