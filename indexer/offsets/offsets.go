// Package offsets decides which Kafka offset of a partition may be
// committed when the records received from it are acknowledged out of order.
//
// The indexer hands a partition's records to Elasticsearch in bulk requests
// that finish in any order, and some records need more than one document (an
// event routed to two indices) or a retry. A committed offset tells the next
// owner of the partition where to resume, so it must never pass a record whose
// documents Elasticsearch has not acknowledged: a crash right after such a
// commit would lose that record. A Tracker holds the records in the order they
// were received and allows a commit up to the first one still unacknowledged.
//
// The ordering itself is pipeline/contiguous's; this package adds what is
// particular to Kafka offsets. Like it, it is a pure core: no I/O, no
// clock, no goroutines and no locking; the caller serialises access.
package offsets

import (
	"errors"
	"fmt"

	"logpipe/pipeline/contiguous"
)

// ErrOrder is matched by the error Add returns for an offset that is not
// above every offset added before.
var ErrOrder = errors.New("offsets: offsets must be added in increasing order")

// ErrUnknown is matched by the error Ack returns for an offset that is not
// pending: never added, or acknowledged already.
var ErrUnknown = errors.New("offsets: offset is not pending")

// Tracker follows the records of one partition from receipt (Add) to
// acknowledgement (Ack) and answers the offset that may be committed
// (Committable).
//
// Offsets need not be consecutive: compacted topics and transaction markers
// leave gaps, and a gap holds no record to wait for. The zero value is not
// usable; call New.
type Tracker struct {
	// records holds one item per record, its value the record's offset;
	// its Reached value is one below the offset to commit when no record
	// is pending (start-1 before any record has been acknowledged).
	records contiguous.Tracker
	// last is the highest offset added, or -1.
	last int64
}

// New returns a tracker for a partition whose consumption starts at offset
// start (the committed offset it resumes from). A negative start (Kafka's
// "newest" and "oldest" markers) means no committable offset is known until
// the first record arrives.
func New(start int64) *Tracker {
	t := &Tracker{last: -1}
	t.records.Start(start - 1)
	return t
}

// Add records that offset was received and is now waiting for its
// acknowledgement. Offsets must increase from call to call.
func (t *Tracker) Add(offset int64) error {
	if offset < 0 || offset <= t.last {
		return fmt.Errorf("%w: %d after %d", ErrOrder, offset, t.last)
	}
	t.last = offset
	t.records.Add(offset, false)
	return nil
}

// Ack records that every document of the record at offset is acknowledged
// (or dead-lettered). It reports whether the committable offset moved.
func (t *Tracker) Ack(offset int64) (bool, error) {
	seq, ok := t.records.Find(offset)
	if !ok {
		return false, fmt.Errorf("%w: %d", ErrUnknown, offset)
	}
	moved, ok := t.records.Ack(seq)
	if !ok {
		return false, fmt.Errorf("%w: %d", ErrUnknown, offset)
	}
	return moved, nil
}

// Committable returns the offset to commit for the partition: the offset of
// the oldest record not yet acknowledged, or one past the last record added
// when all are acknowledged. Every record below it is acknowledged, so a
// consumer resuming there loses nothing. It returns -1 when nothing may be
// committed yet (a negative start and no record added).
func (t *Tracker) Committable() int64 {
	if oldest, ok := t.records.Oldest(); ok {
		return oldest
	}
	return max(t.records.Reached()+1, -1)
}

// Pending returns how many records added are not known to be committable:
// those unacknowledged, and acknowledged ones held behind an older
// unacknowledged record.
func (t *Tracker) Pending() int { return t.records.Pending() }
