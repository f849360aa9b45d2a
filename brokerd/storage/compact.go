package storage

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"logpipe/brokerd/recordbatch"
)

// Compaction (cleanup.policy=compact).
//
// Compact rewrites the rolled segments so that each key keeps only its
// latest record. It never touches the active segment, segments holding
// offsets at or above the high watermark, or segments with a timestamp newer
// than min.compaction.lag.ms. Offsets are preserved, so batches and the log
// become sparse. Per batch: if every record survives, the batch is copied
// byte for byte; if none does, it is dropped; otherwise it is rebuilt with
// the surviving records (same base offset, base timestamp, producer fields
// and codec; record count, last offset delta and, for CreateTime, max
// timestamp recomputed; new CRC). Records without a key are dropped, as
// Kafka's cleaner does. A tombstone (null value) that is the latest for its
// key survives until its batch's max timestamp is more than
// delete.retention.ms old. Control batches are kept as they are.
//
// Consecutive cleaned segments are merged while the result fits in
// segment.bytes and its offsets fit the 32-bit index range.
//
// Crash safety. For each group of segments the cleaner:
//  1. writes <base>.log.cleaned, .index.cleaned, .timeindex.cleaned and
//     fsyncs them and the folder;
//  2. writes the manifest cleaner-swap ("<base> <end>": the group covers
//     segments with base offsets in [base, end)) atomically: this is the
//     commit point;
//  3. deletes the group's old segment files, renames the .cleaned files to
//     their final names (the log last), fsyncs the folder, removes the
//     manifest.
//
// Open finishes step 3 when it finds a manifest (finishSwap) and deletes
// any .cleaned file without one, so a crash leaves either the old segments
// or the new one, never both or neither. (Kafka uses .cleaned then .swap
// suffixes for the same purpose.)
//
// What is not done: the dedupe map covers all rolled segments on every run
// (Kafka keeps a cleaner checkpoint and bounds the map's memory); empty
// batches are not kept to preserve idempotent producer state; transaction
// markers and aborted data are not removed.

// CompactStats reports what a Compact run did.
type CompactStats struct {
	Segments       int   // rolled segments examined
	Rewritten      int   // segments replaced by cleaned ones
	RecordsRead    int64 // records decoded
	RecordsKept    int64 // records surviving
	BytesBefore    int64 // size of the replaced segments
	BytesAfter     int64 // size of their replacements
	TombstonesKept int64 // tombstones still kept after the run
}

// Compact runs one cleaning pass (see above) if cleanup.policy includes
// compact; otherwise it does nothing. now is the broker's clock for the
// tombstone and lag rules; only data below highWatermark is cleaned. It
// may run concurrently with appends and reads: it works on rolled
// segments, which never change, and takes the writer lock only to swap
// files, abandoning a group whose segments were meanwhile deleted or
// truncated. One Compact runs at a time per Log.
func (l *Log) Compact(now time.Time, highWatermark int64) (CompactStats, error) {
	var st CompactStats
	l.cleanMu.Lock()
	defer l.cleanMu.Unlock()
	if !l.cfg.compacts() {
		return st, nil
	}
	nowMs := now.UnixMilli()

	l.mu.RLock()
	if l.closed {
		l.mu.RUnlock()
		return st, ErrClosed
	}
	var segs []*segment
	var uppers []int64
	lagMs := l.cfg.MinCompactionLag.Milliseconds()
	for i := 0; i < len(l.segs)-1; i++ {
		s, upper := l.segs[i], l.segs[i+1].base
		if upper > highWatermark || (lagMs > 0 && s.maxTS > nowMs-lagMs) {
			break
		}
		segs = append(segs, s)
		uppers = append(uppers, upper)
	}
	l.mu.RUnlock()
	st.Segments = len(segs)
	if len(segs) == 0 {
		return st, nil
	}

	// Pass 1: the latest offset of every key.
	latest := map[[16]byte]int64{}
	for _, s := range segs {
		err := forEachBatch(s, func(_ int64, h recordbatch.Header, batch []byte) error {
			if h.Control() {
				return nil
			}
			return forEachRecord(h, batch, func(r record) bool {
				if r.Key != nil {
					latest[keyHash(r.Key)] = r.Offset
				}
				return true
			})
		})
		if errors.Is(err, errSegmentGone) {
			return st, nil // deleted meanwhile: try next time
		}
		if err != nil {
			return st, err
		}
	}

	// Pass 2: clean group by group.
	tombstoneHorizon := nowMs - l.cfg.DeleteRetention.Milliseconds()
	for i := 0; i < len(segs); {
		j := i + 1
		total := segs[i].size
		for j < len(segs) && total+segs[j].size <= l.cfg.SegmentBytes && uppers[j]-1-segs[i].base <= maxOffsetDelta {
			total += segs[j].size
			j++
		}
		err := l.cleanGroup(segs[i:j], uppers[j-1], latest, tombstoneHorizon, &st)
		if errors.Is(err, errSegmentGone) {
			return st, nil
		}
		if err != nil {
			return st, err
		}
		i = j
	}
	return st, nil
}

