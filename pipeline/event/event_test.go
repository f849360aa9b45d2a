package event

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestIDStable(t *testing.T) {
	a := ID("web-1", "fp:0123abcd", 12345)
	if a != ID("web-1", "fp:0123abcd", 12345) {
		t.Fatal("same inputs gave different ids")
	}
	if len(a) != 32 || strings.Trim(a, "0123456789abcdef") != "" {
		t.Fatalf("id %q is not 32 lowercase hex digits", a)
	}
	// A known value pins the function: changing it would re-id every line
	// already in Elasticsearch and duplicate documents on re-delivery.
	if got, want := ID("web-1", "fp:0123abcd", 12345), "39a48e9209dab5ef622ddfa407fa4cde"; got != want {
		t.Fatalf("ID changed: got %s, want %s", got, want)
	}
	for _, other := range []string{
		ID("web-2", "fp:0123abcd", 12345),
		ID("web-1", "fp:0123abce", 12345),
		ID("web-1", "fp:0123abcd", 12346),
		// Moving a byte between fields must not give the same id.
		ID("web-1f", "p:0123abcd", 12345),
		ID("", "web-1fp:0123abcd", 12345),
	} {
		if other == a {
			t.Fatalf("different inputs gave the same id %s", a)
		}
	}
}

func TestIDNoCollisions(t *testing.T) {
	n := 1_000_000
	seen := make(map[string]struct{}, n)
	hosts := []string{"web-1", "web-2", "web-10"}
	files := []string{"a", "b", "ab", "fp:deadbeef"}
	for i := 0; i < n; i++ {
		id := ID(hosts[i%len(hosts)], files[(i/len(hosts))%len(files)], int64(i/(len(hosts)*len(files))))
		if _, dup := seen[id]; dup {
			t.Fatalf("collision after %d ids: %s", i, id)
		}
		seen[id] = struct{}{}
	}
}

func sample() Event {
	return Event{
		Timestamp: time.Date(2026, 11, 21, 10, 0, 0, 123456789, time.FixedZone("x", 3600)),
		Message:   `127.0.0.1 - - [21/Nov/2026:10:00:00 +0000] "GET /a?b=\"c\" HTTP/1.1" 200 12`,
		Tags:      []string{"access"},
		Event:     Meta{ID: ID("web-1", "f", 0)},
		Log:       Log{File: File{Path: "/var/log/httpd/access_log"}, Offset: 12345},
		Input:     Input{Type: "log"},
		Host:      Host{Name: "web-1"},
		Agent:     Agent{Type: "shipper", Version: "0.1.0"},
		Fields:    map[string]any{"env": "prod", "n": 3},
	}
}

func TestAppendJSONShape(t *testing.T) {
	e := sample()
	b := e.AppendJSON(nil)
	want := `{"@timestamp":"2026-11-21T09:00:00.123Z","message":"127.0.0.1 - - [21/Nov/2026:10:00:00 +0000] \"GET /a?b=\\\"c\\\" HTTP/1.1\" 200 12","tags":["access"],"event":{"id":"` + e.Event.ID + `"},"log":{"file":{"path":"/var/log/httpd/access_log"},"offset":12345},"input":{"type":"log"},"host":{"name":"web-1"},"agent":{"type":"shipper","version":"0.1.0"},"fields":{"env":"prod","n":3}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	var back Event
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Message != e.Message || back.Event.ID != e.Event.ID || back.Log.Offset != 12345 || !back.Timestamp.Equal(e.Timestamp.Truncate(time.Millisecond)) {
		t.Fatalf("round trip: %+v", back)
	}
}

func TestFieldsUnderRoot(t *testing.T) {
	e := sample()
	e.FieldsUnderRoot = true
	var m map[string]any
	if err := json.Unmarshal(e.AppendJSON(nil), &m); err != nil {
		t.Fatal(err)
	}
	if m["env"] != "prod" || m["fields"] != nil {
		t.Fatalf("fields not at root: %v", m)
	}
}

func TestAppendStringHostile(t *testing.T) {
	cases := []string{
		"", "plain", "\x00\x01\x1f\x7f", "tab\tnl\ncr\r", `q"b\`, "\xff\xfe bad utf8 \xc3",
		"ok é 漢字 🙂", "\u2028\u2029", strings.Repeat("x", 1<<16),
	}
	for _, s := range cases {
		b := AppendString(nil, s)
		if !json.Valid(b) {
			t.Fatalf("invalid JSON for %q: %s", s, b)
		}
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("round trip of %q gave %q", s, back)
		}
		if !utf8.ValidString(back) {
			t.Fatalf("output not UTF-8 for %q", s)
		}
	}
}

// sanitized is s with each byte that is not part of valid UTF-8 replaced
// by U+FFFD, which is what AppendString's output decodes to.
func sanitized(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// stringCases put characters that need escaping at every position of an
// 8-byte word (the encoder skips plain words eight bytes at a time).
var stringCases = []string{
	`"`, `\`, `a"`, `ab\`, `abcdefg"`, `abcdefgh"`, `abcdefghi\j`, `1234567"12345678\`,
	"nul\x00byte", "bell\x07", "del\x7fchar", "cr\rlf\n", "日本語のログ行", "emoji 🎉 ok",
	"sep\u2028line\u2029para", "cut \xe6\x97", "\x80", "mixed \"quote\" \\ and \xc3\xa9 and \x01",
	strings.Repeat("x", 1000) + `"` + strings.Repeat("y", 7),
}

func FuzzAppendString(f *testing.F) {
	for _, s := range stringCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := AppendString([]byte("prefix"), s)
		if string(b[:6]) != "prefix" {
			t.Fatalf("prefix overwritten: %q", b)
		}
		b = b[6:]
		if !json.Valid(b) || !utf8.Valid(b) {
			t.Fatalf("invalid output for %q: %q", s, b)
		}
		for _, c := range b {
			if c < 0x20 {
				t.Fatalf("raw control byte in output for %q: %q", s, b)
			}
		}
		if strings.ContainsAny(string(b), "\u2028\u2029") {
			t.Fatalf("raw U+2028/U+2029 in output for %q: %q", s, b)
		}
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if want := sanitized(s); back != want {
			t.Fatalf("%q decodes as %q, want %q", s, back, want)
		}
		if got := AppendBytes(nil, []byte(s)); string(got) != string(b) {
			t.Fatalf("AppendBytes and AppendString differ for %q", s)
		}
	})
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("line", "tag", "/p", int64(0))
	f.Add("\xff\x00\"\\", "\u2028", "", int64(-1))
	f.Fuzz(func(t *testing.T, msg, tag, path string, off int64) {
		e := Event{Message: msg, Tags: []string{tag}, Log: Log{File: File{Path: path}, Offset: off}}
		b := e.AppendJSON(nil)
		if !json.Valid(b) || !utf8.Valid(b) {
			t.Fatalf("invalid output %q", b)
		}
		var back Event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if utf8.ValidString(msg) && back.Message != msg {
			t.Fatalf("message %q came back as %q", msg, back.Message)
		}
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	e := sample()
	e.Fields = nil
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = e.AppendJSON(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkID(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = ID("web-1", "fp:0123456789abcdef", int64(i))
	}
}

func ExampleID() {
	fmt.Println(len(ID("web-1", "fp:0123abcd", 0)))
	// Output: 32
}
