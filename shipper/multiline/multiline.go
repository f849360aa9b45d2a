// Package multiline joins consecutive lines of a log file into one event,
// as Filebeat's multiline setting does (Java stack traces, continued
// messages). The Aggregator does no I/O and reads no clock: the caller
// passes the time with each line and flushes a pending group when
// Deadline passes.
package multiline

import (
	"regexp"
	"time"

	"logpipe/shipper/lines"
)

// Event is one or more joined lines.
type Event struct {
	// Text is the lines joined with "\n". It is valid only until the
	// Aggregator's next method call.
	Text []byte
	// Offset is where the first line starts; End is where the line after
	// the last one starts.
	Offset, End int64
	// Lines is how many lines the event covers, counting any left out.
	Lines int
	// Truncated reports that lines or bytes were left out (max_lines,
	// max_bytes, or a line already cut).
	Truncated bool
}

// Aggregator groups lines into events. The zero value is not usable; call
// New.
type Aggregator struct {
	re       *regexp.Regexp
	negate   bool
	after    bool
	maxLines int
	maxBytes int
	timeout  time.Duration

	// The pending group; lines == 0 means there is none.
	buf       []byte
	lines     int
	kept      int
	offset    int64
	end       int64
	truncated bool
	last      time.Time // when the latest line was added
}

// New returns an Aggregator for the validated config c. maxBytes limits the
// joined text (the input's max_bytes).
func New(c *Config, maxBytes int) (*Aggregator, error) {
	re, err := compile(c.Pattern)
	if err != nil {
		return nil, err
	}
	a := &Aggregator{re: re, negate: c.Negate, after: c.Match != "before", maxLines: c.MaxLines, maxBytes: maxBytes, timeout: c.Timeout.D()}
	if a.maxLines == 0 {
		a.maxLines = DefaultMaxLines
	}
	if a.timeout == 0 {
		a.timeout = DefaultTimeout
	}
	if a.maxBytes < 1 {
		a.maxBytes = 1
	}
	return a, nil
}

// continues reports whether a line of this text belongs to a group as a
// continuation: the pattern matches it (or, negated, does not).
func (a *Aggregator) continues(text []byte) bool {
	return a.re.Match(text) != a.negate
}

// Add takes the next line, read at now, and calls emit for any event it
// completes.
func (a *Aggregator) Add(l lines.Line, now time.Time, emit func(Event)) {
	cont := a.continues(l.Text)
	if a.after {
		// A continuation joins the group before it; any other line starts
		// a new group.
		if !cont || a.lines == 0 {
			a.Flush(emit)
		}
		a.append(l, now)
		return
	}
	// before: continuations wait for the line that ends their group.
	a.append(l, now)
	if !cont {
		a.Flush(emit)
	}
}

func (a *Aggregator) append(l lines.Line, now time.Time) {
	if a.lines == 0 {
		a.buf = a.buf[:0]
		a.offset = l.Offset
		a.kept = 0
		a.truncated = false
	}
	a.lines++
	a.end = l.End
	a.last = now
	if l.Truncated {
		a.truncated = true
	}
	if a.kept >= a.maxLines {
		a.truncated = true
		return
	}
	a.kept++
	if a.kept > 1 {
		if len(a.buf) >= a.maxBytes {
			a.truncated = true
			return
		}
		a.buf = append(a.buf, '\n')
	}
	room := a.maxBytes - len(a.buf)
	text := l.Text
	if len(text) > room {
		text = cutUTF8(text, room)
		a.truncated = true
	}
	a.buf = append(a.buf, text...)
}

// cutUTF8 returns the longest prefix of valid UTF-8 b that has at most n
// bytes and ends at a character boundary.
func cutUTF8(b []byte, n int) []byte {
	b = b[:n]
	for i := len(b) - 1; i >= 0 && i >= len(b)-4; i-- {
		if c := b[i]; c&0xC0 != 0x80 { // a character starts here
			size := 1
			switch {
			case c >= 0xF0:
				size = 4
			case c >= 0xE0:
				size = 3
			case c >= 0xC0:
				size = 2
			}
			if i+size > len(b) {
				return b[:i]
			}
			return b
		}
	}
	return b
}

// Pending reports whether a group is waiting for more lines.
func (a *Aggregator) Pending() bool { return a.lines > 0 }

// Deadline returns when the pending group must be sent even without
// another line (the timeout after its latest line), and false when nothing
// is pending.
func (a *Aggregator) Deadline() (time.Time, bool) {
	if a.lines == 0 {
		return time.Time{}, false
	}
	return a.last.Add(a.timeout), true
}

// Flush emits the pending group, if any, and reports whether it did.
func (a *Aggregator) Flush(emit func(Event)) bool {
	if a.lines == 0 {
		return false
	}
	ev := Event{Text: a.buf, Offset: a.offset, End: a.end, Lines: a.lines, Truncated: a.truncated}
	a.lines = 0
	if cap(a.buf) > 64<<10 {
		defer func() { a.buf = nil }()
	}
	emit(ev)
	return true
}
