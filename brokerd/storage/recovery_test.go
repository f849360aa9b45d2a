package storage

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"logpipe/brokerd/recordbatch"
)

// copyDir copies a partition folder's files: with the source log still
// open, the copy is what a crash would have left (without the
// clean-shutdown marker).
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// buildLog appends n batches of 3 records to a log with small segments and
// returns it with the size of each batch.
func buildLog(t testing.TB, dir string, clk *fakeClock, n int) (*Log, []int) {
	t.Helper()
	l := openLog(t, dir, Config{Clock: clk.Now, SegmentBytes: 4000, IndexIntervalBytes: 400})
	var sizes []int
	for i := 0; i < n; i++ {
		in := valueBatch(t, codecs[i%len(codecs)], i*3, 3, 90, t0.UnixMilli()+int64(i))
		mustAppend(t, l, in, int32(1+i/10), clk.Now())
		sizes = append(sizes, len(in))
	}
	return l, sizes
}

func lastSegment(t testing.TB, dir string) string {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var logs []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), logSuffix) {
			logs = append(logs, e.Name())
		}
	}
	return filepath.Join(dir, logs[len(logs)-1])
}

func TestReopenAfterCleanClose(t *testing.T) {
	clk := newClock()
	dir := partitionDir(t)
	l, _ := buildLog(t, dir, clk, 40)
	want := readAll(t, l)
	end, epochs, bases := l.LogEndOffset(), l.EpochEntries(), l.SegmentBases()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	before := snapshotFiles(t, dir)
	l = openLog(t, dir, Config{Clock: clk.Now, SegmentBytes: 4000, IndexIntervalBytes: 400})
	defer l.Close()
	if l.LogEndOffset() != end || !slices.Equal(l.EpochEntries(), epochs) || !slices.Equal(l.SegmentBases(), bases) {
		t.Fatalf("reopened: end %d epochs %v segments %v", l.LogEndOffset(), l.EpochEntries(), l.SegmentBases())
	}
	if !slices.Equal(readAll(t, l), want) {
		t.Fatal("records differ after reopen")
	}
	after := snapshotFiles(t, dir)
	for name, b := range before {
		if name != cleanShutdownName && !bytes.Equal(after[name], b) {
			t.Errorf("%s changed by a clean reopen", name)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, cleanShutdownName)); !os.IsNotExist(err) {
		t.Fatal("clean-shutdown marker left while open")
	}
	base, _ := mustAppend(t, l, valueBatch(t, recordbatch.CodecNone, 0, 2, 10, t0.UnixMilli()), 4, clk.Now())
	if base != end {
		t.Fatalf("append after reopen at %d, want %d", base, end)
	}
}

