package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"logpipe/brokerd/recordbatch"
)

func compactConfig(clk *fakeClock) Config {
	return Config{Clock: clk.Now, SegmentBytes: 1500, IndexIntervalBytes: 200, CleanupPolicy: PolicyCompact, DeleteRetention: time.Hour}
}

// writeRounds writes rounds of updates to keys k0..k9 (value "r<round>"),
// each batch holding 3 records, with codecs rotating; key k9 is deleted
// (tombstone) in the last round. It returns the expected latest record per
// key.
func writeRounds(t *testing.T, l *Log, clk *fakeClock, rounds int) map[string]decoded {
	t.Helper()
	latest := map[string]decoded{}
	var pending []rec
	flush := func() {
		if len(pending) == 0 {
			return
		}
		base, _ := mustAppend(t, l, makeBatch(t, codecs[int(l.LogEndOffset())%5], pending...), 0, clk.Now())
		for i, r := range pending {
			latest[string(r.key)] = decoded{base + int64(i), r.ts, string(r.key), string(r.value), r.value == nil}
		}
		pending = nil
	}
	for round := 0; round < rounds; round++ {
		for k := 0; k < 10; k++ {
			v := fmt.Sprintf("r%d-%s", round, strings.Repeat("v", 40))
			if round == rounds-1 && k == 9 {
				v = ""
			}
			pending = append(pending, kv(fmt.Sprintf("k%d", k), v, clk.Now().UnixMilli()))
			if len(pending) == 3 {
				flush()
			}
		}
		flush()
	}
	return latest
}

func latestList(m map[string]decoded) []decoded {
	var out []decoded
	for _, d := range m {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b decoded) int { return int(a.Offset - b.Offset) })
	return out
}

