package httpdlog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// checkDoc fails unless doc is valid UTF-8 JSON with no key repeated in any
// object (Elasticsearch refuses duplicate keys).
func checkDoc(doc []byte) error {
	if !utf8.Valid(doc) {
		return fmt.Errorf("not valid UTF-8: %q", doc)
	}
	if !json.Valid(doc) {
		return fmt.Errorf("not valid JSON: %s", doc)
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	type frame struct {
		keys  map[string]bool
		isObj bool
		atKey bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if len(stack) > 0 {
			top := stack[len(stack)-1]
			if top.isObj && top.atKey {
				if d, ok := tok.(json.Delim); ok && d == '}' {
					stack = stack[:len(stack)-1]
					continue
				}
				k := tok.(string)
				if top.keys[k] {
					return fmt.Errorf("duplicate key %q in %s", k, doc)
				}
				top.keys[k] = true
				top.atKey = false
				continue
			}
			if top.isObj {
				top.atKey = true
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{keys: map[string]bool{}, isObj: true, atKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
	return nil
}

// accessDoc writes a whole document the way the indexer will: its own
// members, then the parser's, with the shared objects merged.
func accessDoc(a *Access) []byte {
	doc := []byte(`{"@timestamp":"` + a.Timestamp.UTC().Format(time.RFC3339Nano) + `","event":{"id":"x"`)
	doc = a.AppendEventMembers(doc)
	doc = append(doc, '}')
	doc = a.AppendJSONFields(doc)
	return append(doc, '}')
}

func errorDoc(e *Error) []byte {
	doc := []byte(`{"@timestamp":"` + e.Timestamp.UTC().Format(time.RFC3339Nano) + `","message":`)
	doc = appendString(doc, e.Message)
	doc = append(doc, `,"log":{"file":{"path":"/var/log/httpd/error_log"}`...)
	doc = e.AppendLogMembers(doc)
	doc = append(doc, '}')
	doc = e.AppendJSONFields(doc)
	return append(doc, '}')
}

// viaJSON returns v marshalled and decoded again, so that documents built
// two ways compare equal.
func viaJSON(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAccessJSON(t *testing.T) {
	for _, c := range accessCases {
		t.Run(c.name, func(t *testing.T) {
			var a Access
			if err := ParseAccess(c.line, &a); err != nil {
				t.Fatal(err)
			}
			doc := accessDoc(&a)
			if err := checkDoc(doc); err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(doc, &got); err != nil {
				t.Fatal(err)
			}
			fields := a.Fields()
			fields["@timestamp"] = a.Timestamp.UTC()
			fields["event"].(map[string]any)["id"] = "x"
			if want := viaJSON(t, fields); !reflect.DeepEqual(got, want) {
				t.Errorf("appended fields and Fields() differ:\n%v\n%v", got, want)
			}
			// Strings survive the trip unchanged.
			for k, v := range map[string]string{"url.original": a.URL, "user_agent.original": a.UserAgent,
				"http.request.referrer": a.Referrer, "user.name": a.UserName} {
				if v == "" {
					continue
				}
				if g := lookup(got, k); g != v {
					t.Errorf("%s = %q after JSON, want %q", k, g, v)
				}
			}
		})
	}
}

func TestErrorJSON(t *testing.T) {
	for _, c := range errorCases {
		t.Run(c.name, func(t *testing.T) {
			var e Error
			if err := ParseError(c.line, c.loc, &e); err != nil {
				t.Fatal(err)
			}
			doc := errorDoc(&e)
			if err := checkDoc(doc); err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(doc, &got); err != nil {
				t.Fatal(err)
			}
			fields := e.Fields()
			fields["@timestamp"] = e.Timestamp.UTC()
			fields["log"].(map[string]any)["file"] = map[string]any{"path": "/var/log/httpd/error_log"}
			if want := viaJSON(t, fields); !reflect.DeepEqual(got, want) {
				t.Errorf("appended fields and Fields() differ:\n%v\n%v", got, want)
			}
			if g := lookup(got, "message"); g != e.Message {
				t.Errorf("message = %q after JSON, want %q", g, e.Message)
			}
		})
	}
}

func lookup(m map[string]any, dotted string) any {
	var v any = m
	for _, k := range strings.Split(dotted, ".") {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

func TestAccessJSONExact(t *testing.T) {
	var a Access
	line := `www.example.com:443 2001:db8::1 - al\"ice [21/Nov/2026:10:00:00 +0100] "GET /a?b=\"c\" HTTP/1.1" 404 12 "-" "UA\x01\\"`
	if err := ParseAccess(line, &a); err != nil {
		t.Fatal(err)
	}
	want := `"source":{"address":"2001:db8::1","ip":"2001:db8::1"},` +
		`"destination":{"address":"www.example.com","domain":"www.example.com","port":443},` +
		`"user":{"name":"al\"ice"},` +
		`"http":{"request":{"method":"GET"},"version":"1.1","response":{"status_code":404,"body":{"bytes":12}}},` +
		`"url":{"original":"/a?b=\"c\""},"user_agent":{"original":"UA\u0001\\"}`
	if got := string(a.AppendJSONFields(nil)); got != want {
		t.Errorf("AppendJSONFields:\n got %s\nwant %s", got, want)
	}
	if got := string(a.AppendJSONFields([]byte(`{"a":1`))); got != `{"a":1,`+want {
		t.Errorf("after a member: %s", got)
	}
	if got := string(a.AppendEventMembers([]byte(`{"id":"x"`))); got != `{"id":"x","outcome":"failure"` {
		t.Errorf("AppendEventMembers: %s", got)
	}
}

func TestErrorJSONExact(t *testing.T) {
	var e Error
	line := `[Tue Nov 21 10:00:00.123456 2026] [http2:trace3] [pid 7:tid 8] h2_session.c(1234): [client 2001:db8::1:443] AH02000: x, referer: https://e.com/`
	if err := ParseError(line, nil, &e); err != nil {
		t.Fatal(err)
	}
	want := `"source":{"address":"2001:db8::1","ip":"2001:db8::1","port":443},` +
		`"process":{"pid":7,"thread":{"id":8}},"error":{"code":"AH02000"},` +
		`"apache":{"error":{"module":"http2"}},"http":{"request":{"referrer":"https://e.com/"}}`
	if got := string(e.AppendJSONFields([]byte{})); got != want {
		t.Errorf("AppendJSONFields:\n got %s\nwant %s", got, want)
	}
	wantLog := `{"file":{"path":"p"},"level":"trace3","origin":{"file":{"name":"h2_session.c","line":1234}}`
	if got := string(e.AppendLogMembers([]byte(`{"file":{"path":"p"}`))); got != wantLog {
		t.Errorf("AppendLogMembers:\n got %s\nwant %s", got, wantLog)
	}
	if got := e.Timestamp.Format(time.RFC3339Nano); got != "2026-11-21T10:00:00.123456Z" {
		t.Errorf("timestamp %s", got)
	}
}

func TestAppendString(t *testing.T) {
	for in, want := range map[string]string{
		"":                   `""`,
		"plain":              `"plain"`,
		"q\"b\\":             `"q\"b\\"`,
		"\n\r\t\x00\x1f\x7f": `"\n\r\t\u0000\u001f` + "\x7f" + `"`,
		"é’\u2028":           `"é’\u2028"`,
		"bad\xffbyte\xc3":    "\"bad\ufffdbyte\ufffd\"",
	} {
		got := string(appendString(nil, in))
		if got != want {
			t.Errorf("appendString(%q) = %s, want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil {
			t.Errorf("appendString(%q) is not JSON: %v", in, err)
		} else if utf8.ValidString(in) && back != in {
			t.Errorf("appendString(%q) decodes to %q", in, back)
		}
	}
}
