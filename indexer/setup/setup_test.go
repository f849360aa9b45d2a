package setup

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"logpipe/e2e/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

var testConfig = Config{
	Patterns:          []string{"httpd_error-*", "httpd_access-*"},
	DeadLetterPattern: "logpipe-dlq-*",
	Settings:          map[string]any{"index.number_of_shards": 1, "index.number_of_replicas": 0},
}

func TestTemplates(t *testing.T) {
	ts, err := Templates(testConfig)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tp := range ts {
		names = append(names, tp.Kind+":"+tp.Name)
		var m map[string]any
		if err := json.Unmarshal(tp.Body, &m); err != nil {
			t.Fatalf("%s: %v", tp.Name, err)
		}
	}
	want := []string{
		"component:logpipe-settings", "component:logpipe-ecs-mappings", "component:logpipe-dead-letter-mappings",
		"index:logpipe-httpd_access", "index:logpipe-httpd_error", "index:logpipe-dlq",
	}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("templates %v, want %v", names, want)
	}
	var idx map[string]any
	json.Unmarshal(ts[3].Body, &idx)
	if !reflect.DeepEqual(idx["index_patterns"], []any{"httpd_access-*"}) || idx["priority"] != float64(Priority) ||
		!reflect.DeepEqual(idx["composed_of"], []any{SettingsComponent, ECSComponent}) {
		t.Fatalf("index template %s", ts[3].Body)
	}
	for pattern, name := range map[string]string{"httpd_access-*": "logpipe-httpd_access", "logpipe-dlq-*": "logpipe-dlq", "*": "logpipe-all", "web.2026*": "logpipe-web.2026"} {
		if got := TemplateName(pattern); got != name {
			t.Errorf("TemplateName(%q) = %q, want %q", pattern, got, name)
		}
	}
}

