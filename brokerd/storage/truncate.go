package storage

import (
	"errors"
	"fmt"
	"slices"
	"sort"
)

// TruncateTo removes every batch holding offsets at or above offset, as a
// follower does after a leader change. Truncation works on whole batches:
// a batch that straddles offset is removed too and the log end offset
// becomes its base offset; otherwise the log end offset becomes offset.
// Later segments are deleted (newest first, so a crash leaves a log that is
// merely longer than asked), the segment holding offset is cut and becomes
// the active one, and leader epochs starting at or after the new end are
// dropped from the cache. An offset at or past the log end is a no-op; one
// below the log start offset empties the log (TruncateFullyAndStartAt).
//
// Fetches already holding a range past the cut may fail with
// io.ErrUnexpectedEOF when they copy it.
func (l *Log) TruncateTo(offset int64) error {
	if offset < 0 {
		return fmt.Errorf("storage: truncate to negative offset %d", offset)
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if offset >= l.leo {
		return nil
	}
	if offset < l.logStart {
		return l.truncateFullyLocked(offset)
	}
	// j: the last segment with data below offset.
	j := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base >= offset }) - 1
	if j < 0 {
		return l.truncateFullyLocked(offset)
	}
	seg := l.segs[j]

	// Find where to cut segment j.
	hr := newHeaderReader(seg.log.f, seg.size)
	pos, h, found, err := hr.findBatch(lookupOffset(seg.offIdx, seg.base, offset), offset)
	if err != nil {
		return err
	}
	newEnd := offset
	cut := seg.size
	if found {
		cut = pos
		newEnd = min(offset, h.BaseOffset)
	}
	newEnd = max(newEnd, l.logStart)

	// Delete the later segments, newest first.
	removed := l.segs[j+1:]
	for i := len(removed) - 1; i >= 0; i-- {
		if err := removed[i].closeIndexes(false); err != nil {
			return err
		}
		if err := removeSegmentFiles(l.dir, removed[i].base); err != nil {
			return err
		}
	}
	if err := seg.closeIndexes(false); err != nil {
		return err
	}
	if err := seg.log.f.Truncate(cut); err != nil {
		return err
	}
	if err := seg.log.f.Sync(); err != nil {
		return err
	}
	// Rebuild the cut segment's indexes from its headers.
	res := scanLog(seg.log.f, seg.base, 0, cut, seg.base-1, newIndexBuilder(seg.base, l.cfg.IndexIntervalBytes), false)
	if res.valid != cut {
		return fmt.Errorf("%w: segment %d unreadable after truncation: %v", ErrCorruptLog, seg.base, res.stopErr)
	}

	l.mu.Lock()
	seg.size = cut
	seg.next = newEnd
	seg.offIdx, seg.timeIdx = res.offIdx, res.timeIdx
	seg.maxTS = res.ib.maxTS
	seg.ib = res.ib
	l.segs = slices.Clone(l.segs[:j+1])
	l.leo = newEnd
	epochsChanged := l.epochs.truncateFromEnd(newEnd)
	l.mu.Unlock()

	for _, s := range removed {
		s.log.release()
	}
	seg.rollBase = -1
	if cut > 0 {
		seg.rollBase = l.rollBaseOf(seg.log.f, cut)
	}
	errs := []error{seg.writeIndexFiles(), seg.openIndexesForAppend(), syncDir(l.dir)}
	if epochsChanged {
		errs = append(errs, l.persistEpochs())
	}
	return errors.Join(errs...)
}

// TruncateFullyAndStartAt deletes all data and restarts the log empty at
// offset, which becomes both the log start and end offset; the leader
// epoch cache is cleared. A follower does this when the leader's log start
// offset is past its own log end.
func (l *Log) TruncateFullyAndStartAt(offset int64) error {
	if offset < 0 {
		return fmt.Errorf("storage: restart at negative offset %d", offset)
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return l.truncateFullyLocked(offset)
}

func (l *Log) truncateFullyLocked(offset int64) error {
	old := l.segs
	for i := len(old) - 1; i >= 0; i-- {
		if err := old[i].closeIndexes(false); err != nil {
			return err
		}
		if err := removeSegmentFiles(l.dir, old[i].base); err != nil {
			return err
		}
	}
	s, err := createSegment(l.dir, offset, l.cfg.IndexIntervalBytes)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.segs = []*segment{s}
	l.logStart = offset
	l.leo = offset
	l.epochs.clear()
	l.mu.Unlock()
	for _, s := range old {
		s.log.release()
	}
	return errors.Join(l.persistEpochs(), l.persistLogStart())
}
