package indexer_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"logpipe/e2e/harness"
	"logpipe/internal/await"
	"logpipe/internal/devstack"
)

// faultRun is what the fault tests start from: the shared Elasticsearch
// node and a client of it, a broker, and a topic on it that the indexers
// of group read; prefix names the test's indices.
type faultRun struct {
	t                    *testing.T
	node                 *devstack.Elasticsearch
	es                   *esClient
	b                    broker
	topic, group, prefix string
}

// newFaultRun creates topic with the given partitions on b.
func newFaultRun(t *testing.T, b broker, topic, group, prefix string, partitions int32) *faultRun {
	t.Helper()
	node := harness.SharedElasticsearch(t)
	f := &faultRun{t: t, node: node, es: newES(t, node), b: b, topic: topic, group: group, prefix: prefix}
	createTopic(t, b, topic, partitions)
	return f
}

// splitRoutes returns the routes that send access events to
// <prefix>_access-<day> and error events to <prefix>_error-<day>.
func splitRoutes(prefix string) string {
	return fmt.Sprintf(`routes:
  - tag: access
    index: "%[1]s_access-%%{+YYYY.MM.dd}"
  - tag: error
    index: "%[1]s_error-%%{+YYYY.MM.dd}"
`, prefix)
}

// splitConfig is the indexer configuration of the run with Elasticsearch
// at esURL, the split routes, and extra YAML.
func (f *faultRun) splitConfig(esURL, extra string) string {
	return config(f.b, f.topic, f.group, esURL, splitRoutes(f.prefix)+extra)
}

// waitIndexed waits until the run's indices hold as many documents as want
// lists.
func (f *faultRun) waitIndexed(ix *indexer, want map[string][]string) {
	f.t.Helper()
	waitCount(f.t, f.es, ix, f.prefix+"_*", len(want["access"])+len(want["error"]))
}

// checkExact checks that the run's indices hold each wanted id once.
func (f *faultRun) checkExact(want map[string][]string) {
	f.t.Helper()
	checkExact(f.t, f.es, map[string]string{"access": f.prefix + "_access-*", "error": f.prefix + "_error-*"}, want)
}

// waitHoldsAll waits, while ix runs, until one member of the group holds
// all of the topic's partitions, n, and the group is stable.
func (f *faultRun) waitHoldsAll(ix *indexer, n int) {
	f.t.Helper()
	await.Eventually(f.t, "the remaining indexer to hold every partition", func() error {
		members, state := groupMembers(f.t, f.b, f.group, f.topic)
		for _, parts := range members {
			if len(parts) == n && state == "Stable" {
				return nil
			}
		}
		return await.NotYet(fmt.Sprintf("%s with members %v", state, members), fmt.Sprintf("Stable with a member holding %d partitions", n))
	}, ix.alive())
}

// groupMembers returns the member ids of group and the partitions of topic
// each one holds.
func groupMembers(t *testing.T, b broker, group, topic string) (map[string][]int32, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	described, err := admin(t, b).DescribeGroups(ctx, group)
	if err != nil {
		return nil, err.Error()
	}
	g := described[group]
	if g.Err != nil {
		return nil, g.Err.Error()
	}
	out := map[string][]int32{}
	for _, m := range g.Members {
		var parts []int32
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, tp := range c.Topics {
				if tp.Topic == topic {
					parts = append(parts, tp.Partitions...)
				}
			}
		}
		out[m.MemberID] = parts
	}
	return out, g.State
}

