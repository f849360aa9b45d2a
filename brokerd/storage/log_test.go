package storage

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/recordbatch"
)

var codecs = []recordbatch.Codec{recordbatch.CodecNone, recordbatch.CodecGzip, recordbatch.CodecSnappy, recordbatch.CodecLZ4, recordbatch.CodecZstd}

func TestAppendReadRoundTripAllCodecs(t *testing.T) {
	clk := newClock()
	l := openLog(t, partitionDir(t), Config{Clock: clk.Now})
	defer l.Close()
	ts := t0.UnixMilli()
	var want []decoded
	next := int64(0)
	for i, c := range codecs {
		n := 3 + i
		in := valueBatch(t, c, int(next), n, 100, ts+int64(i))
		payloadBefore := append([]byte(nil), recordbatch.Payload(in)...)
		base, last := mustAppend(t, l, in, 5, clk.Now())
		if base != next || last != next+int64(n)-1 {
			t.Fatalf("%v: offsets %d..%d, want %d..%d", c, base, last, next, next+int64(n)-1)
		}
		// The payload is stored untouched: never decompressed or re-encoded.
		r, err := l.Read(base, 1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Bytes()
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, in) || !bytes.Equal(recordbatch.Payload(got), payloadBefore) {
			t.Fatalf("%v: stored batch differs from the patched input", c)
		}
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(got); err != nil {
			t.Fatal(err)
		}
		if rb.FirstOffset != base || rb.PartitionLeaderEpoch != 5 || rb.Magic != 2 || rb.NumRecords != int32(n) || rb.Attributes&7 != int16(c) {
			t.Fatalf("%v: stored header %+v", c, rb)
		}
		for j := 0; j < n; j++ {
			want = append(want, decoded{next + int64(j), ts + int64(i), fmt.Sprintf("key-%d", next+int64(j)), strings.Repeat(string(rune('a'+(int(next)+j)%26)), 100), false})
		}
		next += int64(n)
	}
	if got := readAll(t, l); !slices.Equal(got, want) {
		t.Fatalf("read back %d records, want %d\n%+v", len(got), len(want), got)
	}
	if l.LogEndOffset() != next || l.LogStartOffset() != 0 {
		t.Fatalf("offsets %d..%d", l.LogStartOffset(), l.LogEndOffset())
	}
}

func TestAppendSeveralBatchesInOneCall(t *testing.T) {
	clk := newClock()
	l := openLog(t, partitionDir(t), Config{Clock: clk.Now})
	defer l.Close()
	ts := t0.UnixMilli()
	a, b, c := valueBatch(t, recordbatch.CodecNone, 0, 2, 10, ts), valueBatch(t, recordbatch.CodecLZ4, 2, 3, 10, ts), valueBatch(t, recordbatch.CodecZstd, 5, 1, 10, ts)
	in := slices.Concat(a, b, c)
	base, last := mustAppend(t, l, in, 0, clk.Now())
	if base != 0 || last != 5 {
		t.Fatalf("offsets %d..%d", base, last)
	}
	var bases []int64
	for rest := in; len(rest) > 0; {
		batch, r, _ := recordbatch.Next(rest)
		h, _ := recordbatch.Verify(batch)
		bases = append(bases, h.BaseOffset)
		rest = r
	}
	if !slices.Equal(bases, []int64{0, 2, 5}) {
		t.Fatalf("batch bases %v", bases)
	}
	got := readAll(t, l)
	if len(got) != 6 || got[5].Offset != 5 || got[5].Key != "key-5" {
		t.Fatalf("%+v", got)
	}
}

