package harness_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"logpipe/e2e/harness"
	"logpipe/internal/devstack"
)

// esDecode checks that an esapi call succeeded with one of the wanted
// statuses (any 2xx if none) and decodes its JSON body into out (if not nil).
func esDecode(t *testing.T, what string, res *esapi.Response, err error, out any, want ...int) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s: read body: %v", what, err)
	}
	ok := res.StatusCode/100 == 2
	if len(want) > 0 {
		ok = slices.Contains(want, res.StatusCode)
	}
	if !ok {
		t.Fatalf("%s: status %d: %s", what, res.StatusCode, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s: decode %s: %v", what, body, err)
		}
	}
}

// esEvent is the document shape the tests index, one field per core type.
type esEvent struct {
	Timestamp string `json:"@timestamp"`
	Host      string `json:"host"`
	ClientIP  string `json:"client_ip"`
	Message   string `json:"message"`
	Status    int    `json:"status"`
	Bytes     int64  `json:"bytes"`
}

const esEventMapping = `{
  "settings": {"number_of_shards": 1, "number_of_replicas": 0},
  "mappings": {
    "dynamic": "strict",
    "properties": {
      "@timestamp": {"type": "date"},
      "host":       {"type": "keyword"},
      "client_ip":  {"type": "ip"},
      "message":    {"type": "text"},
      "status":     {"type": "integer"},
      "bytes":      {"type": "long"}
    }
  }
}`

