// Package contiguous follows items that are acknowledged in any order and
// tells how far the acknowledged ones reach, without a gap, from the
// oldest.
//
// Progress that a restart trusts must never pass an item still waiting for
// its acknowledgement, or a crash would lose that item. The shipper's
// registry keeps one Tracker per file (an item is an event, its value the
// offset where its line ends); the indexer keeps one per partition (an
// item is a record, its value the record's Kafka offset).
//
// A Tracker is a pure value: no I/O, no clock, no goroutines and no
// locking; its owner serialises calls.
package contiguous

import (
	"cmp"
	"slices"
)

// Tracker holds items in the order they were added, each with a value,
// until they and every item before them are acknowledged; it then passes
// over them. Items are named by sequence numbers, given in order from 0.
// The zero value is an empty tracker whose Reached value is 0.
type Tracker struct {
	// items[head:] are the items held, oldest first. Invariant: the first
	// of them, if any, is not acknowledged.
	items []item
	head  int
	// seq is the sequence number of items[head] (of the next item added
	// when none is held).
	seq uint64
	// reached is the value of the newest item passed over, or the value
	// given to Start.
	reached int64
}

type item struct {
	value int64
	done  bool
}

// keepCap is the most items whose room a drained tracker keeps for the
// next ones; a larger array is let go.
const keepCap = 1 << 14

// Start sets the Reached value of a tracker holding no items: where the
// tracked stream resumes. It reports false, changing nothing, while items
// are held.
func (t *Tracker) Start(value int64) bool {
	if t.head < len(t.items) {
		return false
	}
	t.reached = value
	return true
}

// Add appends an item carrying value and returns its sequence number. An
// item added done needs no acknowledgement: it is passed over as soon as
// every item before it is.
func (t *Tracker) Add(value int64, done bool) uint64 {
	seq := t.seq + uint64(len(t.items)-t.head)
	if done && t.head == len(t.items) {
		// Nothing before it waits: pass over it at once.
		t.reached = value
		t.seq++
		return seq
	}
	t.items = append(t.items, item{value: value, done: done})
	return seq
}

// Ack acknowledges the item with sequence number seq. It reports whether
// Reached moved, and ok false, changing nothing, when seq names no held
// item waiting for its acknowledgement: one never added, passed over, or
// acknowledged already.
func (t *Tracker) Ack(seq uint64) (moved, ok bool) {
	d := seq - t.seq
	if seq < t.seq || d >= uint64(len(t.items)-t.head) || t.items[t.head+int(d)].done {
		return false, false
	}
	t.items[t.head+int(d)].done = true
	if d != 0 {
		return false, true
	}
	// The oldest item is acknowledged: pass over the run of acknowledged
	// items it starts.
	i := t.head + 1
	for i < len(t.items) && t.items[i].done {
		i++
	}
	t.reached = t.items[i-1].value
	t.seq += uint64(i - t.head)
	t.head = i
	if i == len(t.items) || i > 32 && i*2 > len(t.items) {
		t.compact()
	}
	return true, true
}

// compact drops the items passed over, once they are most of the slice.
func (t *Tracker) compact() {
	n := copy(t.items, t.items[t.head:])
	t.items, t.head = t.items[:n], 0
	if n == 0 && cap(t.items) > keepCap {
		t.items = nil
	}
}

// Find returns the sequence number of the held item carrying value: the
// values of the items must increase from each to the next. It reports
// false when no held item carries value.
func (t *Tracker) Find(value int64) (seq uint64, ok bool) {
	held := t.items[t.head:]
	if len(held) == 0 {
		return 0, false
	}
	// Values often go up by one from item to item (Kafka offsets without
	// gaps): try where value is then, before a binary search.
	if d := value - held[0].value; d >= 0 && d < int64(len(held)) && held[d].value == value {
		return t.seq + uint64(d), true
	}
	i, ok := slices.BinarySearchFunc(held, value, func(it item, v int64) int { return cmp.Compare(it.value, v) })
	if !ok {
		return 0, false
	}
	return t.seq + uint64(i), true
}

// Reached returns the value of the newest item passed over: it and every
// item before it are acknowledged. Before any item is passed it returns
// the value given to Start (0 without).
func (t *Tracker) Reached() int64 { return t.reached }

// Oldest returns the value of the oldest item held, which is not
// acknowledged; ok is false when no item is held.
func (t *Tracker) Oldest() (value int64, ok bool) {
	if t.head == len(t.items) {
		return 0, false
	}
	return t.items[t.head].value, true
}

// Pending returns how many items are held: those not acknowledged, and
// those acknowledged behind an older one that is not.
func (t *Tracker) Pending() int { return len(t.items) - t.head }