// TestElasticsearchOutage stops the Elasticsearch node for 30 s while
// events keep coming: /readyz turns false, consumption pauses with a
// bounded amount in flight and memory flat, the consumer stays in its group
// (same member, no rebalance), and once the node is back every event is
// indexed exactly once. The indexer here is built without the race
// detector, so that its memory is what production would see.
func TestElasticsearchOutage(t *testing.T) {
	f := newFaultRun(t, startBroker(t, "kafka"), "httpd-outage", "indexer-outage", "outage", 4)
	node, b, topic, group := f.node, f.b, f.topic, f.group
	const before, during = 3000, 12000
	w := newWorkload(topic, before+during, time.Date(2027, 4, 1, 0, 0, 0, 0, time.UTC))
	p := newProducer(t, b, topic)
	part := func(i int) int32 { return int32(i % 4) }

	binaries(t)
	ix := startIndexerBin(t, bins.plainIndexer, f.splitConfig(node.URL, `elasticsearch:
  flush_bytes: 256KiB
  max_in_flight_bytes: 1MiB
  backoff.max: 1s
`))

	recs := p.send(w.values[:before], part)
	f.waitIndexed(ix, w.head(before).expected(topic, recs))
	await.Eventually(t, "readiness", ix.ready, ix.alive())
	members, state := groupMembers(t, b, group, topic)
	if len(members) != 1 || state != "Stable" {
		t.Fatalf("group %s: %v members, state %s", group, members, state)
	}
	var member string
	for m := range members {
		member = m
	}
	baseRSS, _ := devstack.RSS(ix.proc.Pid())

	stopped := time.Now()
	node.Stop()
	restarted := false
	t.Cleanup(func() {
		if !restarted {
			node.Start(context.Background())
		}
	})
	await.Eventually(t, "/readyz to report Elasticsearch away", func() error {
		if err := ix.ready(); err == nil || !strings.Contains(err.Error(), "elasticsearch") {
			return await.NotYet(fmt.Sprintf("/readyz %v", err), "a /readyz error naming elasticsearch")
		}
		return nil
	}, ix.alive())
	recs = append(recs, p.send(w.values[before:], func(i int) int32 { return part(before + i) })...)
	// Hold the node down for 30 s, watching memory, the amount in flight and
	// the membership.
	peakRSS, peakHeld := int64(0), 0.0
	for time.Since(stopped) < 30*time.Second {
		if rss, err := devstack.RSS(ix.proc.Pid()); err == nil && rss > peakRSS {
			peakRSS = rss
		}
		if held := ix.metric("logpipe_indexer_in_flight_bytes"); held > peakHeld {
			peakHeld = held
		}
		if exited, err := ix.proc.Exited(); exited {
			t.Fatalf("indexer exited during the outage (%v); log:\n%s", err, ix.proc.Tail(8000))
		}
		time.Sleep(500 * time.Millisecond)
	}
	lag := 0.0
	for p := 0; p < 4; p++ {
		lag += ix.metric(fmt.Sprintf(`logpipe_indexer_consumer_lag{partition="%d",topic=%q}`, p, topic))
	}
	consumed := ix.metric(fmt.Sprintf(`logpipe_indexer_records_consumed_total{topic=%q}`, topic))
	members, state = groupMembers(t, b, group, topic)
	if _, same := members[member]; !same || len(members) != 1 || state != "Stable" {
		t.Errorf("after 30 s without Elasticsearch the group is %s with members %v, want %s alone", state, members, member)
	}
	if consumed >= before+during {
		t.Errorf("all %v records were read with Elasticsearch away: consumption did not pause", consumed)
	}
	t.Logf("outage: RSS %d KiB before, peak %d KiB; peak held %.0f bytes; %v records read of %d; lag %v",
		baseRSS>>10, peakRSS>>10, peakHeld, consumed, before+during, lag)
	// The lag counts what is not committed: at least what is not read.
	if lag < before+during-consumed {
		t.Errorf("consumer lag %v, but %v records are not even read", lag, before+during-consumed)
	}
	if peakHeld > 1<<20 {
		t.Errorf("%v bytes held in flight, above max_in_flight_bytes of 1 MiB", peakHeld)
	}
	if peakRSS > baseRSS+64<<20 {
		t.Errorf("RSS grew from %d KiB to %d KiB during the outage", baseRSS>>10, peakRSS>>10)
	}

	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	if err := node.Start(ctx); err != nil {
		t.Fatal(err)
	}
	restarted = true
	want := w.expected(topic, recs)
	f.waitIndexed(ix, want)
	f.checkExact(want)
	await.Eventually(t, "readiness after the outage", ix.ready, ix.alive())
	waitCommitted(t, b, group, topic)
	if members, _ := groupMembers(t, b, group, topic); len(members) != 1 {
		t.Errorf("members after the outage: %v", members)
	} else if _, same := members[member]; !same {
		t.Errorf("the member changed during the outage: %v, was %s", members, member)
	}
	ix.stop()
}

