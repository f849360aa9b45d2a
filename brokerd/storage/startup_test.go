package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"logpipe/brokerd/recordbatch"
)

// TestRecoveryChecksOnlyWhatMayBeTorn: after a crash Open reads the active
// segment whole and no rolled segment; after a clean close, only the
// batches after the active segment's last index entry.
func TestRecoveryChecksOnlyWhatMayBeTorn(t *testing.T) {
	clk := newClock()
	src := partitionDir(t)
	l, sizes := buildLog(t, src, clk, 120)
	if n := len(l.SegmentBases()); n < 3 {
		t.Fatalf("got %d segments, want several", n)
	}
	crashed := filepath.Join(t.TempDir(), "logs-0")
	copyDir(t, src, crashed)
	st, err := os.Stat(lastSegment(t, crashed))
	if err != nil {
		t.Fatal(err)
	}
	r := openLog(t, crashed, Config{Clock: clk.Now, SegmentBytes: 4000, IndexIntervalBytes: 400})
	want := RecoveryInfo{CleanShutdown: false, SegmentsRecovered: 1, BytesChecked: st.Size()}
	if got := r.Recovery(); got != want {
		t.Fatalf("after a crash: got %+v, want %+v", got, want)
	}
	r.Close()

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c := openLog(t, src, Config{Clock: clk.Now, SegmentBytes: 4000, IndexIntervalBytes: 400})
	defer c.Close()
	got := c.Recovery()
	most := int64(400 + slices.Max(sizes))
	if !got.CleanShutdown || got.SegmentsRecovered != 0 || got.BytesChecked > most || got.BytesTruncated != 0 {
		t.Fatalf("after a clean close: got %+v, want a clean shutdown, nothing recovered or cut, at most %d bytes checked", got, most)
	}
}

// makePartitions writes n partition folders under root as the storage
// package leaves them after a clean close: one log with 10 batches of 10
// records of 200 bytes is written through Open, AppendAsLeader and Close,
// and its files are copied into each folder (topics t0, t1, ... of 1000
// partitions), with the log start checkpoint naming the partition.
func makePartitions(b testing.TB, root string, n int) []string {
	b.Helper()
	clk := newClock()
	tmpl := filepath.Join(b.TempDir(), "tmpl-0")
	l := openLog(b, tmpl, Config{Clock: clk.Now})
	for i := 0; i < 10; i++ {
		mustAppend(b, l, valueBatch(b, recordbatch.CodecNone, i*10, 10, 200, t0.UnixMilli()), 0, clk.Now())
	}
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	files := snapshotFiles(b, tmpl)
	dirs := make([]string, n)
	for i := range dirs {
		topic, part := "t"+strconv.Itoa(i/1000), strconv.Itoa(i%1000)
		dirs[i] = filepath.Join(root, topic+"-"+part)
		if err := os.MkdirAll(dirs[i], 0o755); err != nil {
			b.Fatal(err)
		}
		for name, data := range files {
			if name == logStartCheckpointName {
				data = encodeCheckpoint([][]string{{topic, part, "0"}})
			}
			if err := os.WriteFile(filepath.Join(dirs[i], name), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	return dirs
}

// BenchmarkOpenPartitions opens 3,000 and 10,000 partitions one after the
// other, as a broker does at start, after a clean shutdown and after a
// crash (the clean-shutdown markers removed), with one FileCache of the
// default bound. It reports the seconds to open them all (open-s) and to
// close them all (close-s); the files are in the page cache.
func BenchmarkOpenPartitions(b *testing.B) {
	for _, n := range []int{3000, 10000} {
		dirs := makePartitions(b, b.TempDir(), n)
		for _, crash := range []bool{false, true} {
			name := fmt.Sprintf("%d/clean", n)
			if crash {
				name = fmt.Sprintf("%d/crash", n)
			}
			b.Run(name, func(b *testing.B) {
				files := NewFileCache(FileCacheConfig{})
				logs := make([]*Log, n)
				var opening, closing time.Duration
				for i := 0; i < b.N; i++ {
					if crash {
						for _, d := range dirs {
							os.Remove(filepath.Join(d, cleanShutdownName))
						}
					}
					start := time.Now()
					for j, d := range dirs {
						l, err := files.Open(d, Config{})
						if err != nil {
							b.Fatal(err)
						}
						logs[j] = l
					}
					opening += time.Since(start)
					start = time.Now()
					for _, l := range logs {
						if err := l.Close(); err != nil {
							b.Fatal(err)
						}
					}
					closing += time.Since(start)
				}
				b.ReportMetric(opening.Seconds()/float64(b.N), "open-s")
				b.ReportMetric(closing.Seconds()/float64(b.N), "close-s")
			})
		}
	}
}
