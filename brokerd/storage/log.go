package storage

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"logpipe/brokerd/recordbatch"
)

// Log is one partition's log: a folder of segments plus checkpoints. See
// the package documentation for the layout and the locking rules.
type Log struct {
	dir       string
	topic     string
	partition int32
	cfg       Config
	files     *FileCache
	recovery  RecoveryInfo

	cleanMu sync.Mutex   // serializes Compact runs; taken before wmu
	wmu     sync.Mutex   // serializes everything that changes the log
	mu      sync.RWMutex // guards the published fields for readers

	// Published: written while holding wmu and mu (write), read under
	// either.
	segs     []*segment // by base offset; the last one is active; never empty while open
	logStart int64      // Invariant: segs[0].base <= logStart <= leo
	leo      int64      // log end offset: the offset the next record gets
	epochs   epochCache
	closed   bool

	// Writer state (wmu).
	unflushed int64
	lastFlush time.Time
	// unsynced is whether the active segment's .log may hold bytes not
	// fsynced yet (appends, or data recovered after a crash).
	unsynced bool
	// epochsOnDisk is the content of leader-epoch-checkpoint as last read
	// or written.
	epochsOnDisk string
}

// RecoveryInfo says what Open found and checked.
type RecoveryInfo struct {
	// CleanShutdown is whether the log had been closed cleanly (its
	// clean-shutdown marker was there).
	CleanShutdown bool
	// SegmentsRecovered counts the segments read whole with every batch's
	// CRC checked: after a crash the active segment, and any segment
	// whose indexes were missing or inconsistent.
	SegmentsRecovered int
	// BytesChecked counts the bytes read and checked: whole segments, or
	// the active segment's batches after its last index entry.
	BytesChecked int64
	// BytesTruncated counts the torn or corrupt bytes cut off.
	BytesTruncated int64
}

// Open opens the partition log in dir, creating the folder if needed. The
// folder's name must be "<topic>-<partition>", as in Kafka. Its segment
// files are kept by a FileCache shared by every log opened this way (see
// FileCache.Open for one of your own).
//
// Recovery: after a clean Close, the active segment's indexes are trusted
// and only the batches after its last index entry are checked. Otherwise
// (or when an index fails its sanity checks) the whole active segment is
// read, every batch's CRC checked, and the file is cut at the first torn or
// corrupt batch; its indexes are rebuilt in memory and written when it is
// rolled or the log closed. Rolled segments were fsynced when rolled: their
// indexes are sanity-checked and rebuilt (with the same CRC scan) only when
// missing or inconsistent. Nothing is written to a log that needs no
// repair. The log end offset comes from the last valid batch; the log
// start offset from the checkpoint or the first segment; the leader epoch
// cache from leader-epoch-checkpoint, trimmed to the log's range.
// Recovery says what was checked.
func Open(dir string, cfg Config) (*Log, error) {
	return open(dir, cfg, defaultFiles())
}

func open(dir string, cfg Config, files *FileCache) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	topic, partition, err := parseTopicPartition(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	l := &Log{dir: dir, topic: topic, partition: partition, cfg: cfg.withDefaults(), files: files}
	l.lastFlush = l.cfg.Clock()
	if err := l.load(); err != nil {
		for _, s := range l.segs {
			s.log.drop()
		}
		return nil, err
	}
	return l, nil
}

// Recovery says what Open found and checked.
func (l *Log) Recovery() RecoveryInfo { return l.recovery }

// Dir returns the partition folder.
func (l *Log) Dir() string { return l.dir }

// Topic returns the topic name taken from the folder name.
func (l *Log) Topic() string { return l.topic }

// Partition returns the partition number taken from the folder name.
func (l *Log) Partition() int32 { return l.partition }

// Config returns the log's settings with defaults filled in.
func (l *Log) Config() Config {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.cfg
}

// SetConfig changes the log's settings (a topic's configs were altered).
// They apply to the next append, roll, retention check and compaction;
// nothing already written changes. The clock of the old config is kept
// when cfg has none.
func (l *Log) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if cfg.Clock == nil {
		cfg.Clock = l.cfg.Clock
	}
	l.cfg = cfg.withDefaults()
	return nil
}