// TestMappingConflict sends, on one partition, a document Elasticsearch
// refuses (an object where the template maps a keyword) and one whose index
// name is invalid between good ones: both go to the dead-letter index with
// the reason and the original event, the records after them are indexed,
// and the offsets are committed past all of them.
func TestMappingConflict(t *testing.T) {
	f := newFaultRun(t, startBroker(t, "brokerd"), "httpd-conflict", "indexer-conflict", "mc", 1)
	node, es, b, topic, group := f.node, f.es, f.b, f.topic, f.group
	ts := time.Date(2027, 6, 1, 10, 0, 0, 0, time.UTC)
	line := func(i int) string {
		return fmt.Sprintf(`192.0.2.1 - - [01/Jun/2027:10:00:%02d +0000] "GET /%d HTTP/1.1" 200 1`, i, i)
	}
	good := func(i int) []byte { return shipped(line(i), ts, idOf(topic, i), "access") }
	conflict := []byte(fmt.Sprintf(`{"@timestamp":"2027-06-01T10:00:01.000Z","message":%q,"tags":["access"],"event":{"id":%q},"host":{"name":{"first":"web","second":"1"}}}`,
		line(1), idOf(topic, 1)))
	badName := []byte(fmt.Sprintf(`{"@timestamp":"2027-06-01T10:00:03.000Z","message":%q,"tags":["app"],"event":{"id":%q},"fields":{"app":"Shop"}}`,
		line(3), idOf(topic, 3)))
	values := [][]byte{good(0), conflict, good(2), badName, good(4)}
	p := newProducer(t, b, topic)
	p.send(values, func(int) int32 { return 0 })

	ix := startIndexer(t, config(b, topic, group, node.URL, `routes:
  - tag: access
    index: "mc_access-%{+YYYY.MM.dd}"
  - field: fields.app
    exists: true
    index: "mc_app-%{[fields][app]}"
dead_letter.index: "mc-dlq-%{+YYYY.MM}"
`))
	waitCount(t, es, ix, "mc_access-*", 3)
	waitCount(t, es, ix, "mc-dlq-*", 2)
	waitCommitted(t, b, group, topic)
	var ids []string
	for _, h := range es.docs("mc_access-*", false) {
		ids = append(ids, h.ID)
	}
	if strings.Join(ids, " ") != strings.Join(sortedIDs(idOf(topic, 0), idOf(topic, 2), idOf(topic, 4)), " ") {
		t.Errorf("indexed %v", ids)
	}
	if got := es.indices("mc-dlq-*"); len(got) != 1 || got[0] != "mc-dlq-2027.06" {
		t.Errorf("dead-letter indices %v", got)
	}
	dead := map[string]hit{}
	for _, h := range es.docs("mc-dlq-*", true) {
		dead[harness.Field(h.Source, "event.id").(string)] = h
	}
	c, ok := dead[idOf(topic, 1)]
	if !ok {
		t.Fatalf("no dead letter for the mapping conflict: %v", dead)
	}
	if harness.Field(c.Source, "dead_letter.index") != "mc_access-2027.06.01" || harness.Field(c.Source, "dead_letter.status") != 400.0 ||
		harness.Field(c.Source, "event.original") != string(conflict) ||
		!strings.Contains(fmt.Sprint(harness.Field(c.Source, "error.message")), "host.name") ||
		!strings.Contains(fmt.Sprint(harness.Field(c.Source, "error.type")), "parsing_exception") {
		t.Errorf("mapping conflict dead letter: %v", c.Source)
	}
	n, ok := dead[idOf(topic, 3)]
	if !ok {
		t.Fatalf("no dead letter for the invalid index name: %v", dead)
	}
	if harness.Field(n.Source, "dead_letter.index") != "mc_app-Shop" || harness.Field(n.Source, "error.type") != "invalid_index_name_exception" ||
		!strings.Contains(fmt.Sprint(harness.Field(n.Source, "error.message")), "lowercase") || harness.Field(n.Source, "event.original") != string(badName) {
		t.Errorf("invalid index name dead letter: %v", n.Source)
	}
	if v := ix.metric(`logpipe_indexer_documents_total{result="dead_lettered"}`); v != 2 {
		t.Errorf("dead_lettered %v, want 2", v)
	}
	ix.stop()
}

