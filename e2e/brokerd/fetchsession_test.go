package brokerd_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"logpipe/internal/await"
)

// followerFetches is the series of a node's fetch requests from followers
// served as kind (full, incremental, ...).
func followerFetches(kind string) string {
	return `brokerd_fetch_requests_total{fetcher="follower",session="` + kind + `"}`
}

// metricValue returns the value of series (a name with its labels, as
// /metrics writes them) in text, 0 if it is not there.
func metricValue(text, series string) float64 {
	for line := range strings.Lines(text) {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				return v
			}
		}
	}
	return 0
}

// awaitMetric polls node i's /metrics until series is at least want.
func (c *cluster) awaitMetric(i int, series string, want float64) {
	c.t.Helper()
	await.Eventually(c.t, fmt.Sprintf("node %d's %s", i+1, series), func() error {
		if got := metricValue(c.metrics(i), series); got < want {
			return await.NotYet(fmt.Sprint(got), fmt.Sprintf("at least %v", want))
		}
		return nil
	}, await.Within(2*time.Minute))
}

// TestFetchSessionFollowers: the followers of a three-node cluster fetch
// from their leaders in fetch sessions, leaving idle partitions out of
// their incremental requests, and stay in the ISR of those partitions
// long after replica.lag.time.max.ms (the leader counts a fetch of the
// session as a fetch of each of its partitions, at the offset it holds).
// Then, under a workload of acks=all producers and a consumer group, the
// node leading most partitions is killed and restarted: the leaders take
// its new full requests (new sessions), the ISRs fill again, and the
// checker finds nothing lost, duplicated or out of order.
func TestFetchSessionFollowers(t *testing.T) {
	const lagMs = 3000
	c := newCluster(t, 3, fmt.Sprintf("replica.lag.time.max.ms=%d", lagMs))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	adm := c.admin()
	if r, err := adm.CreateTopic(ctx, 6, 3, nil, "idle"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	if l := c.leaders(ctx, "idle"); len(l) != 3 {
		t.Fatalf("idle's leaders: %v, want all three nodes", l)
	}
	// A follower's incremental fetch of idle partitions waits out its max
	// wait (500 ms) at the leader: 24 of them from two followers are at
	// least 6 s of fetching, twice the lag time.
	for i := range 3 {
		c.awaitMetric(i, followerFetches("incremental"), 24)
	}
	for i := range 3 {
		m := c.metrics(i)
		if got := metricValue(m, followerFetches("full")); got < 2 {
			t.Errorf("node %d served %v full fetches to followers, want at least one from each of the two", i+1, got)
		}
		if got := metricValue(m, "brokerd_incremental_fetch_sessions"); got < 2 {
			t.Errorf("node %d caches %v fetch sessions, want at least its two followers'", i+1, got)
		}
		if got := metricValue(m, `brokerd_isr_changes_total{kind="shrink"}`); got != 0 {
			t.Errorf("node %d shrank %v ISRs of idle partitions its followers are caught up on, want none", i+1, got)
		}
	}
	m, err := adm.Metadata(ctx, "idle")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Topics["idle"].Partitions {
		if len(p.ISR) != 3 {
			t.Errorf("idle-%d: ISR %v, want the three replicas", p.Partition, p.ISR)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	if r, err := adm.CreateTopic(ctx, 6, 3, map[string]*string{"min.insync.replicas": new("2")}, "repl"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	w := startWorkload(t, c, "repl")
	w.waitAcked(ctx, 1000, "before the kill")
	kill := c.busiest(ctx, "repl")
	c.nodes[kill-1].proc.Kill()
	t.Logf("killed node %d", kill)
	w.waitAcked(ctx, 1000, fmt.Sprintf("after node %d died", kill))
	fulls := map[int]float64{}
	for i := range 3 {
		if int32(i+1) != kill {
			fulls[i] = metricValue(c.metrics(i), followerFetches("full"))
		}
	}
	c.start(int(kill - 1))
	for i, before := range fulls {
		c.awaitMetric(i, followerFetches("full"), before+1)
	}
	w.waitAcked(ctx, 500, fmt.Sprintf("after node %d returned", kill))
	for _, topic := range []string{"idle", "repl"} {
		for p := range int32(6) {
			c.partitionState(ctx, topic, p, "the ISR full again", func(pd kadm.PartitionDetail) bool { return len(pd.ISR) == 3 })
		}
	}
	w.finish(ctx)
}
