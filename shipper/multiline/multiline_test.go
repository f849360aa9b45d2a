package multiline

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"logpipe/pipeline/config"
	"logpipe/shipper/lines"
)

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// run splits input into lines, feeds them one per millisecond, flushes at
// the end, and returns the events as "text@offset-end/lines[!]".
func run(t *testing.T, c Config, maxBytes int, input string) []string {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	a, err := New(&c, maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	emit := func(e Event) {
		s := fmt.Sprintf("%q@%d-%d/%d", e.Text, e.Offset, e.End, e.Lines)
		if e.Truncated {
			s += "!"
		}
		out = append(out, s)
	}
	sp := lines.NewSplitter(0, 1<<20, lines.UTF8)
	now := t0
	sp.Feed([]byte(input), func(l lines.Line) {
		now = now.Add(time.Millisecond)
		a.Add(l, now, emit)
	})
	a.Flush(emit)
	return out
}

const javaTrace = `[Sat Nov 21 10:00:00 2026] [error] request failed
java.lang.IllegalStateException: boom
	at com.example.Handler.run(Handler.java:42)
	at java.base/java.lang.Thread.run(Thread.java:833)
Caused by: java.io.IOException: disk
	... 3 more
[Sat Nov 21 10:00:01 2026] [notice] next
`

func TestAggregator(t *testing.T) {
	cases := []struct {
		name     string
		c        Config
		maxBytes int
		input    string
		want     []string
	}{
		{"after, continuation lines match",
			Config{Pattern: `^[[:space:]]`, Match: "after"}, 1000,
			"a\n b\n c\nd\n e\nf\n",
			[]string{`"a\n b\n c"@0-8/3`, `"d\n e"@8-13/2`, `"f"@13-15/1`}},
		{"after, negated: lines not starting with [ belong to the one before",
			Config{Pattern: `^\[`, Negate: true, Match: "after"}, 10000,
			javaTrace,
			[]string{
				`"[Sat Nov 21 10:00:00 2026] [error] request failed\njava.lang.IllegalStateException: boom\n\tat com.example.Handler.run(Handler.java:42)\n\tat java.base/java.lang.Thread.run(Thread.java:833)\nCaused by: java.io.IOException: disk\n\t... 3 more"@0-234/6`,
				`"[Sat Nov 21 10:00:01 2026] [notice] next"@234-275/1`}},
		{"after, a first line that continues nothing starts a group",
			Config{Pattern: `^ `, Match: "after"}, 1000,
			" x\n y\nz\n",
			[]string{`" x\n y"@0-6/2`, `"z"@6-8/1`}},
		{"before, lines ending in backslash join the next",
			Config{Pattern: `\\$`, Match: "before"}, 1000,
			"a\\\nb\\\nc\nd\n",
			[]string{`"a\\\nb\\\nc"@0-8/3`, `"d"@8-10/1`}},
		{"before, negated",
			Config{Pattern: `;$`, Negate: true, Match: "before"}, 1000,
			"select\n*\nfrom t;\nx;\n",
			[]string{`"select\n*\nfrom t;"@0-17/3`, `"x;"@17-20/1`}},
		{"before, a pending group is flushed at the end",
			Config{Pattern: `\\$`, Match: "before"}, 1000,
			"a\\\nb\\\n",
			[]string{`"a\\\nb\\"@0-6/2`}},
		{"max_lines leaves the rest out and flags it",
			Config{Pattern: `^ `, Match: "after", MaxLines: 2}, 1000,
			"a\n b\n c\n d\ne\n",
			[]string{`"a\n b"@0-11/4!`, `"e"@11-13/1`}},
		{"max_bytes cuts the joined text",
			Config{Pattern: `^ `, Match: "after"}, 6,
			"abc\n def\n g\nh\n",
			[]string{`"abc\n d"@0-12/3!`, `"h"@12-14/1`}},
		{"max_bytes cuts at a character boundary",
			Config{Pattern: `^ `, Match: "after"}, 5,
			"ab\n é\n",
			[]string{`"ab\n "@0-7/2!`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := run(t, c.c, c.maxBytes, c.input)
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Fatalf("\n got %v\nwant %v", got, c.want)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	c := Config{Pattern: `^ `, Match: "after", Timeout: config.Duration(2 * time.Second)}
	a, err := New(&c, 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Deadline(); ok {
		t.Fatal("deadline with nothing pending")
	}
	var out []string
	emit := func(e Event) { out = append(out, string(e.Text)) }
	a.Add(lines.Line{Text: []byte("a"), Offset: 0, End: 2}, t0, emit)
	a.Add(lines.Line{Text: []byte(" b"), Offset: 2, End: 5}, t0.Add(time.Second), emit)
	d, ok := a.Deadline()
	if !ok || !d.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("deadline %v %v", d, ok)
	}
	if len(out) != 0 {
		t.Fatalf("emitted early: %v", out)
	}
	a.Flush(emit)
	if len(out) != 1 || out[0] != "a\n b" || a.Pending() {
		t.Fatalf("after flush: %v pending=%v", out, a.Pending())
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{{Match: "after"}, {Pattern: "(", Match: "after"}, {Pattern: "x", Match: "up"}, {Pattern: "x", Match: "after", Type: "count"}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

// FuzzAggregator checks, for any lines and settings, that events tile the
// input in order without gaps, count every line once, and stay within the
// byte limit.
func FuzzAggregator(f *testing.F) {
	f.Add([]byte(javaTrace), `^\[`, true, false, 3, 40)
	f.Add([]byte("a\\\nb\n\nc\\\n"), `\\$`, false, true, 0, 5)
	f.Fuzz(func(t *testing.T, input []byte, pattern string, negate, before bool, maxLines, maxBytes int) {
		c := Config{Pattern: pattern, Negate: negate, Match: "after", MaxLines: maxLines%10 + 1}
		if before {
			c.Match = "before"
		}
		if c.Validate() != nil {
			return
		}
		if maxBytes < 1 || maxBytes > 1<<16 {
			maxBytes = 1 + (maxBytes&0xfff+4096)%4096
		}
		a, err := New(&c, maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		var next int64
		var nlines, total int
		emit := func(e Event) {
			if e.Offset != next || e.End <= e.Offset || e.Lines < 1 {
				t.Fatalf("event %d-%d/%d after %d", e.Offset, e.End, e.Lines, next)
			}
			if len(e.Text) > maxBytes {
				t.Fatalf("event of %d bytes over %d", len(e.Text), maxBytes)
			}
			next = e.End
			nlines += e.Lines
		}
		sp := lines.NewSplitter(0, 1<<20, lines.UTF8)
		sp.Feed(input, func(l lines.Line) {
			total++
			a.Add(l, t0, emit)
		})
		sp.Flush(func(l lines.Line) {
			total++
			a.Add(l, t0, emit)
		})
		a.Flush(emit)
		if next != int64(len(input)) || nlines != total {
			t.Fatalf("events end at %d of %d, cover %d of %d lines", next, len(input), nlines, total)
		}
	})
}
