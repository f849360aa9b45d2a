package document

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"logpipe/indexer/httpdlog"
)

// unquoteCases are JSON string literals and what encoding/json makes of
// them; ok false means it refuses them.
var unquoteCases = []struct {
	lit  string
	want string
	ok   bool
}{
	{`"plain"`, "plain", true},
	{`""`, "", true},
	{`"GET \"/a?b=c\" HTTP/1.1"`, `GET "/a?b=c" HTTP/1.1`, true},
	{`"\\ \/ \b \f \n \r \t"`, "\\ / \b \f \n \r \t", true},
	{`"\u00e9t\u00C9"`, "étÉ", true},
	{`"\ud83d\ude00!"`, "😀!", true},
	{`"\ud83d!"`, "\uFFFD!", true},           // a lone high half
	{`"\ude00\ud83d"`, "\uFFFD\uFFFD", true}, // halves in the wrong order
	{`"\ud83d\u0041"`, "\uFFFDA", true},      // a half followed by no half
	{"\"bad \xff byte \xed\xa0\x80\"", "bad \uFFFD byte \uFFFD\uFFFD\uFFFD", true},
	{"\"\xef\xbf\xbd kept\"", "\uFFFD kept", true},
	{`"\x"`, "", false},
	{`"\'"`, "", false},
	{`"\u12"`, "", false},
	{`"\u12g4"`, "", false},
	{"\"tab\there\"", "", false},
	{`"a"b"`, "", false},
	{`"trailing\"`, "", false},
	{`unquoted`, "", false},
	{`"`, "", false},
}

func TestUnquoteMatchesEncodingJSON(t *testing.T) {
	for _, c := range unquoteCases {
		got, ok := unquote([]byte(c.lit))
		if ok != c.ok || got != c.want {
			t.Errorf("unquote(%q) = %q, %v; want %q, %v", c.lit, got, ok, c.want, c.ok)
		}
		var std string
		err := json.Unmarshal([]byte(c.lit), &std)
		if (err == nil) != c.ok || (err == nil && std != c.want) {
			t.Errorf("the table disagrees with encoding/json on %q: %q, %v", c.lit, std, err)
		}
	}
}

// FuzzUnquote checks unquote against encoding/json on any literal: the
// same text when encoding/json takes it, a refusal when it does not.
func FuzzUnquote(f *testing.F) {
	for _, c := range unquoteCases {
		f.Add([]byte(c.lit))
	}
	enc, _ := json.Marshal(accessLine)
	f.Add(enc)
	f.Fuzz(func(t *testing.T, lit []byte) {
		got, ok := unquote(lit)
		if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
			// encoding/json also takes white space around a literal;
			// unquote is only given the literal itself.
			if ok {
				t.Fatalf("unquote(%q) took something that is not a literal", lit)
			}
			return
		}
		var std string
		err := json.Unmarshal(lit, &std)
		if err != nil {
			if ok {
				t.Fatalf("unquote(%q) = %q, encoding/json refuses it: %v", lit, got, err)
			}
			return
		}
		if !ok || got != std {
			t.Fatalf("unquote(%q) = %q, %v; encoding/json %q", lit, got, ok, std)
		}
	})
}

func BenchmarkStringValueEscaped(b *testing.B) {
	lit, _ := json.Marshal(accessLine)
	b.ReportAllocs()
	b.SetBytes(int64(len(lit)))
	for i := 0; i < b.N; i++ {
		if _, ok := stringValue(lit); !ok {
			b.Fatal("refused")
		}
	}
}

// TestAppendTimeMatchesFormat compares AppendTime with time.Format's
// layouts for milli-, micro- and nanosecond times, years at the edges of
// four digits, other zones and times outside 0000–9999.
func TestAppendTimeMatchesFormat(t *testing.T) {
	zone := time.FixedZone("", -7*3600-1800)
	times := []time.Time{
		time.Date(2026, 11, 21, 10, 0, 0, 123e6, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 0, zone),
		time.Date(2026, 12, 31, 23, 59, 59, 999999e3, time.UTC),
		time.Date(1999, 2, 3, 4, 5, 6, 7, time.UTC),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 5e6, time.UTC),
		time.Date(-1, 6, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(0, 0),
		{},
	}
	for _, tm := range times {
		u := tm.UTC()
		layout := "2006-01-02T15:04:05.000000000Z07:00"
		switch ns := u.Nanosecond(); {
		case ns%1e6 == 0:
			layout = "2006-01-02T15:04:05.000Z07:00"
		case ns%1e3 == 0:
			layout = "2006-01-02T15:04:05.000000Z07:00"
		}
		if got, want := string(AppendTime([]byte("x"), tm)), "x"+u.Format(layout); got != want {
			t.Errorf("AppendTime(%v) = %s, want %s", tm, got, want)
		}
	}
}

