package console

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

func TestRubyDebug(t *testing.T) {
	var b bytes.Buffer
	w := New(&b, RubyDebug)
	doc := `{"@timestamp":"2026-11-21T10:00:00.123Z","message":"GET \"/\"","tags":["access","x"],"event":{"id":"abc","n":12,"ok":true,"none":null,"empty":{},"list":[]}}`
	if err := w.Write([]byte(doc)); err != nil {
		t.Fatal(err)
	}
	want := `{
    "@timestamp" => 2026-11-21T10:00:00.123Z,
         "event" => {
        "empty" => {},
           "id" => "abc",
         "list" => [],
            "n" => 12,
         "none" => nil,
           "ok" => true
    },
       "message" => "GET \"/\"",
          "tags" => [
        [0] "access",
        [1] "x"
    ]
}
`
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	if err := w.Write([]byte("{bad")); err == nil {
		t.Fatal("invalid JSON rendered")
	}
}

func TestJSONLinesConcurrent(t *testing.T) {
	var b bytes.Buffer
	w := New(&b, JSONLines)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				w.Write([]byte(`{"a":"` + strings.Repeat("x", 100) + `"}`))
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 400 {
		t.Fatalf("%d lines", len(lines))
	}
	for _, l := range lines {
		if l != `{"a":"`+strings.Repeat("x", 100)+`"}` {
			t.Fatalf("interleaved line %q", l)
		}
	}
}