func TestAppendRejectsBadBatchesWithoutWriting(t *testing.T) {
	clk := newClock()
	l := openLog(t, partitionDir(t), Config{Clock: clk.Now, MaxMessageBytes: 2000})
	defer l.Close()
	ts := t0.UnixMilli()
	good := valueBatch(t, recordbatch.CodecNone, 0, 2, 10, ts)
	crc := append([]byte(nil), good...)
	crc[len(crc)-1] ^= 1
	big := valueBatch(t, recordbatch.CodecNone, 0, 30, 100, ts)
	legacy := make([]byte, 40)
	binary.BigEndian.PutUint32(legacy[8:], 28)
	legacy[16] = 1
	cases := []struct {
		name string
		in   []byte
		want error
		code *kerr.Error
	}{
		{"crc", crc, recordbatch.ErrCRC, kerr.CorruptMessage},
		{"too large", big, recordbatch.ErrTooLarge, kerr.MessageTooLarge},
		{"legacy", legacy, recordbatch.ErrLegacyMagic, kerr.InvalidRecord},
		{"good then garbage", append(append([]byte(nil), good...), 1, 2, 3), recordbatch.ErrCorrupt, kerr.CorruptMessage},
		{"empty", nil, recordbatch.ErrInvalidRecord, kerr.InvalidRecord},
	}
	for _, tc := range cases {
		_, _, err := l.AppendAsLeader(tc.in, 0, clk.Now())
		wantErr(t, err, tc.want)
		if ErrorCode(err) != tc.code.Code {
			t.Errorf("%s: code %d, want %s", tc.name, ErrorCode(err), tc.code.Message)
		}
	}
	if l.LogEndOffset() != 0 || l.Size() != 0 {
		t.Fatalf("rejected appends changed the log: end %d size %d", l.LogEndOffset(), l.Size())
	}
}

func TestLogAppendTime(t *testing.T) {
	clk := newClock()
	l := openLog(t, partitionDir(t), Config{Clock: clk.Now, LogAppendTime: true})
	defer l.Close()
	in := valueBatch(t, recordbatch.CodecGzip, 0, 3, 10, 12345)
	clk.Advance(time.Minute)
	mustAppend(t, l, in, 2, clk.Now())
	r, _ := l.Read(0, 1000)
	b, _ := r.Bytes()
	r.Close()
	h, err := recordbatch.Verify(b)
	if err != nil {
		t.Fatal(err)
	}
	if !h.LogAppendTime() || h.MaxTimestamp != clk.Now().UnixMilli() || h.BaseTimestamp != 12345 {
		t.Fatalf("%+v", h)
	}
	for _, d := range readAll(t, l) {
		if d.Timestamp != clk.Now().UnixMilli() {
			t.Fatalf("record timestamp %d", d.Timestamp)
		}
	}
}

var segmentFile = regexp.MustCompile(`^[0-9]{20}\.(log|index|timeindex)$`)

func TestSegmentRollsAndFileNames(t *testing.T) {
	clk := newClock()
	dir := partitionDir(t)
	l := openLog(t, dir, Config{Clock: clk.Now, SegmentBytes: 3000, IndexIntervalBytes: 500})
	defer l.Close()
	next := int64(0)
	for i := 0; i < 40; i++ {
		n := 1 + i%4
		base, last := mustAppend(t, l, valueBatch(t, recordbatch.CodecNone, int(next), n, 60, t0.UnixMilli()+int64(i)), 0, clk.Now())
		if base != next || last != next+int64(n)-1 {
			t.Fatalf("append %d: %d..%d, want from %d", i, base, last, next)
		}
		next = last + 1
	}
	bases := l.SegmentBases()
	if len(bases) < 4 {
		t.Fatalf("only %d segments", len(bases))
	}
	ents, _ := os.ReadDir(dir)
	var logs []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".log") || strings.HasSuffix(e.Name(), "index") {
			if !segmentFile.MatchString(e.Name()) {
				t.Fatalf("file name %q", e.Name())
			}
		}
		if strings.HasSuffix(e.Name(), ".log") {
			logs = append(logs, e.Name())
		}
	}
	if len(logs) != len(bases) {
		t.Fatalf("%d .log files, %d segments", len(logs), len(bases))
	}
	for i, name := range logs {
		if name != fmt.Sprintf("%020d.log", bases[i]) {
			t.Fatalf("file %s for base %d", name, bases[i])
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(data)) > 3000 {
			t.Fatalf("%s is %d bytes, over segment.bytes", name, len(data))
		}
		// The first batch in each file starts at the file's base offset,
		// and batches continue the previous file's offsets.
		if binary.BigEndian.Uint64(data) != uint64(bases[i]) {
			t.Fatalf("%s starts with offset %d", name, binary.BigEndian.Uint64(data))
		}
	}
	got := readAll(t, l)
	if int64(len(got)) != next {
		t.Fatalf("%d records, want %d", len(got), next)
	}
	for i, d := range got {
		if d.Offset != int64(i) || d.Key != fmt.Sprintf("key-%d", i) {
			t.Fatalf("record %d: %+v", i, d)
		}
	}
	// Every offset reads the batch that contains it.
	for off := int64(0); off < next; off++ {
		r, err := l.Read(off, 1)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := r.Bytes()
		r.Close()
		h, err := recordbatch.Verify(b)
		if err != nil {
			t.Fatal(err)
		}
		if h.BaseOffset > off || h.LastOffset() < off || r.FirstOffset != h.BaseOffset {
			t.Fatalf("offset %d read batch %d..%d", off, h.BaseOffset, h.LastOffset())
		}
	}
}