func esRequest(t *testing.T, c *elasticsearch.Client, method, path, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := c.Perform(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return res.StatusCode, m
}

// dig returns the value at a dotted path; keys in the path may be given
// with a "/" to step over a key containing dots.
func dig(m any, path ...string) any {
	for _, k := range path {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[k]
	}
	return m
}

// TestInstallAndMappings installs the templates in the real node twice and
// checks that a new index takes the mappings, that the document with a very
// long URL is accepted, and that a mapping conflict is refused as the
// dead-letter path expects.
func TestInstallAndMappings(t *testing.T) {
	node := harness.SharedElasticsearch(t)
	c, err := node.Client()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := Config{
		Patterns:          []string{"setuptest_access-*", "setuptest_error-*"},
		DeadLetterPattern: "setuptest-dlq-*",
		Settings:          map[string]any{"index": map[string]any{"number_of_shards": 1, "number_of_replicas": 0}},
	}
	written, err := Install(ctx, c, cfg, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(written) != 6 {
		t.Fatalf("written %v", written)
	}
	// Again: harmless, same result.
	if _, err := Install(ctx, c, cfg, true, nil); err != nil {
		t.Fatal(err)
	}
	// Without overwrite nothing is written.
	if w, err := Install(ctx, c, cfg, false, nil); err != nil || len(w) != 0 {
		t.Fatalf("Install without overwrite wrote %v (%v)", w, err)
	}

	longURL := "/search?q=" + strings.Repeat("x", 20000)
	doc := fmt.Sprintf(`{"@timestamp":"2026-11-21T10:00:00.000Z","message":"m","source":{"address":"2001:db8::1","ip":"2001:db8::1"},`+
		`"http":{"response":{"status_code":404,"body":{"bytes":0}}},"url":{"original":%q},"event":{"original":%q},"custom":"text"}`, longURL, longURL)
	code, body := esRequest(t, c, http.MethodPut, "/setuptest_access-2026.11.21/_doc/1?refresh=true", doc)
	if code != 201 {
		t.Fatalf("indexing: %d %v", code, body)
	}
	code, body = esRequest(t, c, http.MethodGet, "/setuptest_access-2026.11.21/_mapping", "")
	if code != 200 {
		t.Fatalf("mapping: %d %v", code, body)
	}
	props := dig(body, "setuptest_access-2026.11.21", "mappings", "properties")
	checks := map[string]string{
		"@timestamp":                    "date",
		"message":                       "text",
		"source.ip":                     "ip",
		"source.address":                "keyword",
		"http.response.status_code":     "short",
		"http.response.body.bytes":      "long",
		"url.original":                  "keyword",
		"event.original":                "keyword",
		"user_agent.original":           "keyword",
		"process.pid":                   "long",
		"custom":                        "keyword",
		"kafka.offset":                  "long",
		"http.request.referrer":         "keyword",
		"log.origin.file.line":          "long",
		"destination.port":              "long",
		"apache.error.module":           "keyword",
		"url.original/fields/text/type": "text",
	}
	for path, want := range checks {
		var p []string
		field, sub, _ := strings.Cut(path, "/")
		for _, k := range strings.Split(field, ".") {
			p = append(p, k, "properties")
		}
		p = p[:len(p)-1]
		var got any
		if sub != "" {
			got = dig(props, append(p, strings.Split(sub, "/")...)...)
		} else {
			got = dig(props, append(p, "type")...)
		}
		if got != want {
			t.Errorf("%s: type %v, want %s", path, got, want)
		}
	}
	if got := dig(props, "url", "properties", "original", "ignore_above"); got != float64(8191) {
		t.Errorf("url.original ignore_above %v", got)
	}
	if got := dig(props, "event", "properties", "original", "index"); got != false {
		t.Errorf("event.original index %v", got)
	}
	// The settings component applies.
	_, settings := esRequest(t, c, http.MethodGet, "/setuptest_access-2026.11.21/_settings", "")
	if got := dig(settings, "setuptest_access-2026.11.21", "settings", "index", "number_of_replicas"); got != "0" {
		t.Errorf("number_of_replicas %v", got)
	}
	// An object where the template says keyword is refused with 400: the
	// dead-letter path.
	code, body = esRequest(t, c, http.MethodPut, "/setuptest_access-2026.11.21/_doc/2", `{"source":{"address":{"a":1}}}`)
	if code != 400 {
		t.Errorf("conflicting document: %d %v", code, body)
	}
	// The dead-letter template maps its own fields and takes anything else
	// without mapping it.
	code, body = esRequest(t, c, http.MethodPut, "/setuptest-dlq-2026.11.21/_doc/1?refresh=true",
		`{"@timestamp":"2026-11-21T10:00:00Z","dead_letter":{"index":"x","status":400,"document":"{}"},"event":{"original":"{}"},"other":{"a":{"b":1}}}`)
	if code != 201 {
		t.Fatalf("dead letter: %d %v", code, body)
	}
	_, body = esRequest(t, c, http.MethodGet, "/setuptest-dlq-2026.11.21/_mapping", "")
	dprops := dig(body, "setuptest-dlq-2026.11.21", "mappings", "properties")
	if dig(dprops, "dead_letter", "properties", "status", "type") != "short" || dig(dprops, "other") != nil {
		t.Errorf("dead-letter mappings %v", dprops)
	}
}

// fakeKibana checks requests against Kibana's documented data views API
// (GET /api/data_views, POST /api/data_views/data_view; the same under
// /s/{space_id}): kbn-xsrf on every request, a JSON body with a data_view
// object of known keys, an optional override boolean, and 409 for an id
// that exists. It is not Kibana: Kibana cannot run on these machines. It
// keeps the data views it was given, per space.
type fakeKibana struct {
	t    *testing.T
	auth string // the Authorization header every request must carry

	mu    sync.Mutex
	views map[string][]map[string]any // by space
	posts int
}

// The data_view keys the create API documents.
var dataViewKeys = map[string]bool{
	"allowNoIndex": true, "fieldAttrs": true, "fieldFormats": true, "fields": true, "id": true, "name": true,
	"namespaces": true, "runtimeFieldMap": true, "sourceFilters": true, "timeFieldName": true, "title": true,
	"type": true, "typeMeta": true, "version": true,
}

func (k *fakeKibana) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fail := func(code int, msg string) {
		k.t.Errorf("kibana contract: %s %s: %s", r.Method, r.URL.Path, msg)
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]any{"statusCode": code, "error": http.StatusText(code), "message": msg})
	}
	if r.Header.Get("kbn-xsrf") == "" {
		fail(400, "Request must contain a kbn-xsrf header.")
		return
	}
	if k.auth != "" && r.Header.Get("Authorization") != k.auth {
		fail(401, "wrong credentials: "+r.Header.Get("Authorization"))
		return
	}
	space, path := "default", r.URL.Path
	if rest, ok := strings.CutPrefix(path, "/s/"); ok {
		space, path, _ = strings.Cut(rest, "/")
		path = "/" + path
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	switch {
	case r.Method == http.MethodGet && path == "/api/data_views":
		list := []map[string]any{}
		for _, v := range k.views[space] {
			list = append(list, map[string]any{"id": v["id"], "title": v["title"], "name": v["name"], "namespaces": []string{space}, "typeMeta": map[string]any{}})
		}
		json.NewEncoder(w).Encode(map[string]any{"data_view": list})
	case r.Method == http.MethodPost && path == "/api/data_views/data_view":
		k.posts++
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			fail(415, "Content-Type "+ct)
			return
		}
		var req map[string]any
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			fail(400, err.Error())
			return
		}
		for key := range req {
			if key != "data_view" && key != "override" {
				fail(400, "unknown key "+key)
				return
			}
		}
		if o, ok := req["override"]; ok {
			if _, isBool := o.(bool); !isBool {
				fail(400, "override is not a boolean")
				return
			}
		}
		dv, ok := req["data_view"].(map[string]any)
		if !ok {
			fail(400, "[request body.data_view]: expected value of type [object]")
			return
		}
		for key, v := range dv {
			if !dataViewKeys[key] {
				fail(400, "unknown data_view key "+key)
				return
			}
			if (key == "title" || key == "id" || key == "name" || key == "timeFieldName") && reflect.TypeOf(v).Kind() != reflect.String {
				fail(400, key+" is not a string")
				return
			}
		}
		if dv["title"] == nil || dv["title"] == "" {
			fail(400, "title is required here")
			return
		}
		for _, v := range k.views[space] {
			if dv["id"] != nil && v["id"] == dv["id"] {
				w.WriteHeader(409)
				json.NewEncoder(w).Encode(map[string]any{"statusCode": 409, "error": "Conflict", "message": "Duplicate data view"})
				return
			}
		}
		if dv["id"] == nil {
			dv["id"] = fmt.Sprintf("generated-%d", k.posts)
		}
		if k.views == nil {
			k.views = map[string][]map[string]any{}
		}
		k.views[space] = append(k.views[space], dv)
		json.NewEncoder(w).Encode(map[string]any{"data_view": dv})
	default:
		fail(404, "not a data views API endpoint")
	}
}

