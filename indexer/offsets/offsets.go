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
// It is a pure core: no I/O, no clock, no goroutines and no locking; the
// caller serialises access.
package offsets

import (
	"errors"
	"fmt"
	"sort"
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
	// pending holds the received offsets from the oldest unacknowledged one
	// on, in increasing order. Invariant: pending is empty or pending[0] is
	// not done.
	pending []entry
	// next is the offset to commit when nothing is pending: one past the
	// last offset added, or the start offset before any was added.
	next int64
	// last is the highest offset added, or -1.
	last int64
}

type entry struct {
	offset int64
	done   bool
}

// New returns a tracker for a partition whose consumption starts at offset
// start (the committed offset it resumes from). A negative start (Kafka's
// "newest" and "oldest" markers) means no committable offset is known until
// the first record arrives.
func New(start int64) *Tracker {
	return &Tracker{next: start, last: -1}
}

// Add records that offset was received and is now waiting for its
// acknowledgement. Offsets must increase from call to call.
func (t *Tracker) Add(offset int64) error {
	if offset < 0 || offset <= t.last {
		return fmt.Errorf("%w: %d after %d", ErrOrder, offset, t.last)
	}
	t.last = offset
	t.pending = append(t.pending, entry{offset: offset})
	return nil
}

// Ack records that every document of the record at offset is acknowledged
// (or dead-lettered). It reports whether the committable offset moved.
func (t *Tracker) Ack(offset int64) (bool, error) {
	i := sort.Search(len(t.pending), func(i int) bool { return t.pending[i].offset >= offset })
	if i == len(t.pending) || t.pending[i].offset != offset || t.pending[i].done {
		return false, fmt.Errorf("%w: %d", ErrUnknown, offset)
	}
	t.pending[i].done = true
	if i != 0 {
		return false, nil
	}
	n := 0
	for n < len(t.pending) && t.pending[n].done {
		n++
	}
	t.pending = t.pending[n:]
	if len(t.pending) == 0 {
		t.next = t.last + 1
		// Let go of a large backing array once it has drained.
		if cap(t.pending) > 1024 {
			t.pending = nil
		}
	}
	return true, nil
}

// Committable returns the offset to commit for the partition: the offset of
// the oldest record not yet acknowledged, or one past the last record added
// when all are acknowledged. Every record below it is acknowledged, so a
// consumer resuming there loses nothing. It returns -1 when nothing may be
// committed yet (a negative start and no record added).
func (t *Tracker) Committable() int64 {
	if len(t.pending) > 0 {
		return t.pending[0].offset
	}
	if t.next < 0 {
		return -1
	}
	return t.next
}

// Pending returns how many records added are not known to be committable:
// those unacknowledged, and acknowledged ones held behind an older
// unacknowledged record.
func (t *Tracker) Pending() int { return len(t.pending) }