func keyHash(k []byte) [16]byte {
	sum := sha256.Sum256(k)
	return [16]byte(sum[:16])
}

// forEachBatch reads a rolled segment's batches in order, checking CRCs.
// batch is reused between calls. A segment deleted from the log
// meanwhile may fail with errSegmentGone.
func forEachBatch(s *segment, fn func(pos int64, h recordbatch.Header, batch []byte) error) error {
	f, err := s.log.acquire()
	if err != nil {
		return err
	}
	defer s.log.release()
	br := bufio.NewReaderSize(io.NewSectionReader(f, 0, s.size), 1<<20)
	var buf []byte
	for pos := int64(0); pos < s.size; {
		hdr, err := br.Peek(recordbatch.HeaderSize)
		if err != nil {
			return fmt.Errorf("%w: segment %d at %d: %v", ErrCorruptLog, s.base, pos, err)
		}
		size := recordbatch.Size(hdr)
		if size < recordbatch.HeaderSize || pos+size > s.size {
			return fmt.Errorf("%w: segment %d at %d: batch of %d bytes", ErrCorruptLog, s.base, pos, size)
		}
		if int64(cap(buf)) < size {
			buf = make([]byte, size)
		}
		buf = buf[:size]
		if _, err := io.ReadFull(br, buf); err != nil {
			return fmt.Errorf("%w: segment %d at %d: %v", ErrCorruptLog, s.base, pos, err)
		}
		h, err := recordbatch.Verify(buf)
		if err != nil {
			return fmt.Errorf("segment %d at %d: %w", s.base, pos, err)
		}
		if err := fn(pos, h, buf); err != nil {
			return err
		}
		pos += size
	}
	return nil
}

// cleanGroup writes the cleaned version of group (whose offsets end
// before upper) and swaps it in.
func (l *Log) cleanGroup(group []*segment, upper int64, latest map[[16]byte]int64, tombstoneHorizon int64, st *CompactStats) error {
	base := group[0].base
	path := func(suffix string) string { return filepath.Join(l.dir, segmentName(base, suffix)+cleanedSuffix) }
	lf, err := l.files.openFile(path(logSuffix), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	keep := false
	defer func() {
		if !keep {
			lf.Close()
			for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
				os.Remove(path(suf))
			}
		}
	}()

	w := bufio.NewWriterSize(lf, 1<<20)
	ib := newIndexBuilder(base, l.cfg.IndexIntervalBytes)
	ns := &segment{base: base, dir: l.dir, next: upper, maxTS: -1, rollBase: -1}
	var pos, before int64
	changed := len(group) > 1
	var read, kept, tombstones int64
	for _, s := range group {
		before += s.size
		err := forEachBatch(s, func(_ int64, h recordbatch.Header, batch []byte) error {
			out := batch
			if !h.Control() {
				var err error
				var n, k, t int64
				out, n, k, t, err = cleanBatch(h, batch, latest, tombstoneHorizon)
				if err != nil {
					return err
				}
				read, kept, tombstones = read+n, kept+k, tombstones+t
				if k != n {
					changed = true
				}
			}
			if out == nil {
				return nil
			}
			oh, err := recordbatch.ParseHeader(out)
			if err != nil {
				return err
			}
			if _, err := w.Write(out); err != nil {
				return err
			}
			oe, addOff, te, addTime := ib.add(pos, int64(len(out)), oh.LastOffset(), oh.MaxTimestamp)
			if addOff {
				ns.offIdx = append(ns.offIdx, oe)
			}
			if addTime {
				ns.timeIdx = append(ns.timeIdx, te)
			}
			pos += int64(len(out))
			return nil
		})
		if err != nil {
			return err
		}
	}
	st.RecordsRead += read
	st.RecordsKept += kept
	st.TombstonesKept += tombstones
	if !changed {
		return nil
	}
	if te, ok := ib.timeEntry(); ok {
		ns.timeIdx = append(ns.timeIdx, te)
	}
	ns.size, ns.maxTS, ns.ib = pos, ib.maxTS, ib
	if err := w.Flush(); err != nil {
		return err
	}
	if err := lf.Sync(); err != nil {
		return err
	}
	var ob, tb []byte
	for _, e := range ns.offIdx {
		ob = appendOffsetEntry(ob, e)
	}
	for _, e := range ns.timeIdx {
		tb = appendTimeEntry(tb, e)
	}
	if err := l.files.writeFile(path(indexSuffix), ob, true); err != nil {
		return err
	}
	if err := l.files.writeFile(path(timeIndexSuffix), tb, true); err != nil {
		return err
	}
	if err := l.files.syncDir(l.dir); err != nil {
		return err
	}
	ns.idxOnDisk, ns.timeOnDisk = len(ns.offIdx), len(ns.timeIdx)

	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return ErrClosed
	}
	gi := slices.Index(l.segs, group[0])
	if gi < 0 || gi+len(group) >= len(l.segs) || !slices.Equal(l.segs[gi:gi+len(group)], group) {
		return nil // retention, truncation or a roll race changed the segments: try next time
	}
	manifest := encodeCheckpoint([][]string{{strconv.FormatInt(base, 10), strconv.FormatInt(upper, 10)}})
	if err := l.files.writeFileAtomic(l.dir, swapManifestName, manifest); err != nil {
		return err
	}
	// Committed: from here on Open would finish the swap. The cleaned
	// segment is published first, its file held open until it has its
	// final name, so nobody opens the old file by that name meanwhile.
	keep = true
	ns.log = l.files.adopt(ns.path(logSuffix), lf)
	l.mu.Lock()
	l.segs = slices.Concat(l.segs[:gi], []*segment{ns}, l.segs[gi+len(group):])
	l.mu.Unlock()
	for _, s := range group {
		s.log.drop()
	}
	err = completeSwap(l.files, l.dir, base, upper)
	ns.log.release()
	if err != nil {
		// The files are in an unknown state until Open finishes the swap.
		l.closeLocked()
		return fmt.Errorf("storage: compaction swap of segment %d failed, log closed: %w", base, err)
	}
	st.Rewritten += len(group)
	st.BytesBefore += before
	st.BytesAfter += pos
	return nil
}