func TestKibanaDataViews(t *testing.T) {
	patterns := []string{"httpd_access-*", "httpd_error-*", "logpipe-dlq-*"}
	for _, c := range []struct {
		name string
		kb   Kibana
		auth string
	}{
		{"default space, basic auth", Kibana{Username: "elastic", Password: "changeme"}, "Basic " + base64.StdEncoding.EncodeToString([]byte("elastic:changeme"))},
		{"a space, API key", Kibana{Space: "ops", APIKey: "aWQ6a2V5"}, "ApiKey aWQ6a2V5"},
	} {
		t.Run(c.name, func(t *testing.T) {
			fk := &fakeKibana{t: t, auth: c.auth}
			srv := httptest.NewServer(fk)
			defer srv.Close()
			kb := c.kb
			kb.URL = srv.URL + "/"
			ctx := context.Background()
			created, err := kb.EnsureDataViews(ctx, patterns, nil)
			if err != nil || !reflect.DeepEqual(created, patterns) {
				t.Fatalf("created %v, %v", created, err)
			}
			space := "default"
			if c.kb.Space != "" {
				space = c.kb.Space
			}
			fk.mu.Lock()
			views := fk.views[space]
			fk.mu.Unlock()
			if len(views) != 3 {
				t.Fatalf("views %v", views)
			}
			for i, v := range views {
				if v["title"] != patterns[i] || v["timeFieldName"] != "@timestamp" || v["id"] != DataViewID(patterns[i]) {
					t.Errorf("view %v", v)
				}
			}
			// Again: nothing to do.
			created, err = kb.EnsureDataViews(ctx, patterns, nil)
			if err != nil || len(created) != 0 {
				t.Fatalf("second run created %v, %v", created, err)
			}
			fk.mu.Lock()
			posts := fk.posts
			fk.mu.Unlock()
			if posts != 3 {
				t.Fatalf("%d POSTs, want 3", posts)
			}
		})
	}
}

func TestKibanaErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(503)
		w.Write([]byte(`{"statusCode":503,"error":"Service Unavailable","message":"Kibana server is not ready yet"}`))
	}))
	defer srv.Close()
	// Both are ErrUnreachable, which `indexer setup` retries until its
	// --wait runs out: Kibana answers 503 while it starts, and nothing
	// before it listens.
	kb := Kibana{URL: srv.URL}
	if _, err := kb.EnsureDataViews(context.Background(), []string{"a-*"}, nil); !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "not ready yet") {
		t.Fatalf("Kibana starting (503): got %v, want ErrUnreachable with Kibana's message", err)
	}
	srv.Close()
	if _, err := kb.EnsureDataViews(context.Background(), []string{"a-*"}, nil); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Kibana away: got %v, want ErrUnreachable", err)
	}
}
