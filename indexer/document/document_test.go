package document

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"logpipe/pipeline/event"
)

var (
	recTime  = time.Date(2026, 11, 21, 10, 0, 0, 123e6, time.UTC)
	ingested = time.Date(2026, 11, 22, 8, 30, 0, 456789e3, time.UTC)
)

func fixedNow() time.Time { return ingested }

// shipped returns the JSON the shipper sends for line.
func shipped(line string, tags ...string) []byte {
	e := event.Event{
		Timestamp: time.Date(2026, 11, 21, 10, 0, 0, 123e6, time.UTC),
		Message:   line,
		Tags:      tags,
		Event:     event.Meta{ID: "0123456789abcdef0123456789abcdef"},
		Log:       event.Log{File: event.File{Path: "/var/log/httpd/access_log"}, Offset: 12345},
		Input:     event.Input{Type: "log"},
		Host:      event.Host{Name: "web-1"},
		Agent:     event.Agent{Type: "shipper", Version: "0.1.0"},
	}
	return e.AppendJSON(nil)
}

func record(value []byte) *Record {
	return &Record{Topic: "httpd", Partition: 3, Offset: 77, Key: []byte("k1"), Value: value, Timestamp: recTime}
}

// decodeStrict decodes a document, failing on duplicate keys at any level
// (Elasticsearch refuses them).
func decodeStrict(t testing.TB, body []byte) map[string]any {
	t.Helper()
	if err := checkDuplicates(body); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("invalid JSON %s: %v", body, err)
	}
	return m
}

func checkDuplicates(body []byte) error {
	d := json.NewDecoder(bytes.NewReader(body))
	// Numbers stay text: JSON allows 1e700, which a float64 cannot hold.
	d.UseNumber()
	var walk func() error
	walk = func() error {
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for d.More() {
				k, err := d.Token()
				if err != nil {
					return err
				}
				if seen[k.(string)] {
					return fmt.Errorf("duplicate key %q", k)
				}
				seen[k.(string)] = true
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = d.Token()
			return err
		case json.Delim('['):
			for d.More() {
				if err := walk(); err != nil {
					return err
				}
			}
			_, err = d.Token()
			return err
		}
		return nil
	}
	return walk()
}

// get returns the value at a dotted path of a decoded document.
func get(m map[string]any, path string) any {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	if n, ok := cur.(json.Number); ok {
		return string(n)
	}
	return cur
}

const (
	accessLine = `203.0.113.42 - frank [21/Nov/2026:11:00:00.000 +0100] "GET /index.html HTTP/1.1" 404 5120 "https://www.example.com/" "Mozilla/5.0 \"quoted\""`
	errorLine  = `[Sat Nov 21 10:00:01.250123 2026] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187:64033] AH00128: File does not exist: /var/www/favicon.ico`
)

