package registry

import "logpipe/pipeline/contiguous"

// Tracker follows, per file, the events published from it and which of
// them the broker has acknowledged, and so how far each file is safely
// shipped: the acknowledged offset advances only over a contiguous run of
// acknowledged events from the start (pipeline/contiguous, an item per
// event whose value is the offset where the event ends), so an
// acknowledgement that arrives before an earlier event's is held until
// the gap fills.
//
// Tracker is a plain value with no locking, I/O or clock; its owner
// serialises calls. The zero value is ready to use.
type Tracker struct {
	files map[string]*track
}

// track is what a Tracker knows of one file.
type track struct {
	events contiguous.Tracker
	// forgotten marks a track that Forget dropped: its tickets are
	// ignored, without a look-up of their file on every Ack.
	forgotten bool
}

// Ticket names one published event, for Ack.
type Ticket struct {
	File string
	Seq  uint64
	tr   *track // the file's when published, so tickets outlive Forget harmlessly
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
	return t.get(file).events.Start(offset)
}

// Publish records an event of file that ends at offset end (the start of
// the next line) and returns its ticket. Ends must grow from one call to
// the next for the same file.
func (t *Tracker) Publish(file string, end int64) Ticket {
	tr := t.get(file)
	return Ticket{File: file, Seq: tr.events.Add(end, false), tr: tr}
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
	span := Span{first: Ticket{File: file, tr: tr}, n: n}
	for i := range n {
		seq := tr.events.Add(event(i))
		if i == 0 {
			span.first.Seq = seq
		}
	}
	return span
}

// Skip records that the bytes of file up to end need no acknowledgement
// (a filtered event): the offset moves over them once everything before
// is acknowledged.
func (t *Tracker) Skip(file string, end int64) {
	t.get(file).events.Add(end, true)
}

// Ack marks the event of the ticket acknowledged and returns the file's
// acknowledged offset and whether it moved. Unknown or repeated tickets
// change nothing.
func (t *Tracker) Ack(tk Ticket) (offset int64, moved bool) {
	tr := tk.tr
	if tr == nil || tr.forgotten {
		return 0, false
	}
	moved, _ = tr.events.Ack(tk.Seq)
	return tr.events.Reached(), moved
}

// Acked returns the acknowledged offset of file (0 if unknown).
func (t *Tracker) Acked(file string) int64 {
	if tr := t.files[file]; tr != nil {
		return tr.events.Reached()
	}
	return 0
}

// Pending returns how many events of file await acknowledgement or an
// earlier event's.
func (t *Tracker) Pending(file string) int {
	if tr := t.files[file]; tr != nil {
		return tr.events.Pending()
	}
	return 0
}

// Forget drops what is known of file. Tickets issued for it are ignored
// afterwards.
func (t *Tracker) Forget(file string) {
	if tr := t.files[file]; tr != nil {
		tr.forgotten = true
	}
	delete(t.files, file)
}
