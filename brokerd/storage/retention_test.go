package storage

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"logpipe/brokerd/recordbatch"
)

func TestRetentionBySize(t *testing.T) {
	clk := newClock()
	dir := partitionDir(t)
	l := openLog(t, dir, Config{Clock: clk.Now, SegmentBytes: 1000, RetentionBytes: 2500})
	defer l.Close()
	for i := 0; i < 40; i++ {
		mustAppend(t, l, valueBatch(t, recordbatch.CodecNone, i, 1, 200, t0.UnixMilli()), 0, clk.Now())
	}
	all := readAll(t, l)
	before := len(l.SegmentBases())
	n, err := l.EnforceRetention(clk.Now(), l.LogEndOffset())
	if err != nil || n == 0 {
		t.Fatalf("deleted %d: %v", n, err)
	}
	if len(l.SegmentBases()) != before-n {
		t.Fatalf("segments %d, had %d, deleted %d", len(l.SegmentBases()), before, n)
	}
	// What is left is at least retention.bytes, and dropping the oldest
	// remaining segment would go below it.
	size := l.Size()
	first := l.segs[0].size
	if size < 2500 || size-first >= 2500 {
		t.Fatalf("left %d bytes, oldest segment %d", size, first)
	}
	start := l.SegmentBases()[0]
	if l.LogStartOffset() != start {
		t.Fatalf("log start %d, first segment %d", l.LogStartOffset(), start)
	}
	if got := readAll(t, l); !slices.Equal(got, all[start:]) {
		t.Fatal("remaining records differ")
	}
	_, err = l.Read(start-1, 100)
	wantErr(t, err, ErrOffsetOutOfRange)
	for _, b := range []int64{0, start - 1} {
		if _, err := os.Stat(filepath.Join(dir, segmentName(b, logSuffix))); err == nil && b < start {
			t.Fatalf("segment file %d still there", b)
		}
	}
	// A second pass has nothing more to do.
	if n, err := l.EnforceRetention(clk.Now(), l.LogEndOffset()); n != 0 || err != nil {
		t.Fatalf("second pass deleted %d: %v", n, err)
	}
	// The start offset survives a reopen.
	l.Close()
	l = openLog(t, dir, Config{Clock: clk.Now, SegmentBytes: 1000, RetentionBytes: 2500})
	if l.LogStartOffset() != start {
		t.Fatalf("reopened start %d", l.LogStartOffset())
	}
}

func TestRetentionByTime(t *testing.T) {
	clk := newClock()
	sz := int64(len(valueBatch(t, recordbatch.CodecNone, 10, 1, 200, t0.UnixMilli())))
	l := openLog(t, partitionDir(t), Config{Clock: clk.Now, SegmentBytes: 4 * sz, Retention: time.Hour})
	defer l.Close()
	// Ten segments, each one minute newer than the previous.
	for i := 0; i < 40; i++ {
		ts := t0.Add(time.Duration(i/4) * time.Minute).UnixMilli()
		mustAppend(t, l, valueBatch(t, recordbatch.CodecNone, 10+i, 1, 200, ts), 0, clk.Now())
	}
	nsegs := len(l.SegmentBases())
	if nsegs != 10 {
		t.Fatalf("%d segments", nsegs)
	}
	clk.Advance(time.Hour) // the first segment's newest record is 1h old: not more
	if n, _ := l.EnforceRetention(clk.Now(), l.LogEndOffset()); n != 0 {
		t.Fatalf("deleted %d at exactly retention.ms", n)
	}
	clk.Advance(3*time.Minute + time.Millisecond) // segments 0..3 are older than 1h
	if n, err := l.EnforceRetention(clk.Now(), l.LogEndOffset()); n != 4 || err != nil {
		t.Fatalf("deleted %d: %v", n, err)
	}
	if l.LogStartOffset() != 16 {
		t.Fatalf("log start %d", l.LogStartOffset())
	}
	// Not past the high watermark.
	clk.Advance(time.Hour)
	if n, _ := l.EnforceRetention(clk.Now(), 24); n != 2 {
		t.Fatalf("deleted %d below high watermark 24", n)
	}
	// Everything expired: the active segment goes too, after a roll.
	end := l.LogEndOffset()
	if n, _ := l.EnforceRetention(clk.Now(), end); n != 4 {
		t.Fatalf("deleted %d", n)
	}
	if l.LogStartOffset() != end || l.LogEndOffset() != end || !slices.Equal(l.SegmentBases(), []int64{end}) {
		t.Fatalf("%d..%d segments %v", l.LogStartOffset(), l.LogEndOffset(), l.SegmentBases())
	}
	base, _ := mustAppend(t, l, valueBatch(t, recordbatch.CodecNone, 0, 1, 10, clk.Now().UnixMilli()), 0, clk.Now())
	if base != end {
		t.Fatalf("append at %d", base)
	}
}

