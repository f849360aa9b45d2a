package lines

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

type got struct {
	text      string
	off, end  int64
	truncated bool
}

func (g got) String() string {
	t := ""
	if g.truncated {
		t = " truncated"
	}
	return fmt.Sprintf("%q@%d-%d%s", g.text, g.off, g.end, t)
}

// split feeds input in pieces of size step (all of it at once when step
// is 0) and returns the lines, then what a Flush gives.
func split(input string, start int64, maxBytes int, enc Encoding, step int) (lines []got, flushed []got, s *Splitter) {
	s = NewSplitter(start, maxBytes, enc)
	collect := func(dst *[]got) func(Line) {
		return func(l Line) {
			*dst = append(*dst, got{string(l.Text), l.Offset, l.End, l.Truncated})
		}
	}
	b := []byte(input)
	if step == 0 {
		step = len(b) + 1
	}
	for len(b) > 0 {
		n := min(step, len(b))
		// Copy, so a Splitter keeping a reference to the caller's buffer
		// would show up as garbage.
		chunk := append([]byte(nil), b[:n]...)
		s.Feed(chunk, collect(&lines))
		for i := range chunk {
			chunk[i] = '#'
		}
		b = b[n:]
	}
	offset := s.Offset()
	s.Flush(collect(&flushed))
	_ = offset
	return lines, flushed, s
}

func TestSplitter(t *testing.T) {
	cases := []struct {
		name     string
		input    string
		start    int64
		maxBytes int
		enc      Encoding
		want     []got
		flushed  []got
	}{
		{name: "empty", input: ""},
		{name: "lines", input: "a\nbb\n\nccc\n", maxBytes: 100,
			want: []got{{"a", 0, 2, false}, {"bb", 2, 5, false}, {"", 5, 6, false}, {"ccc", 6, 10, false}}},
		{name: "crlf", input: "a\r\nb\r\r\n\r\n", maxBytes: 100,
			want: []got{{"a", 0, 3, false}, {"b\r", 3, 7, false}, {"", 7, 9, false}}},
		{name: "lone cr is text", input: "a\rb\n", maxBytes: 100, want: []got{{"a\rb", 0, 4, false}}},
		{name: "partial last line held", input: "a\nbc", maxBytes: 100,
			want: []got{{"a", 0, 2, false}}, flushed: []got{{"bc", 2, 4, false}}},
		{name: "partial with cr", input: "x\r", maxBytes: 100, flushed: []got{{"x", 0, 2, false}}},
		{name: "start offset", input: "a\nb\n", start: 1000, maxBytes: 100,
			want: []got{{"a", 1000, 1002, false}, {"b", 1002, 1004, false}}},
		{name: "truncated", input: "abcdef\nab\nabcd\n", maxBytes: 4,
			want: []got{{"abcd", 0, 7, true}, {"ab", 7, 10, false}, {"abcd", 10, 15, false}}},
		{name: "truncated crlf keeps no cr", input: "abcd\r\n", maxBytes: 4, want: []got{{"abcd", 0, 6, false}}},
		{name: "truncated partial", input: "abcdef", maxBytes: 4, flushed: []got{{"abcd", 0, 6, true}}},
		{name: "truncation at a character boundary", input: "aé€\n", maxBytes: 4,
			want: []got{{"aé", 0, 7, true}}},
		{name: "invalid utf-8 replaced", input: "a\xffb\n\xc3\n", maxBytes: 100,
			want: []got{{"a\uFFFDb", 0, 4, false}, {"\uFFFD", 4, 6, false}}},
		{name: "nul bytes kept", input: "a\x00b\n", maxBytes: 100, want: []got{{"a\x00b", 0, 4, false}}},
		{name: "plain", input: "é\xff\n", maxBytes: 100, enc: Plain, want: []got{{"é\uFFFD", 0, 4, false}}},
		{name: "latin1", input: "caf\xe9\n", maxBytes: 100, enc: Latin1, want: []got{{"café", 0, 5, false}}},
		{name: "latin1 cut to the limit", input: "\xe9\xe9\xe9\n", maxBytes: 3, enc: Latin1, want: []got{{"é", 0, 4, false}}},
		{name: "replacement cut to the limit", input: "ab\xff\xfe\n", maxBytes: 4, want: []got{{"ab", 0, 5, false}}},
	}
	for _, c := range cases {
		for _, step := range []int{0, 1, 2, 3, 5} {
			t.Run(fmt.Sprintf("%s/step%d", c.name, step), func(t *testing.T) {
				lines, flushed, _ := split(c.input, c.start, c.maxBytes, c.enc, step)
				if fmt.Sprint(lines) != fmt.Sprint(c.want) {
					t.Errorf("lines\n got %v\nwant %v", lines, c.want)
				}
				if fmt.Sprint(flushed) != fmt.Sprint(c.flushed) {
					t.Errorf("flushed\n got %v\nwant %v", flushed, c.flushed)
				}
			})
		}
	}
}

