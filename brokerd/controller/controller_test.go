package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"logpipe/brokerd/metadata"
)

// memStore applies proposals to an image in memory: the quorum as the
// controller sees it, minus replication.
type memStore struct {
	img *metadata.Image
}

func (s *memStore) Image() *metadata.Image { return s.img }

func (s *memStore) Propose(_ context.Context, recs ...metadata.Record) error {
	var first error
	for _, r := range recs {
		var err error
		s.img, err = s.img.Apply(s.img.Offset+1, r)
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func setup(t *testing.T, brokers int) (*Controller, *memStore, *clock, map[int32]int64) {
	t.Helper()
	st := &memStore{img: metadata.Empty("c")}
	clk := &clock{t: time.Unix(1000, 0)}
	c := New(st, Config{SessionTimeout: 2 * time.Second, Now: clk.now})
	ctx := context.Background()
	epochs := map[int32]int64{}
	for id := int32(1); id <= int32(brokers); id++ {
		e, err := c.Register(ctx, Registration{ID: id, Incarnation: fmt.Sprint("inc", id), ClusterID: "c", Host: "h", Port: 9000 + id})
		if err != nil {
			t.Fatal(err)
		}
		epochs[id] = e
		if r, err := c.Heartbeat(ctx, Heartbeat{ID: id, Epoch: e, MetadataOffset: st.img.Offset}); err != nil || r.IsFenced {
			t.Fatalf("first heartbeat of %d: %+v %v, want unfenced", id, r, err)
		}
	}
	return c, st, clk, epochs
}

func createTopic(t *testing.T, st *memStore, name string, n int32, rf int) {
	t.Helper()
	var live []metadata.Broker
	for _, id := range st.img.LiveBrokerIDs() {
		live = append(live, st.img.Brokers[id])
	}
	assign := Place(live, name, 0, n, rf)
	if err := st.Propose(context.Background(), metadata.Record{CreateTopic: &metadata.Topic{Name: name, ID: metadata.NewUUID(), Partitions: Partitions(assign)}}); err != nil {
		t.Fatal(err)
	}
}

func TestRegistration(t *testing.T) {
	c, st, clk, epochs := setup(t, 2)
	ctx := context.Background()
	// Another process with node.id 1 while the first is alive: refused.
	if _, err := c.Register(ctx, Registration{ID: 1, Incarnation: "other", ClusterID: "c"}); !errors.Is(err, ErrDuplicateBroker) {
		t.Fatalf("second live process: got %v, want ErrDuplicateBroker", err)
	}
	if _, err := c.Register(ctx, Registration{ID: 3, Incarnation: "x", ClusterID: "d"}); !errors.Is(err, ErrInconsistentCluster) {
		t.Fatalf("other cluster: got %v, want ErrInconsistentCluster", err)
	}
	// The same process retrying keeps its epoch.
	if e, err := c.Register(ctx, Registration{ID: 1, Incarnation: "inc1", ClusterID: "c", Host: "h", Port: 9001}); err != nil || e != epochs[1] {
		t.Fatalf("retried registration: epoch %d (%v), want %d", e, err, epochs[1])
	}
	// Once its session expired, a new process takes the id over, with a
	// new epoch; the old epoch's heartbeats are refused.
	clk.t = clk.t.Add(3 * time.Second)
	if _, err := c.Heartbeat(ctx, Heartbeat{ID: 2, Epoch: epochs[2], MetadataOffset: st.img.Offset}); err != nil {
		t.Fatal(err)
	}
	e, err := c.Register(ctx, Registration{ID: 1, Incarnation: "restarted", ClusterID: "c", Host: "h", Port: 9001})
	if err != nil || e == epochs[1] {
		t.Fatalf("restart: epoch %d (%v), want a new one", e, err)
	}
	if _, err := c.Heartbeat(ctx, Heartbeat{ID: 1, Epoch: epochs[1]}); !errors.Is(err, ErrStaleBrokerEpoch) {
		t.Fatalf("old epoch's heartbeat: got %v, want ErrStaleBrokerEpoch", err)
	}
	// Not caught up: stays fenced.
	if r, _ := c.Heartbeat(ctx, Heartbeat{ID: 1, Epoch: e, MetadataOffset: e - 1}); !r.IsFenced || r.IsCaughtUp {
		t.Fatalf("behind: %+v, want fenced and not caught up", r)
	}
	if r, _ := c.Heartbeat(ctx, Heartbeat{ID: 1, Epoch: e, MetadataOffset: e}); r.IsFenced {
		t.Fatalf("caught up: %+v, want unfenced", r)
	}
}

func TestFailoverElectsFromISR(t *testing.T) {
	c, st, clk, epochs := setup(t, 3)
	ctx := context.Background()
	createTopic(t, st, "t", 6, 3)
	createTopic(t, st, "one", 3, 1)
	before := st.img.Topic("t")
	// Broker 2 stops heartbeating.
	clk.t = clk.t.Add(3 * time.Second)
	for _, id := range []int32{1, 3} {
		if _, err := c.Heartbeat(ctx, Heartbeat{ID: id, Epoch: epochs[id], MetadataOffset: st.img.Offset}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Tick(ctx, false); err != nil {
		t.Fatal(err)
	}
	if !st.img.Brokers[2].Fenced {
		t.Fatal("broker 2 not fenced after its session expired")
	}
	for i, p := range st.img.Topic("t").Partitions {
		old := before.Partitions[i]
		if p.Leader == 2 || slices.Contains(p.ISR, 2) || !slices.Contains(p.ISR, p.Leader) {
			t.Errorf("t-%d after fencing 2: %+v", i, p)
		}
		if old.Leader == 2 && (p.LeaderEpoch != old.LeaderEpoch+1 || p.Leader != old.Replicas[1]) {
			t.Errorf("t-%d: leader %d epoch %d, want %d at epoch %d", i, p.Leader, p.LeaderEpoch, old.Replicas[1], old.LeaderEpoch+1)
		}
		if old.Leader != 2 && p.LeaderEpoch != old.LeaderEpoch {
			t.Errorf("t-%d: leader epoch moved without a leader change", i)
		}
	}
	// A partition whose only replica is gone is offline, keeping its ISR.
	for i, p := range st.img.Topic("one").Partitions {
		if p.Replicas[0] == 2 && (p.Leader != -1 || !slices.Equal(p.ISR, []int32{2})) {
			t.Errorf("one-%d: %+v, want leaderless with ISR [2]", i, p)
		}
	}
	// Broker 2 returns: it leads its single-replica partitions again,
	// and rejoins no ISR by itself (its leaders add it when it catches up).
	e, err := c.Register(ctx, Registration{ID: 2, Incarnation: "back", ClusterID: "c", Host: "h", Port: 9002})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Heartbeat(ctx, Heartbeat{ID: 2, Epoch: e, MetadataOffset: st.img.Offset}); err != nil {
		t.Fatal(err)
	}
	for i, p := range st.img.Topic("one").Partitions {
		if p.Replicas[0] == 2 && p.Leader != 2 {
			t.Errorf("one-%d after 2 returned: %+v, want led by 2", i, p)
		}
	}
	for i, p := range st.img.Topic("t").Partitions {
		if slices.Contains(p.ISR, 2) {
			t.Errorf("t-%d: 2 is in the ISR without having caught up: %+v", i, p)
		}
	}
}

func TestAlterPartitionChecksEpochs(t *testing.T) {
	c, st, _, _ := setup(t, 3)
	ctx := context.Background()
	createTopic(t, st, "t", 1, 3)
	p := st.img.Topic("t").Partitions[0]
	shrunk := []int32{p.Leader}
	u := PartitionUpdate{Topic: "t", Leader: p.Leader, LeaderEpoch: p.LeaderEpoch, Epoch: p.Epoch, ISR: shrunk}
	got, err := c.AlterPartition(ctx, u)
	if err != nil || !slices.Equal(got.ISR, shrunk) || got.Epoch != p.Epoch+1 || got.LeaderEpoch != p.LeaderEpoch {
		t.Fatalf("shrink: %+v %v", got, err)
	}
	// The same proposal again is stale.
	if _, err := c.AlterPartition(ctx, u); !errors.Is(err, ErrInvalidUpdateVersion) {
		t.Fatalf("stale partition epoch: got %v", err)
	}
	u.Epoch = got.Epoch
	u.LeaderEpoch--
	if _, err := c.AlterPartition(ctx, u); !errors.Is(err, ErrFencedLeaderEpoch) {
		t.Fatalf("stale leader epoch: got %v", err)
	}
	u.LeaderEpoch++
	u.ISR = []int32{p.Leader, 9}
	if _, err := c.AlterPartition(ctx, u); !errors.Is(err, ErrIneligibleReplica) {
		t.Fatalf("non-replica in ISR: got %v", err)
	}
	u.ISR = p.Replicas
	if got, err := c.AlterPartition(ctx, u); err != nil || len(got.ISR) != 3 {
		t.Fatalf("expand: %+v %v", got, err)
	}
}

func TestControlledShutdownMovesLeadership(t *testing.T) {
	c, st, _, epochs := setup(t, 3)
	ctx := context.Background()
	createTopic(t, st, "t", 6, 3)
	if ledBy(st.img, 1) == 0 {
		t.Fatal("placement left broker 1 leading nothing")
	}
	r, err := c.Heartbeat(ctx, Heartbeat{ID: 1, Epoch: epochs[1], MetadataOffset: st.img.Offset, WantShutDown: true})
	if err != nil || !r.ShouldShutDown || !r.IsFenced || ledBy(st.img, 1) != 0 {
		t.Fatalf("shutdown heartbeat: %+v %v; broker 1 leads %d", r, err, ledBy(st.img, 1))
	}
}

func TestPlacementSpreadsLeadersAndRacks(t *testing.T) {
	brokers := []metadata.Broker{{ID: 1, Rack: "a"}, {ID: 2, Rack: "a"}, {ID: 3, Rack: "b"}, {ID: 4, Rack: "b"}, {ID: 5, Rack: "c"}, {ID: 6, Rack: "c"}}
	assign := Place(brokers, "t", 0, 60, 3)
	leaders := map[int32]int{}
	rack := map[int32]string{}
	for _, b := range brokers {
		rack[b.ID] = b.Rack
	}
	for i, rs := range assign {
		leaders[rs[0]]++
		racks := map[string]bool{}
		for _, r := range rs {
			racks[rack[r]] = true
		}
		if len(rs) != 3 || len(racks) != 3 {
			t.Fatalf("partition %d: replicas %v on racks %v, want 3 replicas on 3 racks", i, rs, racks)
		}
	}
	for _, b := range brokers {
		if leaders[b.ID] != 10 {
			t.Errorf("broker %d leads %d of 60, want 10", b.ID, leaders[b.ID])
		}
	}
	if Place(brokers[:2], "t", 0, 1, 3) != nil {
		t.Error("rf 3 on 2 brokers placed")
	}
}

// A controller that takes over from one that died fences the dead one a
// session after the quorum last heard from it, not a session after the
// takeover; the other brokers get a full session from the takeover.
func TestNewControllerCountsThePreviousOnesSilence(t *testing.T) {
	_, st, clk, _ := setup(t, 3)
	createTopic(t, st, "t", 3, 3)
	died := clk.t
	clk.t = clk.t.Add(1500 * time.Millisecond) // the election
	c := New(st, Config{SessionTimeout: 2 * time.Second, Now: clk.now, Self: 2, LastSeen: map[int32]time.Time{1: died}})
	ctx := context.Background()
	clk.t = died.Add(2100 * time.Millisecond)
	if err := c.Tick(ctx, false); err != nil {
		t.Fatal(err)
	}
	for id := int32(1); id <= 3; id++ {
		if got, want := st.img.Brokers[id].Fenced, id == 1; got != want {
			t.Errorf("broker %d fenced = %v 2.1 s after broker 1 was last heard from, 0.6 s after the takeover; want %v", id, got, want)
		}
	}
	for i, p := range st.img.Topic("t").Partitions {
		if p.Leader == 1 || slices.Contains(p.ISR, 1) {
			t.Errorf("t-%d still has broker 1: %+v", i, p)
		}
	}
}

// TestNextExpiry: the controller says when the first live broker's
// session ends, a heartbeat moves it, and a fenced broker has none.
func TestNextExpiry(t *testing.T) {
	c, st, clk, epochs := setup(t, 2)
	ctx := context.Background()
	start := clk.t
	if got, want := c.NextExpiry(), start.Add(2*time.Second); !got.Equal(want) {
		t.Fatalf("NextExpiry %v, want %v (a session after the last heartbeats)", got, want)
	}
	clk.t = start.Add(time.Second)
	if _, err := c.Heartbeat(ctx, Heartbeat{ID: 1, Epoch: epochs[1], MetadataOffset: st.img.Offset}); err != nil {
		t.Fatal(err)
	}
	if got, want := c.NextExpiry(), start.Add(2*time.Second); !got.Equal(want) {
		t.Fatalf("after broker 1's heartbeat: NextExpiry %v, want broker 2's %v", got, want)
	}
	clk.t = start.Add(2 * time.Second)
	if err := c.Tick(ctx, false); err != nil {
		t.Fatal(err)
	}
	if st.img.Live(2) {
		t.Fatal("broker 2 is live at the end of its session, want fenced")
	}
	if got, want := c.NextExpiry(), start.Add(3*time.Second); !got.Equal(want) {
		t.Fatalf("with broker 2 fenced: NextExpiry %v, want broker 1's %v", got, want)
	}
}
