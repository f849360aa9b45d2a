package registry

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"logpipe/shipper/fileid"
)

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "registry", "shipper.json")
	if entries, err := Load(path); err != nil || entries != nil {
		t.Fatalf("missing file: %v %v", entries, err)
	}
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	in := []Entry{{Known: fileid.Known{ID: "fp-x", Dev: 1, Ino: 2, HeadLen: 1024, HeadHash: "ab"}, Path: "/var/log/a", Input: "i", Offset: 42, Updated: now}}
	if err := Save(path, in, now); err != nil {
		t.Fatal(err)
	}
	// A temporary file left by a crash in the middle of a Save is removed.
	left := filepath.Join(filepath.Dir(path), tempPrefix(path)+"123")
	os.WriteFile(left, []byte("{half"), 0o644)
	out, err := Load(path)
	if err != nil || len(out) != 1 || out[0] != in[0] {
		t.Fatalf("round trip: %+v %v", out, err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Fatal("leftover temporary file kept")
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Fatalf("folder holds %d files", len(ents))
	}
	for _, bad := range []string{`{"version":2,"entries":[]}`, `{"version":1,"entries":[{"id":""}]}`, `not json`, `{"version":1,"extra":1}`} {
		os.WriteFile(path, []byte(bad), 0o644)
		if _, err := Load(path); err == nil || !strings.HasPrefix(err.Error(), "registry: ") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func head(s string) []byte {
	b := []byte(s)
	return b[:min(len(b), fileid.FingerprintSize)]
}

// TestLookup walks the registry through rotations and restarts.
func TestLookup(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.json")
	r, err := Open(path, slog.Default(), Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	long := strings.Repeat("x", 2000)
	a := r.Create(fileid.Observed{Dev: 1, Ino: 10, Head: head(long)}, "n1", "/l/access_log", "in", 0, now, now)
	tk := r.Publish(a, 100)
	if got := r.Lookup(fileid.Observed{Dev: 1, Ino: 99, Head: head(long)}); got != a {
		t.Fatal("copy (other inode, same fingerprint) not recognised")
	}
	if got := r.Lookup(fileid.Observed{Dev: 1, Ino: 10, Head: head("new content")}); got != nil {
		t.Fatal("new content on the same inode taken for the old file")
	}

	short := r.Create(fileid.Observed{Dev: 1, Ino: 20, Head: head("abc\n")}, "n2", "/l/error_log", "in", 0, now, now)
	if r.Lookup(fileid.Observed{Dev: 1, Ino: 20, Head: head("abc\ndef\n")}) != short {
		t.Fatal("grown short file not recognised")
	}
	if r.Lookup(fileid.Observed{Dev: 1, Ino: 21, Head: head("abc\ndef\n")}) != nil {
		t.Fatal("a short file's copy recognised while the original is fine")
	}
	// Truncated away while read: its copy is recognised by its head.
	r.Claim(short)
	r.Release(short)
	r.Gone(short)
	if r.Lookup(fileid.Observed{Dev: 1, Ino: 21, Head: head("abc\ndef\n")}) != short {
		t.Fatal("copy of a short file truncated away not recognised")
	}

	// Only acknowledged offsets are saved; a restart sees them alone.
	if r.Remove(a) {
		t.Fatal("removed a file with an event in flight")
	}
	r.Ack(tk)
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	r2, err := Open(path, slog.Default(), Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	got := r2.Lookup(fileid.Observed{Dev: 1, Ino: 10, Head: head(long)})
	if got == nil || r2.Info(got).Acked != 100 || r2.Info(got).Read != 100 || r2.Len() != 2 {
		t.Fatalf("after restart: %+v", r2.Entries())
	}
	if !r2.Remove(got) || r2.Len() != 1 {
		t.Fatal("remove")
	}
}

// TestRunWritesAtMostOncePerInterval drives Run on synctest's clock, with
// an interval of a second: a change is written at once; changes within
// the interval after a write wait for its end and are written together; a
// failed write is tried again an interval later without a new change; and
// Run writes what is left when it stops.
func TestRunWritesAtMostOncePerInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		data := filepath.Join(t.TempDir(), "data")
		path := filepath.Join(data, "registry.json")
		var mu sync.Mutex
		var writes []error
		r, err := Open(path, slog.New(slog.DiscardHandler), Hooks{Written: func(err error, _ time.Duration) {
			mu.Lock()
			writes = append(writes, err)
			mu.Unlock()
		}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, stop := context.WithCancel(t.Context())
		ran := make(chan error, 1)
		go func() { ran <- r.Run(ctx, time.Second) }()

		// expect waits until Run is idle and checks how many writes it
		// has made, whether the last failed, and the offset on disk.
		expect := func(when string, n int, failed bool, offset int64) {
			t.Helper()
			synctest.Wait()
			mu.Lock()
			got := slices.Clone(writes)
			mu.Unlock()
			if len(got) != n || (n > 0 && (got[n-1] != nil) != failed) {
				t.Fatalf("%s: got writes %v, want %d, the last failed: %v", when, got, n, failed)
			}
			if failed {
				return
			}
			entries, err := Load(path)
			if err != nil || len(entries) != 1 || entries[0].Offset != offset {
				t.Fatalf("%s: got entries %+v (%v) on disk, want one at offset %d", when, entries, err, offset)
			}
		}

		now := time.Now()
		st := r.Create(fileid.Observed{Dev: 1, Ino: 10, Head: head("line one\n")}, "n", "/l/a", "in", 0, now, now)
		expect("a first change", 1, false, 0)

		a, b := r.Publish(st, 10), r.Publish(st, 20)
		r.Ack(a)
		expect("a change right after a write", 1, false, 0)
		time.Sleep(500 * time.Millisecond)
		r.Ack(b)
		expect("another change within the interval", 1, false, 0)
		time.Sleep(500 * time.Millisecond)
		expect("the interval's end", 2, false, 20)

		// Saving fails while the registry's folder cannot be made.
		if err := os.RemoveAll(data); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(data, []byte("in the way"), 0o644); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		r.Ack(r.Publish(st, 30))
		expect("a change that cannot be written", 3, true, 0)
		if err := os.Remove(data); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		expect("an interval after the failure, with no new change", 4, false, 30)

		r.Ack(r.Publish(st, 40))
		expect("a change within the interval", 4, false, 30)
		stop()
		if err := <-ran; err != nil {
			t.Fatalf("Run: %v", err)
		}
		expect("Run's end", 5, false, 40)
	})
}
