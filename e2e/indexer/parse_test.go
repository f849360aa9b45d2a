package indexer_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"logpipe/e2e/harness"
)

// absent marks a field that must not be in the document.
var absent = struct{ absent bool }{true}

// TestParsingCorpus sends access and error lines of every shape through
// the indexer and checks each document as Elasticsearch returns it
// (_source), with the mappings the indexer's templates give it.
func TestParsingCorpus(t *testing.T) {
	node := harness.SharedElasticsearch(t)
	es := newES(t, node)
	b := startBroker(t, "kafka")
	topic := "httpd-corpus"
	createTopic(t, b, topic, 1)

	shipTime := time.Date(2026, 11, 21, 12, 0, 0, 123e6, time.UTC)
	longPath := "/very/long/" + strings.Repeat("segment-", 1500) + "end?x=1"
	cases := []struct {
		name  string
		value []byte // the record; nil means shipped(line, tags)
		line  string
		tags  []string
		index string
		want  map[string]any // dotted path -> value as JSON decodes it
	}{
		{
			name: "combined", tags: []string{"access"}, index: "corpus_access-2026.11.21",
			line: `192.0.2.10 - alice [21/Nov/2026:10:00:00 +0000] "GET /index.html?q=1 HTTP/1.1" 200 5120 "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64)"`,
			want: map[string]any{
				"@timestamp": "2026-11-21T10:00:00.000Z", "source.address": "192.0.2.10", "source.ip": "192.0.2.10",
				"user.name": "alice", "http.request.method": "GET", "url.original": "/index.html?q=1", "http.version": "1.1",
				"http.response.status_code": 200.0, "http.response.body.bytes": 5120.0, "http.request.referrer": "https://example.com/",
				"user_agent.original": "Mozilla/5.0 (X11; Linux x86_64)", "event.outcome": "success", "tags": []any{"access"},
				"host.name": "web-1", "log.file.path": "/var/log/httpd/access_log",
				// decorate_events
				"kafka.topic": "httpd-corpus", "kafka.partition": 0.0, "kafka.offset": 0.0, "kafka.consumer_group": "indexer-corpus",
				"kafka.timestamp": "2026-11-21T12:00:00.123Z",
			},
		},
		{
			name: "common with - fields, other zone", tags: []string{"access"}, index: "corpus_access-2026.11.21",
			line: `192.0.2.11 - - [21/Nov/2026:10:00:01 -0500] "POST /api HTTP/1.0" 404 -`,
			want: map[string]any{
				"@timestamp": "2026-11-21T15:00:01.000Z", "user.name": absent, "http.response.body.bytes": 0.0,
				"http.response.status_code": 404.0, "event.outcome": "failure", "http.request.referrer": absent, "user_agent": absent,
				"http.request.method": "POST", "http.version": "1.0",
			},
		},
		{
			name: "IPv6 client, - referrer and agent", tags: []string{"access"}, index: "corpus_access-2026.11.21",
			line: `2001:db8::42 - - [21/Nov/2026:10:00:02 +0000] "GET / HTTP/2.0" 304 0 "-" "-"`,
			want: map[string]any{
				"source.address": "2001:db8::42", "source.ip": "2001:db8::42", "http.version": "2.0",
				"http.request.referrer": absent, "user_agent": absent, "http.response.status_code": 304.0,
			},
		},
		{
			name: "vhost_combined", tags: []string{"access"}, index: "corpus_access-2026.11.21",
			line: `www.example.com:443 198.51.100.7 - - [21/Nov/2026:10:00:03 +0000] "GET /a HTTP/1.1" 500 17 "-" "curl/8.0"`,
			want: map[string]any{
				"destination.address": "www.example.com", "destination.domain": "www.example.com", "destination.port": 443.0,
				"source.ip": "198.51.100.7", "event.outcome": "failure", "user_agent.original": "curl/8.0",
			},
		},
		{
			name: "escaped quotes in request and agent", tags: []string{"access"}, index: "corpus_access-2026.11.21",
			line: `192.0.2.12 - - [21/Nov/2026:10:00:04 +0000] "GET /search?q=\"quoted\" HTTP/1.1" 200 1 "-" "Agent \"with quotes\" 1.0"`,
			want: map[string]any{
				"url.original": `/search?q="quoted"`, "user_agent.original": `Agent "with quotes" 1.0`, "http.request.method": "GET",
			},
		},
		{
			name: "very long URL", tags: []string{"access"}, index: "corpus_access-2026.11.21",
			line: `192.0.2.13 - - [21/Nov/2026:10:00:05 +0000] "GET ` + longPath + ` HTTP/1.1" 414 0`,
			want: map[string]any{"url.original": longPath, "http.response.status_code": 414.0},
		},
		{
			name: "host name client", tags: []string{"access"}, index: "corpus_access-2026.11.21",
			line: `client.example.net - - [21/Nov/2026:10:00:06 +0000] "GET / HTTP/1.1" 200 1`,
			want: map[string]any{"source.domain": "client.example.net", "source.ip": absent},
		},
		{
			name: "error 2.4 with IPv6 client and port", tags: []string{"error"}, index: "corpus_error-2026.11.21",
			line: `[Sat Nov 21 10:00:09.222222 2026] [ssl:info] [pid 11:tid 140245611111111] [client [2001:db8::42]:443] AH01964: Connection to child 3 established (server www.example.com:443)`,
			want: map[string]any{
				"@timestamp": "2026-11-21T10:00:09.222222Z", "log.level": "info", "apache.error.module": "ssl", "process.pid": 11.0,
				"process.thread.id": 140245611111111.0, "source.ip": "2001:db8::42", "source.port": 443.0, "error.code": "AH01964",
				"message": "AH01964: Connection to child 3 established (server www.example.com:443)",
			},
		},
		{
			name: "error 2.2", tags: []string{"error"}, index: "corpus_error-2000.10.11",
			line: `[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] client denied by server configuration: /export/home/live/ap/htdocs/test`,
			want: map[string]any{
				"@timestamp": "2000-10-11T14:32:52.000Z", "log.level": "error", "source.address": "127.0.0.1",
				"message": "client denied by server configuration: /export/home/live/ap/htdocs/test", "apache": absent, "process": absent,
			},
		},
		{
			name: "error trace level with origin", tags: []string{"error"}, index: "corpus_error-2026.11.21",
			line: `[Sat Nov 21 10:00:17.100000 2026] [core:trace2] [pid 16:tid 140245666666666] core.c(4824): [client 192.0.2.3:40002] request read`,
			want: map[string]any{
				"log.level": "trace2", "log.origin.file.name": "core.c", "log.origin.file.line": 4824.0, "source.port": 40002.0,
				"message": "request read", "@timestamp": "2026-11-21T10:00:17.100Z",
			},
		},
		{
			name: "garbage", tags: []string{"access"}, index: "corpus_access-2026.11.21",
			line: "GARBAGE \x01 not a log line",
			want: map[string]any{
				"message": "GARBAGE \x01 not a log line", "tags": []any{"access", "_httpdparsefailure"}, "event.original": absent,
				"@timestamp": "2026-11-21T12:00:00.123Z", "source": absent,
			},
		},
		{
			name: "a record that is not JSON", value: []byte(`{"half": "json`), index: "corpus_other-2026.11.21",
			want: map[string]any{
				"message": `{"half": "json`, "tags": []any{"_jsonparsefailure", "_httpdparsefailure"},
			},
		},
	}
	values := make([][]byte, len(cases))
	for i, c := range cases {
		values[i] = c.value
		if values[i] == nil {
			values[i] = shipped(c.line, shipTime, idOf(topic, i), c.tags...)
		}
		if c.line != "" {
			if _, ok := c.want["event.original"]; !ok {
				c.want["event.original"] = c.line
			}
			if _, ok := c.want["message"]; !ok {
				c.want["message"] = c.line
			}
		}
	}
	// Records are sent at the ship time, so the non-JSON record is dated by it.
	newProducer(t, b, topic).sendAt(values, shipTime)

	ix := startIndexer(t, config(b, topic, "indexer-corpus", node.URL, `kafka.decorate_events: true
routes:
  - tag: access
    index: "corpus_access-%{+YYYY.MM.dd}"
  - tag: error
    index: "corpus_error-%{+YYYY.MM.dd}"
  - else: true
    index: "corpus_other-%{+YYYY.MM.dd}"
`))
	waitCount(t, es, ix, "corpus_*", len(cases))
	byID := map[string]hit{}
	for _, h := range es.docs("corpus_*", true) {
		byID[h.ID] = h
	}
	for i, c := range cases {
		var h hit
		var ok bool
		if c.value == nil {
			h, ok = byID[idOf(topic, i)]
		} else {
			for _, cand := range byID {
				if cand.Source["message"] == c.want["message"] {
					h, ok = cand, true
				}
			}
		}
		if !ok {
			t.Errorf("%s: no document", c.name)
			continue
		}
		if h.Index != c.index {
			t.Errorf("%s: in %s, want %s", c.name, h.Index, c.index)
		}
		for path, want := range c.want {
			got := harness.Field(h.Source, path)
			if want == absent {
				if got != nil {
					t.Errorf("%s: %s = %v, want it absent", c.name, path, got)
				}
				continue
			}
			if !reflect.DeepEqual(got, want) {
				gs := fmt.Sprint(got)
				if len(gs) > 200 {
					gs = gs[:200] + "…"
				}
				t.Errorf("%s: %s = %s (%T), want %v", c.name, path, gs, got, want)
			}
		}
		if harness.Field(h.Source, "event.ingested") == nil {
			t.Errorf("%s: no event.ingested", c.name)
		}
	}

	// The mappings follow the templates: an IPv6 source.ip is an ip term,
	// the status a number, a very long URL is kept but not a keyword term.
	search := func(q string) int {
		var res struct {
			Hits struct {
				Total struct {
					Value int `json:"value"`
				} `json:"total"`
			} `json:"hits"`
		}
		if code := es.do(http.MethodPost, "/corpus_*/_search", q, &res); code != 200 {
			t.Fatalf("search %s: %d", q, code)
		}
		return res.Hits.Total.Value
	}
	if n := search(`{"query":{"term":{"source.ip":"2001:db8::/32"}}}`); n != 2 {
		t.Errorf("source.ip in 2001:db8::/32: %d documents, want 2", n)
	}
	if n := search(`{"query":{"range":{"http.response.status_code":{"gte":400}}}}`); n != 3 {
		t.Errorf("status >= 400: %d documents, want 3", n)
	}
	if n := search(fmt.Sprintf(`{"query":{"term":{"url.original":%q}}}`, longPath)); n != 0 {
		t.Errorf("a URL beyond ignore_above is a keyword term: %d", n)
	}
	if n := search(`{"query":{"term":{"url.original":"/index.html?q=1"}}}`); n != 1 {
		t.Errorf("url.original term: %d", n)
	}
	var mapping map[string]any
	es.do(http.MethodGet, "/corpus_access-2026.11.21/_mapping", "", &mapping)
	mb, _ := json.Marshal(mapping)
	for _, frag := range []string{`"ip":{"type":"ip"}`, `"status_code":{"type":"short"}`, `"bytes":{"type":"long"}`, `"message":{"type":"text"}`} {
		if !strings.Contains(string(mb), frag) {
			t.Errorf("mapping lacks %s", frag)
		}
	}
	ix.stop()
}