func sortedIDs(ids ...string) []string {
	out := append([]string(nil), ids...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// TestTwoIndexersShareAGroup runs two indexers in one group: they split the
// partitions and both index. When one stops, the other takes its
// partitions over at the committed offsets (it indexes nothing twice) and
// the final count is exact.
func TestTwoIndexersShareAGroup(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b broker) {
		f := newFaultRun(t, b, "httpd-pair-"+b.name, "indexer-pair-"+b.name, "pair_"+b.name, 4)
		topic, group := f.topic, f.group
		const first, second = 3000, 3000
		day := time.Date(2027, 7, 1, 0, 0, 0, 0, time.UTC)
		if b.name == "brokerd" {
			day = time.Date(2027, 8, 1, 0, 0, 0, 0, time.UTC)
		}
		w := newWorkload(topic, first+second, day)
		part := func(i int) int32 { return int32(i % 4) }
		cfg := f.splitConfig(f.node.URL, "")
		a := startIndexer(t, cfg)
		await.Eventually(t, "the first indexer to join", a.ready, a.alive())
		bx := startIndexer(t, cfg)
		await.Eventually(t, "both indexers to hold two partitions each", func() error {
			members, state := groupMembers(t, b, group, topic)
			want := "Stable with 2 members holding 2 partitions each"
			if len(members) != 2 || state != "Stable" {
				return await.NotYet(fmt.Sprintf("%s with members %v", state, members), want)
			}
			for m, parts := range members {
				if len(parts) != 2 {
					return await.NotYet(fmt.Sprintf("member %s holding %v", m, parts), want)
				}
			}
			return nil
		}, a.alive())
		p := newProducer(t, b, topic)
		recs := p.send(w.values[:first], part)
		f.waitIndexed(a, w.head(first).expected(topic, recs))
		series := fmt.Sprintf(`logpipe_indexer_records_consumed_total{topic=%q}`, topic)
		ca, cb := a.metric(series), bx.metric(series)
		if ca == 0 || cb == 0 || ca+cb != first {
			t.Errorf("records read: %v by one, %v by the other, want %d shared", ca, cb, first)
		}
		bx.stop()
		f.waitHoldsAll(a, 4)
		recs = append(recs, p.send(w.values[first:], func(i int) int32 { return part(first + i) })...)
		want := w.expected(topic, recs)
		f.waitIndexed(a, want)
		f.checkExact(want)
		if d := a.metric(`logpipe_indexer_documents_total{result="duplicate"}`); d != 0 {
			t.Errorf("the remaining indexer re-indexed %v documents: it did not start at the committed offsets", d)
		}
		if got := a.metric(series); got != ca+second {
			t.Errorf("the remaining indexer read %v records, want %v", got, ca+second)
		}
		waitCommitted(t, b, group, topic)
		a.stop()
	})
}