func snapshotFiles(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func TestRecoveryCutsTornTail(t *testing.T) {
	damage := []struct {
		name string
		// fn damages the active segment's file whose last batch is
		// lastSize bytes; keep says whether that batch survives.
		fn   func(path string, lastSize int) error
		keep bool
	}{
		{"truncated mid-batch", func(p string, n int) error {
			st, _ := os.Stat(p)
			return os.Truncate(p, st.Size()-int64(n)/2)
		}, false},
		{"truncated in header", func(p string, n int) error {
			st, _ := os.Stat(p)
			return os.Truncate(p, st.Size()-int64(n)+20)
		}, false},
		{"garbage appended", func(p string, n int) error {
			return appendFile(p, []byte("this is not a record batch, just some trailing garbage bytes........"))
		}, true},
		{"zeros appended", func(p string, n int) error { return appendFile(p, make([]byte, 4096)) }, true},
		{"byte flipped in last batch", func(p string, n int) error {
			b, _ := os.ReadFile(p)
			b[len(b)-n/3] ^= 0x20
			return os.WriteFile(p, b, 0o644)
		}, false},
		{"length field of last batch grown", func(p string, n int) error {
			b, _ := os.ReadFile(p)
			b[len(b)-n+9]++
			return os.WriteFile(p, b, 0o644)
		}, false},
	}
	for _, clean := range []bool{false, true} {
		for _, d := range damage {
			t.Run(fmt.Sprintf("%s/clean=%v", d.name, clean), func(t *testing.T) {
				clk := newClock()
				src := partitionDir(t)
				l, sizes := buildLog(t, src, clk, 37)
				all := readAll(t, l)
				end := l.LogEndOffset()
				dir := filepath.Join(t.TempDir(), "logs-0")
				if clean {
					if err := l.Close(); err != nil {
						t.Fatal(err)
					}
					copyDir(t, src, dir)
				} else {
					copyDir(t, src, dir)
					defer l.Close()
				}
				seg := lastSegment(t, dir)
				st, _ := os.Stat(seg)
				validSize := st.Size()
				lastSize := sizes[len(sizes)-1]
				if err := d.fn(seg, lastSize); err != nil {
					t.Fatal(err)
				}
				wantEnd, want := end, all
				if !d.keep {
					wantEnd = end - 3
					want = all[:len(all)-3]
					validSize -= int64(lastSize)
				}
				r := openLog(t, dir, Config{Clock: clk.Now, SegmentBytes: 4000, IndexIntervalBytes: 400})
				defer r.Close()
				if r.LogEndOffset() != wantEnd {
					t.Fatalf("end %d, want %d", r.LogEndOffset(), wantEnd)
				}
				if got := readAll(t, r); !slices.Equal(got, want) {
					t.Fatalf("recovered %d records, want %d", len(got), len(want))
				}
				if st, _ := os.Stat(seg); st.Size() != validSize {
					t.Fatalf("segment is %d bytes, want %d", st.Size(), validSize)
				}
				base, _ := mustAppend(t, r, valueBatch(t, recordbatch.CodecNone, 0, 1, 10, t0.UnixMilli()), 4, clk.Now())
				if base != wantEnd {
					t.Fatalf("next append at %d", base)
				}
			})
		}
	}
}

func appendFile(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	return errorsJoin(err, f.Close())
}

func errorsJoin(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func TestIndexesRebuilt(t *testing.T) {
	mangle := []struct {
		name string
		fn   func(dir string, names []string) error
	}{
		{"all indexes deleted", func(dir string, names []string) error {
			for _, n := range names {
				if strings.HasSuffix(n, "index") {
					if err := os.Remove(filepath.Join(dir, n)); err != nil {
						return err
					}
				}
			}
			return nil
		}},
		{"offset index cut mid-entry", func(dir string, names []string) error {
			p := filepath.Join(dir, names[0]) // first segment's .index
			st, _ := os.Stat(p)
			return os.Truncate(p, st.Size()-3)
		}},
		{"offset index entry pointing at the wrong batch", func(dir string, names []string) error {
			p := filepath.Join(dir, names[0])
			b, _ := os.ReadFile(p)
			b[len(b)-5]++ // the last entry's relative offset
			return os.WriteFile(p, b, 0o644)
		}},
		{"time index garbage", func(dir string, names []string) error {
			return os.WriteFile(filepath.Join(dir, names[2]), bytes.Repeat([]byte{0xff}, 24), 0o644)
		}},
		{"time index emptied", func(dir string, names []string) error {
			return os.WriteFile(filepath.Join(dir, names[2]), nil, 0o644)
		}},
	}
	for _, m := range mangle {
		t.Run(m.name, func(t *testing.T) {
			clk := newClock()
			dir := partitionDir(t)
			l, _ := buildLog(t, dir, clk, 45)
			want := readAll(t, l)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			orig := snapshotFiles(t, dir)
			var names []string
			for n := range orig {
				if segmentFile.MatchString(n) {
					names = append(names, n)
				}
			}
			slices.Sort(names) // 0.index, 0.log, 0.timeindex, ...
			if err := m.fn(dir, names); err != nil {
				t.Fatal(err)
			}
			l = openLog(t, dir, Config{Clock: clk.Now, SegmentBytes: 4000, IndexIntervalBytes: 400})
			defer l.Close()
			if !slices.Equal(readAll(t, l), want) {
				t.Fatal("records differ")
			}
			got := snapshotFiles(t, dir)
			active := names[len(names)-3][:20]
			for _, n := range names {
				if strings.HasPrefix(n, active) {
					continue // the active segment's time index lacks the close-time entry until closed again
				}
				if !bytes.Equal(got[n], orig[n]) {
					t.Errorf("%s not rebuilt identically (%d vs %d bytes)", n, len(got[n]), len(orig[n]))
				}
			}
			// Lookups through the rebuilt indexes land on the right batch.
			for off := int64(0); off < l.LogEndOffset(); off += 7 {
				r, err := l.Read(off, 1)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := r.Bytes()
				r.Close()
				h, _ := recordbatch.ParseHeader(b)
				if h.BaseOffset > off || h.LastOffset() < off {
					t.Fatalf("offset %d read %d..%d", off, h.BaseOffset, h.LastOffset())
				}
			}
		})
	}
}

func TestOrphanAndTemporaryFilesRemoved(t *testing.T) {
	clk := newClock()
	dir := partitionDir(t)
	l, _ := buildLog(t, dir, clk, 5)
	l.Close()
	for _, n := range []string{"00000000000000099999.index", "00000000000000099999.timeindex", "leader-epoch-checkpoint.tmp", "00000000000000000000.log.cleaned"} {
		os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o644)
	}
	l = openLog(t, dir, Config{Clock: clk.Now})
	defer l.Close()
	for _, n := range []string{"00000000000000099999.index", "00000000000000099999.timeindex", "leader-epoch-checkpoint.tmp", "00000000000000000000.log.cleaned"} {
		if _, err := os.Stat(filepath.Join(dir, n)); !os.IsNotExist(err) {
			t.Errorf("%s not removed", n)
		}
	}
}

func TestTruncateTo(t *testing.T) {
	clk := newClock()
	dir := partitionDir(t)
	l, _ := buildLog(t, dir, clk, 40) // batches of 3 offsets, epochs 1..4 every 10 batches
	defer l.Close()
	all := readAll(t, l)
	if !slices.Equal(l.EpochEntries(), []EpochEntry{{1, 0}, {2, 30}, {3, 60}, {4, 90}}) {
		t.Fatalf("epochs %v", l.EpochEntries())
	}
	segsBefore := len(l.SegmentBases())

	// At a batch boundary in an older segment.
	if err := l.TruncateTo(63); err != nil {
		t.Fatal(err)
	}
	if l.LogEndOffset() != 63 || !slices.Equal(readAll(t, l), all[:63]) {
		t.Fatalf("end %d", l.LogEndOffset())
	}
	if n := len(l.SegmentBases()); n >= segsBefore {
		t.Fatalf("%d segments, had %d", n, segsBefore)
	}
	if !slices.Equal(l.EpochEntries(), []EpochEntry{{1, 0}, {2, 30}, {3, 60}}) {
		t.Fatalf("epochs %v", l.EpochEntries())
	}
	ck, _ := os.ReadFile(filepath.Join(dir, epochCheckpointName))
	if string(ck) != "0\n3\n1 0\n2 30\n3 60\n" {
		t.Fatalf("checkpoint %q", ck)
	}
	for _, base := range l.SegmentBases() {
		if base >= 63 {
			t.Fatalf("segment %d survived", base)
		}
	}
	// Straddling a batch: the whole batch goes.
	if err := l.TruncateTo(50); err != nil {
		t.Fatal(err)
	}
	if l.LogEndOffset() != 48 || !slices.Equal(readAll(t, l), all[:48]) {
		t.Fatalf("end %d after straddling truncation", l.LogEndOffset())
	}
	// No-ops.
	if err := l.TruncateTo(1000); err != nil || l.LogEndOffset() != 48 {
		t.Fatalf("truncate past end: %v %d", err, l.LogEndOffset())
	}
	// Appends continue; indexes and reads work; a reopen agrees.
	for i := 0; i < 5; i++ {
		base, _ := mustAppend(t, l, valueBatch(t, recordbatch.CodecLZ4, 1000+i, 2, 90, t0.UnixMilli()+100), 7, clk.Now())
		if base != 48+int64(i)*2 {
			t.Fatalf("append at %d", base)
		}
	}
	want := readAll(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, Config{Clock: clk.Now, SegmentBytes: 4000, IndexIntervalBytes: 400})
	if l.LogEndOffset() != 58 || !slices.Equal(readAll(t, l), want) {
		t.Fatalf("reopen end %d", l.LogEndOffset())
	}
	if !slices.Equal(l.EpochEntries(), []EpochEntry{{1, 0}, {2, 30}, {7, 48}}) {
		t.Fatalf("epochs %v", l.EpochEntries())
	}
}

func TestTruncateFully(t *testing.T) {
	clk := newClock()
	dir := partitionDir(t)
	l, _ := buildLog(t, dir, clk, 20)
	defer l.Close()
	if err := l.TruncateFullyAndStartAt(1000); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 1000 || l.LogEndOffset() != 1000 || len(l.EpochEntries()) != 0 {
		t.Fatalf("%d..%d %v", l.LogStartOffset(), l.LogEndOffset(), l.EpochEntries())
	}
	if !slices.Equal(l.SegmentBases(), []int64{1000}) {
		t.Fatalf("segments %v", l.SegmentBases())
	}
	if _, err := os.Stat(filepath.Join(dir, "00000000000000001000.log")); err != nil {
		t.Fatal(err)
	}
	base, _ := mustAppend(t, l, valueBatch(t, recordbatch.CodecNone, 0, 1, 5, t0.UnixMilli()), 9, clk.Now())
	if base != 1000 {
		t.Fatalf("append at %d", base)
	}
	_, err := l.Read(999, 10)
	wantErr(t, err, ErrOffsetOutOfRange)
	// Truncating below the log start empties the log too.
	if err := l.TruncateTo(500); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 500 || l.LogEndOffset() != 500 {
		t.Fatalf("%d..%d", l.LogStartOffset(), l.LogEndOffset())
	}
}
