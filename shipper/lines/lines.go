// Package lines splits the bytes of a log file into lines: a line ends at
// "\n", a "\r" before it is removed, a line longer than the limit is cut
// and flagged, and the text is decoded to valid UTF-8 (bytes that are not
// are replaced with U+FFFD). A last line without its "\n" is held back
// until it is completed or the caller flushes it.
//
// Splitter does no I/O: the caller feeds it what it read and gets lines
// back with the byte offsets they came from, so the registry can record
// how far a file has been consumed.
package lines

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Encoding says how a file's bytes become text.
type Encoding int

// The supported encodings.
const (
	// UTF8 is UTF-8; invalid bytes are replaced with U+FFFD.
	UTF8 Encoding = iota
	// Plain is Filebeat's "plain": the bytes are taken as they are, which
	// here means as UTF-8, invalid bytes replaced.
	Plain
	// Latin1 is ISO 8859-1: every byte is one character.
	Latin1
)

// ParseEncoding reads an encoding name as written in configs; empty means
// UTF8.
func ParseEncoding(name string) (Encoding, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "", "utf-8", "utf8":
		return UTF8, nil
	case "plain":
		return Plain, nil
	case "latin1", "latin-1", "iso8859-1", "iso-8859-1":
		return Latin1, nil
	}
	return 0, fmt.Errorf("lines: unsupported encoding %q (want utf-8, plain or latin1)", name)
}

// String returns the encoding's config name.
func (e Encoding) String() string {
	switch e {
	case Plain:
		return "plain"
	case Latin1:
		return "latin1"
	}
	return "utf-8"
}

// Line is one line of a file.
type Line struct {
	// Text is the line without its terminator, as valid UTF-8. It is valid
	// only until the Splitter's next method call.
	Text []byte
	// Offset is the file offset of the line's first byte.
	Offset int64
	// End is the offset just past the line's "\n" (or past its last byte
	// for a flushed incomplete line): where the next line starts.
	End int64
	// Truncated reports that the line was longer than the limit and Text
	// holds only its beginning.
	Truncated bool
}

// Splitter cuts a stream of bytes into lines. The zero value is not usable;
// call NewSplitter.
type Splitter struct {
	maxBytes int
	enc      Encoding

	// Invariant: start <= pos. Bytes [start, pos) of the file belong to the
	// pending (incomplete) line; the first maxBytes+1 of them are kept in
	// held, and truncated records that there were more.
	start     int64
	pos       int64
	held      []byte
	truncated bool

	out []byte // decoding scratch
}

// NewSplitter returns a Splitter for bytes starting at file offset offset.
// Lines longer than maxBytes (at least 1) are cut to maxBytes bytes of
// text.
func NewSplitter(offset int64, maxBytes int, enc Encoding) *Splitter {
	if maxBytes < 1 {
		maxBytes = 1
	}
	return &Splitter{maxBytes: maxBytes, enc: enc, start: offset, pos: offset}
}

// Offset returns where the pending line starts: every byte before it has
// been given out in a line.
func (s *Splitter) Offset() int64 { return s.start }

// Pos returns the offset just past the last byte fed.
func (s *Splitter) Pos() int64 { return s.pos }

// Pending returns how many bytes of an incomplete last line are held back.
func (s *Splitter) Pending() int64 { return s.pos - s.start }

// Feed consumes p, calling emit for every line it completes. The Line is
// valid only during the call.
func (s *Splitter) Feed(p []byte, emit func(Line)) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			s.hold(p)
			s.pos += int64(len(p))
			return
		}
		chunk := p[:i]
		s.pos += int64(i + 1)
		text := chunk
		if len(s.held) > 0 || s.truncated {
			s.hold(chunk)
			text = s.held
		}
		s.emit(text, s.truncated, s.pos, emit)
		p = p[i+1:]
	}
}

// hold keeps p as part of the pending line, up to maxBytes+1 bytes in all
// (one more than the limit, for a "\r" that may end it); over that it
// only notes that the line is too long.
func (s *Splitter) hold(p []byte) {
	room := s.maxBytes + 1 - len(s.held)
	if len(p) > room {
		p = p[:room]
		s.truncated = true
	}
	s.held = append(s.held, p...)
}

// emit gives out a line whose bytes are text (all of them, unless over
// says more were dropped) and which ends at end.
func (s *Splitter) emit(text []byte, over bool, end int64, emit func(Line)) {
	if !over && len(text) > 0 && text[len(text)-1] == '\r' {
		text = text[:len(text)-1]
	}
	truncated := over
	if len(text) > s.maxBytes {
		text, truncated = text[:s.maxBytes], true
	}
	l := Line{Text: s.decode(text, truncated), Offset: s.start, End: end, Truncated: truncated}
	s.start = end
	s.held = s.held[:0]
	s.truncated = false
	if cap(s.held) > 64<<10 {
		s.held = nil // do not keep a huge line's buffer
	}
	emit(l)
}

// Flush gives out the pending incomplete line, if there is one, as if it
// had ended. It reports whether it emitted a line.
func (s *Splitter) Flush(emit func(Line)) bool {
	if s.pos == s.start {
		return false
	}
	s.emit(s.held, s.truncated, s.pos, emit)
	return true
}

// decode returns text as valid UTF-8 of at most maxBytes bytes. A cut
// line is shortened to a character boundary.
func (s *Splitter) decode(text []byte, truncated bool) []byte {
	switch s.enc {
	case Latin1:
		ascii := true
		for _, c := range text {
			if c >= utf8.RuneSelf {
				ascii = false
				break
			}
		}
		if ascii {
			return text
		}
		s.out = s.out[:0]
		for _, c := range text {
			s.out = utf8.AppendRune(s.out, rune(c))
		}
		return trimTo(s.out, s.maxBytes)
	default:
		if truncated {
			text = trimIncompleteRune(text)
		}
		if utf8.Valid(text) {
			return text
		}
		s.out = append(s.out[:0], bytes.ToValidUTF8(text, []byte("\uFFFD"))...)
		// A run of bad bytes becomes one U+FFFD (3 bytes), so a short run
		// can make the text longer than the limit: cut it again.
		return trimTo(s.out, s.maxBytes)
	}
}

// trimIncompleteRune drops a multi-byte character cut off at the end of b,
// so that cutting a line does not manufacture a replacement character.
func trimIncompleteRune(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			return b
		}
	}
	return b
}

// trimTo cuts valid UTF-8 b to at most n bytes at a character boundary.
func trimTo(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	return trimIncompleteRune(b[:n])
}