func TestRetentionOffForCompactPolicy(t *testing.T) {
	clk := newClock()
	l := openLog(t, partitionDir(t), Config{Clock: clk.Now, SegmentBytes: 1000, Retention: time.Minute, RetentionBytes: 100, CleanupPolicy: PolicyCompact})
	defer l.Close()
	for i := 0; i < 20; i++ {
		mustAppend(t, l, valueBatch(t, recordbatch.CodecNone, i, 1, 200, t0.UnixMilli()), 0, clk.Now())
	}
	clk.Advance(24 * time.Hour)
	if n, _ := l.EnforceRetention(clk.Now(), l.LogEndOffset()); n != 0 {
		t.Fatalf("compact-only topic lost %d segments to retention", n)
	}
}

func TestDeleteRecordsBefore(t *testing.T) {
	clk := newClock()
	dir := partitionDir(t)
	cfg := Config{Clock: clk.Now, SegmentBytes: 1000, Retention: -1}
	l := openLog(t, dir, cfg)
	defer func() { l.Close() }()
	for i := 0; i < 30; i++ {
		mustAppend(t, l, valueBatch(t, recordbatch.CodecGzip, i*2, 2, 150, t0.UnixMilli()), int32(i/10), clk.Now())
	}
	all := readAll(t, l)
	if err := l.DeleteRecordsBefore(25); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 25 {
		t.Fatalf("start %d", l.LogStartOffset())
	}
	if l.SegmentBases()[0] > 25 || (len(l.SegmentBases()) > 1 && l.SegmentBases()[1] <= 25) {
		t.Fatalf("segments %v", l.SegmentBases())
	}
	_, err := l.Read(24, 100)
	wantErr(t, err, ErrOffsetOutOfRange)
	r, err := l.Read(25, 1)
	if err != nil || r.FirstOffset != 24 { // the batch holding 25 starts at 24
		t.Fatalf("%v first %d", err, r.FirstOffset)
	}
	r.Close()
	if got := readAll(t, l); !slices.Equal(got, all[25:]) {
		t.Fatal("records differ")
	}
	if !slices.Equal(l.EpochEntries(), []EpochEntry{{1, 25}, {2, 40}}) {
		t.Fatalf("epochs %v", l.EpochEntries())
	}
	ck, _ := os.ReadFile(filepath.Join(dir, logStartCheckpointName))
	if string(ck) != "0\n1\nlogs 0 25\n" {
		t.Fatalf("checkpoint %q", ck)
	}
	// Lower offsets change nothing; offsets past the end are refused.
	if err := l.DeleteRecordsBefore(10); err != nil || l.LogStartOffset() != 25 {
		t.Fatalf("%v %d", err, l.LogStartOffset())
	}
	wantErr(t, l.DeleteRecordsBefore(61), ErrOffsetOutOfRange)
	l.Close()
	l = openLog(t, dir, cfg)
	if l.LogStartOffset() != 25 || !slices.Equal(readAll(t, l), all[25:]) {
		t.Fatalf("reopened start %d", l.LogStartOffset())
	}
	// Up to the end: everything goes, the log restarts empty at 60.
	if err := l.DeleteRecordsBefore(60); err != nil {
		t.Fatal(err)
	}
	if l.LogStartOffset() != 60 || l.LogEndOffset() != 60 || !slices.Equal(l.SegmentBases(), []int64{60}) {
		t.Fatalf("%d..%d %v", l.LogStartOffset(), l.LogEndOffset(), l.SegmentBases())
	}
}