// esIndexName returns an index name unique to this test run.
func esIndexName(t *testing.T) string {
	return fmt.Sprintf("harness-%s-%d", strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")), time.Now().UnixNano())
}

// esSearchIDs runs a query against index and returns the ids of the hits,
// sorted, and the total the node reports.
func esSearchIDs(t *testing.T, c *elasticsearch.Client, index, query string) ([]string, int) {
	t.Helper()
	var out struct {
		Hits struct {
			Total struct {
				Value int `json:"value"`
			} `json:"total"`
			Hits []struct {
				ID string `json:"_id"`
			} `json:"hits"`
		} `json:"hits"`
	}
	res, err := c.Search(c.Search.WithIndex(index), c.Search.WithBody(strings.NewReader(query)))
	esDecode(t, "search "+query, res, err, &out)
	var ids []string
	for _, h := range out.Hits.Hits {
		ids = append(ids, h.ID)
	}
	slices.Sort(ids)
	return ids, out.Hits.Total.Value
}

// esGetEvent reads one document by id (a real-time get, no refresh needed).
func esGetEvent(t *testing.T, c *elasticsearch.Client, index, id string) esEvent {
	t.Helper()
	var out struct {
		Found  bool    `json:"found"`
		Source esEvent `json:"_source"`
	}
	res, err := c.Get(index, id)
	esDecode(t, "get "+id, res, err, &out)
	if !out.Found {
		t.Fatalf("get %s/%s: not found", index, id)
	}
	return out.Source
}

func esIndexEvent(t *testing.T, c *elasticsearch.Client, index, id string, ev esEvent) {
	t.Helper()
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Index(index, strings.NewReader(string(b)), c.Index.WithDocumentID(id))
	esDecode(t, "index "+id, res, err, nil, http.StatusCreated, http.StatusOK)
}

func TestElasticsearchBulkGetSearch(t *testing.T) {
	start := time.Now()
	es := harness.SharedElasticsearch(t)
	t.Logf("shared elasticsearch at %s ready after %v (includes Maven on a cold cache); JVM RSS %d MiB",
		es.URL, time.Since(start).Round(time.Millisecond), rssMiB(es.Pid()))
	if again := harness.SharedElasticsearch(t); again != es {
		t.Fatalf("SharedElasticsearch returned a second node %s after %s", again.URL, es.URL)
	}

	c, err := es.Client()
	if err != nil {
		t.Fatal(err)
	}
	// Any call runs the client's product check; a server without the
	// X-Elastic-Product header fails here.
	var health struct {
		ClusterName string `json:"cluster_name"`
		Nodes       int    `json:"number_of_nodes"`
	}
	res, err := c.Cluster.Health()
	if err == nil && res.Header.Get("X-Elastic-Product") != "Elasticsearch" {
		t.Errorf("X-Elastic-Product header is %q", res.Header.Get("X-Elastic-Product"))
	}
	esDecode(t, "cluster health", res, err, &health)
	if health.ClusterName != "logpipe-test" || health.Nodes != 1 {
		t.Fatalf("cluster health: name %q with %d nodes, want logpipe-test with 1", health.ClusterName, health.Nodes)
	}
	// GET / and HEAD / come from the launcher's stand-in for the rest-root module.
	var info struct {
		ClusterName string `json:"cluster_name"`
		Version     struct {
			Number string `json:"number"`
		} `json:"version"`
	}
	res, err = c.Info()
	esDecode(t, "info", res, err, &info)
	if info.ClusterName != "logpipe-test" || !strings.HasPrefix(info.Version.Number, "8.") {
		t.Fatalf("info: cluster %q version %q, want logpipe-test and 8.x", info.ClusterName, info.Version.Number)
	}
	res, err = c.Ping()
	esDecode(t, "ping", res, err, nil, http.StatusOK)

	index := esIndexName(t)
	res, err = c.Indices.Create(index, c.Indices.Create.WithBody(strings.NewReader(esEventMapping)))
	esDecode(t, "create index", res, err, nil)
	t.Cleanup(func() {
		if res, err := c.Indices.Delete([]string{index}); err == nil {
			res.Body.Close()
		}
	})

	events := map[string]esEvent{
		"1": {Timestamp: "2024-03-01T10:00:00Z", Host: "web-1", ClientIP: "10.1.2.3", Message: "GET /index.html ok", Status: 200, Bytes: 512},
		"2": {Timestamp: "2024-03-01T10:00:01Z", Host: "web-2", ClientIP: "192.168.7.9", Message: "GET /api upstream timeout", Status: 504, Bytes: 0},
		"3": {Timestamp: "2024-03-01T10:05:00Z", Host: "web-1", ClientIP: "10.200.0.1", Message: "POST /upload timeout reading body", Status: 408, Bytes: 1 << 20},
	}
	var bulk strings.Builder
	for _, id := range []string{"1", "2", "3"} {
		doc, err := json.Marshal(events[id])
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&bulk, `{"create":{"_index":%q,"_id":%q}}`+"\n%s\n", index, id, doc)
	}
	var bulkOut struct {
		Errors bool `json:"errors"`
		Items  []map[string]struct {
			ID     string `json:"_id"`
			Status int    `json:"status"`
		} `json:"items"`
	}
	res, err = c.Bulk(strings.NewReader(bulk.String()))
	esDecode(t, "bulk", res, err, &bulkOut)
	if bulkOut.Errors || len(bulkOut.Items) != 3 {
		t.Fatalf("bulk: errors=%v with %d items, want no errors and 3 items: %+v", bulkOut.Errors, len(bulkOut.Items), bulkOut.Items)
	}
	for i, item := range bulkOut.Items {
		if r := item["create"]; r.Status != http.StatusCreated || r.ID != strconv.Itoa(i+1) {
			t.Errorf("bulk item %d: %+v, want id %d created", i, item, i+1)
		}
	}

	res, err = c.Indices.Refresh(c.Indices.Refresh.WithIndex(index))
	esDecode(t, "refresh", res, err, nil)

	for id, want := range events {
		if got := esGetEvent(t, c, index, id); got != want {
			t.Errorf("document %s: got %+v, want %+v", id, got, want)
		}
	}

	cases := []struct {
		name, query string
		want        []string
	}{
		{"all", `{"query":{"match_all":{}}}`, []string{"1", "2", "3"}},
		{"keyword term", `{"query":{"term":{"host":"web-1"}}}`, []string{"1", "3"}},
		{"text match", `{"query":{"match":{"message":"timeout"}}}`, []string{"2", "3"}},
		{"ip cidr", `{"query":{"term":{"client_ip":"10.0.0.0/8"}}}`, []string{"1", "3"}},
		{"long range", `{"query":{"range":{"bytes":{"gte":1}}}}`, []string{"1", "3"}},
		{"integer term", `{"query":{"term":{"status":504}}}`, []string{"2"}},
		{"date range", `{"query":{"range":{"@timestamp":{"lt":"2024-03-01T10:01:00Z"}}}}`, []string{"1", "2"}},
	}
	for _, tc := range cases {
		ids, total := esSearchIDs(t, c, index, tc.query)
		if !reflect.DeepEqual(ids, tc.want) || total != len(tc.want) {
			t.Errorf("%s: hits %v (total %d), want %v", tc.name, ids, total, tc.want)
		}
	}

	// A strict mapping rejects an unknown field: the mapping really is in force.
	res, err = c.Index(index, strings.NewReader(`{"nope":1}`))
	esDecode(t, "index unknown field", res, err, nil, http.StatusBadRequest)
}