func TestBuild(t *testing.T) {
	// The access line's time has no fraction in httpd's format; use one it
	// can read.
	access := `203.0.113.42 - frank [21/Nov/2026:11:00:00 +0100] "GET /index.html HTTP/1.1" 404 5120 "https://www.example.com/" "Mozilla/5.0 \"quoted\""`
	cases := []struct {
		name  string
		codec Codec
		value []byte
		opts  Options
		want  map[string]any // dotted path -> value; nil value means absent
		id    string
		tags  []string
	}{
		{
			name:  "access line",
			value: shipped(access, "access"),
			opts:  Options{ParseHTTPD: true},
			id:    "0123456789abcdef0123456789abcdef",
			tags:  []string{"access"},
			want: map[string]any{
				"@timestamp":                    "2026-11-21T10:00:00.000Z",
				"message":                       access,
				"event.original":                access,
				"event.outcome":                 "failure",
				"event.ingested":                "2026-11-22T08:30:00.456Z",
				"event.id":                      "0123456789abcdef0123456789abcdef",
				"source.ip":                     "203.0.113.42",
				"user.name":                     "frank",
				"http.request.method":           "GET",
				"http.response.status_code":     "404",
				"http.response.body.bytes":      "5120",
				"user_agent.original":           `Mozilla/5.0 "quoted"`,
				"url.original":                  "/index.html",
				"log.file.path":                 "/var/log/httpd/access_log",
				"log.offset":                    "12345",
				"host.name":                     "web-1",
				"kafka":                         nil,
				"http.request.referrer":         "https://www.example.com/",
				"agent.type":                    "shipper",
				"input.type":                    "log",
				"destination":                   nil,
				"log.level":                     nil,
				"event.original_not_a_real_key": nil,
			},
		},
		{
			name:  "error line",
			value: shipped(errorLine, "error"),
			opts:  Options{ParseHTTPD: true},
			id:    "0123456789abcdef0123456789abcdef",
			tags:  []string{"error"},
			want: map[string]any{
				"@timestamp":          "2026-11-21T10:00:01.250123Z",
				"message":             "AH00128: File does not exist: /var/www/favicon.ico",
				"event.original":      errorLine,
				"event.outcome":       nil,
				"log.level":           "error",
				"log.file.path":       "/var/log/httpd/access_log",
				"apache.error.module": "core",
				"process.pid":         "35708",
				"process.thread.id":   "4328636416",
				"source.port":         "64033",
				"error.code":          "AH00128",
			},
		},
		{
			name:  "error line in a configured zone",
			value: shipped(errorLine, "error"),
			opts:  Options{ParseHTTPD: true, Location: time.FixedZone("X", 3600)},
			id:    "0123456789abcdef0123456789abcdef",
			tags:  []string{"error"},
			want:  map[string]any{"@timestamp": "2026-11-21T09:00:01.250123Z"},
		},
		{
			name:  "garbage keeps the event's time and is tagged",
			value: shipped("this is no httpd line", "access"),
			opts:  Options{ParseHTTPD: true},
			id:    "0123456789abcdef0123456789abcdef",
			tags:  []string{"access", TagHTTPDFailure},
			want: map[string]any{
				"@timestamp":     "2026-11-21T10:00:00.123Z",
				"message":        "this is no httpd line",
				"event.original": nil,
				"source":         nil,
			},
		},
		{
			name:  "parsing limited to tags",
			value: shipped(access, "other"),
			opts:  Options{ParseHTTPD: true, ParseTags: []string{"access", "error"}},
			id:    "0123456789abcdef0123456789abcdef",
			tags:  []string{"other"},
			want:  map[string]any{"@timestamp": "2026-11-21T10:00:00.123Z", "source": nil},
		},
		{
			name:  "invalid JSON",
			value: []byte(`{"message": "half`),
			opts:  Options{ParseHTTPD: true},
			id:    DerivedID("httpd", 3, 77),
			tags:  []string{TagJSONFailure, TagHTTPDFailure},
			want: map[string]any{
				"@timestamp": "2026-11-21T10:00:00.123Z",
				"message":    `{"message": "half`,
				"event.id":   DerivedID("httpd", 3, 77),
			},
		},
		{
			name:  "a JSON array is no event",
			value: []byte(`[1,2]`),
			id:    DerivedID("httpd", 3, 77),
			tags:  []string{TagJSONFailure},
			want:  map[string]any{"message": "[1,2]"},
		},
		{
			name:  "raw httpd line under the json codec is parsed all the same",
			value: []byte(access),
			opts:  Options{ParseHTTPD: true},
			id:    DerivedID("httpd", 3, 77),
			tags:  []string{TagJSONFailure},
			want:  map[string]any{"@timestamp": "2026-11-21T10:00:00.000Z", "source.ip": "203.0.113.42"},
		},
		{
			name:  "plain codec",
			codec: Plain,
			value: []byte(access),
			opts:  Options{ParseHTTPD: true},
			id:    DerivedID("httpd", 3, 77),
			want:  map[string]any{"message": access, "http.response.status_code": "404", "tags": nil},
		},
		{
			name:  "decorated",
			value: shipped("x"),
			opts:  Options{Decorate: true, Group: "indexer"},
			id:    "0123456789abcdef0123456789abcdef",
			want: map[string]any{
				"kafka.topic":          "httpd",
				"kafka.partition":      "3",
				"kafka.offset":         "77",
				"kafka.key":            "k1",
				"kafka.timestamp":      "2026-11-21T10:00:00.123Z",
				"kafka.consumer_group": "indexer",
			},
		},
		{
			name:  "parsed objects replace the event's own",
			value: []byte(`{"@timestamp":"2026-01-01T00:00:00Z","message":` + string(event.AppendString(nil, access)) + `,"http":{"x":1},"source":"s","other":{"a":1},"event":{"id":"abc","original":"o","outcome":"x","ingested":"y","kind":"event"}}`),
			opts:  Options{ParseHTTPD: true},
			id:    "abc",
			want: map[string]any{
				"http.x":                    nil,
				"http.response.status_code": "404",
				"source.ip":                 "203.0.113.42",
				"other.a":                   "1",
				"event.kind":                "event",
				"event.original":            access,
				"event.outcome":             "failure",
				"event.ingested":            "2026-11-22T08:30:00.456Z",
			},
		},
		{
			name:  "unreadable members are kept aside",
			value: []byte(`{"@timestamp":"yesterday","message":"m","event":"e","log":["l"],"tags":"solo"}`),
			id:    DerivedID("httpd", 3, 77),
			tags:  []string{"solo", TagTimestampFailure},
			want: map[string]any{
				"@timestamp":  "2026-11-21T10:00:00.123Z",
				"_@timestamp": "yesterday",
				"_event":      "e",
				"_log":        []any{"l"},
			},
		},
		{
			name:  "numeric event.id and a message that is no string",
			value: []byte(`{"message":{"a":1},"event":{"id":42}}`),
			opts:  Options{ParseHTTPD: true},
			id:    "42",
			want:  map[string]any{"message.a": "1", "event.id": "42"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.opts.Now = fixedNow
			rec := record(c.value)
			ev := Decode(rec, c.codec)
			d := NewBuilder(c.opts).Build(ev, rec)
			m := decodeStrict(t, d.Body)
			if d.ID != c.id {
				t.Errorf("ID %q, want %q", d.ID, c.id)
			}
			if !reflect.DeepEqual(d.Tags, c.tags) && !(len(d.Tags) == 0 && len(c.tags) == 0) {
				t.Errorf("tags %q, want %q", d.Tags, c.tags)
			}
			for path, want := range c.want {
				got := get(m, path)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %#v, want %#v\n%s", path, got, want, d.Body)
				}
			}
			if got := get(m, "@timestamp"); got != string(AppendTime(nil, d.Timestamp)) {
				t.Errorf("Doc.Timestamp %v does not match @timestamp %v", d.Timestamp, got)
			}
		})
	}
}