// LogStartOffset returns the first offset a fetch may ask for.
func (l *Log) LogStartOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.logStart
}

// LogEndOffset returns the offset the next appended record will get.
func (l *Log) LogEndOffset() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.leo
}

// Size returns the total bytes of all segments.
func (l *Log) Size() int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var n int64
	for _, s := range l.segs {
		n += s.size
	}
	return n
}

// Segments returns how many segments the log has.
func (l *Log) Segments() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.segs)
}

// SegmentBases returns the base offsets of the segments, oldest first.
func (l *Log) SegmentBases() []int64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]int64, len(l.segs))
	for i, s := range l.segs {
		out[i] = s.base
	}
	return out
}

func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

func (l *Log) load() error {
	if err := finishSwap(l.files, l.dir); err != nil {
		return err
	}
	ents, err := l.files.readDir(l.dir)
	if err != nil {
		return err
	}
	logs := map[int64]bool{}
	var bases []int64
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, tmpSuffix) || strings.HasSuffix(name, cleanedSuffix) {
			if err := os.Remove(filepath.Join(l.dir, name)); err != nil {
				return err
			}
			continue
		}
		if base, ok := parseSegmentName(name, logSuffix); ok {
			logs[base] = true
			bases = append(bases, base)
		}
	}
	for _, e := range ents {
		for _, suf := range []string{indexSuffix, timeIndexSuffix} {
			if base, ok := parseSegmentName(e.Name(), suf); ok && !logs[base] {
				if err := os.Remove(filepath.Join(l.dir, e.Name())); err != nil && !os.IsNotExist(err) {
					return err
				}
			}
		}
	}
	slices.Sort(bases)

	// The marker's removal is not fsynced: should it come back after a
	// power failure, the active segment's index files still describe only
	// data fsynced before them (they are written when it is rolled or
	// the log closed), and the batches after their last entry are
	// checked either way.
	marker := filepath.Join(l.dir, cleanShutdownName)
	err = os.Remove(marker)
	clean := err == nil
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	l.recovery.CleanShutdown = clean
	l.unsynced = !clean

	ckStart, hasCk, err := l.readLogStart()
	if err != nil {
		return err
	}
	l.epochs, err = loadEpochCache(l.files, l.dir)
	if err != nil {
		return err
	}
	l.epochsOnDisk = string(l.epochs.encode())

	if len(bases) == 0 {
		start := int64(0)
		if hasCk {
			start = ckStart
		}
		s, err := createSegment(l.files, l.dir, start, l.cfg.IndexIntervalBytes)
		if err != nil {
			return err
		}
		l.segs = []*segment{s}
	}
	for i, base := range bases {
		last := i == len(bases)-1
		next := int64(-1)
		if !last {
			next = bases[i+1]
		}
		s, err := l.loadSegment(base, next, last, clean)
		if err != nil {
			return fmt.Errorf("storage: loading segment %d of %s: %w", base, l.dir, err)
		}
		l.segs = append(l.segs, s)
	}

	act := l.active()
	l.leo = act.next
	l.logStart = l.segs[0].base
	if hasCk && ckStart > l.logStart {
		l.logStart = ckStart
	}
	if l.logStart > l.leo {
		// The checkpoint is ahead of the data (the tail was lost): start
		// over empty at the checkpointed offset, as Kafka does.
		if err := l.truncateFullyLocked(l.logStart); err != nil {
			return err
		}
	}
	// The epochs found in the active segment's batches, or trimmed to the
	// log's range, are written with the next epoch change or at Close: a
	// crash before that finds and trims them again.
	l.epochs.truncateFromEnd(l.leo)
	l.epochs.truncateFromStart(l.logStart)
	if !hasCk || ckStart != l.logStart {
		return l.persistLogStart()
	}
	return nil
}

