// Package publish is what passes from the harvesters to an output:
// batches of events read one after the other from one file, and the
// acknowledgements that come back for them.
//
// A harvester collects the lines it reads into a Batch and hands the whole
// batch to a Sink, which waits for room in its queue, registers the batch
// (Batch.Register, which records its events in the registry) and takes
// what it needs before returning, so the harvester reuses the Batch for
// its next lines. Handing over lines a batch at a time, instead of one by
// one, is what lets the shipper keep up with a file written at hundreds of
// thousands of lines a second: one wait, one registry lock and one channel
// send per batch.
//
// The JSON of an event is that of pipeline/event (Event.AppendJSON);
// Source.AppendJSON writes the same bytes without building an event.Event
// per line.
package publish

import (
	"context"
	"time"
	"unsafe"

	"logpipe/pipeline/event"
)

// Flags mark events that are not one whole line.
type Flags uint8

// The flags, in the order they appear in log.flags.
const (
	// Truncated marks an event cut to max_bytes or max_lines.
	Truncated Flags = 1 << iota
	// Multiline marks an event joined from several lines.
	Multiline
)

// Source is what every event read from one file shares. The harvester of
// the file owns it; it does not change while the file is read (the path
// may, and is in each Batch).
type Source struct {
	// Template holds the per-input fields of the events (tags, input,
	// host, agent, fields and fields_under_root); the per-event fields
	// are ignored.
	Template event.Event
	// HostID and FileID make the events' ids (see event.ID); FileID is
	// also the default partition key, so a file's events stay in order.
	HostID string
	FileID string

	// enc caches the encoded constant parts of the events' JSON; only the
	// goroutine that owns the Source uses it.
	enc *encoding
}

// Event is one line, or one group of lines joined by multiline, of a
// file.
type Event struct {
	// Offset is where the event starts in the file, End where the next
	// one starts.
	Offset, End int64
	Flags       Flags
	// Skip marks bytes consumed without an event to send (a line that
	// include_lines or exclude_lines dropped): the registry moves past
	// them once everything before is acknowledged, and outputs send
	// nothing for it.
	Skip bool
	// The event's text is ref, or if ref is nil, text[start:end] of the
	// batch.
	ref        []byte
	start, end int
}

// Batch is events read from one file, in file order. The zero value is an
// empty batch; Reset empties a batch for reuse.
type Batch struct {
	// Source is the file's.
	Source *Source
	// Path is the file's path when the events were read.
	Path string
	// Time is when the events were read; it becomes their @timestamp.
	Time time.Time
	// Events are the batch's events, Skip ones included.
	Events []Event
	// Register is called by the Sink once its queue has room for the
	// batch, before any event is sent; what it returns is the batch's
	// receipt, handed back with every acknowledgement (see Ack). A Sink
	// that returns an error before calling it sends nothing.
	Register func(*Batch) any

	text     []byte
	refBytes int // text of events added with AddRef
	sent     int // events without Skip
}

// Add appends an event whose text is copied from text (which must be valid
// UTF-8).
func (b *Batch) Add(text []byte, offset, end int64, flags Flags) {
	start := len(b.text)
	b.text = append(b.text, text...)
	b.Events = append(b.Events, Event{Offset: offset, End: end, Flags: flags, start: start, end: len(b.text)})
	b.sent++
}

// AddRef appends an event whose text (valid UTF-8) is not copied: it must
// stay unchanged until the batch is handed over or Reset, as a read buffer
// that is not reused before then does.
func (b *Batch) AddRef(text []byte, offset, end int64, flags Flags) {
	if text == nil {
		text = []byte{}
	}
	b.Events = append(b.Events, Event{Offset: offset, End: end, Flags: flags, ref: text})
	b.refBytes += len(text)
	b.sent++
}

// AddSkip appends bytes consumed without an event, up to end.
func (b *Batch) AddSkip(offset, end int64) {
	b.Events = append(b.Events, Event{Offset: offset, End: end, Skip: true})
}

// Text returns the text of event i. It is valid until the batch is Reset.
func (b *Batch) Text(i int) []byte {
	e := &b.Events[i]
	if e.ref != nil {
		return e.ref
	}
	return b.text[e.start:e.end:e.end]
}

// Len returns how many events the batch holds, Skip ones included.
func (b *Batch) Len() int { return len(b.Events) }

// Sent returns how many of the batch's events are to be sent (not Skip).
func (b *Batch) Sent() int { return b.sent }

// TextBytes returns the size of the events' text.
func (b *Batch) TextBytes() int { return len(b.text) + b.refBytes }

// Reset empties the batch, keeping its Source and Register and the room
// it has grown.
func (b *Batch) Reset() {
	clear(b.Events) // drop the references to text not copied
	b.Events = b.Events[:0]
	b.text = b.text[:0]
	b.refBytes = 0
	b.sent = 0
	b.Path = ""
	b.Time = time.Time{}
}

// Trim empties the batch and lets go of its room if it has grown beyond
// about maxBytes, as a harvester does while its file is idle.
func (b *Batch) Trim(maxBytes int) {
	b.Reset()
	if cap(b.text) > maxBytes {
		b.text = nil
	}
	if cap(b.Events)*int(unsafe.Sizeof(Event{})) > maxBytes {
		b.Events = nil
	}
}

// Event returns event i as a pipeline event, for outputs that need its
// fields by name (format strings, field hashing). Its Message is a copy.
func (b *Batch) Event(i int) *event.Event {
	ev := b.Source.Template // a copy; the template's slices are shared, not changed
	e := &b.Events[i]
	ev.Timestamp = b.Time
	ev.Message = string(b.Text(i))
	ev.Event = event.Meta{ID: event.ID(b.Source.HostID, b.Source.FileID, e.Offset)}
	ev.Log = event.Log{File: event.File{Path: b.Path}, Offset: e.Offset}
	if e.Flags&Truncated != 0 {
		ev.Log.Flags = append(ev.Log.Flags, "truncated")
	}
	if e.Flags&Multiline != 0 {
		ev.Log.Flags = append(ev.Log.Flags, "multiline")
	}
	return &ev
}

// Ack is the acknowledgement of one event: the receipt its batch's
// Register returned and the event's index in the batch.
type Ack struct {
	Receipt any
	Index   int
}

// Sink takes the batches harvesters read: the Kafka output, or the console
// output for debugging.
type Sink interface {
	// Publish sends b's events. It blocks while the queue is full. Once
	// there is room it calls b.Register, and it takes what it needs of b
	// before returning: the caller may Reset and reuse b at once. It
	// returns an error only when ctx ends first, and then b.Register has
	// not been called.
	Publish(ctx context.Context, b *Batch) error
}