func TestSegmentRollByTime(t *testing.T) {
	clk := newClock()
	l := openLog(t, partitionDir(t), Config{Clock: clk.Now, SegmentAge: time.Hour})
	defer func() { l.Close() }()
	mustAppend(t, l, valueBatch(t, recordbatch.CodecNone, 0, 1, 10, t0.UnixMilli()), 0, clk.Now())
	clk.Advance(59 * time.Minute)
	mustAppend(t, l, valueBatch(t, recordbatch.CodecNone, 1, 1, 10, t0.UnixMilli()), 0, clk.Now())
	if n := len(l.SegmentBases()); n != 1 {
		t.Fatalf("%d segments before segment.ms", n)
	}
	clk.Advance(time.Minute)
	mustAppend(t, l, valueBatch(t, recordbatch.CodecNone, 2, 1, 10, clk.Now().UnixMilli()), 0, clk.Now())
	if bases := l.SegmentBases(); !slices.Equal(bases, []int64{0, 2}) {
		t.Fatalf("segments %v", bases)
	}
	// After a reopen the clock starts from the segment's first timestamp.
	dir := l.Dir()
	l.Close()
	clk.Advance(30 * time.Minute)
	l = openLog(t, dir, Config{Clock: clk.Now, SegmentAge: time.Hour})
	mustAppend(t, l, valueBatch(t, recordbatch.CodecNone, 3, 1, 10, t0.UnixMilli()), 0, clk.Now())
	if n := len(l.SegmentBases()); n != 2 {
		t.Fatalf("%d segments 30 minutes after the first append", n)
	}
	clk.Advance(31 * time.Minute)
	mustAppend(t, l, valueBatch(t, recordbatch.CodecNone, 4, 1, 10, t0.UnixMilli()), 0, clk.Now())
	if bases := l.SegmentBases(); !slices.Equal(bases, []int64{0, 2, 4}) {
		t.Fatalf("segments %v after reopen", bases)
	}
}