// TestRebalanceDuringOutage stops one of two indexers while Elasticsearch
// is unreachable (a proxy in front of it refuses connections): the leaving
// indexer cannot flush, gives its in-flight documents up after
// drain_timeout without committing them and exits cleanly; the other takes
// every partition over from the committed offsets, and once Elasticsearch
// is back every event is there exactly once.
func TestRebalanceDuringOutage(t *testing.T) {
	f := newFaultRun(t, startBroker(t, "brokerd"), "httpd-revoke", "indexer-revoke", "revoke", 4)
	b, topic, group := f.b, f.topic, f.group
	proxy := newTCPProxy(t, strings.TrimPrefix(f.node.URL, "http://"))
	const first, second = 2000, 4000
	w := newWorkload(topic, first+second, time.Date(2027, 10, 1, 0, 0, 0, 0, time.UTC))
	part := func(i int) int32 { return int32(i % 4) }
	cfg := f.splitConfig(proxy.URL(), "kafka.drain_timeout: 3s\n")
	a := startIndexer(t, cfg)
	await.Eventually(t, "the first indexer to join", a.ready, a.alive())
	bx := startIndexer(t, cfg)
	await.Eventually(t, "both indexers to share the partitions", func() error {
		if members, state := groupMembers(t, b, group, topic); len(members) != 2 || state != "Stable" {
			return await.NotYet(fmt.Sprintf("%s with members %v", state, members), "Stable with 2 members")
		}
		return nil
	}, a.alive())
	p := newProducer(t, b, topic)
	recs := p.send(w.values[:first], part)
	f.waitIndexed(a, w.head(first).expected(topic, recs))
	waitCommitted(t, b, group, topic)

	proxy.down()
	recs = append(recs, p.send(w.values[first:], func(i int) int32 { return part(first + i) })...)
	series := fmt.Sprintf(`logpipe_indexer_records_consumed_total{topic=%q}`, topic)
	await.Eventually(t, "the leaving indexer to read records it cannot index", func() error {
		if n := bx.metric(`logpipe_indexer_in_flight_documents`); n == 0 {
			return await.NotYet(fmt.Sprintf("nothing in flight (%v read)", bx.metric(series)), "documents in flight")
		}
		return nil
	}, bx.alive())
	bx.stop()
	log, _ := os.ReadFile(bx.log)
	if !strings.Contains(string(log), "records still unacknowledged when letting the partition go") {
		t.Errorf("the leaving indexer did not give records up; log:\n%s", bx.proc.Tail(4000))
	}
	f.waitHoldsAll(a, 4)
	proxy.up()
	want := w.expected(topic, recs)
	f.waitIndexed(a, want)
	f.checkExact(want)
	waitCommitted(t, b, group, topic)
	a.stop()
}

// TestLatestKeepsItsPlace: with auto_offset_reset latest (the default) a
// new group starts at the end of the partitions and commits that place even
// though no record has come, so events produced while the indexer is down
// are indexed when it comes back rather than skipped.
func TestLatestKeepsItsPlace(t *testing.T) {
	f := newFaultRun(t, startBroker(t, "brokerd"), "httpd-latest", "indexer-latest", "latest", 2)
	node, es, b, topic, group := f.node, f.es, f.b, f.topic, f.group
	ts := time.Date(2027, 11, 1, 0, 0, 0, 0, time.UTC)
	p := newProducer(t, b, topic)
	p.send([][]byte{shipped("old", ts, idOf(topic, 0), "access"), shipped("old", ts, idOf(topic, 1), "access")}, func(i int) int32 { return int32(i % 2) })
	cfg := strings.Replace(config(b, topic, group, node.URL, `routes:
  - tag: access
    index: "latest_access-%{+YYYY.MM.dd}"
`), "auto_offset_reset: earliest", "auto_offset_reset: latest", 1)
	ix := startIndexer(t, cfg)
	waitCommitted(t, b, group, topic)
	ix.stop()
	var values [][]byte
	for i := 2; i < 12; i++ {
		values = append(values, shipped("new", ts, idOf(topic, i), "access"))
	}
	p.send(values, func(i int) int32 { return int32(i % 2) })
	ix.start()
	waitCount(t, es, ix, "latest_access-*", 10)
	for _, h := range es.docs("latest_access-*", true) {
		if h.Source["message"] != "new" {
			t.Errorf("an event from before the group existed was indexed: %v", h.Source)
		}
	}
	ix.stop()
}
