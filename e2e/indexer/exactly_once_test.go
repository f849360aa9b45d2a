package indexer_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/e2e/harness"
	"logpipe/indexer/document"
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
		var got []string
		for _, h := range es.docs(pattern, false) {
			got = append(got, h.ID)
		}
		sort.Strings(got)
		dups, missing, extra := 0, 0, 0
		seen := map[string]int{}
		for _, id := range got {
			seen[id]++
			if seen[id] == 2 {
				dups++
			}
		}
		wantSet := map[string]bool{}
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

// waitCommitted polls until the group's committed offsets reach the end of
// every partition of topic.
func waitCommitted(t *testing.T, b broker, group, topic string) {
	t.Helper()
	adm := admin(t, b)
	deadline := time.Now().Add(waitTime)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		ends, err1 := adm.ListEndOffsets(ctx, topic)
		committed, err2 := adm.FetchOffsets(ctx, group)
		cancel()
		behind := -1
		if err1 == nil && err2 == nil {
			behind = 0
			ends.Each(func(o kadm.ListedOffset) {
				c, ok := committed.Lookup(topic, o.Partition)
				if !ok || c.At < o.Offset {
					behind++
				}
			})
		}
		if behind == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s: %d partitions of %s not committed to their end (%v %v)", group, behind, topic, err1, err2)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestExactlyOnceAcrossKills produces events, kills the indexer with
// SIGKILL several times while it indexes them, restarting it each time, and
// checks that every event is in Elasticsearch exactly once: records read
// but uncommitted at a kill are read again, and their stable _id makes the
// second create a 409. (The 200,000 events and 10 kills are scaled
// down to fit CI on two cores; the mechanism does not depend on the size.)
func TestExactlyOnceAcrossKills(t *testing.T) {
	skipShort(t)
	const events, kills = 24000, 6
	node := harness.SharedElasticsearch(t)
	es := newES(t, node)
	forEachBroker(t, func(t *testing.T, b broker) {
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

		prefix := "eo_" + b.name
		group := "indexer-eo-" + b.name
		ix := startIndexer(t, config(b, topic, group, node.URL, fmt.Sprintf(`routes:
  - tag: access
    index: "%[1]s_access-%%{+YYYY.MM.dd}"
  - tag: error
    index: "%[1]s_error-%%{+YYYY.MM.dd}"
kafka.session_timeout: 6s
kafka.heartbeat_interval: 1s
elasticsearch.flush_bytes: 256KiB
`, prefix)))
		pattern := prefix + "_*"
		for k := 1; k <= kills; k++ {
			threshold := total * k / (kills + 1)
			ix.waitFor(fmt.Sprintf("%d documents before kill %d", threshold, k), func() error {
				if n := es.count(pattern); n < threshold {
					return fmt.Errorf("%d documents", n)
				}
				return nil
			})
			ix.kill()
			t.Logf("kill %d at %d documents", k, es.count(pattern))
			ix.start()
		}
		waitCount(t, es, ix, pattern, total)
		waitCommitted(t, b, group, topic)
		checkExact(t, es, map[string]string{"access": prefix + "_access-*", "error": prefix + "_error-*"}, want)
		// The last run re-read what its predecessor had not committed: some
		// of it was in Elasticsearch already (duplicates), none was lost.
		t.Logf("last run: %v indexed, %v duplicates", ix.metric(`logpipe_indexer_documents_total{result="indexed"}`), ix.metric(`logpipe_indexer_documents_total{result="duplicate"}`))
		ix.stop()
	})
}
