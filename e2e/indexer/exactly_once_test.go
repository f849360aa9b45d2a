package indexer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/e2e/harness"
	"logpipe/indexer/document"
	"logpipe/internal/await"
	"logpipe/internal/devstack"
)

// workload is a set of shipper-shaped events and the documents they must
// become.
type workload struct {
	values [][]byte
	tags   [][]string
	// noID marks events sent without event.id: their _id comes from the
	// record's topic, partition and offset.
	noID []bool
	run  string
}

// newWorkload makes n events: access and error lines in turn, every
// seventh tagged both (two documents), every tenth without an event.id.
func newWorkload(run string, n int, day time.Time) *workload {
	w := &workload{run: run}
	for i := 0; i < n; i++ {
		ts := day.Add(time.Duration(i) * time.Second % (24 * time.Hour))
		var line string
		var tags []string
		if i%2 == 0 {
			line = fmt.Sprintf(`192.0.2.%d - - [%s] "GET /item/%d?ref=%s HTTP/1.1" %d %d "https://example.com/" "Mozilla/5.0 (e2e %d)"`,
				i%250+1, ts.Format("02/Jan/2006:15:04:05 -0700"), i, run, 200+i%5*100, i*7%100000, i)
			tags = []string{"access"}
		} else {
			line = fmt.Sprintf(`[%s] [core:error] [pid %d:tid %d] [client 198.51.100.%d:%d] AH00128: File does not exist: /srv/%s/%d`,
				ts.Format("Mon Jan 02 15:04:05.000000 2006"), 1000+i%50, 2000+i, i%250+1, 1024+i%60000, run, i)
			tags = []string{"error"}
		}
		if i%7 == 3 {
			tags = []string{"access", "error"}
		}
		id := idOf(run, i)
		noID := i%10 == 5
		if noID {
			id = ""
		}
		w.values = append(w.values, shipped(line, ts, id, tags...))
		w.tags = append(w.tags, tags)
		w.noID = append(w.noID, noID)
	}
	return w
}

// head returns the workload of the first n events.
func (w *workload) head(n int) *workload {
	return &workload{values: w.values[:n], tags: w.tags[:n], noID: w.noID[:n], run: w.run}
}

// expected returns, for each tag, the ids of the documents its index must
// hold, given the produced records (for the offsets of id-less events).
func (w *workload) expected(topic string, recs []*kgo.Record) map[string][]string {
	out := map[string][]string{}
	for i, tags := range w.tags {
		id := idOf(w.run, i)
		if w.noID[i] {
			id = document.DerivedID(topic, recs[i].Partition, recs[i].Offset)
		}
		for _, tag := range tags {
			out[tag] = append(out[tag], id)
		}
	}
	for _, ids := range out {
		sort.Strings(ids)
	}
	return out
}

// checkExact compares the documents of each tag's indices with want: the
// same ids, each once.
func checkExact(t *testing.T, es *esClient, patterns map[string]string, want map[string][]string) {
	t.Helper()
	for tag, pattern := range patterns {
		got := es.ids(pattern)
		dups, missing, extra := 0, 0, 0
		seen := make(map[string]int, len(got))
		for _, id := range got {
			seen[id]++
			if seen[id] == 2 {
				dups++
			}
		}
		wantSet := make(map[string]bool, len(want[tag]))
		for _, id := range want[tag] {
			wantSet[id] = true
			if seen[id] == 0 {
				missing++
			}
		}
		for id := range seen {
			if !wantSet[id] {
				extra++
			}
		}
		if dups+missing+extra > 0 || len(got) != len(want[tag]) {
			t.Errorf("%s: %d documents for %d events: %d duplicated, %d missing, %d unexpected", pattern, len(got), len(want[tag]), dups, missing, extra)
		}
	}
}