func TestElasticsearchRestartKeepsDocuments(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	es, err := devstack.StartElasticsearch(ctx, devstack.ElasticsearchOptions{ClusterName: "logpipe-restart", HeapMB: 384})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(es.Close)
	t.Logf("elasticsearch at %s (dir %s) started in %v; JVM RSS %d MiB",
		es.URL, es.Dir, time.Since(start).Round(time.Millisecond), rssMiB(es.Pid()))
	defer func() {
		if t.Failed() {
			t.Logf("elasticsearch log tail:\n%s", es.LogTail(6000))
		}
	}()

	c, err := es.Client()
	if err != nil {
		t.Fatal(err)
	}
	index := esIndexName(t)
	res, err := c.Indices.Create(index, c.Indices.Create.WithBody(strings.NewReader(esEventMapping)))
	esDecode(t, "create index", res, err, nil)
	first := esEvent{Timestamp: "2024-03-02T00:00:00Z", Host: "a", ClientIP: "::1", Message: "before stop", Status: 200, Bytes: 1}
	esIndexEvent(t, c, index, "first", first)

	// Graceful stop: SIGTERM must close the node, and the port must go quiet.
	es.Stop()
	if es.Running() {
		t.Fatal("Running() is true after Stop")
	}
	if log := es.LogTail(4000); !strings.Contains(log, "logpipe-es: node closed") {
		t.Fatalf("the launcher did not report a closed node on SIGTERM; log tail:\n%s", log)
	}
	probe := &http.Client{Timeout: 5 * time.Second}
	if resp, err := probe.Get(es.URL + "/_cluster/health"); err == nil {
		resp.Body.Close()
		t.Fatalf("%s still answers after Stop: %s", es.URL, resp.Status)
	}

	start = time.Now()
	if err := es.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("restarted after Stop in %v", time.Since(start).Round(time.Millisecond))
	if err := es.Start(ctx); err == nil {
		t.Fatal("Start on a running node succeeded")
	}
	if got := esGetEvent(t, c, index, "first"); got != first {
		t.Fatalf("after Stop/Start: got %+v, want %+v", got, first)
	}
	second := esEvent{Timestamp: "2024-03-02T00:00:01Z", Host: "b", ClientIP: "127.0.0.1", Message: "before kill", Status: 500, Bytes: 2}
	esIndexEvent(t, c, index, "second", second)

	// A crash: acknowledged writes are in the fsynced translog.
	es.Kill()
	start = time.Now()
	if err := es.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("restarted after Kill in %v", time.Since(start).Round(time.Millisecond))
	for id, want := range map[string]esEvent{"first": first, "second": second} {
		if got := esGetEvent(t, c, index, id); got != want {
			t.Errorf("after Kill/Start: %s: got %+v, want %+v", id, got, want)
		}
	}
	res, err = c.Indices.Refresh(c.Indices.Refresh.WithIndex(index))
	esDecode(t, "refresh", res, err, nil)
	if ids, total := esSearchIDs(t, c, index, `{"query":{"match_all":{}}}`); !reflect.DeepEqual(ids, []string{"first", "second"}) || total != 2 {
		t.Fatalf("after Kill/Start: hits %v (total %d), want [first second]", ids, total)
	}
}