func TestStoredLayoutByteForByte(t *testing.T) {
	clk := newClock()
	dir := partitionDir(t)
	l := openLog(t, dir, Config{Clock: clk.Now, IndexIntervalBytes: 100})
	var stored []byte
	var sizes []int
	for i := 0; i < 6; i++ {
		in := valueBatch(t, recordbatch.CodecNone, i*2, 2, 50, t0.UnixMilli()+int64(i*10))
		mustAppend(t, l, in, 3, clk.Now())
		stored = append(stored, in...)
		sizes = append(sizes, len(in))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	logData, _ := os.ReadFile(filepath.Join(dir, "00000000000000000000.log"))
	if !bytes.Equal(logData, stored) {
		t.Fatal(".log is not the concatenation of the appended batches")
	}
	// Header fields of the third batch, read at fixed offsets.
	pos := sizes[0] + sizes[1]
	b := logData[pos:]
	if got := int64(binary.BigEndian.Uint64(b[0:])); got != 4 {
		t.Fatalf("baseOffset %d", got)
	}
	if got := int(binary.BigEndian.Uint32(b[8:])); got != sizes[2]-12 {
		t.Fatalf("batchLength %d", got)
	}
	if got := int32(binary.BigEndian.Uint32(b[12:])); got != 3 {
		t.Fatalf("partitionLeaderEpoch %d", got)
	}
	if b[16] != 2 {
		t.Fatalf("magic %d", b[16])
	}
	if got := binary.BigEndian.Uint16(b[21:]); got != 0 {
		t.Fatalf("attributes %x", got)
	}
	if got := binary.BigEndian.Uint32(b[23:]); got != 1 {
		t.Fatalf("lastOffsetDelta %d", got)
	}
	if got := int64(binary.BigEndian.Uint64(b[35:])); got != t0.UnixMilli()+20 {
		t.Fatalf("maxTimestamp %d", got)
	}
	if got := binary.BigEndian.Uint32(b[57:]); got != 2 {
		t.Fatalf("recordCount %d", got)
	}
	// .index: (relative last offset, position) for every batch after more
	// than 100 bytes since the previous entry; here every batch but the
	// first, since each is over 100 bytes.
	idx, _ := os.ReadFile(filepath.Join(dir, "00000000000000000000.index"))
	if len(idx) != 5*8 {
		t.Fatalf(".index has %d bytes", len(idx))
	}
	p := sizes[0]
	for i := 1; i < 6; i++ {
		rel := binary.BigEndian.Uint32(idx[(i-1)*8:])
		ep := binary.BigEndian.Uint32(idx[(i-1)*8+4:])
		if rel != uint32(i*2+1) || int(ep) != p {
			t.Fatalf("index entry %d: (%d, %d), want (%d, %d)", i-1, rel, ep, i*2+1, p)
		}
		p += sizes[i]
	}
	// .timeindex: (max timestamp so far, relative offset of the batch that
	// set it), strictly increasing, ending with the segment's maximum.
	tidx, _ := os.ReadFile(filepath.Join(dir, "00000000000000000000.timeindex"))
	if len(tidx)%12 != 0 || len(tidx) == 0 {
		t.Fatalf(".timeindex has %d bytes", len(tidx))
	}
	prev := int64(-1)
	for i := 0; i < len(tidx); i += 12 {
		ts := int64(binary.BigEndian.Uint64(tidx[i:]))
		rel := binary.BigEndian.Uint32(tidx[i+8:])
		if ts <= prev {
			t.Fatalf("time index not increasing at %d", i/12)
		}
		if want := uint32((ts-t0.UnixMilli())/10*2 + 1); rel != want {
			t.Fatalf("time entry (%d, %d), want offset %d", ts, rel, want)
		}
		prev = ts
	}
	if prev != t0.UnixMilli()+50 {
		t.Fatalf("last time entry %d", prev)
	}
	ck, _ := os.ReadFile(filepath.Join(dir, "leader-epoch-checkpoint"))
	if string(ck) != "0\n1\n3 0\n" {
		t.Fatalf("leader-epoch-checkpoint %q", ck)
	}
	ls, _ := os.ReadFile(filepath.Join(dir, "log-start-offset-checkpoint"))
	if string(ls) != "0\n1\nlogs 0 0\n" {
		t.Fatalf("log-start-offset-checkpoint %q", ls)
	}
}

func TestReadLimits(t *testing.T) {
	clk := newClock()
	l := openLog(t, partitionDir(t), Config{Clock: clk.Now, IndexIntervalBytes: 300})
	defer l.Close()
	var sizes []int64
	for i := 0; i < 20; i++ {
		in := valueBatch(t, recordbatch.CodecNone, i, 1, 100+i*10, t0.UnixMilli())
		mustAppend(t, l, in, 0, clk.Now())
		sizes = append(sizes, int64(len(in)))
	}
	sum := func(from, to int) (n int64) {
		for _, s := range sizes[from:to] {
			n += s
		}
		return n
	}
	cases := []struct {
		offset, maxOffset int64
		maxBytes          int
		wantFrom, wantTo  int // batches [from, to)
	}{
		{0, 1 << 62, 0, 0, 1},                       // always one whole batch
		{0, 1 << 62, int(sizes[0]) - 1, 0, 1},       // even if larger than maxBytes
		{0, 1 << 62, int(sum(0, 3)), 0, 3},          // exactly three
		{0, 1 << 62, int(sum(0, 3)) + 5, 0, 3},      // not a partial fourth
		{5, 1 << 62, int(sum(5, 15)) + 1, 5, 15},    // index jumps
		{7, 1 << 62, 1 << 30, 7, 20},                // to the end
		{7, 12, 1 << 30, 7, 12},                     // up to a high watermark
		{12, 12, 1 << 30, 0, 0},                     // at the high watermark: empty
		{20, 1 << 62, 1 << 30, 0, 0},                // at the log end: empty
		{3, 1 << 62, int(sum(3, 4)) + 1<<20, 3, 20}, // big budget
	}
	for _, tc := range cases {
		r, err := l.ReadUpTo(tc.offset, tc.maxBytes, tc.maxOffset)
		if err != nil {
			t.Fatal(err)
		}
		if tc.wantTo == 0 {
			if r.Size != 0 || r.File != nil || r.FirstOffset != -1 {
				t.Fatalf("%+v: want empty, got %+v", tc, r)
			}
			continue
		}
		if r.Position != sum(0, tc.wantFrom) || r.Size != sum(tc.wantFrom, tc.wantTo) || r.FirstOffset != int64(tc.wantFrom) {
			t.Fatalf("%+v: got pos %d size %d first %d", tc, r.Position, r.Size, r.FirstOffset)
		}
		if r.LogStartOffset != 0 || r.LogEndOffset != 20 {
			t.Fatalf("bounds %d..%d", r.LogStartOffset, r.LogEndOffset)
		}
		r.Close()
	}
	for _, off := range []int64{21, -1} {
		_, err := l.Read(off, 100)
		wantErr(t, err, ErrOffsetOutOfRange)
		if ErrorCode(err) != kerr.OffsetOutOfRange.Code {
			t.Fatalf("code %d", ErrorCode(err))
		}
	}
}

func TestWriteToSocketAndBuffer(t *testing.T) {
	clk := newClock()
	l := openLog(t, partitionDir(t), Config{Clock: clk.Now})
	defer l.Close()
	for i := 0; i < 50; i++ {
		mustAppend(t, l, valueBatch(t, recordbatch.CodecNone, i*10, 10, 1000, t0.UnixMilli()), 0, clk.Now())
	}
	r, err := l.Read(100, 300<<10)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want, err := r.Bytes()
	if err != nil || int64(len(want)) != r.Size || r.Position == 0 {
		t.Fatalf("%v %d %+v", err, len(want), r)
	}

	var buf bytes.Buffer
	if n, err := r.WriteTo(&buf); err != nil || n != r.Size || !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("buffer: %d %v", n, err)
	}

	if b := sendOverTCP(t, r); !bytes.Equal(b, want) {
		t.Fatalf("socket received %d bytes, want %d identical", len(b), len(want))
	}
}

