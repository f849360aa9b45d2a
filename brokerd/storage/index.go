package storage

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
)

// Kafka's index files, both big endian and without any header:
//
//	.index      8-byte entries: relative offset (int32), position (int32).
//	            An entry (o, p) says the batch starting at byte p of the
//	            .log ends with offset base+o. Entries are sparse: one is
//	            added whenever more than index.interval.bytes were appended
//	            since the previous one.
//	.timeindex  12-byte entries: timestamp (int64), relative offset (int32).
//	            An entry (t, o) says t is the largest timestamp in the
//	            segment up to and including the batch ending at base+o.
//	            Timestamps strictly increase from entry to entry.
//
// Kafka preallocates both files (segment.index.bytes, 10 MiB) and trims them
// when a segment is rolled or closed. brokerd only ever appends whole
// entries, so a file's length is always its entries; Kafka's readers
// (kafka-dump-log, a broker loading the folder) accept that. The entries
// are also kept in memory for lookups (8 bytes per 4 KiB of log).
const (
	offsetEntrySize = 8
	timeEntrySize   = 12
)

type offsetEntry struct {
	rel uint32 // offset - segment base of the batch's last record
	pos uint32 // byte position of the batch in the .log
}

type timeEntry struct {
	ts  int64
	rel uint32
}

func appendOffsetEntry(dst []byte, e offsetEntry) []byte {
	dst = binary.BigEndian.AppendUint32(dst, e.rel)
	return binary.BigEndian.AppendUint32(dst, e.pos)
}

func appendTimeEntry(dst []byte, e timeEntry) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.ts))
	return binary.BigEndian.AppendUint32(dst, e.rel)
}

// decodeOffsetIndex parses an .index file and checks it against a .log of
// logSize bytes: whole entries, offsets and positions strictly increasing,
// positions inside the log.
func decodeOffsetIndex(b []byte, logSize int64) ([]offsetEntry, error) {
	if len(b)%offsetEntrySize != 0 {
		return nil, fmt.Errorf("index of %d bytes is not whole entries", len(b))
	}
	es := make([]offsetEntry, 0, len(b)/offsetEntrySize)
	for i := 0; i < len(b); i += offsetEntrySize {
		e := offsetEntry{binary.BigEndian.Uint32(b[i:]), binary.BigEndian.Uint32(b[i+4:])}
		if e.rel > math.MaxInt32 || e.pos > math.MaxInt32 || int64(e.pos) >= logSize {
			return nil, fmt.Errorf("index entry %d (%d, %d) out of range", len(es), e.rel, e.pos)
		}
		if n := len(es); n > 0 && (e.rel <= es[n-1].rel || e.pos <= es[n-1].pos) {
			return nil, fmt.Errorf("index entry %d (%d, %d) not after (%d, %d)", n, e.rel, e.pos, es[n-1].rel, es[n-1].pos)
		}
		es = append(es, e)
	}
	return es, nil
}

// decodeTimeIndex parses a .timeindex file: whole entries, timestamps
// strictly increasing, offsets not decreasing.
func decodeTimeIndex(b []byte) ([]timeEntry, error) {
	if len(b)%timeEntrySize != 0 {
		return nil, fmt.Errorf("time index of %d bytes is not whole entries", len(b))
	}
	es := make([]timeEntry, 0, len(b)/timeEntrySize)
	for i := 0; i < len(b); i += timeEntrySize {
		e := timeEntry{int64(binary.BigEndian.Uint64(b[i:])), binary.BigEndian.Uint32(b[i+8:])}
		if e.rel > math.MaxInt32 || e.ts < 0 {
			return nil, fmt.Errorf("time index entry %d (%d, %d) out of range", len(es), e.ts, e.rel)
		}
		if n := len(es); n > 0 && (e.ts <= es[n-1].ts || e.rel < es[n-1].rel) {
			return nil, fmt.Errorf("time index entry %d (%d, %d) not after (%d, %d)", n, e.ts, e.rel, es[n-1].ts, es[n-1].rel)
		}
		es = append(es, e)
	}
	return es, nil
}

// lookupOffset returns the position to start scanning from for target: the
// position of the last entry whose offset is at or below target, or 0.
func lookupOffset(es []offsetEntry, base, target int64) int64 {
	i := sort.Search(len(es), func(i int) bool { return base+int64(es[i].rel) > target })
	if i == 0 {
		return 0
	}
	return int64(es[i-1].pos)
}

// lookupPosition returns the last entry at or before byte position limit
// whose offset is below maxOffset, and whether there is one.
func lookupPosition(es []offsetEntry, base, limit, maxOffset int64) (offsetEntry, bool) {
	i := sort.Search(len(es), func(i int) bool {
		return int64(es[i].pos) > limit || base+int64(es[i].rel) >= maxOffset
	})
	if i == 0 {
		return offsetEntry{}, false
	}
	return es[i-1], true
}

// lookupTime returns an offset from which to scan for the first batch with
// a timestamp at or above ts: the offset of the last entry whose timestamp
// is below ts (every batch up to it is older than ts), or base.
func lookupTime(es []timeEntry, base, ts int64) int64 {
	i := sort.Search(len(es), func(i int) bool { return es[i].ts >= ts })
	if i == 0 {
		return base
	}
	return base + int64(es[i-1].rel)
}

// indexBuilder decides where index entries go as batches are appended to a
// segment, the way Kafka's LogSegment does: when more than interval bytes
// were appended since the last entry, the next batch gets an offset entry
// and the time index gets the largest timestamp so far.
type indexBuilder struct {
	base       int64
	interval   int64
	sinceEntry int64 // bytes appended since the last offset entry's position
	maxTS      int64 // largest batch max timestamp, -1 if none
	maxTSOff   int64 // last offset of the first batch that had maxTS
	lastTS     int64 // timestamp of the last time entry, -1 if none
}

func newIndexBuilder(base int64, interval int) indexBuilder {
	return indexBuilder{base: base, interval: int64(interval), maxTS: -1, maxTSOff: base, lastTS: -1}
}

// add accounts for a batch of size bytes at pos covering offsets up to
// last with the given max timestamp, returning the entries to append (at
// most one of each; ok flags say which).
func (b *indexBuilder) add(pos, size, last, maxTimestamp int64) (oe offsetEntry, addOff bool, te timeEntry, addTime bool) {
	if maxTimestamp > b.maxTS {
		b.maxTS, b.maxTSOff = maxTimestamp, last
	}
	if b.sinceEntry > b.interval {
		oe, addOff = offsetEntry{uint32(last - b.base), uint32(pos)}, true
		te, addTime = b.timeEntry()
		b.sinceEntry = 0
	}
	b.sinceEntry += size
	return oe, addOff, te, addTime
}

// timeEntry returns the time entry for the largest timestamp so far if it
// is newer than the last one written, and records it as written.
func (b *indexBuilder) timeEntry() (timeEntry, bool) {
	if b.maxTS <= b.lastTS {
		return timeEntry{}, false
	}
	b.lastTS = b.maxTS
	return timeEntry{b.maxTS, uint32(b.maxTSOff - b.base)}, true
}
