package storage

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"sync"
)

// ReadResult is a byte range of whole batches in one segment file, ready to
// be copied to a socket without decoding. A zero Size means nothing to
// read (File is then nil). The range stays readable until Close, even if
// retention, compaction or truncation removes the segment meanwhile (a
// truncation cutting into the range makes the copy fail with
// io.ErrUnexpectedEOF; the fetch must then be abandoned).
//
// Copies of a ReadResult share one reference: Close any one of them, once
// the bytes were written.
type ReadResult struct {
	// File is the segment's .log; read it only with ReadAt-style calls
	// (Section, WriteTo, Bytes): it is shared with other readers.
	File *os.File
	// Position and Size delimit the batches in File.
	Position int64
	Size     int64
	// FirstOffset is the base offset of the first batch, which may be
	// below the requested offset (the batch containing it); -1 if empty.
	FirstOffset int64
	// LogStartOffset and LogEndOffset are the log's bounds when the read
	// was made.
	LogStartOffset int64
	LogEndOffset   int64

	ref *readRef
}

type readRef struct {
	once sync.Once
	h    *cachedFile
}

// Close releases the segment file. It is safe to call more than once.
func (r ReadResult) Close() error {
	if r.ref != nil {
		r.ref.once.Do(r.ref.h.release)
	}
	return nil
}

// Section returns a reader over the range.
func (r ReadResult) Section() *io.SectionReader {
	return io.NewSectionReader(r.File, r.Position, r.Size)
}

// Bytes reads the range into memory.
func (r ReadResult) Bytes() ([]byte, error) {
	b := make([]byte, r.Size)
	if r.Size == 0 {
		return b, nil
	}
	if _, err := r.File.ReadAt(b, r.Position); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("storage: reading %d bytes at %d: %w", r.Size, r.Position, err)
	}
	return b, nil
}

// WriteTo copies the range to w. When w is a socket (a syscall.Conn such as
// *net.TCPConn) on Linux it uses sendfile(2) with an explicit file offset,
// so the bytes go from the page cache to the socket without passing through
// user space; otherwise it copies through a buffer. Writing fewer than Size
// bytes because the file was cut returns io.ErrUnexpectedEOF.
func (r ReadResult) WriteTo(w io.Writer) (int64, error) {
	if r.Size == 0 {
		return 0, nil
	}
	if n, handled, err := sendFile(w, r.File, r.Position, r.Size); handled {
		if err == nil && n < r.Size {
			err = io.ErrUnexpectedEOF
		}
		return n, err
	}
	n, err := io.Copy(w, r.Section())
	if err == nil && n < r.Size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// Read returns whole batches starting with the one that contains offset,
// up to maxBytes in total but always at least that first batch (as Kafka
// does, so a consumer can make progress past a batch larger than its fetch
// size). Reads never span segments: ask again from the next offset.
// offset below the log start or above the log end fails with
// ErrOffsetOutOfRange; offset equal to the log end gives an empty result.
// Close the result when done.
func (l *Log) Read(offset int64, maxBytes int) (ReadResult, error) {
	return l.ReadUpTo(offset, maxBytes, math.MaxInt64)
}

// ReadUpTo is Read limited to batches whose base offset is below maxOffset
// (exclusive): a leader serving consumers passes the high watermark.
func (l *Log) ReadUpTo(offset int64, maxBytes int, maxOffset int64) (ReadResult, error) {
	for {
		l.mu.RLock()
		if l.closed {
			l.mu.RUnlock()
			return ReadResult{}, ErrClosed
		}
		start, end := l.logStart, l.leo
		if offset < start || offset > end {
			l.mu.RUnlock()
			return ReadResult{}, fmt.Errorf("%w: offset %d, log holds %d..%d", ErrOffsetOutOfRange, offset, start, end)
		}
		empty := ReadResult{FirstOffset: -1, LogStartOffset: start, LogEndOffset: end}
		limit := min(maxOffset, end)
		if offset >= limit {
			l.mu.RUnlock()
			return empty, nil
		}
		i := max(sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > offset })-1, 0)
		s := l.segs[i]
		size, idx := s.size, s.offIdx
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
			return empty, err
		}

		pos, n, first, found, err := readRange(s, f, size, idx, offset, int64(maxBytes), limit)
		if err != nil || (found && n == 0) {
			s.log.release()
			return empty, err
		}
		if found {
			return ReadResult{
				File: f, Position: pos, Size: n, FirstOffset: first,
				LogStartOffset: start, LogEndOffset: end,
				ref: &readRef{h: s.log},
			}, nil
		}
		s.log.release()
		// offset lies in a gap after this segment's data (compaction,
		// truncation): continue with the next segment's first batch.
		if nextBase < 0 || nextBase >= limit {
			return empty, nil
		}
		offset = nextBase
	}
}

// awaitWriter waits for the writer's operation in progress: a reader that
// found a segment dropped (its files about to change) looks again once the
// new segments are published.
func (l *Log) awaitWriter() {
	l.wmu.Lock()
	defer l.wmu.Unlock()
}

// readRange finds, in a segment whose published size is size, the batch
// containing offset and extends the range with whole batches while they fit
// in budget and start below limit. found is false when the segment has no
// batch at or after offset; a found batch starting at or past limit yields
// n == 0.
func readRange(s *segment, f *os.File, size int64, idx []offsetEntry, offset, budget, limit int64) (pos, n, first int64, found bool, err error) {
	hr := newHeaderReader(f, size)
	defer hr.release()
	pos, h, found, err := hr.findBatch(lookupOffset(idx, s.base, offset), offset)
	if err != nil || !found {
		return 0, 0, -1, false, err
	}
	if h.BaseOffset >= limit {
		return pos, 0, -1, true, nil
	}
	end := pos + int64(h.Size())
	for end < size && end-pos < budget {
		// Jump over batches the index proves whole and below limit.
		if e, ok := lookupPosition(idx, s.base, pos+budget, limit); ok && int64(e.pos) > end {
			end = int64(e.pos)
			continue
		}
		nh, err := hr.at(end)
		if err != nil {
			return 0, 0, -1, false, err
		}
		if nh.BaseOffset >= limit || end+int64(nh.Size())-pos > budget {
			break
		}
		end += int64(nh.Size())
	}
	return pos, end - pos, h.BaseOffset, true, nil
}