// cleanBatch returns the batch to keep for batch (itself, a rebuilt one,
// or nil), with the number of records read and kept and of tombstones
// kept.
func cleanBatch(h recordbatch.Header, batch []byte, latest map[[16]byte]int64, tombstoneHorizon int64) (out []byte, read, kept, tombstones int64, err error) {
	var raws []byte
	lastDelta := int32(-1)
	maxTS := int64(-1)
	err = forEachRecord(h, batch, func(r record) bool {
		read++
		if r.Key == nil || latest[keyHash(r.Key)] != r.Offset {
			return true
		}
		if r.Value == nil {
			if h.MaxTimestamp < tombstoneHorizon {
				return true
			}
			tombstones++
		}
		kept++
		raws = append(raws, r.Raw...)
		lastDelta = int32(r.Offset - h.BaseOffset)
		maxTS = max(maxTS, r.Timestamp)
		return true
	})
	switch {
	case err != nil:
		return nil, 0, 0, 0, err
	case kept == read:
		return batch, read, kept, tombstones, nil
	case kept == 0:
		return nil, read, 0, 0, nil
	}
	nh := h
	nh.LastOffsetDelta = lastDelta
	nh.RecordCount = int32(kept)
	if !h.LogAppendTime() {
		nh.MaxTimestamp = maxTS
	}
	p, err := compress(h.Codec(), raws)
	if err != nil {
		return nil, 0, 0, 0, err
	}
	return recordbatch.Build(nh, p), read, kept, tombstones, nil
}

// completeSwap carries out step 3 for the group [base, upper): delete the
// old segments, rename the cleaned files into place, remove the manifest.
// It is idempotent, so Open can rerun it after a crash.
func completeSwap(c *FileCache, dir string, base, upper int64) error {
	cleaned := func(suf string) string { return filepath.Join(dir, segmentName(base, suf)+cleanedSuffix) }
	if _, err := os.Stat(cleaned(logSuffix)); err == nil {
		ents, err := c.readDir(dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if b, ok := parseSegmentName(e.Name(), logSuffix); ok && b >= base && b < upper {
				if err := removeSegmentFiles(dir, b); err != nil {
					return err
				}
			}
		}
		for _, suf := range []string{indexSuffix, timeIndexSuffix, logSuffix} {
			if err := os.Rename(cleaned(suf), filepath.Join(dir, segmentName(base, suf))); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
		if err := c.syncDir(dir); err != nil {
			return err
		}
	} else if !os.IsNotExist(err) {
		return err
	}
	if err := os.Remove(filepath.Join(dir, swapManifestName)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return c.syncDir(dir)
}

// finishSwap completes a compaction swap interrupted by a crash.
func finishSwap(c *FileCache, dir string) error {
	lines, ok, err := readCheckpoint(c, dir, swapManifestName, 2)
	if err != nil || !ok {
		return err
	}
	if len(lines) != 1 {
		return fmt.Errorf("%w: %s has %d entries", ErrCorruptLog, swapManifestName, len(lines))
	}
	base, err1 := strconv.ParseInt(lines[0][0], 10, 64)
	upper, err2 := strconv.ParseInt(lines[0][1], 10, 64)
	if err := errors.Join(err1, err2); err != nil || base < 0 || upper <= base {
		return fmt.Errorf("%w: %s: bad entry %q", ErrCorruptLog, swapManifestName, lines[0])
	}
	return completeSwap(c, dir, base, upper)
}
