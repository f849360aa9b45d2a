package controller

import (
	"context"
	"errors"
	"slices"
	"testing"

	"logpipe/brokerd/metadata"
)

// TestReassignmentMovesReplicas moves a partition led by broker 1 from
// [1 2 3] to [4 2 3]: broker 4 is added and 1 is being removed until 4
// is in the ISR, then the partition keeps [4 2 3] with a leader among
// them; every change of the replica set starts a leader epoch.
func TestReassignmentMovesReplicas(t *testing.T) {
	c, st, _, _ := setup(t, 4)
	ctx := context.Background()
	if err := st.Propose(ctx, metadata.Record{CreateTopic: &metadata.Topic{Name: "t", ID: metadata.NewUUID(), Partitions: Partitions([][]int32{{1, 2, 3}})}}); err != nil {
		t.Fatal(err)
	}
	p0 := st.img.Topic("t").Partitions[0]
	if err := c.Reassign(ctx, "t", 0, []int32{4, 2, 3}, true); err != nil {
		t.Fatal(err)
	}
	p := st.img.Topic("t").Partitions[0]
	if !slices.Equal(p.Replicas, []int32{4, 2, 3, 1}) || !slices.Equal(p.Adding, []int32{4}) || !slices.Equal(p.Removing, []int32{1}) ||
		p.Leader != 1 || p.LeaderEpoch != p0.LeaderEpoch+1 || !slices.Equal(p.Target(), []int32{4, 2, 3}) {
		t.Fatalf("under way: %+v; want replicas [4 2 3 1], adding [4], removing [1], leader 1 at epoch %d", p, p0.LeaderEpoch+1)
	}
	// The leader's ISR changes keep the reassignment going.
	got, err := c.AlterPartition(ctx, PartitionUpdate{Topic: "t", Partition: 0, Leader: 1, LeaderEpoch: p.LeaderEpoch, Epoch: p.Epoch, ISR: []int32{1, 2}})
	if err != nil || !got.Reassigning() {
		t.Fatalf("ISR shrink during the move: %+v, %v; want the move still under way", got, err)
	}
	if err := c.Tick(ctx, false); err != nil || !st.img.Topic("t").Partitions[0].Reassigning() {
		t.Fatalf("a tick finished a move whose new replica is not in sync: %+v, %v", st.img.Topic("t").Partitions[0], err)
	}
	// Broker 4 caught up but 3 is still out of sync: the move goes on
	// until every target replica is in the ISR.
	got, err = c.AlterPartition(ctx, PartitionUpdate{Topic: "t", Partition: 0, Leader: 1, LeaderEpoch: got.LeaderEpoch, Epoch: got.Epoch, ISR: []int32{1, 2, 4}})
	if err != nil || !got.Reassigning() {
		t.Fatalf("with 3 out of sync: %+v, %v; want the move still under way", got, err)
	}
	got, err = c.AlterPartition(ctx, PartitionUpdate{Topic: "t", Partition: 0, Leader: 1, LeaderEpoch: got.LeaderEpoch, Epoch: got.Epoch, ISR: []int32{1, 2, 3, 4}})
	if err != nil {
		t.Fatal(err)
	}
	if got.Reassigning() || !slices.Equal(got.Replicas, []int32{4, 2, 3}) || !slices.Equal(got.ISR, []int32{2, 3, 4}) || got.Leader != 4 || got.LeaderEpoch != p.LeaderEpoch+1 {
		t.Fatalf("finished: %+v; want replicas [4 2 3], ISR [2 3 4], led by 4 at epoch %d", got, p.LeaderEpoch+1)
	}
}

// TestReassignmentCancelAndErrors: a move is cancelled back to the old
// replicas; bad targets and a cancel with nothing to cancel are refused.
func TestReassignmentCancelAndErrors(t *testing.T) {
	c, st, _, _ := setup(t, 4)
	ctx := context.Background()
	if err := st.Propose(ctx, metadata.Record{CreateTopic: &metadata.Topic{Name: "t", ID: metadata.NewUUID(), Partitions: Partitions([][]int32{{1, 2}})}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		target []int32
		sameRF bool
		want   error
	}{
		{nil, false, ErrNoReassignment},
		{[]int32{}, false, ErrInvalidReplicaAssignment},
		{[]int32{3, 3}, false, ErrInvalidReplicaAssignment},
		{[]int32{3, 9}, false, ErrInvalidReplicaAssignment},
		{[]int32{1, 2, 3}, true, ErrInvalidReplicationFactor},
	} {
		if err := c.Reassign(ctx, "t", 0, tc.target, tc.sameRF); !errors.Is(err, tc.want) {
			t.Errorf("target %v (same RF %v): got %v, want %v", tc.target, tc.sameRF, err, tc.want)
		}
	}
	if err := c.Reassign(ctx, "t", 5, []int32{1}, false); !errors.Is(err, ErrUnknownPartition) {
		t.Errorf("unknown partition: got %v", err)
	}
	if err := c.Reassign(ctx, "t", 0, []int32{1, 2, 3}, false); err != nil {
		t.Fatal(err)
	}
	if p := st.img.Topic("t").Partitions[0]; !slices.Equal(p.Adding, []int32{3}) || len(p.Removing) != 0 {
		t.Fatalf("growing to three replicas: %+v", p)
	}
	if err := c.Reassign(ctx, "t", 0, nil, false); err != nil {
		t.Fatal(err)
	}
	if p := st.img.Topic("t").Partitions[0]; p.Reassigning() || !slices.Equal(p.Replicas, []int32{1, 2}) || !slices.Equal(p.ISR, []int32{1, 2}) || p.Leader != 1 {
		t.Fatalf("cancelled: %+v; want back on [1 2], led by 1", p)
	}
	// Shrinking needs no catching up: done at once.
	if err := c.Reassign(ctx, "t", 0, []int32{2}, false); err != nil {
		t.Fatal(err)
	}
	if p := st.img.Topic("t").Partitions[0]; p.Reassigning() || !slices.Equal(p.Replicas, []int32{2}) || p.Leader != 2 {
		t.Fatalf("shrunk to [2]: %+v", p)
	}
}
