package indexer_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"logpipe/e2e/harness"
)

// kibanaStub answers the two data view endpoints `indexer setup` uses, as
// Kibana documents them, and records what it was sent. Kibana cannot run on
// these machines; the setup package's tests check the requests against the
// API contract in detail, this stub checks the binary sends them.
type kibanaStub struct {
	mu    sync.Mutex
	views []map[string]any
	bad   []string
}

func (k *kibanaStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if r.Header.Get("kbn-xsrf") == "" {
		k.bad = append(k.bad, r.Method+" "+r.URL.Path+" without kbn-xsrf")
		w.WriteHeader(400)
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/api/data_views":
		list := []map[string]any{}
		for _, v := range k.views {
			list = append(list, map[string]any{"id": v["id"], "title": v["title"], "namespaces": []string{"default"}})
		}
		json.NewEncoder(w).Encode(map[string]any{"data_view": list})
	case r.Method == http.MethodPost && r.URL.Path == "/api/data_views/data_view":
		var req struct {
			DataView map[string]any `json:"data_view"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.DataView["title"] == nil {
			k.bad = append(k.bad, fmt.Sprintf("POST body %v %v", req, err))
			w.WriteHeader(400)
			return
		}
		k.views = append(k.views, req.DataView)
		json.NewEncoder(w).Encode(map[string]any{"data_view": req.DataView})
	default:
		k.bad = append(k.bad, r.Method+" "+r.URL.Path)
		w.WriteHeader(404)
	}
}

// TestSetupCommand runs `indexer setup` twice (the second run is
// harmless), then an indexer with template installation off, and checks
// that the documents' mappings follow the templates setup installed.
func TestSetupCommand(t *testing.T) {
	node := harness.SharedElasticsearch(t)
	es := newES(t, node)
	b := startBroker(t, "brokerd")
	binaries(t)
	kb := &kibanaStub{}
	srv := httptest.NewServer(kb)
	defer srv.Close()

	topic, group := "httpd-setup", "indexer-setup"
	cfg := config(b, topic, group, node.URL, fmt.Sprintf(`routes:
  - tag: access
    index: "st_access-%%{+YYYY.MM.dd}"
  - tag: error
    index: "st_error-%%{+YYYY.MM.dd}"
dead_letter.index: "st-dlq-%%{+YYYY.MM.dd}"
kibana.url: %q
setup.template.enabled: false
`, srv.URL))
	dir := t.TempDir()
	path := filepath.Join(dir, "indexer.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	for run := 1; run <= 2; run++ {
		out, err := exec.Command(bins.indexer, "-c", path, "setup", "--wait", "2m").CombinedOutput()
		if err != nil {
			t.Fatalf("setup run %d: %v\n%s", run, err, out)
		}
		if !strings.Contains(string(out), "Index templates installed: [logpipe-settings logpipe-ecs-mappings logpipe-dead-letter-mappings logpipe-st_access logpipe-st_error logpipe-st-dlq]") {
			t.Errorf("setup run %d said:\n%s", run, out)
		}
	}
	kb.mu.Lock()
	if len(kb.bad) > 0 || len(kb.views) != 3 {
		t.Errorf("Kibana got %v, bad requests %v", kb.views, kb.bad)
	}
	for _, v := range kb.views {
		if v["timeFieldName"] != "@timestamp" {
			t.Errorf("data view %v", v)
		}
	}
	kb.mu.Unlock()
	for _, name := range []string{"logpipe-st_access", "logpipe-st_error", "logpipe-st-dlq"} {
		var res struct {
			IndexTemplates []struct {
				IndexTemplate struct {
					IndexPatterns []string `json:"index_patterns"`
				} `json:"index_template"`
			} `json:"index_templates"`
		}
		if code := es.do(http.MethodGet, "/_index_template/"+name, "", &res); code != 200 || len(res.IndexTemplates) != 1 {
			t.Errorf("template %s: %d %v", name, code, res)
		}
	}

	createTopic(t, b, topic, 1)
	ts := time.Date(2027, 9, 1, 10, 0, 0, 0, time.UTC)
	newProducer(t, b, topic).send([][]byte{
		shipped(`2001:db8::5 - - [01/Sep/2027:10:00:00 +0000] "GET / HTTP/1.1" 200 42 "-" "curl/8.0"`, ts, idOf(topic, 0), "access"),
		shipped(`[Wed Sep 01 10:00:01.5 2027] [core:error] [pid 7] [client 192.0.2.9:1234] AH00128: nope`, ts, idOf(topic, 1), "error"),
		shipped(`[Wed Sep 01 10:00:01.500000 2027] [core:error] [pid 7] [client 192.0.2.9:1234] AH00128: nope`, ts, idOf(topic, 2), "error"),
	}, func(int) int32 { return 0 })
	ix := startIndexer(t, cfg)
	waitCount(t, es, ix, "st_*", 3)
	var mapping map[string]struct {
		Mappings struct {
			Properties map[string]any `json:"properties"`
		} `json:"mappings"`
	}
	es.do(http.MethodGet, "/st_access-2027.09.01,st_error-2027.09.01/_mapping", "", &mapping)
	types := map[string]string{
		"st_access-2027.09.01 source.ip":                 "ip",
		"st_access-2027.09.01 http.response.status_code": "short",
		"st_access-2027.09.01 http.response.body.bytes":  "long",
		"st_access-2027.09.01 url.original":              "keyword",
		"st_access-2027.09.01 message":                   "text",
		"st_access-2027.09.01 @timestamp":                "date",
		"st_error-2027.09.01 process.pid":                "long",
		"st_error-2027.09.01 log.level":                  "keyword",
		"st_error-2027.09.01 source.port":                "long",
		"st_error-2027.09.01 event.ingested":             "date",
	}
	for key, want := range types {
		index, path, _ := strings.Cut(key, " ")
		var cur any = map[string]any{"properties": mapping[index].Mappings.Properties}
		for _, k := range strings.Split(path, ".") {
			cur = harness.Field(cur.(map[string]any), "properties")
			if m, ok := cur.(map[string]any); ok {
				cur = m[k]
			}
			if cur == nil {
				break
			}
		}
		m, _ := cur.(map[string]any)
		if m == nil || m["type"] != want {
			t.Errorf("%s: mapping %v, want type %s", key, cur, want)
		}
	}
	ix.stop()
}
