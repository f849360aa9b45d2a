package main

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestSuccessorWatchTakesTheFirstNewLeaderAck feeds the hook the batches
// franz-go would report around a kill: it will not arm for a leader that
// did not acknowledge the partitions it is said to lead; acknowledgements
// before the kill, from the killed node, and for partitions it did not
// lead do not end the failover; the first one from another node for a
// partition it led does, and later ones do not replace it.
func TestSuccessorWatchTakesTheFirstNewLeaderAck(t *testing.T) {
	w := newSuccessorWatch()
	written := func(node, partition int32, records int) {
		w.OnProduceBatchWritten(kgo.BrokerMetadata{NodeID: node}, "t", partition, kgo.ProduceBatchMetrics{NumRecords: records})
	}
	steady := w.steady(60)
	for p := range int32(clusterPartitions - 1) {
		written(p%3+1, p, 10)
	}
	if err := steady(context.Background()); err == nil {
		t.Fatal("steady with a partition that had no acknowledgement")
	}
	written(3, clusterPartitions-1, 10)
	if err := steady(context.Background()); err != nil {
		t.Fatalf("not steady after 60 records on every partition: %v", err)
	}

	written(2, 0, 1) // before the kill
	if err := w.agrees(2, []int32{0, 3}); err == nil {
		t.Fatal("node 2 taken for the leader of partition 3, whose last acknowledgement came from node 1")
	}
	written(2, 3, 1)
	if err := w.agrees(2, []int32{0, 3}); err != nil {
		t.Fatal(err)
	}
	w.arm(1, 2, []int32{0, 3}, false)
	written(2, 0, 1) // a response of the killed node still in flight
	written(1, 1, 1) // a partition the killed node did not lead
	if err := w.succeeded(context.Background()); err == nil {
		t.Fatalf("failover ended by an acknowledgement that does not count: %+v", w.first)
	}
	written(3, 3, 1)
	written(1, 0, 1)
	if err := w.succeeded(context.Background()); err != nil {
		t.Fatal(err)
	}
	f := w.first
	if f.killed != 2 || !slices.Equal(f.led, []int32{0, 3}) || f.successor != 3 || f.partition != 3 || f.took < 0 {
		t.Fatalf("got %+v, want node 2 killed, leading [0 3], and node 3 acknowledging partition 3 after no negative time", *f)
	}
	if w.killedIndex != 1 {
		t.Fatalf("killed index %d, want 1", w.killedIndex)
	}
}

// TestParseFlagsParts checks which parts -parts selects.
func TestParseFlagsParts(t *testing.T) {
	for _, tc := range []struct {
		arg              string
		single, clusters bool
	}{
		{"", true, true},
		{"cluster", false, true},
		{"single", true, false},
		{"cluster,single", true, true},
	} {
		var args []string
		if tc.arg != "" {
			args = []string{"-parts", tc.arg}
		}
		o, err := parseFlags(args)
		if err != nil {
			t.Fatalf("-parts %q: %v", tc.arg, err)
		}
		if o.single != tc.single || o.clusters != tc.clusters {
			t.Errorf("-parts %q: got single %v, clusters %v; want %v, %v", tc.arg, o.single, o.clusters, tc.single, tc.clusters)
		}
	}
	if _, err := parseFlags([]string{"-parts", "three"}); err == nil || !strings.Contains(err.Error(), "bad -parts entry") {
		t.Fatalf("-parts three: got error %v, want a bad -parts entry", err)
	}
	if _, err := parseFlags([]string{"-failover-rate", "0"}); err == nil {
		t.Fatal("-failover-rate 0 accepted")
	}
}