// TestBuilderReuse checks that one builder's state does not leak from one
// document into the next.
func TestBuilderReuse(t *testing.T) {
	b := NewBuilder(Options{ParseHTTPD: true, Now: fixedNow})
	lines := []string{errorLine, "garbage", `::1 - - [21/Nov/2026:11:00:00 +0000] "GET / HTTP/1.1" 200 -`, errorLine}
	var bodies [][]byte
	for _, l := range lines {
		rec := record(shipped(l))
		bodies = append(bodies, b.Build(Decode(rec, JSON), rec).Body)
	}
	for i, l := range lines {
		rec := record(shipped(l))
		fresh := NewBuilder(Options{ParseHTTPD: true, Now: fixedNow}).Build(Decode(rec, JSON), rec).Body
		if !bytes.Equal(fresh, bodies[i]) {
			t.Errorf("line %d: reused builder wrote\n%s\nfresh one\n%s", i, bodies[i], fresh)
		}
	}
}

func TestDerivedIDIsStable(t *testing.T) {
	a, b := DerivedID("httpd", 0, 5), DerivedID("httpd", 0, 5)
	if a != b || len(a) != 32 {
		t.Fatalf("%q %q", a, b)
	}
	for _, other := range []string{DerivedID("httpd", 1, 5), DerivedID("httpd", 0, 6), DerivedID("httpe", 0, 5)} {
		if other == a {
			t.Fatalf("collision %q", a)
		}
	}
	if DeadLetterID("a", "b") == DeadLetterID("a", "c") || DeadLetterID("ab", "c") == DeadLetterID("a", "bc") {
		t.Fatal("dead-letter ids collide")
	}
}