func TestSplitterOffsets(t *testing.T) {
	s := NewSplitter(10, 100, UTF8)
	var n int
	s.Feed([]byte("ab\ncd"), func(Line) { n++ })
	if n != 1 || s.Offset() != 13 || s.Pos() != 15 || s.Pending() != 2 {
		t.Fatalf("n=%d offset=%d pos=%d pending=%d", n, s.Offset(), s.Pos(), s.Pending())
	}
	if s.Flush(func(Line) {}) != true || s.Offset() != 15 || s.Pending() != 0 {
		t.Fatalf("after flush: offset=%d pending=%d", s.Offset(), s.Pending())
	}
	if s.Flush(func(Line) { t.Fatal("nothing to flush") }) {
		t.Fatal("second flush emitted")
	}
}

// TestHugeLineMemory checks that a line far longer than the limit is not
// held whole: the splitter keeps only maxBytes of it.
func TestHugeLineMemory(t *testing.T) {
	s := NewSplitter(0, 1024, UTF8)
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	for i := 0; i < 50; i++ {
		s.Feed(chunk, func(Line) { t.Fatal("no line yet") })
		if cap(s.held) > 4096 {
			t.Fatalf("held %d bytes", cap(s.held))
		}
	}
	var l got
	s.Feed([]byte("\nnext\n"), func(x Line) {
		if l.end == 0 {
			l = got{string(x.Text), x.Offset, x.End, x.Truncated}
		}
	})
	if len(l.text) != 1024 || !l.truncated || l.end != 50<<20+1 {
		t.Fatalf("line: %d bytes truncated=%v end=%d", len(l.text), l.truncated, l.end)
	}
}

func TestParseEncoding(t *testing.T) {
	for in, want := range map[string]Encoding{"": UTF8, "UTF-8": UTF8, "utf8": UTF8, "plain": Plain, "ISO8859-1": Latin1, "latin1": Latin1} {
		if got, err := ParseEncoding(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	if _, err := ParseEncoding("utf-16"); err == nil || !strings.HasPrefix(err.Error(), "lines: ") {
		t.Errorf("utf-16: %v", err)
	}
}

// FuzzSplitter checks the splitter's promises on any input cut anywhere:
// lines are valid UTF-8 within the limit, they tile the input without gaps
// from the start offset, and feeding in pieces gives what feeding at once
// gives.
func FuzzSplitter(f *testing.F) {
	f.Add([]byte("a\nb\r\nc"), 3, uint8(1), uint8(0))
	f.Add([]byte("\xff\xfe\n\x00\n"), 1, uint8(2), uint8(2))
	f.Add([]byte("ééééé\n€€\n"), 4, uint8(3), uint8(1))
	f.Fuzz(func(t *testing.T, input []byte, maxBytes int, step, enc uint8) {
		if maxBytes < 1 || maxBytes > 1<<16 {
			maxBytes = 1 + (maxBytes&0xff+256)%256
		}
		e := Encoding(enc % 3)
		whole := NewSplitter(7, maxBytes, e)
		var a []got
		whole.Feed(input, func(l Line) { a = append(a, got{string(l.Text), l.Offset, l.End, l.Truncated}) })
		whole.Flush(func(l Line) { a = append(a, got{string(l.Text), l.Offset, l.End, l.Truncated}) })

		pieces := NewSplitter(7, maxBytes, e)
		var b []got
		n := int(step)%7 + 1
		for rest := input; len(rest) > 0; {
			k := min(n, len(rest))
			pieces.Feed(append([]byte(nil), rest[:k]...), func(l Line) { b = append(b, got{string(l.Text), l.Offset, l.End, l.Truncated}) })
			rest = rest[k:]
		}
		pieces.Flush(func(l Line) { b = append(b, got{string(l.Text), l.Offset, l.End, l.Truncated}) })
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("whole %v\npieces %v", a, b)
		}
		next := int64(7)
		for _, l := range a {
			if l.off != next || l.end <= l.off {
				t.Fatalf("gap or overlap at %v (want start %d)", l, next)
			}
			next = l.end
			if !utf8.ValidString(l.text) || len(l.text) > maxBytes || strings.Contains(l.text, "\n") {
				t.Fatalf("bad line %v", l)
			}
		}
		if next != 7+int64(len(input)) {
			t.Fatalf("lines end at %d, input at %d", next, 7+len(input))
		}
	})
}
