package indexer_test

import (
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"logpipe/e2e/harness"
	"logpipe/internal/await"
)

// TestLogstashBehaviour runs the indexer with its defaults (the Logstash
// pipeline it replaces: access to httpd_access-%{+YYYY.MM.dd}, error to
// httpd_error-%{+YYYY.MM.dd}, dates from @timestamp in UTC) against each
// broker: the last millisecond of a day and the first of the next land in
// consecutive daily indices, an event tagged both access and error lands in
// both, and an event with neither is counted and dropped.
func TestLogstashBehaviour(t *testing.T) {
	node := harness.SharedElasticsearch(t)
	es := newES(t, node)
	// Each broker gets its own days, so that the two runs share no index.
	days := map[string]time.Time{
		"kafka":   time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC),
		"brokerd": time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC),
	}
	forEachBroker(t, func(t *testing.T, b broker) {
		day := days[b.name]
		next := day.AddDate(0, 0, 1)
		d1, d2 := day.Format("2006.01.02"), next.Format("2006.01.02")
		topic := "httpd-logstash-" + b.name
		createTopic(t, b, topic, 3)

		lastMs := next.Add(-time.Millisecond) // 23:59:59.999
		type ev struct {
			line  string
			ts    time.Time
			tags  []string
			index []string // where it must land
		}
		clf := func(ts time.Time, zone string) string {
			return fmt.Sprintf(`203.0.113.9 - - [%s] "GET /x HTTP/1.1" 200 12`, ts.Format("02/Jan/2006:15:04:05 ")+zone)
		}
		errLine := func(ts time.Time) string {
			return fmt.Sprintf(`[%s] [core:error] [pid 1:tid 2] [client 192.0.2.1:5000] AH00128: File does not exist: /x`, ts.Format("Mon Jan 02 15:04:05.000000 2006"))
		}
		evs := []ev{
			// Unparsed lines keep the event's @timestamp, to the millisecond.
			{"not an httpd line", lastMs, []string{"access"}, []string{"httpd_access-" + d1}},
			{"not an httpd line either", next, []string{"access"}, []string{"httpd_access-" + d2}},
			// Parsed lines take the line's time, read in its zone, dated in UTC.
			{clf(next.Add(-time.Second), "+0000"), next, []string{"access"}, []string{"httpd_access-" + d1}},
			{clf(next, "+0000"), lastMs, []string{"access"}, []string{"httpd_access-" + d2}},
			{clf(next.Add(30*time.Minute).In(time.FixedZone("", 3600)), "+0100"), next, []string{"access"}, []string{"httpd_access-" + d2}},
			{clf(next.Add(-30*time.Minute).In(time.FixedZone("", 3600)), "+0100"), next, []string{"access"}, []string{"httpd_access-" + d1}},
			{errLine(lastMs.Truncate(time.Second).Add(999999 * time.Microsecond)), next, []string{"error"}, []string{"httpd_error-" + d1}},
			{errLine(next), lastMs, []string{"error"}, []string{"httpd_error-" + d2}},
			// Both tags: both indices.
			{clf(next.Add(time.Hour), "+0000"), next, []string{"access", "error"}, []string{"httpd_access-" + d2, "httpd_error-" + d2}},
			// Neither: dropped and counted.
			{clf(next.Add(time.Hour), "+0000"), next, []string{"other"}, nil},
		}
		values := make([][]byte, len(evs))
		for i, e := range evs {
			values[i] = shipped(e.line, e.ts, idOf(topic, i), e.tags...)
		}
		newProducer(t, b, topic).send(values, func(i int) int32 { return int32(i % 3) })

		// The default routes; only the connection settings differ. The
		// pipeline's stdout { codec => rubydebug } is on for one broker.
		extra := ""
		if b.name == "brokerd" {
			extra = "stdout.enabled: true\n"
		}
		ix := startIndexer(t, config(b, topic, "indexer-logstash-"+b.name, node.URL, extra))
		total := 0
		want := map[string][]string{} // index -> ids
		for i, e := range evs {
			for _, idx := range e.index {
				want[idx] = append(want[idx], idOf(topic, i))
				total++
			}
		}
		pattern := fmt.Sprintf("httpd_access-%s,httpd_access-%s,httpd_error-%s,httpd_error-%s", d1, d2, d1, d2)
		waitCount(t, es, ix, pattern, total)
		got := map[string][]string{}
		for _, h := range es.docs(pattern, true) {
			got[h.Index] = append(got[h.Index], h.ID)
			if h.ID != harness.Field(h.Source, "event.id") {
				t.Errorf("_id %s but event.id %v", h.ID, harness.Field(h.Source, "event.id"))
			}
		}
		for _, ids := range want {
			sort.Strings(ids)
		}
		for _, ids := range got {
			sort.Strings(ids)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("documents by index:\n got %v\nwant %v", got, want)
		}
		await.Eventually(t, "the dropped event to be counted", func() error {
			if v := ix.metric(fmt.Sprintf(`logpipe_indexer_events_unrouted_total{topic=%q}`, topic)); v != 1 {
				return await.NotYet(fmt.Sprintf("%v unrouted", v), "1 unrouted")
			}
			return nil
		}, ix.alive())
		if v := ix.metric(fmt.Sprintf(`logpipe_indexer_records_consumed_total{topic=%q}`, topic)); v != float64(len(evs)) {
			t.Errorf("records consumed %v, want %d", v, len(evs))
		}
		if err := ix.ready(); err != nil {
			t.Errorf("not ready: %v", err)
		}
		ix.stop()
		if b.name == "brokerd" {
			// The harness sends the indexer's stdout to its log file.
			out, _ := os.ReadFile(ix.log)
			if n := strings.Count(string(out), `"@timestamp" => `); n != len(evs) {
				t.Errorf("stdout shows %d rubydebug documents, want %d", n, len(evs))
			}
			if !strings.Contains(string(out), `"event" => {`) {
				t.Errorf("no nested object in the rubydebug output")
			}
		}
	})
}