func TestAppendAsFollowerCopiesLeader(t *testing.T) {
	clk := newClock()
	leader := openLog(t, filepath.Join(t.TempDir(), "t-1"), Config{Clock: clk.Now, SegmentBytes: 5000})
	defer leader.Close()
	follower := openLog(t, filepath.Join(t.TempDir(), "t-1"), Config{Clock: clk.Now, SegmentBytes: 5000})
	defer follower.Close()
	for i := 0; i < 30; i++ {
		epoch := int32(1 + i/10)
		mustAppend(t, leader, valueBatch(t, codecs[i%5], i*3, 3, 80, t0.UnixMilli()+int64(i)), epoch, clk.Now())
	}
	for off := int64(0); off < leader.LogEndOffset(); {
		r, err := leader.Read(off, 700)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := r.Bytes()
		r.Close()
		if err := follower.AppendAsFollower(b); err != nil {
			t.Fatal(err)
		}
		off = follower.LogEndOffset()
	}
	if follower.LogEndOffset() != leader.LogEndOffset() {
		t.Fatalf("follower end %d, leader %d", follower.LogEndOffset(), leader.LogEndOffset())
	}
	if !slices.Equal(follower.EpochEntries(), []EpochEntry{{1, 0}, {2, 30}, {3, 60}}) {
		t.Fatalf("follower epochs %v", follower.EpochEntries())
	}
	if !slices.Equal(readAll(t, follower), readAll(t, leader)) {
		t.Fatal("follower records differ")
	}
	// Same bytes for the same offsets, whatever the segment boundaries.
	lr, _ := leader.Read(45, 1<<20)
	fr, _ := follower.Read(45, 1<<20)
	lb, _ := lr.Bytes()
	fb, _ := fr.Bytes()
	lr.Close()
	fr.Close()
	n := min(len(lb), len(fb))
	if lr.FirstOffset != fr.FirstOffset || n == 0 || !bytes.Equal(lb[:n], fb[:n]) {
		t.Fatal("follower bytes differ from leader bytes")
	}

	// Offsets must continue the log; CRCs are checked.
	r, _ := leader.Read(0, 1)
	first, _ := r.Bytes()
	r.Close()
	wantErr(t, follower.AppendAsFollower(first), ErrUnexpectedOffset)
	bad := valueBatch(t, recordbatch.CodecNone, 0, 1, 10, 0)
	recordbatch.SetBaseOffset(bad, follower.LogEndOffset())
	bad[len(bad)-1] ^= 1
	wantErr(t, follower.AppendAsFollower(bad), recordbatch.ErrCRC)
	// A gap (offsets removed by the leader's cleaner) is accepted.
	gap := valueBatch(t, recordbatch.CodecNone, 0, 1, 10, 0)
	recordbatch.SetBaseOffset(gap, follower.LogEndOffset()+5)
	if err := follower.AppendAsFollower(gap); err != nil {
		t.Fatal(err)
	}
	if follower.LogEndOffset() != leader.LogEndOffset()+6 {
		t.Fatalf("end after gap %d", follower.LogEndOffset())
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{SegmentBytes: -1, FlushInterval: -1, CleanupPolicy: "shred", IndexIntervalBytes: -2}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"segment.bytes", "flush.ms", "cleanup.policy", "index.interval.bytes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "nopartition"), Config{}); err == nil {
		t.Fatal("folder without -<partition> accepted")
	}
}