func TestOffsetForTimestamp(t *testing.T) {
	clk := newClock()
	l := openLog(t, partitionDir(t), Config{Clock: clk.Now, SegmentBytes: 2000, IndexIntervalBytes: 200})
	defer l.Close()
	base := t0.UnixMilli()
	// Records 10 ms apart, in compressed batches of 5, with a few records
	// out of order inside batches.
	for b := 0; b < 30; b++ {
		recs := make([]rec, 5)
		for i := range recs {
			n := b*5 + i
			ts := base + int64(n)*10
			if n%7 == 3 {
				ts -= 25
			}
			recs[i] = kv("k", "some value", ts)
		}
		mustAppend(t, l, makeBatch(t, codecs[b%5], recs...), 0, clk.Now())
	}
	if len(l.SegmentBases()) < 3 {
		t.Fatalf("%d segments", len(l.SegmentBases()))
	}
	all := readAll(t, l)
	expect := func(ts int64) (int64, int64, bool) {
		for _, d := range all {
			if d.Offset >= l.LogStartOffset() && d.Timestamp >= ts {
				return d.Offset, d.Timestamp, true
			}
		}
		return -1, -1, false
	}
	check := func() {
		t.Helper()
		for ts := base - 50; ts <= base+1550; ts += 3 {
			o, tt, ok, err := l.OffsetForTimestamp(ts)
			if err != nil {
				t.Fatal(err)
			}
			wo, wt, wok := expect(ts)
			if o != wo || tt != wt || ok != wok {
				t.Fatalf("ts %d: got (%d, %d, %v), want (%d, %d, %v)", ts-base, o, tt, ok, wo, wt, wok)
			}
		}
	}
	check()
	if err := l.DeleteRecordsBefore(37); err != nil {
		t.Fatal(err)
	}
	all = readAll(t, l)
	check()
}

func TestOffsetForTimestampLogAppendTime(t *testing.T) {
	clk := newClock()
	l := openLog(t, partitionDir(t), Config{Clock: clk.Now, LogAppendTime: true})
	defer l.Close()
	for i := 0; i < 5; i++ {
		mustAppend(t, l, valueBatch(t, recordbatch.CodecZstd, i*3, 3, 10, 42), 0, clk.Now())
		clk.Advance(time.Second)
	}
	o, ts, ok, err := l.OffsetForTimestamp(t0.Add(2500 * time.Millisecond).UnixMilli())
	if err != nil || !ok || o != 9 || ts != t0.Add(3*time.Second).UnixMilli() {
		t.Fatalf("(%d, %d, %v) %v", o, ts, ok, err)
	}
	if _, _, ok, _ := l.OffsetForTimestamp(t0.Add(time.Hour).UnixMilli()); ok {
		t.Fatal("found a record newer than all")
	}
}

func TestEpochCache(t *testing.T) {
	var c epochCache
	steps := []struct {
		epoch int32
		start int64
		want  []EpochEntry
	}{
		{1, 0, []EpochEntry{{1, 0}}},
		{1, 5, []EpochEntry{{1, 0}}}, // same epoch later: no-op
		{2, 10, []EpochEntry{{1, 0}, {2, 10}}},
		{4, 20, []EpochEntry{{1, 0}, {2, 10}, {4, 20}}},
		{3, 15, []EpochEntry{{1, 0}, {2, 10}, {3, 15}}}, // lower epoch drops newer ones
		{5, 12, []EpochEntry{{1, 0}, {2, 10}, {5, 12}}}, // earlier start drops later starts
		{6, 12, []EpochEntry{{1, 0}, {2, 10}, {6, 12}}}, // same start, new epoch
		{7, 30, []EpochEntry{{1, 0}, {2, 10}, {6, 12}, {7, 30}}},
	}
	for _, s := range steps {
		c.assign(s.epoch, s.start)
		if !slices.Equal(c.entries, s.want) {
			t.Fatalf("after assign(%d, %d): %v, want %v", s.epoch, s.start, c.entries, s.want)
		}
	}
	ends := []struct {
		req       int32
		wantEpoch int32
		wantEnd   int64
	}{
		{-1, -1, -1},
		{0, 0, 0},  // below the first epoch: the first start
		{1, 1, 10}, // ends where 2 starts
		{2, 2, 12}, // ends where 6 starts
		{4, 2, 12}, // unknown epoch between: the one below it
		{6, 6, 30},
		{7, 7, 99},  // latest: log end
		{8, -1, -1}, // above latest
	}
	for _, e := range ends {
		if ep, end := c.endOffsetFor(e.req, 99); ep != e.wantEpoch || end != e.wantEnd {
			t.Errorf("endOffsetFor(%d) = (%d, %d), want (%d, %d)", e.req, ep, end, e.wantEpoch, e.wantEnd)
		}
	}
	c.truncateFromEnd(12)
	if !slices.Equal(c.entries, []EpochEntry{{1, 0}, {2, 10}}) {
		t.Fatalf("truncateFromEnd: %v", c.entries)
	}
	c.assign(3, 20)
	c.truncateFromStart(15)
	if !slices.Equal(c.entries, []EpochEntry{{2, 15}, {3, 20}}) {
		t.Fatalf("truncateFromStart: %v", c.entries)
	}
	if c.truncateFromStart(15) || c.truncateFromStart(3) {
		t.Fatal("no-op truncations reported changes")
	}
	if string(c.encode()) != "0\n2\n2 15\n3 20\n" {
		t.Fatalf("encoded %q", c.encode())
	}
}

