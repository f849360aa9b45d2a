package storage

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync"

	"logpipe/brokerd/recordbatch"
)

// segment is one <base>.log with its two indexes.
//
// Fields under "published" are written only while holding both Log.wmu and
// Log.mu (write lock), so either lock is enough to read them. Slices there
// only grow in place; anything that shrinks them installs a fresh copy, so
// a reader may keep using a slice it copied under Log.mu.RLock.
type segment struct {
	base int64
	dir  string
	log  *cachedFile

	// published
	size    int64 // bytes of whole batches readers may read
	next    int64 // offset after the last batch; exact for the active segment
	maxTS   int64 // largest batch max timestamp, -1 if none
	offIdx  []offsetEntry
	timeIdx []timeEntry

	// writer state (Log.wmu)
	ib indexBuilder
	// idxOnDisk and timeOnDisk count the entries of offIdx and timeIdx
	// that the index files hold, in order; -1 means the files must be
	// rewritten. The active segment's new entries are written when it is
	// rolled or its log closed: until then a crash is recovered by
	// rereading the active segment, which rebuilds them.
	idxOnDisk, timeOnDisk int
	rollBase              int64 // broker time (ms) the segment.ms clock starts from; -1 until the first append
}

func (s *segment) path(suffix string) string {
	return filepath.Join(s.dir, segmentName(s.base, suffix))
}

// maxOffsetDelta is the largest offset a segment may hold relative to its
// base: index entries store it as a signed 32-bit number.
const maxOffsetDelta = math.MaxInt32

// scanResult is what a scan of a .log learned.
type scanResult struct {
	valid   int64 // bytes of valid batches from the start of the scan
	next    int64 // offset after the last valid batch
	offIdx  []offsetEntry
	timeIdx []timeEntry
	ib      indexBuilder
	epochs  []EpochEntry // (epoch, base offset) of every batch whose epoch rose
	stopErr error        // why the scan stopped before the end, if it did
}

// scanLog reads the batches of f from byte from (a batch boundary) to
// end, checking each one's CRC when verify is set, that offsets increase
// and stay within the segment's 32-bit range. It stops at the first batch
// that fails (a torn or corrupt tail). ib is the index state at from; it
// is updated and new entries are collected. prevLast is the last offset
// before from (base-1 at the start of a segment).
func scanLog(f *os.File, base, from, end, prevLast int64, ib indexBuilder, verify bool) scanResult {
	res := scanResult{next: prevLast + 1, ib: ib}
	if from >= end {
		return res
	}
	// With verify the whole data is read sequentially; without it only the
	// headers are read.
	var br *bufio.Reader
	hr := newHeaderReader(f, end)
	defer hr.release()
	if verify {
		br = bufio.NewReaderSize(io.NewSectionReader(f, from, end-from), int(min(end-from, 1<<20)))
	}
	pos := from
	var buf []byte
	lastEpoch := int32(-1)
	for pos < end {
		var h recordbatch.Header
		var err error
		if verify {
			var hdr []byte
			if hdr, err = br.Peek(recordbatch.HeaderSize); err == nil {
				h, err = recordbatch.ParseHeader(hdr)
			}
		} else {
			h, err = hr.at(pos)
		}
		if err != nil {
			res.stopErr = fmt.Errorf("batch header at %d: %w", pos, err)
			break
		}
		size := int64(h.Size())
		if pos+size > end {
			res.stopErr = fmt.Errorf("batch at %d needs %d bytes, %d left", pos, size, end-pos)
			break
		}
		if verify {
			if int64(cap(buf)) < size {
				buf = make([]byte, size)
			}
			buf = buf[:size]
			if _, err := io.ReadFull(br, buf); err != nil {
				res.stopErr = fmt.Errorf("reading batch at %d: %w", pos, err)
				break
			}
			if _, err := recordbatch.Verify(buf); err != nil {
				res.stopErr = fmt.Errorf("batch at %d: %w", pos, err)
				break
			}
		}
		if h.LastOffsetDelta < 0 || h.BaseOffset <= prevLast || h.BaseOffset < base || h.LastOffset()-base > maxOffsetDelta {
			res.stopErr = fmt.Errorf("batch at %d has offsets %d..%d after %d in segment %d", pos, h.BaseOffset, h.LastOffset(), prevLast, base)
			break
		}
		oe, addOff, te, addTime := res.ib.add(pos, size, h.LastOffset(), h.MaxTimestamp)
		if addOff {
			res.offIdx = append(res.offIdx, oe)
		}
		if addTime {
			res.timeIdx = append(res.timeIdx, te)
		}
		if h.PartitionLeaderEpoch >= 0 && h.PartitionLeaderEpoch > lastEpoch {
			lastEpoch = h.PartitionLeaderEpoch
			res.epochs = append(res.epochs, EpochEntry{h.PartitionLeaderEpoch, h.BaseOffset})
		}
		prevLast = h.LastOffset()
		res.next = h.NextOffset()
		pos += size
		res.valid = pos - from
	}
	return res
}

// headerReader reads batch headers from a segment file through a small
// buffer, never past limit (the published size). The buffer comes from a
// pool on the first read; release gives it back.
type headerReader struct {
	f      *os.File
	limit  int64
	buf    []byte
	pooled *[]byte
	bufPos int64
}

const headerChunk = 8 << 10