func BenchmarkAppendTime(b *testing.B) {
	tm := time.Date(2026, 11, 21, 10, 0, 0, 123e6, time.UTC)
	buf := make([]byte, 0, 64)
	for i := 0; i < b.N; i++ {
		buf = AppendTime(buf[:0], tm)
	}
}

// TestRepeatedAndRenamedKeys: a key given twice keeps its last value in its
// first place, at any depth; a member kept under a new name (_event, _log,
// _id, _@timestamp) takes more underscores when the event has that name
// already. Elasticsearch would refuse the document otherwise.
func TestRepeatedAndRenamedKeys(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"a":1,"b":2,"a":3}`, `"a":3,"b":2,`},
		{`{"f":{"x":[{"y":1,"\u0079":2}],"x":{"z":1,"z":2}}}`, `"f":{"x":{"z":2}},`},
		{`{"event":"x","_event":1}`, `"__event":"x","_event":1,`},
		{`{"_log":1,"log":2,"__log":3}`, `"_log":1,"___log":2,"__log":3,`},
		{`{"event":{"id":{},"_id":2}}`, `"__id":{},"_id":2,`},
		{`{"@timestamp":"bad","_@timestamp":1}`, `"__@timestamp":"bad"`},
	} {
		rec := record([]byte(c.in))
		d := NewBuilder(Options{Now: fixedNow}).Build(Decode(rec, JSON), rec)
		if err := checkDuplicates(d.Body); err != nil {
			t.Errorf("%s: %v in %s", c.in, err, d.Body)
		}
		if !strings.Contains(string(d.Body), c.want) {
			t.Errorf("%s: document %s lacks %s", c.in, d.Body, c.want)
		}
	}
}

// TestParsedNamesCoverTheParser parses lines that fill every field of both
// parsers and checks that each top-level member they write is among
// parsedNames, which Build relies on to skip looking for clashes.
func TestParsedNamesCoverTheParser(t *testing.T) {
	lines := []string{
		`www.example.com:443 203.0.113.5 - alice [21/Nov/2026:10:00:00 +0100] "POST /api?id=7 HTTP/1.1" 201 512 "https://example.com/" "curl/8.5.0"`,
		`[Sat Nov 21 10:00:00.123456 2026] [proxy:error] [pid 1234:tid 5678] (111)Connection refused: [client 198.51.100.7:51234] AH00957: HTTP: attempt to connect to 127.0.0.1:8080 (*) failed, referer: https://example.com/a`,
	}
	var acc httpdlog.Access
	var errLine httpdlog.Error
	for _, line := range lines {
		kind, err := httpdlog.Parse(line, time.UTC, &acc, &errLine)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		var obj []byte
		if kind == httpdlog.KindAccess {
			obj = acc.AppendJSONFields([]byte{'{'})
		} else {
			obj = errLine.AppendJSONFields([]byte{'{'})
		}
		obj = append(obj, '}')
		n := 0
		eachMember(obj, func(rk, _ []byte) bool {
			n++
			if !mayBeParsed(rk) {
				t.Errorf("the parser writes %s, which parsedNames lacks", rk)
			}
			return true
		})
		if n < 5 {
			t.Fatalf("%q gave only %d members: %s", line, n, obj)
		}
	}
}

// TestBuilderTimesFollowEachDocument builds documents in a row whose
// @timestamp and ingestion time change, repeat and change back: the text a
// Builder keeps from the previous document must never leak into the next.
func TestBuilderTimesFollowEachDocument(t *testing.T) {
	base := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	now := base
	b := NewBuilder(Options{Now: func() time.Time { return now }})
	for i, step := range []struct{ ts, ingested time.Duration }{
		{0, 0}, {0, 0}, {time.Millisecond, 400 * time.Microsecond}, {0, time.Millisecond}, {time.Hour, time.Millisecond}, {0, 2 * time.Millisecond},
	} {
		ts := base.Add(step.ts)
		now = base.Add(step.ingested)
		rec := record([]byte(`{"@timestamp":"` + ts.Format(time.RFC3339Nano) + `","message":"m"}`))
		d := b.Build(Decode(rec, JSON), rec)
		m := decodeStrict(t, d.Body)
		if got, want := get(m, "@timestamp"), string(AppendTime(nil, ts)); got != want {
			t.Errorf("document %d: @timestamp %v, want %s", i, got, want)
		}
		if got, want := get(m, "event.ingested"), string(AppendTime(nil, now.Truncate(time.Millisecond))); got != want {
			t.Errorf("document %d: event.ingested %v, want %s", i, got, want)
		}
	}
}
