package controller

import (
	"context"
	"slices"
	"testing"
	"time"

	"logpipe/brokerd/metadata"
)

// setPartition commits state for partition index of topic, as an
// AlterPartition or an election would.
func setPartition(t *testing.T, st *memStore, topic string, index int32, state metadata.Partition) {
	t.Helper()
	if err := st.Propose(context.Background(), change{topic, index, state}.record()); err != nil {
		t.Fatal(err)
	}
}

// expire lets every broker's session run out but those of alive, which
// heartbeat, and ticks the controller.
func expire(t *testing.T, c *Controller, st *memStore, clk *clock, epochs map[int32]int64, rebalance bool, alive ...int32) {
	t.Helper()
	ctx := context.Background()
	clk.t = clk.t.Add(3 * time.Second)
	for _, id := range alive {
		if _, err := c.Heartbeat(ctx, Heartbeat{ID: id, Epoch: epochs[id], MetadataOffset: st.img.Offset}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Tick(ctx, rebalance); err != nil {
		t.Fatal(err)
	}
}

// TestUncleanElection: when a partition's whole ISR is fenced, a live
// replica outside it is elected only where unclean.leader.election.enable
// allows it, the topic's config overriding the cluster's; the new leader
// is then the whole ISR, at the next leader epoch.
func TestUncleanElection(t *testing.T) {
	for _, tc := range []struct {
		name         string
		cluster      bool
		topic        string // "" for no topic config
		wantElection bool
	}{
		{"default", false, "", false},
		{"cluster on", true, "", true},
		{"topic on", false, "true", true},
		{"topic off over cluster on", true, "false", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, st, clk, epochs := setup(t, 3)
			c.cfg.UncleanLeaderElection = tc.cluster
			topic := &metadata.Topic{Name: "t", ID: metadata.NewUUID(), Partitions: []metadata.Partition{{Replicas: []int32{1, 2}, ISR: []int32{1, 2}, Leader: 1}}}
			if tc.topic != "" {
				topic.Configs = map[string]string{UncleanConfig: tc.topic}
			}
			if err := st.Propose(context.Background(), metadata.Record{CreateTopic: topic}); err != nil {
				t.Fatal(err)
			}
			// Replica 2 fell behind: the ISR is the leader alone.
			p := st.img.Topic("t").Partitions[0]
			p.ISR = []int32{1}
			p.Epoch++
			setPartition(t, st, "t", 0, p)
			before := st.img.Topic("t").Partitions[0]

			expire(t, c, st, clk, epochs, false, 2, 3)
			if !st.img.Brokers[1].Fenced {
				t.Fatal("broker 1 not fenced after its session expired")
			}
			got := st.img.Topic("t").Partitions[0]
			if tc.wantElection {
				if got.Leader != 2 || !slices.Equal(got.ISR, []int32{2}) || got.LeaderEpoch != before.LeaderEpoch+1 {
					t.Fatalf("got leader %d ISR %v epoch %d, want the out-of-sync replica 2 leading alone at epoch %d", got.Leader, got.ISR, got.LeaderEpoch, before.LeaderEpoch+1)
				}
				return
			}
			if got.Leader != -1 || !slices.Equal(got.ISR, []int32{1}) {
				t.Fatalf("got leader %d ISR %v, want no leader (offline) and the ISR [1] kept", got.Leader, got.ISR)
			}
		})
	}
}

// TestPreferredLeaderRebalance: with rebalancing asked for, leadership
// goes back to each partition's preferred replica (its first) where that
// one is live and in the ISR, and nowhere else; without it, leaders stay.
func TestPreferredLeaderRebalance(t *testing.T) {
	c, st, clk, epochs := setup(t, 3)
	ctx := context.Background()
	createTopic(t, st, "t", 6, 3)
	// Broker 1 dies: its leaderships move to the next replica.
	expire(t, c, st, clk, epochs, false, 2, 3)
	moved := map[int32]bool{}
	for i, p := range st.img.Topic("t").Partitions {
		if p.Replicas[0] == 1 {
			if p.Leader == 1 {
				t.Fatalf("t-%d still led by the fenced broker 1", i)
			}
			moved[int32(i)] = true
		}
	}
	if len(moved) == 0 {
		t.Fatal("broker 1 was no partition's preferred leader")
	}
	// It returns and catches up on all but one of those partitions.
	e, err := c.Register(ctx, Registration{ID: 1, Incarnation: "back", ClusterID: "c", Host: "h", Port: 9001})
	if err != nil {
		t.Fatal(err)
	}
	epochs[1] = e
	if _, err := c.Heartbeat(ctx, Heartbeat{ID: 1, Epoch: e, MetadataOffset: st.img.Offset}); err != nil {
		t.Fatal(err)
	}
	behind := int32(-1)
	for i := range moved {
		if behind < 0 {
			behind = i
			continue
		}
		p := st.img.Topic("t").Partitions[i]
		p.ISR = append(slices.Clone(p.ISR), 1)
		p.Epoch++
		setPartition(t, st, "t", i, p)
	}
	leaders := func() []int32 {
		var out []int32
		for _, p := range st.img.Topic("t").Partitions {
			out = append(out, p.Leader)
		}
		return out
	}
	before := leaders()
	expire(t, c, st, clk, epochs, false, 1, 2, 3)
	if got := leaders(); !slices.Equal(got, before) {
		t.Fatalf("without rebalancing the leaders moved: %v, were %v", got, before)
	}
	expire(t, c, st, clk, epochs, true, 1, 2, 3)
	for i, p := range st.img.Topic("t").Partitions {
		want := p.Replicas[0]
		if int32(i) == behind {
			want = before[i]
		}
		if p.Leader != want {
			t.Errorf("t-%d after rebalancing: leader %d, want %d (replicas %v, ISR %v)", i, p.Leader, want, p.Replicas, p.ISR)
		}
	}
}