// createSegment makes an empty segment at base, replacing any leftover
// files with that name.
func createSegment(c *FileCache, dir string, base int64, interval int) (*segment, error) {
	if err := removeSegmentFiles(dir, base); err != nil {
		return nil, err
	}
	s := &segment{base: base, dir: dir, next: base, maxTS: -1, rollBase: -1, ib: newIndexBuilder(base, interval)}
	f, err := c.openFile(s.path(logSuffix), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	err = errors.Join(c.writeFile(s.path(indexSuffix), nil, false), c.writeFile(s.path(timeIndexSuffix), nil, false))
	if err == nil {
		err = c.syncDir(dir)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	s.log = c.adopt(s.path(logSuffix), f)
	s.log.release()
	return s, nil
}

// loadSegment opens an existing segment. next is the following segment's
// base (-1 for the active one).
func (l *Log) loadSegment(base, next int64, active, clean bool) (*segment, error) {
	s := &segment{base: base, dir: l.dir, maxTS: -1, rollBase: -1}
	s.log = l.files.file(s.path(logSuffix))
	f, err := s.log.acquire()
	if err != nil {
		return nil, err
	}
	defer s.log.release()
	ok := false
	defer func() {
		if !ok {
			s.log.drop()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	idx, tidx, ierr := readIndexes(l.files, s, f, size, next)

	if !active && ierr == nil && (len(tidx) > 0 || size == 0) {
		s.size, s.next, s.offIdx, s.timeIdx, s.maxTS = size, next, idx, tidx, lastEntryTS(tidx)
		s.idxOnDisk, s.timeOnDisk = len(idx), len(tidx)
		ok = true
		return s, nil
	}

	var res scanResult
	from := int64(0)
	scanned := false
	if active && clean && ierr == nil {
		// Trust everything before the last index entry; check the rest.
		ib := newIndexBuilder(base, l.cfg.IndexIntervalBytes)
		prevLast := base - 1
		if n := len(idx); n > 0 {
			from = int64(idx[n-1].pos)
			if n > 1 {
				prevLast = base + int64(idx[n-2].rel)
			}
		}
		if n := len(tidx); n > 0 {
			ib.maxTS, ib.lastTS, ib.maxTSOff = tidx[n-1].ts, tidx[n-1].ts, base+int64(tidx[n-1].rel)
		}
		res = scanLog(f, base, from, size, prevLast, ib, true)
		if from+res.valid == size {
			s.offIdx = append(idx, res.offIdx...)
			s.timeIdx = append(tidx, res.timeIdx...)
			s.idxOnDisk, s.timeOnDisk = len(idx), len(tidx)
			scanned = true
		}
	}
	if !scanned {
		// A crash, a bad index, a rolled segment without usable indexes, or
		// a bad tail after a clean close: check every batch.
		from = 0
		res = scanLog(f, base, 0, size, base-1, newIndexBuilder(base, l.cfg.IndexIntervalBytes), true)
		s.offIdx, s.timeIdx = res.offIdx, res.timeIdx
		s.idxOnDisk, s.timeOnDisk = -1, -1
		if ierr == nil && isPrefix(idx, s.offIdx) && isPrefix(tidx, s.timeIdx) {
			s.idxOnDisk, s.timeOnDisk = len(idx), len(tidx)
		}
		l.recovery.SegmentsRecovered++
	}
	l.recovery.BytesChecked += size - from
	valid := from + res.valid
	if valid < size {
		if err := f.Truncate(valid); err != nil {
			return nil, err
		}
		if err := f.Sync(); err != nil {
			return nil, err
		}
		l.recovery.BytesTruncated += size - valid
	}
	s.size = valid
	s.ib = res.ib
	s.maxTS = res.ib.maxTS
	s.next = res.next
	if valid == 0 {
		s.next = base
	}
	if active {
		for _, e := range res.epochs {
			if latest, has := l.epochs.latest(); !has || e.Epoch > latest.Epoch {
				l.epochs.assign(e.Epoch, e.StartOffset)
			}
		}
		if valid > 0 {
			s.rollBase = l.rollBaseOf(f, valid)
		}
		ok = true
		return s, nil
	}
	// A rolled segment ends with the time entry of its largest timestamp;
	// its rebuilt indexes are written now, as it never changes again.
	if te, add := s.ib.timeEntry(); add {
		s.timeIdx = append(s.timeIdx, te)
	}
	if next >= 0 {
		s.next = next
	}
	if err := s.syncIndexes(l.files); err != nil {
		return nil, err
	}
	ok = true
	return s, nil
}

// isPrefix reports whether a is a prefix of b.
func isPrefix[E comparable](a, b []E) bool {
	return len(a) <= len(b) && slices.Equal(a, b[:len(a)])
}

// rollBaseOf picks where the segment.ms clock of a reopened active
// segment starts: its first batch's max timestamp, but never in the
// future.
func (l *Log) rollBaseOf(f *os.File, size int64) int64 {
	now := l.cfg.Clock().UnixMilli()
	h, err := headerAt(f, size, 0)
	if err != nil || h.MaxTimestamp < 0 || h.MaxTimestamp > now {
		return now
	}
	return h.MaxTimestamp
}

// readIndexes loads and sanity-checks a segment's two index files against
// its log f of logSize bytes. next is the following segment's base, or -1.
func readIndexes(c *FileCache, s *segment, f *os.File, logSize, next int64) ([]offsetEntry, []timeEntry, error) {
	ob, err := c.readFile(s.path(indexSuffix))
	if err != nil {
		return nil, nil, err
	}
	tb, err := c.readFile(s.path(timeIndexSuffix))
	if err != nil {
		return nil, nil, err
	}
	idx, err := decodeOffsetIndex(ob, logSize)
	if err != nil {
		return nil, nil, err
	}
	tidx, err := decodeTimeIndex(tb)
	if err != nil {
		return nil, nil, err
	}
	if n := len(idx); n > 0 {
		last := idx[n-1]
		h, err := headerAt(f, logSize, int64(last.pos))
		if err != nil {
			return nil, nil, err
		}
		if h.LastOffset() != s.base+int64(last.rel) {
			return nil, nil, fmt.Errorf("index entry (%d, %d) does not match batch %d..%d", last.rel, last.pos, h.BaseOffset, h.LastOffset())
		}
		if next >= 0 && h.LastOffset() >= next {
			return nil, nil, fmt.Errorf("index entry offset %d at or past the next segment %d", h.LastOffset(), next)
		}
	}
	if n := len(tidx); n > 0 && next >= 0 && s.base+int64(tidx[n-1].rel) >= next {
		return nil, nil, fmt.Errorf("time index offset %d at or past the next segment %d", s.base+int64(tidx[n-1].rel), next)
	}
	return idx, tidx, nil
}

func (l *Log) readLogStart() (int64, bool, error) {
	lines, ok, err := readCheckpoint(l.files, l.dir, logStartCheckpointName, 3)
	if err != nil || !ok {
		return 0, false, err
	}
	for _, f := range lines {
		p, err1 := strconv.ParseInt(f[1], 10, 32)
		o, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || o < 0 {
			return 0, false, fmt.Errorf("%w: %s: bad entry %q", ErrCorruptLog, logStartCheckpointName, f)
		}
		if f[0] == l.topic && int32(p) == l.partition {
			return o, true, nil
		}
	}
	return 0, false, nil
}

func (l *Log) persistLogStart() error {
	data := encodeCheckpoint([][]string{{l.topic, strconv.FormatInt(int64(l.partition), 10), strconv.FormatInt(l.logStart, 10)}})
	return l.files.writeFileAtomic(l.dir, logStartCheckpointName, data)
}

// persistEpochs writes leader-epoch-checkpoint if its content changed:
// the entries of the epochs that own records, those starting below the log
// end. An entry at the log end (a leader elected, nothing appended in its
// epoch yet) is left out, as Open would drop it (truncateFromEnd): writing
// it would cost two fsyncs for every partition a restarted broker leads
// again. It is written once the epoch has records, at the latest before
// they are fsynced (finishActiveLocked); until then a crash recovers it
// from the active segment's batches. Holds wmu.
func (l *Log) persistEpochs() error {
	c := epochCache{entries: slices.DeleteFunc(l.epochs.snapshot(), func(e EpochEntry) bool { return e.StartOffset >= l.leo })}
	data := c.encode()
	if string(data) == l.epochsOnDisk {
		return nil
	}
	if err := l.files.writeFileAtomic(l.dir, epochCheckpointName, data); err != nil {
		return err
	}
	l.epochsOnDisk = string(data)
	return nil
}

// produceLimits turns the config into recordbatch's produce checks.
func (l *Log) produceLimits(nowMs int64) recordbatch.ProduceLimits {
	return recordbatch.ProduceLimits{
		MaxBatchBytes:        l.cfg.MaxMessageBytes,
		NowMs:                nowMs,
		TimestampBeforeMaxMs: l.cfg.TimestampBeforeMax.Milliseconds(),
		TimestampAfterMaxMs:  l.cfg.TimestampAfterMax.Milliseconds(),
	}
}

// AppendAsLeader validates batches (a produce request's records: one or
// more v2 batches back to back) with recordbatch.Validate and the log's
// limits, gives them the next offsets, stamps leaderEpoch (and, with
// LogAppendTime, now) into them and appends them. It modifies batches in
// place: afterwards they hold exactly the bytes stored. Records are never
// decompressed. It returns the first and last offsets assigned.
//
// now is the broker's clock for LogAppendTime, timestamp windows and
// segment.ms. A leaderEpoch below the newest in the epoch cache fails with
// ErrStaleEpoch; a new epoch is recorded as starting at the first offset.
func (l *Log) AppendAsLeader(batches []byte, leaderEpoch int32, now time.Time) (baseOffset, lastOffset int64, err error) {
	nowMs := now.UnixMilli()
	hs, err := recordbatch.ValidateAll(batches, l.produceLimits(nowMs))
	if err != nil {
		return -1, -1, err
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return -1, -1, ErrClosed
	}
	if latest, ok := l.epochs.latest(); ok && leaderEpoch < latest.Epoch {
		return -1, -1, fmt.Errorf("%w: append in epoch %d, cache has %d", ErrStaleEpoch, leaderEpoch, latest.Epoch)
	}
	next := l.leo
	pos := 0
	for i := range hs {
		b := batches[pos : pos+hs[i].Size()]
		recordbatch.SetBaseOffset(b, next)
		recordbatch.SetPartitionLeaderEpoch(b, leaderEpoch)
		hs[i].BaseOffset, hs[i].PartitionLeaderEpoch = next, leaderEpoch
		if l.cfg.LogAppendTime {
			recordbatch.SetLogAppendTime(b, nowMs)
			hs[i].MaxTimestamp = nowMs
		}
		next = hs[i].NextOffset()
		pos += len(b)
	}
	if leaderEpoch >= 0 {
		if err := l.assignEpochLocked(leaderEpoch, hs[0].BaseOffset); err != nil {
			return -1, -1, err
		}
	}
	if err := l.appendLocked(batches, hs, nowMs); err != nil {
		return -1, -1, err
	}
	return hs[0].BaseOffset, hs[len(hs)-1].LastOffset(), nil
}

// AppendAsFollower appends batches fetched from the leader: they already
// carry offsets, leader epochs and timestamps. Each batch must pass
// recordbatch.Verify (CRC included); the first must start at or after the
// log end offset and each must start after the previous one ends (a
// compacted leader log may skip offsets), else ErrUnexpectedOffset. Leader
// epochs found in the batches are added to the epoch cache.
func (l *Log) AppendAsFollower(batches []byte) error {
	var hs []recordbatch.Header
	for rest := batches; len(rest) > 0; {
		b, r, err := recordbatch.Next(rest)
		if err != nil {
			return err
		}
		h, err := recordbatch.Verify(b)
		if err != nil {
			return err
		}
		hs = append(hs, h)
		rest = r
	}
	if len(hs) == 0 {
		return nil
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return ErrClosed
	}
	prev := l.leo - 1
	for _, h := range hs {
		if h.BaseOffset <= prev {
			return fmt.Errorf("%w: batch %d..%d after offset %d (log end %d)", ErrUnexpectedOffset, h.BaseOffset, h.LastOffset(), prev, l.leo)
		}
		prev = h.LastOffset()
	}
	for _, h := range hs {
		latest, ok := l.epochs.latest()
		if h.PartitionLeaderEpoch >= 0 && (!ok || h.PartitionLeaderEpoch > latest.Epoch) {
			if err := l.assignEpochLocked(h.PartitionLeaderEpoch, h.BaseOffset); err != nil {
				return err
			}
		}
	}
	return l.appendLocked(batches, hs, l.cfg.Clock().UnixMilli())
}

// appendLocked writes whole, checked batches with final offsets to the
// active segment (rolling first if needed), adds index entries and then
// publishes the new end. Holds wmu.
func (l *Log) appendLocked(batches []byte, hs []recordbatch.Header, nowMs int64) error {
	size := int64(len(batches))
	if size > l.cfg.SegmentBytes {
		return fmt.Errorf("%w: %d bytes, segment.bytes %d", ErrRecordListTooLarge, size, l.cfg.SegmentBytes)
	}
	first, last := hs[0].BaseOffset, hs[len(hs)-1].LastOffset()
	seg := l.active()
	if l.shouldRoll(seg, size, last, nowMs) {
		var err error
		if seg, err = l.rollLocked(first); err != nil {
			return err
		}
	}
	f, err := seg.log.acquire()
	if err != nil {
		return err
	}
	defer seg.log.release()
	pos := seg.size
	if _, err := f.WriteAt(batches, pos); err != nil {
		f.Truncate(pos)
		return fmt.Errorf("storage: appending to %s: %w", seg.path(logSuffix), err)
	}
	l.unsynced = true
	var newOff []offsetEntry
	var newTime []timeEntry
	var records int64
	p := pos
	for _, h := range hs {
		oe, addOff, te, addTime := seg.ib.add(p, int64(h.Size()), h.LastOffset(), h.MaxTimestamp)
		if addOff {
			newOff = append(newOff, oe)
		}
		if addTime {
			newTime = append(newTime, te)
		}
		p += int64(h.Size())
		records += int64(h.RecordCount)
	}
	if seg.rollBase < 0 {
		seg.rollBase = nowMs
	}

	l.mu.Lock()
	seg.size = p
	seg.next = last + 1
	seg.maxTS = seg.ib.maxTS
	seg.offIdx = append(seg.offIdx, newOff...)
	seg.timeIdx = append(seg.timeIdx, newTime...)
	l.leo = last + 1
	l.mu.Unlock()

	l.unflushed += records
	now := time.UnixMilli(nowMs)
	if (l.cfg.FlushMessages > 0 && l.unflushed >= l.cfg.FlushMessages) ||
		(l.cfg.FlushInterval > 0 && now.Sub(l.lastFlush) >= l.cfg.FlushInterval) {
		return l.flushLocked(now)
	}
	return nil
}

// shouldRoll applies Kafka's roll rules: the append would overflow
// segment.bytes, segment.ms has passed since the segment's first append,
// or an offset would not fit the 32-bit relative offsets of the indexes.
func (l *Log) shouldRoll(s *segment, size, last, nowMs int64) bool {
	if last-s.base > maxOffsetDelta {
		return true
	}
	if s.size == 0 {
		return false
	}
	if s.size+size > l.cfg.SegmentBytes {
		return true
	}
	return s.rollBase >= 0 && nowMs-s.rollBase >= l.cfg.SegmentAge.Milliseconds()
}

// rollLocked closes the active segment (final time index entry, fsync of
// the log, its indexes written and fsynced) and starts a new one at base.
// Holds wmu.
func (l *Log) rollLocked(base int64) (*segment, error) {
	old := l.active()
	if base <= old.base {
		return nil, fmt.Errorf("%w: cannot roll segment %d at offset %d", ErrRecordListTooLarge, old.base, base)
	}
	if err := l.finishActiveLocked(); err != nil {
		return nil, err
	}
	s, err := createSegment(l.files, l.dir, base, l.cfg.IndexIntervalBytes)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.segs = append(l.segs, s)
	l.mu.Unlock()
	return s, nil
}

// finishActiveLocked makes the active segment durable: it writes the leader
// epochs its records started, fsyncs its log if needed, adds the time index
// entry of its largest timestamp, and writes and fsyncs its indexes (in
// this order, so that neither the epochs nor the index files lag behind or
// point past what is on disk). Holds wmu.
func (l *Log) finishActiveLocked() error {
	if err := l.persistEpochs(); err != nil {
		return err
	}
	s := l.active()
	if l.unsynced {
		if err := l.syncActiveLocked(); err != nil {
			return err
		}
	}
	if te, add := s.ib.timeEntry(); add {
		l.mu.Lock()
		s.timeIdx = append(s.timeIdx, te)
		l.mu.Unlock()
	}
	return s.syncIndexes(l.files)
}

// syncActiveLocked fsyncs the active segment's log. Holds wmu.
func (l *Log) syncActiveLocked() error {
	s := l.active()
	f, err := s.log.acquire()
	if err != nil {
		return err
	}
	defer s.log.release()
	if err := f.Sync(); err != nil {
		return err
	}
	l.unsynced = false
	return nil
}

// Roll closes the active segment and starts a new one at the log end
// offset, if the active segment holds any data.
func (l *Log) Roll() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if l.active().size == 0 {
		return nil
	}
	_, err := l.rollLocked(l.leo)
	return err
}

// AssignEpochStart records that leader epoch epoch starts at startOffset
// (the replication layer calls it when this broker becomes leader, with
// the log end offset) and persists leader-epoch-checkpoint. An epoch below
// the newest known one fails with ErrStaleEpoch.
func (l *Log) AssignEpochStart(epoch int32, startOffset int64) error {
	if epoch < 0 || startOffset < 0 {
		return fmt.Errorf("storage: invalid epoch entry (%d, %d)", epoch, startOffset)
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if latest, ok := l.epochs.latest(); ok && epoch < latest.Epoch {
		return fmt.Errorf("%w: epoch %d, cache has %d", ErrStaleEpoch, epoch, latest.Epoch)
	}
	return l.assignEpochLocked(epoch, startOffset)
}

// assignEpochLocked records an epoch start, and writes the checkpoint if
// the epoch starts below the log end (it has records already); otherwise
// see persistEpochs. Holds wmu.
func (l *Log) assignEpochLocked(epoch int32, start int64) error {
	l.mu.Lock()
	changed := l.epochs.assign(epoch, start)
	l.mu.Unlock()
	if !changed || start >= l.leo {
		return nil
	}
	return l.persistEpochs()
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch for this replica: the
// largest epoch at or below epoch that the cache knows, and its end offset
// (the start of the next epoch, or the log end offset for the latest).
// Unknown: (UndefinedEpoch, UndefinedEpochOffset).
func (l *Log) EndOffsetForEpoch(epoch int32) (int32, int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.epochs.endOffsetFor(epoch, l.leo)
}

// LatestEpoch returns the newest leader epoch in the cache.
func (l *Log) LatestEpoch() (int32, bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	e, ok := l.epochs.latest()
	return e.Epoch, ok
}

// EpochEntries returns a copy of the leader epoch cache.
func (l *Log) EpochEntries() []EpochEntry {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.epochs.snapshot()
}

// Flush fsyncs the active segment's log if it has unsynced appends. Its
// indexes need none: after a crash they are rebuilt from the log.
func (l *Log) Flush() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return l.flushLocked(l.cfg.Clock())
}

func (l *Log) flushLocked(now time.Time) error {
	if l.unsynced {
		if err := l.syncActiveLocked(); err != nil {
			return err
		}
	}
	l.unflushed = 0
	l.lastFlush = now
	return nil
}

// Close makes the active segment durable (an fsync of its log if it has
// unsynced appends, its final time index entry, its indexes written),
// releases the log's files (reads in progress keep theirs until their
// ReadResult is closed) and marks the shutdown clean. Closing twice is a
// no-op.
func (l *Log) Close() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return nil
	}
	err := l.finishActiveLocked()
	l.closeLocked()
	if err != nil {
		return err
	}
	// Not fsynced: a marker lost in a power failure only costs a full
	// check of the active segment at the next Open.
	return l.files.writeFile(filepath.Join(l.dir, cleanShutdownName), nil, false)
}

// closeLocked marks the log closed and drops its files. Holds wmu.
func (l *Log) closeLocked() {
	l.mu.Lock()
	l.closed = true
	segs := l.segs
	l.mu.Unlock()
	for _, s := range segs {
		s.log.drop()
	}
}

// Delete closes the log, without making anything durable first, and
// removes its folder.
func (l *Log) Delete() error {
	l.wmu.Lock()
	if !l.closed {
		l.closeLocked()
	}
	l.wmu.Unlock()
	return os.RemoveAll(l.dir)
}
