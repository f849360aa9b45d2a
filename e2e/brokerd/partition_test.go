package brokerd_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestNetworkPartitionOfTheLeader runs three nodes in network namespaces
// and cuts the node leading most partitions off from the other two, while
// the workload writes and reads from the host (which still reaches every
// node): the cut-off node stops acknowledging acks=all, the majority
// elects new leaders and goes on, and after the network heals the old
// leader truncates what only it had and rejoins every ISR. The checker
// finds nothing.
func TestNetworkPartitionOfTheLeader(t *testing.T) {
	c := newLabCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	adm := c.admin()
	if r, err := adm.CreateTopic(ctx, 6, 3, map[string]*string{"min.insync.replicas": new("2")}, "part"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	w := startWorkload(t, c, "part")
	w.waitAcked(ctx, 2000, "before the partition")
	cut := c.busiest(ctx, "part")
	var led int32 = -1
	m, err := adm.Metadata(ctx, "part")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Topics["part"].Partitions {
		if p.Leader == cut {
			led = p.Partition
		}
	}
	if err := c.lab.Isolate(int(cut - 1)); err != nil {
		t.Fatal(err)
	}
	t.Logf("cut node %d (leading the most partitions) off from the others", cut)

	// The majority fences it and elects other leaders; the workload goes on.
	other := int(cut) % 3
	c.waitMeta(ctx, other, "new leaders for every partition", func(m kadm.Metadata) bool {
		td := m.Topics["part"]
		return len(td.Partitions) == 6 && leadersOf(td)[cut] == 0 && leadersOf(td)[-1] == 0
	})
	w.waitAcked(ctx, 2000, "during the partition")

	// The cut-off node, asked directly, acknowledges no acks=all write:
	// its followers cannot reach it.
	pctx, pcancel := context.WithTimeout(ctx, 15*time.Second)
	err = produceOnce(pctx, c.addrs[cut-1], "part", led, kgo.AllISRAcks(), "to-the-cut-off-leader")
	pcancel()
	if err == nil {
		t.Fatalf("node %d, cut off, acknowledged an acks=all write to partition %d", cut, led)
	}
	t.Logf("acks=all to the cut-off node: %v", err)

	if err := c.lab.Heal(); err != nil {
		t.Fatal(err)
	}
	c.waitMeta(ctx, other, "node back in every ISR", func(m kadm.Metadata) bool {
		td := m.Topics["part"]
		for _, p := range td.Partitions {
			if len(p.ISR) != 3 {
				return false
			}
		}
		return len(td.Partitions) == 6 && len(m.Brokers) == 3
	})
	w.waitAcked(ctx, 1000, "after the partition healed")
	w.finish(ctx)
	if log := c.nodes[cut-1].proc.Tail(1 << 20); !strings.Contains(log, "truncating a diverged log") {
		t.Errorf("node %d took a write while cut off but did not truncate it", cut)
	}
}
