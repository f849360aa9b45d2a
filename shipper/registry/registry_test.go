package registry

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