func TestDeadLetter(t *testing.T) {
	rec := record(shipped(accessLine, "access"))
	d := NewBuilder(Options{Now: fixedNow}).Build(Decode(rec, JSON), rec)
	body := DeadLetter(d, rec, Refusal{Index: "httpd_access-2026.11.21", Status: 400, Type: "mapper_parsing_exception", Reason: "failed to parse field [source] of type [keyword]"}, ingested)
	m := decodeStrict(t, body)
	want := map[string]any{
		"@timestamp":           "2026-11-21T10:00:00.123Z",
		"event.original":       string(rec.Value),
		"event.id":             d.ID,
		"error.type":           "mapper_parsing_exception",
		"dead_letter.index":    "httpd_access-2026.11.21",
		"dead_letter.status":   "400",
		"dead_letter.document": string(d.Body),
		"kafka.offset":         "77",
		"message":              "failed to parse field [source] of type [keyword]",
	}
	for path, w := range want {
		if got := get(m, path); !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %#v, want %#v", path, got, w)
		}
	}
	body = DeadLetter(d, rec, Refusal{Index: "BAD", Type: "invalid_index_name_exception", Reason: "must be lowercase"}, ingested)
	if m := decodeStrict(t, body); get(m, "dead_letter.status") != nil {
		t.Errorf("status written for a refusal before sending: %s", body)
	}

	// A document refused for a date Elasticsearch cannot take (year
	// 10000) has a dead letter dated by its record, else by now.
	far := *d
	far.Timestamp = time.Date(10000, 1, 1, 0, 30, 0, 0, time.UTC)
	farRec := *rec
	farRec.Timestamp = time.Date(2026, 12, 4, 8, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		rec  *Record
		want time.Time
	}{{&farRec, farRec.Timestamp}, {&Record{}, ingested.Truncate(time.Millisecond)}} {
		if got := DeadLetterTime(&far, c.rec, ingested); !got.Equal(c.want) {
			t.Errorf("dead letter time of a year-10000 document, record time %v: got %v, want %v", c.rec.Timestamp, got, c.want)
		}
		m := decodeStrict(t, DeadLetter(&far, c.rec, Refusal{Index: "httpd_access-10000.01.01", Status: 400, Type: "document_parsing_exception"}, ingested))
		if got := get(m, "@timestamp"); got != c.want.UTC().Format("2006-01-02T15:04:05.000Z") {
			t.Errorf("dead letter @timestamp %v, want %v", got, c.want)
		}
	}
}

