package storage

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"logpipe/brokerd/recordbatch"
)

// OffsetForTimestamp answers ListOffsets by timestamp: the first offset at
// or after the log start whose record timestamp is at or above ts, and that
// record's timestamp (for LogAppendTime batches, the batch's append time).
// found is false when no record is that new (Kafka then answers offset -1).
// The special timestamps -1 (latest) and -2 (earliest) are the caller's to
// map to LogEndOffset and LogStartOffset.
//
// The segment is chosen by its largest timestamp, the starting point by
// the time and offset indexes, and the batch by its max timestamp; only
// that batch is decompressed to find the exact record.
func (l *Log) OffsetForTimestamp(ts int64) (offset, timestamp int64, found bool, err error) {
	cursor := int64(-1)
	for {
		l.mu.RLock()
		if l.closed {
			l.mu.RUnlock()
			return -1, -1, false, ErrClosed
		}
		start := l.logStart
		from := max(cursor, start)
		i := max(sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > from })-1, 0)
		for i < len(l.segs) && l.segs[i].maxTS < ts {
			i++
		}
		if i == len(l.segs) {
			l.mu.RUnlock()
			return -1, -1, false, nil
		}
		s := l.segs[i]
		size, oidx, tidx := s.size, s.offIdx, s.timeIdx
		nextBase := int64(-1)
		if i+1 < len(l.segs) {
			nextBase = l.segs[i+1].base
		}
		f, err := s.log.acquire()
		l.mu.RUnlock()
		if errors.Is(err, errSegmentGone) {
			l.awaitWriter()
			continue
		}
		if err != nil {
			return -1, -1, false, err
		}

		offset, timestamp, found, err = searchTimestamp(s, f, size, oidx, tidx, ts, max(from, s.base))
		s.log.release()
		if err != nil || found || nextBase < 0 {
			return offset, timestamp, found, err
		}
		cursor = nextBase
	}
}

// searchTimestamp looks for the first record at or after offset from with
// a timestamp at or above ts in one segment.
func searchTimestamp(s *segment, f *os.File, size int64, oidx []offsetEntry, tidx []timeEntry, ts, from int64) (int64, int64, bool, error) {
	hr := newHeaderReader(f, size)
	defer hr.release()
	pos := lookupOffset(oidx, s.base, max(lookupTime(tidx, s.base, ts), from))
	for {
		h, err := hr.at(pos)
		if err == io.EOF {
			return -1, -1, false, nil
		}
		if err != nil {
			return -1, -1, false, err
		}
		if h.LastOffset() >= from && h.MaxTimestamp >= ts {
			batch := make([]byte, h.Size())
			if _, err := f.ReadAt(batch, pos); err != nil {
				return -1, -1, false, fmt.Errorf("storage: reading batch at %d: %w", pos, err)
			}
			if _, err := recordbatch.Verify(batch); err != nil {
				return -1, -1, false, err
			}
			off, t, ok := int64(-1), int64(-1), false
			err := forEachRecord(h, batch, func(r record) bool {
				if r.Offset >= from && r.Timestamp >= ts {
					off, t, ok = r.Offset, r.Timestamp, true
					return false
				}
				return true
			})
			if err != nil || ok {
				return off, t, ok, err
			}
		}
		pos += int64(h.Size())
	}
}
