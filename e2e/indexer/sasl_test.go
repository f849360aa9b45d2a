package indexer_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"logpipe/e2e/harness"
	"logpipe/internal/await"
	"logpipe/internal/devstack"
)

// TestSASL runs the indexer against Apache Kafka's SASL_PLAINTEXT listener
// with SCRAM-SHA-512. With a wrong password it says why it cannot join and
// stays not ready, indexing nothing; with the right one every event lands
// in Elasticsearch once and the group's offsets are committed to the end.
// The harness's SCRAM-SHA-512 account may log in with no other mechanism,
// so the indexer must really speak SCRAM-SHA-512 to pass.
func TestSASL(t *testing.T) {
	node := harness.SharedElasticsearch(t)
	es := newES(t, node)
	k := harness.SharedKafka(t)
	// Records are produced and offsets checked through the plaintext
	// listener, so the checks do not rest on the SASL code under test.
	plain := broker{name: "kafka", bootstrap: k.Bootstrap()}
	sasl := broker{name: "kafka-sasl", bootstrap: k.SASLAddrs()[0]}

	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	topic := "httpd-sasl-" + run
	group := "indexer-sasl-" + run
	prefix := "sasl" + run
	createTopic(t, plain, topic, 2)

	const events = 60
	ts := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	values := make([][]byte, events)
	tagOf := func(i int) string {
		if i%3 == 0 {
			return "error"
		}
		return "access"
	}
	for i := range values {
		at := ts.Add(time.Duration(i) * time.Second)
		line := fmt.Sprintf(`198.51.100.%d - - [%s] "GET /sasl/%d HTTP/1.1" 200 %d`, i%250+1, at.Format("02/Jan/2006:15:04:05 -0700"), i, 100+i)
		if tagOf(i) == "error" {
			line = fmt.Sprintf(`[%s] [core:error] [pid 7:tid 8] [client 198.51.100.%d:5000] AH00128: File does not exist: /sasl/%d`,
				at.Format("Mon Jan 02 15:04:05.000000 2006"), i%250+1, i)
		}
		values[i] = shipped(line, at, idOf(topic, i), tagOf(i))
	}
	newProducer(t, plain, topic).send(values, func(i int) int32 { return int32(i % 2) })

	cfg := func(password string) string {
		return config(sasl, topic, group, node.URL, fmt.Sprintf(`routes:
  - tag: access
    index: "%[1]s_access-%%{+YYYY.MM.dd}"
  - tag: error
    index: "%[1]s_error-%%{+YYYY.MM.dd}"
kafka.username: %[2]q
kafka.password: %[3]q
kafka.sasl.mechanism: SCRAM-SHA-512
`, prefix, devstack.KafkaSCRAM512User, password))
	}
	pattern := prefix + "_*"

	// A wrong password: the login is refused, the log and /readyz say so.
	bad := startIndexer(t, cfg(devstack.KafkaSCRAM512Password+"-wrong"))
	await.Eventually(t, "the indexer to log the refused login", func() error {
		log, err := os.ReadFile(bad.log)
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(log), "\n") {
			if strings.Contains(l, "level=WARN") && strings.Contains(l, "SASL Authentication failed") {
				t.Logf("the indexer says: %s", l)
				return nil
			}
		}
		return await.NotYet("no warning about it in the log", "a WARN line saying SASL Authentication failed")
	}, bad.alive())
	if err := bad.ready(); err == nil || !strings.Contains(err.Error(), "/readyz 503") {
		t.Errorf("indexer with a wrong password: /readyz %v, want 503", err)
	}
	if n := es.count(pattern); n > 0 {
		t.Errorf("%d documents indexed with a wrong password", n)
	}
	bad.stop()

	// The right password: every event, once, where its tag routes it.
	ix := startIndexer(t, cfg(devstack.KafkaSCRAM512Password))
	waitCount(t, es, ix, pattern, events)
	waitCommitted(t, plain, group, topic)
	await.Eventually(t, "/readyz to report ready", ix.ready, ix.alive())
	got := map[string]string{} // _id -> index
	for _, h := range es.docs(pattern, true) {
		if h.ID != harness.Field(h.Source, "event.id") {
			t.Errorf("_id %s but event.id %v", h.ID, harness.Field(h.Source, "event.id"))
		}
		got[h.ID] = h.Index
	}
	for i := 0; i < events; i++ {
		id := idOf(topic, i)
		want := prefix + "_" + tagOf(i) + "-2026.11.21"
		if got[id] != want {
			t.Errorf("event %d (%s) in index %q, want %q", i, id, got[id], want)
		}
	}
	if len(got) != events {
		t.Errorf("%d documents, want %d", len(got), events)
	}
	if v := ix.metric(fmt.Sprintf(`logpipe_indexer_records_consumed_total{topic=%q}`, topic)); v != events {
		t.Errorf("records consumed %v, want %d", v, events)
	}
	ix.stop()
}
