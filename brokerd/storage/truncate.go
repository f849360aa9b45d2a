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
// io.ErrUnexpectedEOF when they copy it. Should deleting or cutting a file
// fail halfway, the log is closed (ErrClosed from then on) rather than left
// disagreeing with its files; opening it again recovers it.
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
	f, err := seg.log.acquire()
	if err != nil {
		return err
	}
	defer seg.log.release()

	// Find where to cut segment j.
	hr := newHeaderReader(f, seg.size)
	defer hr.release()
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
	// Rebuild the cut segment's indexes from its headers: the bytes below
	// the cut do not change.
	res := scanLog(f, seg.base, 0, cut, seg.base-1, newIndexBuilder(seg.base, l.cfg.IndexIntervalBytes), false)
	if res.valid != cut {
		return fmt.Errorf("%w: segment %d unreadable below the truncation point: %v", ErrCorruptLog, seg.base, res.stopErr)
	}

	// Readers see the truncated log from here on. Segment j becomes the
	// active one: its index files are rewritten when it is rolled or the
	// log closed, like any active segment's.
	removed := l.segs[j+1:]
	l.mu.Lock()
	seg.size = cut
	seg.next = newEnd
	seg.offIdx, seg.timeIdx = res.offIdx, res.timeIdx
	seg.maxTS = res.ib.maxTS
	l.segs = slices.Clone(l.segs[:j+1])
	l.leo = newEnd
	epochsChanged := l.epochs.truncateFromEnd(newEnd)
	l.mu.Unlock()
	seg.ib = res.ib
	seg.idxOnDisk, seg.timeOnDisk = -1, -1
	for _, s := range removed {
		s.log.drop()
	}

	// Then the files: the later segments newest first, so a crash leaves
	// a log that is merely longer than asked, then the cut.
	for i := len(removed) - 1; i >= 0; i-- {
		if err := removeSegmentFiles(l.dir, removed[i].base); err != nil {
			return l.failedLocked("truncation", err)
		}
	}
	if err := f.Truncate(cut); err != nil {
		return l.failedLocked("truncation", err)
	}
	if err := f.Sync(); err != nil {
		return l.failedLocked("truncation", err)
	}
	l.unsynced = false
	seg.rollBase = -1
	if cut > 0 {
		seg.rollBase = l.rollBaseOf(f, cut)
	}
	err = l.files.syncDir(l.dir)
	if epochsChanged {
		err = errors.Join(err, l.persistEpochs())
	}
	return err
}

// failedLocked closes a log whose files are in a state its segments do
// not describe, after a failure halfway through changing them: a reopen
// recovers it. Holds wmu.
func (l *Log) failedLocked(what string, err error) error {
	l.closeLocked()
	return fmt.Errorf("storage: %s of %s failed, log closed: %w", what, l.dir, err)
}

// TruncateFullyAndStartAt deletes all data and restarts the log empty at
// offset, which becomes both the log start and end offset; the leader
// epoch cache is cleared. A follower does this when the leader's log start
// offset is past its own log end. A failure halfway closes the log, as in
// TruncateTo.
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
	// From here on, a reader that finds an old segment waits for this to
	// finish (the new segment may take the file name of an old one).
	l.mu.Lock()
	for _, s := range old {
		s.log.drop()
	}
	l.mu.Unlock()
	for i := len(old) - 1; i >= 0; i-- {
		if err := removeSegmentFiles(l.dir, old[i].base); err != nil {
			return l.failedLocked("truncation", err)
		}
	}
	s, err := createSegment(l.files, l.dir, offset, l.cfg.IndexIntervalBytes)
	if err != nil {
		return l.failedLocked("truncation", err)
	}
	l.mu.Lock()
	l.segs = []*segment{s}
	l.logStart = offset
	l.leo = offset
	l.epochs.clear()
	l.mu.Unlock()
	l.unsynced = false
	return errors.Join(l.persistEpochs(), l.persistLogStart())
}
