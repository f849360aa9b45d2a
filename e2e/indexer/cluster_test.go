package indexer_test

import (
	"context"
	"testing"
	"time"

	"logpipe/e2e/harness"
	"logpipe/internal/devstack"
)

// TestLeaderKillOnThreeBrokerd runs the indexer against a three-node
// brokerd, its topic and __consumer_offsets replicated three ways, and
// kills with SIGKILL the node leading most of the topic's partitions while
// it indexes: leaders and the group's coordinator move, and every event is
// still in Elasticsearch exactly once, with every offset committed.
func TestLeaderKillOnThreeBrokerd(t *testing.T) {
	const events = 20000
	node := harness.SharedElasticsearch(t)
	binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitTime)
	defer cancel()
	cl, err := devstack.StartBrokerdCluster(ctx, devstack.BrokerdClusterOptions{Bin: bins.broker, Dir: t.TempDir(),
		Settings: []string{"group.initial.rebalance.delay.ms=0"}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Stop()
	b := broker{name: "brokerd", bootstrap: cl.Bootstrap()}
	topic := "httpd-cluster"
	minISR := "2"
	if r, err := admin(t, b).CreateTopic(ctx, 4, 3, map[string]*string{"min.insync.replicas": &minISR}, topic); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	es := newES(t, node)
	w := newWorkload(topic, events, time.Date(2027, 4, 1, 0, 0, 0, 0, time.UTC))
	recs := newProducer(t, b, topic).send(w.values, func(i int) int32 { return int32(i % 4) })
	want := w.expected(topic, recs)
	total := len(want["access"]) + len(want["error"])
	prefix := "cluster"
	group := "indexer-cluster"
	ix := startIndexer(t, config(b, topic, group, node.URL, splitRoutes(prefix)+`kafka.session_timeout: 6s
kafka.heartbeat_interval: 1s
elasticsearch.flush_bytes: 256KiB
`))
	pattern := prefix + "_*"
	waitDocs(t, es, ix, pattern, total/3)
	md, err := admin(t, b).Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	led := map[int32]int{}
	for _, p := range md.Topics[topic].Partitions {
		led[p.Leader]++
	}
	victim, most := int32(1), 0
	for id, n := range led {
		if n > most {
			victim, most = id, n
		}
	}
	cl.KillNode(int(victim - 1))
	t.Logf("killed node %d (leading %d of 4 partitions) at %d of %d documents", victim, most, es.liveCount(pattern), total)
	waitDocs(t, es, ix, pattern, total*2/3)
	if err := cl.StartNode(ctx, int(victim-1)); err != nil {
		t.Fatal(err)
	}
	waitCount(t, es, ix, pattern, total)
	waitCommitted(t, b, group, topic)
	checkExact(t, es, map[string]string{"access": prefix + "_access-*", "error": prefix + "_error-*"}, want)
	off, err := admin(t, b).Metadata(ctx, "__consumer_offsets")
	if err != nil {
		t.Fatalf("metadata of __consumer_offsets: %v", err)
	}
	parts := off.Topics["__consumer_offsets"].Partitions
	if len(parts) == 0 {
		t.Fatalf("__consumer_offsets has no partitions in the metadata: %+v", off.Topics["__consumer_offsets"])
	}
	for _, p := range parts {
		if len(p.Replicas) != 3 {
			t.Errorf("__consumer_offsets-%d has %d replicas, want 3", p.Partition, len(p.Replicas))
			break
		}
	}
	ix.stop()
}
