package storage

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"time"
)

// EnforceRetention deletes whole segments from the oldest on, as Kafka's
// retention check does (log.retention.check.interval.ms; the broker calls
// this periodically). A segment goes when:
//   - all its offsets are below the log start offset (after
//     DeleteRecordsBefore), whatever the policy; or, with the delete
//     policy,
//   - its newest timestamp (or, if it has none, the file's modification
//     time) is more than retention.ms before now; or
//   - the log without it would still be at least retention.bytes.
//
// Deletion stops at the first segment that stays, and never touches data
// at or above highWatermark (pass LogEndOffset() when nothing is
// replicated). If every segment goes, a new empty one is rolled at the log
// end offset first. The log start offset moves to the first remaining
// segment. It returns the number of segments deleted.
func (l *Log) EnforceRetention(now time.Time, highWatermark int64) (int, error) {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return 0, ErrClosed
	}
	return l.deleteOldSegmentsLocked(now.UnixMilli(), highWatermark, l.cfg.deletes())
}

// DeleteRecordsBefore moves the log start offset up to offset (the
// DeleteRecords API; the caller checks offset <= high watermark) and
// deletes the segments wholly below it. The new start is persisted in
// log-start-offset-checkpoint before any file is deleted. Offsets past the
// log end fail with ErrOffsetOutOfRange; offsets at or below the current
// start change nothing.
func (l *Log) DeleteRecordsBefore(offset int64) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if offset > l.leo {
		return fmt.Errorf("%w: delete records before %d, log end %d", ErrOffsetOutOfRange, offset, l.leo)
	}
	if offset <= l.logStart {
		return nil
	}
	l.mu.Lock()
	l.logStart = offset
	epochsChanged := l.epochs.truncateFromStart(offset)
	l.mu.Unlock()
	if err := l.persistLogStart(); err != nil {
		return err
	}
	if epochsChanged {
		if err := l.persistEpochs(); err != nil {
			return err
		}
	}
	_, err := l.deleteOldSegmentsLocked(l.cfg.Clock().UnixMilli(), l.leo, false)
	return err
}

// deleteOldSegmentsLocked is the shared deletion walk; byRetention adds the
// time and size rules to the log start rule. Holds wmu.
func (l *Log) deleteOldSegmentsLocked(nowMs, highWatermark int64, byRetention bool) (int, error) {
	var total int64
	for _, s := range l.segs {
		total += s.size
	}
	sizeLimited := byRetention && l.cfg.RetentionBytes >= 0
	excess := total - l.cfg.RetentionBytes
	timeLimited := byRetention && l.cfg.Retention >= 0
	k := 0
	for i, s := range l.segs {
		last := i == len(l.segs)-1
		upper := l.leo
		if !last {
			upper = l.segs[i+1].base
		}
		if (last && s.size == 0) || highWatermark < upper {
			break
		}
		del := upper <= l.logStart
		if !del && timeLimited {
			del = nowMs-s.largestTimestamp() > l.cfg.Retention.Milliseconds()
		}
		if !del && sizeLimited {
			del = excess-s.size >= 0
		}
		if !del {
			break
		}
		excess -= s.size
		k++
	}
	if k == 0 {
		return 0, nil
	}
	if k == len(l.segs) {
		if _, err := l.rollLocked(l.leo); err != nil {
			return 0, err
		}
	}
	removed := l.segs[:k]
	l.mu.Lock()
	l.segs = slices.Clone(l.segs[k:])
	oldStart := l.logStart
	l.logStart = max(l.logStart, l.segs[0].base)
	epochsChanged := l.epochs.truncateFromStart(l.logStart)
	l.mu.Unlock()

	var errs []error
	for _, s := range removed {
		s.log.drop()
		errs = append(errs, removeSegmentFiles(l.dir, s.base))
	}
	errs = append(errs, l.files.syncDir(l.dir))
	if l.logStart != oldStart {
		errs = append(errs, l.persistLogStart())
	}
	if epochsChanged {
		errs = append(errs, l.persistEpochs())
	}
	return k, errors.Join(errs...)
}

// largestTimestamp is the segment's newest batch timestamp, or its file's
// modification time when no batch has one (Kafka's rule for retention.ms).
func (s *segment) largestTimestamp() int64 {
	if s.maxTS >= 0 {
		return s.maxTS
	}
	st, err := os.Stat(s.path(logSuffix))
	if err != nil {
		return math.MaxInt64
	}
	return st.ModTime().UnixMilli()
}