func TestLeaderEpochAPI(t *testing.T) {
	clk := newClock()
	dir := partitionDir(t)
	l := openLog(t, dir, Config{Clock: clk.Now})
	if ep, end := l.EndOffsetForEpoch(0); ep != UndefinedEpoch || end != UndefinedEpochOffset {
		t.Fatalf("empty cache: (%d, %d)", ep, end)
	}
	if err := l.AssignEpochStart(3, 0); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, valueBatch(t, recordbatch.CodecNone, 0, 4, 10, t0.UnixMilli()), 3, clk.Now())
	if err := l.AssignEpochStart(5, l.LogEndOffset()); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, l, valueBatch(t, recordbatch.CodecNone, 0, 2, 10, t0.UnixMilli()), 5, clk.Now())
	wantErr(t, l.AssignEpochStart(4, 6), ErrStaleEpoch)
	_, _, err := l.AppendAsLeader(valueBatch(t, recordbatch.CodecNone, 0, 1, 10, t0.UnixMilli()), 4, clk.Now())
	wantErr(t, err, ErrStaleEpoch)
	if ep, end := l.EndOffsetForEpoch(3); ep != 3 || end != 4 {
		t.Fatalf("epoch 3: (%d, %d)", ep, end)
	}
	if ep, end := l.EndOffsetForEpoch(4); ep != 3 || end != 4 {
		t.Fatalf("epoch 4: (%d, %d)", ep, end)
	}
	if ep, end := l.EndOffsetForEpoch(5); ep != 5 || end != 6 {
		t.Fatalf("epoch 5: (%d, %d)", ep, end)
	}
	if e, ok := l.LatestEpoch(); !ok || e != 5 {
		t.Fatalf("latest %d %v", e, ok)
	}
	l.Close()
	ck, _ := os.ReadFile(filepath.Join(dir, epochCheckpointName))
	if string(ck) != "0\n2\n3 0\n5 4\n" {
		t.Fatalf("checkpoint %q", ck)
	}
	// The cache is rebuilt from the batches when the checkpoint is lost.
	os.Remove(filepath.Join(dir, epochCheckpointName))
	os.Remove(filepath.Join(dir, cleanShutdownName))
	l = openLog(t, dir, Config{Clock: clk.Now})
	defer l.Close()
	if !slices.Equal(l.EpochEntries(), []EpochEntry{{3, 0}, {5, 4}}) {
		t.Fatalf("rebuilt epochs %v", l.EpochEntries())
	}
}

func TestFlushPolicy(t *testing.T) {
	clk := newClock()
	l := openLog(t, partitionDir(t), Config{Clock: clk.Now, FlushMessages: 5, FlushInterval: time.Minute})
	defer l.Close()
	mustAppend(t, l, valueBatch(t, recordbatch.CodecNone, 0, 3, 10, t0.UnixMilli()), 0, clk.Now())
	if l.unflushed != 3 {
		t.Fatalf("unflushed %d", l.unflushed)
	}
	mustAppend(t, l, valueBatch(t, recordbatch.CodecNone, 0, 2, 10, t0.UnixMilli()), 0, clk.Now())
	if l.unflushed != 0 {
		t.Fatalf("flush.messages did not flush: %d", l.unflushed)
	}
	mustAppend(t, l, valueBatch(t, recordbatch.CodecNone, 0, 1, 10, t0.UnixMilli()), 0, clk.Now())
	clk.Advance(time.Minute)
	mustAppend(t, l, valueBatch(t, recordbatch.CodecNone, 0, 1, 10, t0.UnixMilli()), 0, clk.Now())
	if l.unflushed != 0 || !l.lastFlush.Equal(clk.Now()) {
		t.Fatalf("flush.ms did not flush: %d", l.unflushed)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
}