// headerBufs are headerReaders' buffers: a fetch reads through one, and
// without the pool each fetch left one behind.
var headerBufs = sync.Pool{New: func() any { b := make([]byte, headerChunk); return &b }}

func newHeaderReader(f *os.File, limit int64) headerReader {
	return headerReader{f: f, limit: limit, bufPos: -1}
}

// release gives the reader's buffer back to the pool; a later read takes
// another.
func (r *headerReader) release() {
	if r.pooled != nil {
		headerBufs.Put(r.pooled)
		r.pooled, r.buf, r.bufPos = nil, nil, -1
	}
}

// at returns the header of the batch starting at pos. It returns io.EOF
// when pos is at limit.
func (r *headerReader) at(pos int64) (recordbatch.Header, error) {
	if pos >= r.limit {
		return recordbatch.Header{}, io.EOF
	}
	if pos+recordbatch.HeaderSize > r.limit {
		return recordbatch.Header{}, fmt.Errorf("%w: batch header at %d crosses the end %d", ErrCorruptLog, pos, r.limit)
	}
	if r.bufPos < 0 || pos < r.bufPos || pos+recordbatch.HeaderSize > r.bufPos+int64(len(r.buf)) {
		if r.pooled == nil {
			r.pooled = headerBufs.Get().(*[]byte)
		}
		r.buf = (*r.pooled)[:min(int64(headerChunk), r.limit-pos)]
		if _, err := r.f.ReadAt(r.buf, pos); err != nil {
			r.bufPos = -1
			if errors.Is(err, io.EOF) {
				return recordbatch.Header{}, fmt.Errorf("storage: segment shrank during read at %d: %w", pos, io.ErrUnexpectedEOF)
			}
			return recordbatch.Header{}, err
		}
		r.bufPos = pos
	}
	off := pos - r.bufPos
	h, err := recordbatch.ParseHeader(r.buf[off : off+recordbatch.HeaderSize])
	if err != nil {
		return h, err
	}
	if pos+int64(h.Size()) > r.limit {
		return h, fmt.Errorf("%w: batch at %d of %d bytes crosses the end %d", ErrCorruptLog, pos, h.Size(), r.limit)
	}
	return h, nil
}

// headerAt reads the one batch header at pos of f, whose published size
// is limit.
func headerAt(f *os.File, limit, pos int64) (recordbatch.Header, error) {
	r := newHeaderReader(f, limit)
	defer r.release()
	return r.at(pos)
}

// findBatch walks batches from pos (a batch boundary) and returns the
// position and header of the first one whose last offset is at or above
// target. found is false when the segment ends first.
func (r *headerReader) findBatch(pos, target int64) (int64, recordbatch.Header, bool, error) {
	for {
		h, err := r.at(pos)
		if err == io.EOF {
			return pos, h, false, nil
		}
		if err != nil {
			return pos, h, false, err
		}
		if h.LastOffset() >= target {
			return pos, h, true, nil
		}
		pos += int64(h.Size())
	}
}

// writeIndexFiles replaces both index files with the in-memory entries
// and fsyncs them.
func (s *segment) writeIndexFiles(c *FileCache) error {
	var ob, tb []byte
	for _, e := range s.offIdx {
		ob = appendOffsetEntry(ob, e)
	}
	for _, e := range s.timeIdx {
		tb = appendTimeEntry(tb, e)
	}
	if err := c.writeFile(s.path(indexSuffix), ob, true); err != nil {
		return err
	}
	if err := c.writeFile(s.path(timeIndexSuffix), tb, true); err != nil {
		return err
	}
	s.idxOnDisk, s.timeOnDisk = len(s.offIdx), len(s.timeIdx)
	return nil
}

// syncIndexes brings the index files up to the in-memory entries and
// fsyncs them: it appends the entries they lack, or rewrites them when
// their content is not known to be a prefix of the entries (or a file is
// missing). Holds wmu.
func (s *segment) syncIndexes(c *FileCache) error {
	if s.idxOnDisk < 0 || s.timeOnDisk < 0 {
		return s.writeIndexFiles(c)
	}
	var ob, tb []byte
	for _, e := range s.offIdx[s.idxOnDisk:] {
		ob = appendOffsetEntry(ob, e)
	}
	for _, e := range s.timeIdx[s.timeOnDisk:] {
		tb = appendTimeEntry(tb, e)
	}
	err := c.appendFile(s.path(indexSuffix), ob)
	if err == nil {
		s.idxOnDisk = len(s.offIdx)
		err = c.appendFile(s.path(timeIndexSuffix), tb)
	}
	if os.IsNotExist(err) {
		return s.writeIndexFiles(c)
	}
	if err != nil {
		return err
	}
	s.timeOnDisk = len(s.timeIdx)
	return nil
}

// removeSegmentFiles deletes a segment's three files; missing ones are fine.
func removeSegmentFiles(dir string, base int64) error {
	var errs []error
	for _, suf := range []string{logSuffix, indexSuffix, timeIndexSuffix} {
		if err := os.Remove(filepath.Join(dir, segmentName(base, suf))); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// lastEntryTS returns the timestamp of a segment's last time index entry,
// or -1.
func lastEntryTS(es []timeEntry) int64 {
	if len(es) == 0 {
		return -1
	}
	return es[len(es)-1].ts
}