func TestCompactKeepsLatestPerKey(t *testing.T) {
	clk := newClock()
	dir := partitionDir(t)
	l := openLog(t, dir, compactConfig(clk))
	defer l.Close()
	latest := writeRounds(t, l, clk, 8)
	end := l.LogEndOffset()
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	before := len(l.SegmentBases())
	st, err := l.Compact(clk.Now(), l.LogEndOffset())
	if err != nil {
		t.Fatal(err)
	}
	if st.RecordsRead != 80 || st.RecordsKept != 10 || st.TombstonesKept != 1 || st.Rewritten == 0 || st.BytesAfter >= st.BytesBefore {
		t.Fatalf("stats %+v", st)
	}
	got := readAll(t, l)
	if want := latestList(latest); !slices.Equal(got, want) {
		t.Fatalf("after compaction:\n%+v\nwant\n%+v", got, want)
	}
	if l.LogEndOffset() != end || l.LogStartOffset() != 0 {
		t.Fatalf("offsets moved: %d..%d", l.LogStartOffset(), l.LogEndOffset())
	}
	// Groups are formed from the sizes before cleaning (as Kafka does), so
	// the now small segments merge on the next run.
	if _, err := l.Compact(clk.Now(), l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	if n := len(l.SegmentBases()); n != 2 || before <= 2 {
		t.Fatalf("segments not merged: %d, had %d", n, before)
	}
	if !slices.Equal(readAll(t, l), got) {
		t.Fatal("merging changed the records")
	}
	// Appends go on at the same end offset, and a reopen sees the same.
	mustAppend(t, l, makeBatch(t, recordbatch.CodecNone, kv("k1", "new", clk.Now().UnixMilli())), 0, clk.Now())
	want := append(slices.Clone(got), decoded{end, clk.Now().UnixMilli(), "k1", "new", false})
	l.Close()
	l = openLog(t, dir, compactConfig(clk))
	if !slices.Equal(readAll(t, l), want) {
		t.Fatal("reopened compacted log differs")
	}
	for _, n := range []string{swapManifestName} {
		if _, err := os.Stat(filepath.Join(dir, n)); !os.IsNotExist(err) {
			t.Fatalf("%s left behind", n)
		}
	}

	// A second run changes nothing; after delete.retention.ms the
	// tombstone goes.
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	st, err = l.Compact(clk.Now(), l.LogEndOffset())
	if err != nil || st.TombstonesKept != 1 {
		t.Fatalf("%+v %v", st, err)
	}
	clk.Advance(time.Hour + time.Millisecond)
	st, err = l.Compact(clk.Now(), l.LogEndOffset())
	if err != nil || st.TombstonesKept != 0 {
		t.Fatalf("%+v %v", st, err)
	}
	for _, d := range readAll(t, l) {
		if d.Key == "k9" {
			t.Fatalf("tombstone survived delete.retention.ms: %+v", d)
		}
		if d.Key == "k1" && d.Value != "new" {
			t.Fatalf("old k1 survived: %+v", d)
		}
	}
}

func TestCompactRespectsActiveSegmentAndHighWatermark(t *testing.T) {
	clk := newClock()
	l := openLog(t, partitionDir(t), compactConfig(clk))
	defer l.Close()
	writeRounds(t, l, clk, 4)
	active := l.SegmentBases()[len(l.SegmentBases())-1]
	before := readAll(t, l)
	// With the high watermark at 0 nothing is cleanable.
	if st, err := l.Compact(clk.Now(), 0); err != nil || st.Segments != 0 {
		t.Fatalf("%+v %v", st, err)
	}
	if _, err := l.Compact(clk.Now(), l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	// Records in the active segment are all still there.
	var activeBefore, activeAfter []decoded
	for _, d := range before {
		if d.Offset >= active {
			activeBefore = append(activeBefore, d)
		}
	}
	for _, d := range readAll(t, l) {
		if d.Offset >= active {
			activeAfter = append(activeAfter, d)
		}
	}
	if !slices.Equal(activeBefore, activeAfter) {
		t.Fatal("active segment was compacted")
	}
	// A delete-only topic is left alone.
	d := openLog(t, partitionDir(t), Config{Clock: clk.Now, SegmentBytes: 1500})
	defer d.Close()
	writeRounds(t, d, clk, 3)
	if st, _ := d.Compact(clk.Now(), d.LogEndOffset()); st.Segments != 0 {
		t.Fatal("compacted a delete-policy log")
	}
}

func TestCompactSwapIsCrashSafe(t *testing.T) {
	clk := newClock()
	src := partitionDir(t)
	l := openLog(t, src, compactConfig(clk))
	writeRounds(t, l, clk, 6)
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// crashed: the folder as it was before compaction.
	crashedBefore := filepath.Join(t.TempDir(), "logs-0")
	copyDir(t, src, crashedBefore)
	crashedAfter := filepath.Join(t.TempDir(), "logs-0")
	copyDir(t, src, crashedAfter)

	l = openLog(t, src, compactConfig(clk))
	if _, err := l.Compact(clk.Now(), l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	want := readAll(t, l)
	bases := l.SegmentBases()
	l.Close()
	newBase, upper := bases[0], bases[1] // the first cleaned group
	cleaned := snapshotFiles(t, src)

	// Crash before the commit point: .cleaned files but no manifest. The
	// old segments stay and the leftovers are removed.
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
		os.WriteFile(filepath.Join(crashedBefore, segmentName(newBase, suf)+cleanedSuffix), cleaned[segmentName(newBase, suf)], 0o644)
	}
	old := openLog(t, crashedBefore, compactConfig(clk))
	if got := readAll(t, old); len(got) != 60 {
		t.Fatalf("before commit: %d records, want the 60 uncompacted ones", len(got))
	}
	old.Close()

	// Crash after the commit point: manifest and .cleaned files, old
	// segments (partly) still there. Open finishes the swap.
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
		os.WriteFile(filepath.Join(crashedAfter, segmentName(newBase, suf)+cleanedSuffix), cleaned[segmentName(newBase, suf)], 0o644)
	}
	os.Remove(filepath.Join(crashedAfter, segmentName(newBase, indexSuffix))) // deletion had begun
	os.WriteFile(filepath.Join(crashedAfter, swapManifestName), encodeCheckpoint([][]string{{fmt.Sprint(newBase), fmt.Sprint(upper)}}), 0o644)
	// The later groups were not swapped in this crash: use the cleaned
	// state's other segments so the expectation is exact.
	for name, b := range cleaned {
		if segmentFile.MatchString(name) {
			if base, _ := parseSegmentName(name[:20]+logSuffix, logSuffix); base >= upper {
				os.WriteFile(filepath.Join(crashedAfter, name), b, 0o644)
			}
		}
	}
	ents, _ := os.ReadDir(crashedAfter)
	for _, e := range ents {
		if b, ok := parseSegmentName(e.Name(), logSuffix); ok && b >= upper && !slices.Contains(bases, b) {
			removeSegmentFiles(crashedAfter, b)
		}
	}
	after := openLog(t, crashedAfter, compactConfig(clk))
	defer after.Close()
	if got := readAll(t, after); !slices.Equal(got, want) {
		t.Fatalf("after commit: %+v\nwant %+v", got, want)
	}
	if !slices.Equal(after.SegmentBases(), bases) {
		t.Fatalf("segments %v, want %v", after.SegmentBases(), bases)
	}
	if _, err := os.Stat(filepath.Join(crashedAfter, swapManifestName)); !os.IsNotExist(err) {
		t.Fatal("manifest left behind")
	}
}