func TestLookup(t *testing.T) {
	doc := []byte(`{"a":{"b":{"c":"x\"y"}},"n":12,"arr":[1,"two",{"k":3}],"dotted.key":{"z":true},"e":{},"s":"str"}`)
	cases := []struct {
		path string
		want string
		ok   bool
	}{
		{"a.b.c", `"x\"y"`, true},
		{"[a][b][c]", `"x\"y"`, true},
		{"[a.b.c]", `"x\"y"`, true},
		{"a.b", `{"c":"x\"y"}`, true},
		{"n", `12`, true},
		{"arr", `[1,"two",{"k":3}]`, true},
		{"dotted.key.z", `true`, true},
		{"[dotted.key][z]", `true`, true},
		{"a.x", ``, false},
		{"s.x", ``, false},
		{"e.x", ``, false},
		{"", ``, false},
	}
	for _, c := range cases {
		got, ok := Lookup(doc, ParsePath(c.path))
		if ok != c.ok || string(got) != c.want {
			t.Errorf("Lookup(%q) = %s, %v; want %s, %v", c.path, got, ok, c.want, c.ok)
		}
	}
	if s, ok := Text([]byte(`"x\"y"`)); !ok || s != `x"y` {
		t.Errorf("Text = %q %v", s, ok)
	}
	if _, ok := Text([]byte(`{}`)); ok {
		t.Error("Text of an object")
	}
	if els := Elements([]byte(`[ 1 , "a,b" ,[2,3]]`)); len(els) != 3 || string(els[1]) != `"a,b"` || string(els[2]) != `[2,3]` {
		t.Errorf("Elements = %q", els)
	}
	if p := ParsePath("[fields][a.b]"); !reflect.DeepEqual(p, Path{"fields", "a.b"}) {
		t.Errorf("ParsePath = %q", p)
	}
}

func TestInvalidUTF8InPlainText(t *testing.T) {
	rec := record([]byte("bad \xff byte"))
	d := NewBuilder(Options{Now: fixedNow}).Build(Decode(rec, Plain), rec)
	m := decodeStrict(t, d.Body)
	if got := get(m, "message"); got != "bad \uFFFD byte" {
		t.Fatalf("message %q", got)
	}
}

// FuzzBuild feeds arbitrary record values through both codecs: the
// document must always be valid JSON without duplicate keys, its @timestamp
// must match Doc.Timestamp, and it must carry its id.
func FuzzBuild(f *testing.F) {
	f.Add(shipped(accessLine, "access"))
	f.Add(shipped(errorLine, "error"))
	f.Add([]byte(`{"message":"x","event":{"id":"a","original":1},"log":{"level":"x"},"http":1,"kafka":2}`))
	f.Add([]byte(`{"\u0068ttp":{},"message":"` + strings.ReplaceAll(accessLine, `"`, `\"`) + `"}`))
	f.Add([]byte(`{"@timestamp":"2026-13-01T00:00:00Z","tags":[1,{"a":2},"t"]}`))
	f.Add([]byte("\xff\xfe"))
	f.Fuzz(func(t *testing.T, value []byte) {
		for _, codec := range []Codec{JSON, Plain} {
			rec := record(value)
			ev := Decode(rec, codec)
			d := NewBuilder(Options{ParseHTTPD: true, Decorate: true, Group: "g", Now: fixedNow}).Build(ev, rec)
			if !json.Valid(d.Body) {
				t.Fatalf("invalid JSON from %q:\n%s", value, d.Body)
			}
			if err := checkDuplicates(d.Body); err != nil {
				t.Fatalf("%v from %q:\n%s", err, value, d.Body)
			}
			ts, ok := Lookup(d.Body, Path{"@timestamp"})
			if !ok || string(ts) != `"`+string(AppendTime(nil, d.Timestamp))+`"` {
				t.Fatalf("@timestamp %s, Doc.Timestamp %v", ts, d.Timestamp)
			}
			id, _ := Lookup(d.Body, Path{"event", "id"})
			if s, _ := Text(id); s != d.ID || d.ID == "" {
				t.Fatalf("event.id %s, Doc.ID %q", id, d.ID)
			}
			dl := DeadLetter(d, rec, Refusal{Index: "i", Status: 400, Type: "t", Reason: "r"}, ingested)
			if !json.Valid(dl) {
				t.Fatalf("invalid dead letter from %q", value)
			}
		}
	})
}

func BenchmarkBuildAccess(b *testing.B) {
	rec := record(shipped(accessLine, "access"))
	bld := NewBuilder(Options{ParseHTTPD: true})
	b.ReportAllocs()
	b.SetBytes(int64(len(rec.Value)))
	for i := 0; i < b.N; i++ {
		bld.Build(Decode(rec, JSON), rec)
	}
}
