package publish

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"logpipe/pipeline/event"
)

// texts are awkward strings for the JSON encoder: escapes at every
// position of an 8-byte word, control bytes, DEL, multi-byte characters,
// U+2028/U+2029, invalid bytes.
var texts = []string{
	"",
	"plain",
	`203.0.113.7 - - [21/Nov/2026:10:00:00 +0000] "GET /a?b=c HTTP/1.1" 200 512 "-" "curl/8.0"`,
	`"`, `\`, `a"`, `ab\`, `abcdefg"`, `abcdefgh"`, `abcdefghi\j`, `1234567"12345678\`,
	"tab\there", "nul\x00byte", "bell\x07", "del\x7fchar", "cr\rlf\n",
	"héllo wörld ünïcödé", "日本語のログ行", "emoji 🎉 ok", "sep\u2028line\u2029para",
	"bad \xff\xfe bytes", "cut \xe6\x97", "\x80", "mixed \"quote\" \\ and \xc3\xa9 and \x01",
	strings.Repeat("x", 1000) + `"` + strings.Repeat("y", 7),
}

// randomText returns a valid UTF-8 line, as the splitter gives them.
func randomText(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return texts[r.IntN(len(texts))]
	}
	var b strings.Builder
	n := r.IntN(300)
	for b.Len() < n {
		switch r.IntN(20) {
		case 0:
			b.WriteRune(rune(r.IntN(0x20)))
		case 1:
			b.WriteString(`"\`)
		case 2:
			b.WriteRune(rune(0x80 + r.IntN(0x10000-0x80)))
		default:
			b.WriteByte(byte(0x20 + r.IntN(0x5f)))
		}
	}
	return strings.ToValidUTF8(b.String(), "\uFFFD")
}

// TestSourceAppendJSONMatchesEvent builds random batches and compares
// every event's JSON with event.Event.AppendJSON of the same event.
func TestSourceAppendJSONMatchesEvent(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	templates := []event.Event{
		{Input: event.Input{Type: "log"}, Host: event.Host{Name: "web-1"}, Agent: event.Agent{Type: "shipper", Version: "1.0"}},
		{Tags: []string{"access"}, Input: event.Input{Type: "filestream"}, Host: event.Host{Name: `we"b`}, Agent: event.Agent{Type: "shipper", Version: "dev"}},
		{Tags: []string{"a", "b\u2028"}, Input: event.Input{Type: "log"}, Host: event.Host{Name: "h"}, Agent: event.Agent{Type: "shipper"},
			Fields: map[string]any{"log_topic": "t", "n": 3, "nested": map[string]any{"x": []any{1, "y"}}}},
		{Tags: []string{"error"}, Input: event.Input{Type: "log"}, Host: event.Host{Name: "h"}, Agent: event.Agent{Type: "shipper"},
			Fields: map[string]any{"env": "prod", "dc": "eu"}, FieldsUnderRoot: true},
		{Fields: map[string]any{}, FieldsUnderRoot: true},
	}
	for ti, tmpl := range templates {
		src := &Source{Template: tmpl, HostID: "host-" + string(rune('a'+ti)), FileID: "file-id-" + string(rune('0'+ti))}
		b := &Batch{Source: src}
		for round := 0; round < 20; round++ {
			b.Reset()
			b.Path = []string{"/var/log/httpd/access_log", `C:\logs\"x".log`, "/var/log/ü"}[r.IntN(3)]
			b.Time = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC).Add(time.Duration(r.Int64N(1e12)))
			if round%3 == 0 {
				b.Time = b.Time.In(time.FixedZone("X", 3600))
			}
			off := r.Int64N(1 << 40)
			for i := 0; i < 50; i++ {
				text := randomText(r)
				end := off + int64(len(text)) + 1
				switch r.IntN(10) {
				case 0:
					b.AddSkip(off, end)
				case 1:
					b.AddRef([]byte(text), off, end, Flags(r.IntN(4)))
				default:
					b.Add([]byte(text), off, end, Flags(r.IntN(4)))
				}
				off = end
			}
			for i := range b.Events {
				if b.Events[i].Skip {
					continue
				}
				got := src.AppendJSON([]byte("x"), b, i)
				want := b.Event(i).AppendJSON([]byte("x"))
				if !bytes.Equal(got, want) {
					t.Fatalf("template %d, event %d:\n got %s\nwant %s", ti, i, got, want)
				}
				if !utf8.Valid(got) {
					t.Fatalf("invalid UTF-8: %q", got)
				}
			}
		}
	}
}

func TestBatch(t *testing.T) {
	var b Batch
	b.Add([]byte("one"), 0, 4, 0)
	b.AddSkip(4, 9)
	b.Add([]byte("three"), 9, 15, Truncated|Multiline)
	buf := []byte("four\n")
	b.AddRef(buf[:4], 15, 20, 0)
	b.AddRef(nil, 20, 21, 0)
	if b.Len() != 5 || b.Sent() != 4 || b.TextBytes() != 12 {
		t.Fatalf("len %d sent %d text %d", b.Len(), b.Sent(), b.TextBytes())
	}
	if string(b.Text(0)) != "one" || string(b.Text(2)) != "three" || len(b.Text(1)) != 0 || string(b.Text(3)) != "four" || len(b.Text(4)) != 0 {
		t.Fatalf("texts %q %q %q %q %q", b.Text(0), b.Text(1), b.Text(2), b.Text(3), b.Text(4))
	}
	b.Source = &Source{HostID: "h", FileID: "f"}
	ev := b.Event(2)
	if ev.Message != "three" || ev.Log.Offset != 9 || strings.Join(ev.Log.Flags, ",") != "truncated,multiline" || ev.Event.ID != event.ID("h", "f", 9) {
		t.Fatalf("event %+v", ev)
	}
	b.Reset()
	if b.Len() != 0 || b.Sent() != 0 || b.TextBytes() != 0 {
		t.Fatal("Reset left events")
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	src := &Source{Template: event.Event{Tags: []string{"access"}, Input: event.Input{Type: "log"}, Host: event.Host{Name: "web-1"},
		Agent: event.Agent{Type: "shipper", Version: "1.0"}}, HostID: "web-1", FileID: "abcdef0123456789abcdef"}
	bt := &Batch{Source: src, Path: "/var/log/httpd/access_log", Time: time.Now()}
	bt.Add([]byte(`203.0.113.7 - - [21/Nov/2026:10:00:00 +0000] "GET /products/4711?page=2 HTTP/1.1" 200 5123 "https://www.example.com/" "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36"`), 0, 190, 0)
	b.Run("publish", func(b *testing.B) {
		var dst []byte
		for b.Loop() {
			dst = src.AppendJSON(dst[:0], bt, 0)
		}
	})
	b.Run("event", func(b *testing.B) {
		var dst []byte
		for b.Loop() {
			dst = bt.Event(0).AppendJSON(dst[:0])
		}
	})
}