// ids returns the _id of every document in the indices matching pattern,
// sorted, after a refresh. It pages through them 10,000 at a time with
// search_after on event.id and _index, and asks only for the _id and sort
// values, so that a few hundred thousand documents take a few seconds.
func (e *esClient) ids(pattern string) []string {
	e.t.Helper()
	e.do(http.MethodPost, "/"+pattern+"/_refresh?ignore_unavailable=true&allow_no_indices=true", "", nil)
	const page = 10000
	var out []string
	var after []any
	for {
		q := map[string]any{"size": page, "_source": false, "track_total_hits": false,
			"sort": []any{map[string]any{"event.id": "asc"}, map[string]any{"_index": "asc"}}}
		if after != nil {
			q["search_after"] = after
		}
		body, _ := json.Marshal(q)
		var res struct {
			Hits struct {
				Hits []struct {
					ID   string `json:"_id"`
					Sort []any  `json:"sort"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if code := e.do(http.MethodPost, "/"+pattern+"/_search?ignore_unavailable=true&allow_no_indices=true&filter_path=hits.hits._id,hits.hits.sort",
			string(body), &res); code != 200 {
			e.t.Fatalf("search %s: %d", pattern, code)
		}
		for _, h := range res.Hits.Hits {
			out = append(out, h.ID)
		}
		if len(res.Hits.Hits) < page {
			sort.Strings(out)
			return out
		}
		after = res.Hits.Hits[len(res.Hits.Hits)-1].Sort
	}
}

// liveCount returns the documents in the indices matching pattern as
// searches see them now, without asking for a refresh (Elasticsearch
// refreshes every second while it is searched): cheap enough to poll while
// the indexer writes, at most a second behind.
func (e *esClient) liveCount(pattern string) int {
	e.t.Helper()
	var c struct {
		Count int `json:"count"`
	}
	if code := e.do(http.MethodGet, "/"+pattern+"/_count?ignore_unavailable=true&allow_no_indices=true", "", &c); code != 200 {
		return 0 // a new index without an active shard yet answers 503
	}
	return c.Count
}

// waitDocs waits until the indices matching pattern hold at least n
// documents, failing at once if the indexer exits.
func waitDocs(t *testing.T, es *esClient, ix *indexer, pattern string, n int) {
	t.Helper()
	await.Eventually(t, fmt.Sprintf("%s to hold %d documents", pattern, n), func() error {
		if got := es.liveCount(pattern); got < n {
			return await.NotYet(got, fmt.Sprintf("at least %d", n))
		}
		return nil
	}, ix.alive())
}

// waitCommitted waits until the group's committed offsets reach the end of
// every partition of topic.
func waitCommitted(t *testing.T, b broker, group, topic string) {
	t.Helper()
	adm := admin(t, b)
	await.Eventually(t, fmt.Sprintf("group %s to commit every partition of %s to its end", group, topic), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil {
			return err
		}
		committed, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			return err
		}
		var behind []string
		ends.Each(func(o kadm.ListedOffset) {
			if c, ok := committed.Lookup(topic, o.Partition); !ok || c.At < o.Offset {
				behind = append(behind, fmt.Sprintf("%d at %d of %d", o.Partition, c.At, o.Offset))
			}
		})
		if len(behind) > 0 {
			return await.NotYet("partitions behind: "+strings.Join(behind, ", "), "none behind")
		}
		return nil
	}, patient)
}

// TestExactlyOnceAcrossKills is the scenario: it produces 200,000
// events, kills the indexer with SIGKILL 10 times while it indexes them,
// restarting it each time, and checks that every event is in Elasticsearch
// exactly once: records read but uncommitted at a kill are read again, and
// their stable _id makes the second create a 409. The events are access and
// error lines in turn; every seventh is tagged both (a document in each
// index) and every tenth has no event.id (its _id derives from the record's
// topic, partition and offset), so the check covers every kind of _id.
func TestExactlyOnceAcrossKills(t *testing.T) {
	const events, kills = 200000, 10
	node := harness.SharedElasticsearch(t)
	binaries(t)
	// The two brokers' runs go side by side: most of each run's time is
	// spent waiting for the group to drop the killed member (its session
	// timeout), which the other run fills with indexing.
	for _, name := range []string{"kafka", "brokerd"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			exactlyOnceAcrossKills(t, node, startBroker(t, name), events, kills)
		})
	}
}

// exactlyOnceAcrossKills runs TestExactlyOnceAcrossKills against one
// broker.
func exactlyOnceAcrossKills(t *testing.T, node *devstack.Elasticsearch, b broker, events, kills int) {
	es := newES(t, node)
	topic := "httpd-exactly-once-" + b.name
	createTopic(t, b, topic, 4)
	day := time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)
	if b.name == "brokerd" {
		day = time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	}
	w := newWorkload(topic, events, day)
	recs := newProducer(t, b, topic).send(w.values, func(i int) int32 { return int32(i % 4) })
	want := w.expected(topic, recs)
	total := len(want["access"]) + len(want["error"])
	// The records are in the topic; let their memory go.
	w.values = nil
	for _, r := range recs {
		r.Value = nil
	}

	prefix := "eo_" + b.name
	group := "indexer-eo-" + b.name
	// The plain build: the race detector would multiply the indexer's
	// CPU time on 200,000 events several times over, and the other
	// tests run the race build through the same code paths.
	ix := startIndexerBin(t, bins.plainIndexer, config(b, topic, group, node.URL, splitRoutes(prefix)+`kafka.session_timeout: 6s
kafka.heartbeat_interval: 1s
elasticsearch.flush_bytes: 256KiB
`))
	pattern := prefix + "_*"
	for k := 1; k <= kills; k++ {
		waitDocs(t, es, ix, pattern, total*k/(kills+1))
		ix.kill()
		t.Logf("kill %d at %d of %d documents", k, es.liveCount(pattern), total)
		ix.start()
	}
	waitCount(t, es, ix, pattern, total)
	waitCommitted(t, b, group, topic)
	checkExact(t, es, map[string]string{"access": prefix + "_access-*", "error": prefix + "_error-*"}, want)
	// The last run re-read what its predecessor had not committed: some
	// of it was in Elasticsearch already (duplicates), none was lost.
	t.Logf("last run: %v indexed, %v duplicates", ix.metric(`logpipe_indexer_documents_total{result="indexed"}`), ix.metric(`logpipe_indexer_documents_total{result="duplicate"}`))
	ix.stop()
}