func TestErrorCodes(t *testing.T) {
	cases := []struct {
		err  error
		want *kerr.Error
	}{
		{ErrOffsetOutOfRange, kerr.OffsetOutOfRange},
		{ErrRecordListTooLarge, kerr.RecordListTooLarge},
		{ErrStaleEpoch, kerr.FencedLeaderEpoch},
		{ErrClosed, kerr.NotLeaderForPartition},
		{recordbatch.ErrCRC, kerr.CorruptMessage},
		{os.ErrPermission, kerr.KafkaStorageError},
	}
	for _, tc := range cases {
		if got := ErrorCode(fmt.Errorf("wrapped: %w", tc.err)); got != tc.want.Code {
			t.Errorf("%v: %d, want %d", tc.err, got, tc.want.Code)
		}
	}
	if ErrorCode(nil) != 0 {
		t.Error("nil")
	}
}

func TestRecordListTooLarge(t *testing.T) {
	clk := newClock()
	l := openLog(t, partitionDir(t), Config{Clock: clk.Now, SegmentBytes: 500})
	defer l.Close()
	_, _, err := l.AppendAsLeader(valueBatch(t, recordbatch.CodecNone, 0, 5, 100, t0.UnixMilli()), 0, clk.Now())
	wantErr(t, err, ErrRecordListTooLarge)
}

func TestClosedLog(t *testing.T) {
	clk := newClock()
	l := openLog(t, partitionDir(t), Config{Clock: clk.Now})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	_, _, err := l.AppendAsLeader(valueBatch(t, recordbatch.CodecNone, 0, 1, 1, 0), 0, clk.Now())
	wantErr(t, err, ErrClosed)
	_, err = l.Read(0, 1)
	wantErr(t, err, ErrClosed)
}

func TestDelete(t *testing.T) {
	clk := newClock()
	dir := partitionDir(t)
	l := openLog(t, dir, Config{Clock: clk.Now})
	mustAppend(t, l, valueBatch(t, recordbatch.CodecNone, 0, 1, 1, 0), 0, clk.Now())
	r, _ := l.Read(0, 100)
	if err := l.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("folder still there: %v", err)
	}
	// A read taken before the deletion stays readable until closed.
	if b, err := r.Bytes(); err != nil || len(b) == 0 {
		t.Fatalf("read after delete: %v", err)
	}
	r.Close()
}
