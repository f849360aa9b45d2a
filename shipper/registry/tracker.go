package registry

import "slices"

// Tracker follows, per file, the events published from it and which of
// them the broker has acknowledged, and so how far each file is safely
// shipped: the acknowledged offset advances only over a contiguous run of
// acknowledged events from the start, so an acknowledgement that arrives
// before an earlier event's is held until the gap fills.
//
// Tracker is a plain value with no locking, I/O or clock; its owner
// serialises calls. The zero value is ready to use.
type Tracker struct {
	files map[string]*track
}

// Ticket names one published event, for Ack.
type Ticket struct {
	File string
	Seq  uint64
	tr   *track // the file's track when published, so tickets outlive Forget harmlessly
}

type track struct {
	// acked is the offset up to which every event is acknowledged.
	acked int64
	// Invariant: pending[head:] are the events not yet folded into acked,
	// in publish order; the first has sequence number first; their ends
	// increase.
	pending []entry
	head    int
	first   uint64
}

type entry struct {
	end  int64
	done bool
}

func (t *Tracker) get(file string) *track {
	if t.files == nil {
		t.files = map[string]*track{}
	}
	tr := t.files[file]
	if tr == nil {
		tr = &track{}
		t.files[file] = tr
	}
	return tr
}

// Start sets the acknowledged offset of a file with no events pending,
// as when it is opened at its registry offset or skipped to its end. It
// reports false, changing nothing, if events are pending.
func (t *Tracker) Start(file string, offset int64) bool {
	tr := t.get(file)
	if tr.head < len(tr.pending) {
		return false
	}
	tr.acked = offset
	return true
}

// Publish records an event of file that ends at offset end (the start of
// the next line) and returns its ticket. Ends must grow from one call to
// the next for the same file.
func (t *Tracker) Publish(file string, end int64) Ticket {
	tr := t.get(file)
	seq := tr.first + uint64(len(tr.pending)-tr.head)
	tr.pending = append(tr.pending, entry{end: end})
	return Ticket{File: file, Seq: seq, tr: tr}
}

// Span names the events of file published together by PublishAll: their
// tickets have consecutive sequence numbers.
type Span struct {
	first Ticket
	n     int
}

// Ticket returns the ticket of the span's event i.
func (s Span) Ticket(i int) Ticket {
	tk := s.first
	tk.Seq += uint64(i)
	return tk
}

// Len returns how many events the span names.
func (s Span) Len() int { return s.n }

// PublishAll records n events of file, in order, as Publish would one by
// one, and returns their tickets. event(i) gives event i's end and whether
// it needs no acknowledgement (as with Skip: its ticket need not be
// acked).
func (t *Tracker) PublishAll(file string, n int, event func(i int) (end int64, done bool)) Span {
	tr := t.get(file)
	first := Ticket{File: file, Seq: tr.first + uint64(len(tr.pending)-tr.head), tr: tr}
	tr.pending = slices.Grow(tr.pending, n)
	for i := range n {
		end, done := event(i)
		tr.pending = append(tr.pending, entry{end: end, done: done})
	}
	tr.fold()
	return Span{first: first, n: n}
}

// Skip records that the bytes of file up to end need no acknowledgement
// (a filtered event): the offset moves over them once everything before
// is acknowledged.
func (t *Tracker) Skip(file string, end int64) {
	t.Ack(t.Publish(file, end))
}

// Ack marks the event of the ticket acknowledged and returns the file's
// acknowledged offset and whether it moved. Unknown or repeated tickets
// change nothing.
func (t *Tracker) Ack(tk Ticket) (offset int64, moved bool) {
	tr := t.files[tk.File]
	if tr == nil || tr != tk.tr {
		return 0, false
	}
	if tk.Seq < tr.first {
		return tr.acked, false
	}
	i := tr.head + int(tk.Seq-tr.first)
	if i >= len(tr.pending) {
		return tr.acked, false
	}
	tr.pending[i].done = true
	moved = tr.fold()
	return tr.acked, moved
}

// fold moves the acknowledged offset over the leading run of done events
// and reports whether it moved.
func (tr *track) fold() (moved bool) {
	for tr.head < len(tr.pending) && tr.pending[tr.head].done {
		tr.acked = tr.pending[tr.head].end
		tr.head++
		tr.first++
		moved = true
	}
	// Drop the folded prefix once it is most of the slice.
	if tr.head > 32 && tr.head*2 > len(tr.pending) {
		n := copy(tr.pending, tr.pending[tr.head:])
		tr.pending = tr.pending[:n]
		tr.head = 0
	}
	return moved
}

// Acked returns the acknowledged offset of file (0 if unknown).
func (t *Tracker) Acked(file string) int64 {
	if tr := t.files[file]; tr != nil {
		return tr.acked
	}
	return 0
}

// Pending returns how many events of file await acknowledgement or an
// earlier event's.
func (t *Tracker) Pending(file string) int {
	if tr := t.files[file]; tr != nil {
		return len(tr.pending) - tr.head
	}
	return 0
}

// Forget drops what is known of file. Tickets issued for it are ignored
// afterwards.
func (t *Tracker) Forget(file string) {
	delete(t.files, file)
}
