package quorum

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"logpipe/brokerd/metadata"
)

func topic(name string, parts int) *metadata.Topic {
	t := &metadata.Topic{Name: name, ID: metadata.NewUUID()}
	for range parts {
		t.Partitions = append(t.Partitions, metadata.Partition{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1})
	}
	return t
}

func clusterID(id string) metadata.Record { return metadata.Record{SetClusterID: &id} }

// await polls cond until it holds or the deadline passes.
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func propose(t *testing.T, s *Store, recs ...metadata.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Propose(ctx, recs...); err != nil {
		t.Fatalf("propose: %v", err)
	}
}

func TestSoloStoreKeepsItsImage(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{NodeID: 1, Dir: dir, SnapshotThreshold: 16, TrailingLogs: 4})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	ch := s.Changed()
	propose(t, s, clusterID("c1"), metadata.Record{RegisterBroker: &metadata.Broker{ID: 1, Host: "h", Port: 1}})
	select {
	case <-ch:
	default:
		t.Fatal("Changed was not closed by a proposal")
	}
	// Several records in one proposal are one entry; the first refusal
	// is returned and the others still apply.
	err = s.Propose(ctx, metadata.Record{CreateTopic: topic("a", 1)}, metadata.Record{CreateTopic: topic("a", 2)}, metadata.Record{CreateTopic: topic("b", 3)})
	if !errors.Is(err, metadata.ErrTopicExists) {
		t.Fatalf("duplicate topic in a batch: got %v, want ErrTopicExists", err)
	}
	for i := range 40 {
		propose(t, s, metadata.Record{CreateTopic: topic(fmt.Sprintf("t%d", i), 2)})
	}
	// A snapshot, then more entries after it.
	if err := s.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	name := "t0"
	propose(t, s, metadata.Record{DeleteTopic: &name})
	want := s.Image()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(Config{NodeID: 1, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	got := s.Image()
	if !got.Equal(want) || got.ClusterID != "c1" || got.Topic("t0") != nil || len(got.Topic("b").Partitions) != 3 {
		t.Fatalf("reopened image differs: got %d topics, cluster %q; want %d topics, cluster c1", len(got.Topics), got.ClusterID, len(want.Topics))
	}
}

func TestStoreRefusesSecondProcess(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(Config{NodeID: 1, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = Open(Config{NodeID: 1, Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open of one folder: got %v, want an 'in use' error", err)
	}
}

// testCluster is n voters on loopback ports, each with its own folder.
type testCluster struct {
	t      *testing.T
	voters []Voter
	dirs   []string
	stores []*Store
	cfg    Config
}

func newTestCluster(t *testing.T, n int, cfg Config) *testCluster {
	c := &testCluster{t: t, cfg: cfg}
	var lns []net.Listener
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		c.voters = append(c.voters, Voter{ID: int32(i + 1), Addr: ln.Addr().String()})
		c.dirs = append(c.dirs, filepath.Join(t.TempDir(), "meta"))
	}
	c.stores = make([]*Store, n)
	for i := range n {
		c.open(i, lns[i])
	}
	t.Cleanup(func() {
		for _, s := range c.stores {
			if s != nil {
				s.Close()
			}
		}
	})
	return c
}

func (c *testCluster) open(i int, ln net.Listener) {
	c.t.Helper()
	if ln == nil {
		var err error
		await(c.t, "the voter's port to be free again", func() bool {
			ln, err = net.Listen("tcp", c.voters[i].Addr)
			return err == nil
		})
	}
	cfg := c.cfg
	cfg.NodeID, cfg.Dir, cfg.Voters, cfg.Listener = c.voters[i].ID, c.dirs[i], c.voters, ln
	s, err := Open(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.stores[i] = s
}

func (c *testCluster) stop(i int) {
	if err := c.stores[i].Close(); err != nil {
		c.t.Errorf("closing node %d: %v", i+1, err)
	}
	c.stores[i] = nil
}

// leader waits for a leader that every running node agrees on.
func (c *testCluster) leader() *Store {
	c.t.Helper()
	var l *Store
	await(c.t, "one leader known to every running node", func() bool {
		l = nil
		ids := map[int32]bool{}
		for _, s := range c.stores {
			if s == nil {
				continue
			}
			ids[s.Leader()] = true
			if s.IsLeader() {
				l = s
			}
		}
		return l != nil && len(ids) == 1
	})
	return l
}

// converged waits until every running node has the leader's image.
func (c *testCluster) converged() *metadata.Image {
	c.t.Helper()
	want := c.leader().Image()
	await(c.t, "every node to apply the leader's image", func() bool {
		for _, s := range c.stores {
			if s != nil && !s.Image().Equal(want) {
				return false
			}
		}
		return true
	})
	return want
}

func TestClusterReplicatesAndFailsOver(t *testing.T) {
	c := newTestCluster(t, 3, Config{})
	l := c.leader()
	propose(t, l, clusterID("cl"), metadata.Record{CreateTopic: topic("a", 3)})
	c.converged()

	// A follower refuses to propose and names the leader.
	for _, s := range c.stores {
		if s == l {
			continue
		}
		var nl *NotLeaderError
		if err := s.Propose(context.Background(), metadata.Record{CreateTopic: topic("x", 1)}); !errors.As(err, &nl) || nl.Leader != l.cfg.NodeID {
			t.Fatalf("follower's propose: got %v, want NotLeaderError naming node %d", err, l.cfg.NodeID)
		}
	}

	// The leader dies: the two others elect one and go on.
	old := int(l.cfg.NodeID) - 1
	c.stop(old)
	l2 := c.leader()
	if l2.cfg.NodeID == int32(old+1) {
		t.Fatal("the stopped node is still the leader")
	}
	propose(t, l2, metadata.Record{CreateTopic: topic("b", 1)})

	// It returns and catches up.
	c.open(old, nil)
	img := c.converged()
	if img.Topic("a") == nil || img.Topic("b") == nil || img.ClusterID != "cl" {
		t.Fatalf("converged image: topics %v, cluster %q; want a and b in cluster cl", img.TopicNames(), img.ClusterID)
	}
}

func TestLaggingVoterCatchesUpFromSnapshot(t *testing.T) {
	c := newTestCluster(t, 3, Config{SnapshotThreshold: 8, TrailingLogs: 2})
	l := c.leader()
	propose(t, l, clusterID("cl"))
	lagging := 0
	if c.stores[0] == l {
		lagging = 1
	}
	c.stop(lagging)
	l = c.leader()
	for i := range 30 {
		propose(t, l, metadata.Record{CreateTopic: topic(fmt.Sprintf("t%d", i), 1)})
	}
	// The log before the snapshot is gone: only a snapshot can bring the
	// lagging voter up to date.
	if err := l.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	first, err := l.bolt.FirstIndex()
	if err != nil || first <= 3 {
		t.Fatalf("leader's first log index after the snapshot: got %d (%v), want the early entries compacted away", first, err)
	}
	c.open(lagging, nil)
	img := c.converged()
	if len(img.Topics) != 30 {
		t.Fatalf("caught-up image has %d topics, want 30", len(img.Topics))
	}
}

func TestVoterOfAnotherClusterIsRefused(t *testing.T) {
	// Cluster Y's node 3 data is what a careless operator points cluster
	// X's node 3 at.
	y := newTestCluster(t, 3, Config{})
	propose(t, y.leader(), clusterID("Y"))
	y.converged()
	yLast := y.stores[2].LastIndex()
	for i := range y.stores {
		y.stop(i)
	}

	x := newTestCluster(t, 3, Config{})
	propose(t, x.leader(), clusterID("X"))
	x.converged()
	x.stop(2)
	l := x.leader()
	x.dirs[2] = y.dirs[2]
	x.open(2, nil)
	// Both sides see it at once, from the cluster id node 3's log holds
	// (its image has none until a leader tells it what is committed): the
	// leader, whose appends node 3 refuses, and node 3.
	for _, s := range []*Store{l, x.stores[2]} {
		await(t, fmt.Sprintf("node %d to see the handshake refused", s.cfg.NodeID), func() bool {
			err := s.Refusal()
			return err != nil && strings.Contains(err.Error(), "cluster id mismatch")
		})
	}
	if got, last := x.stores[2].ClusterID(), x.stores[2].LastIndex(); got != "Y" || last != yLast {
		t.Fatalf("the refused node's data: cluster %q, log up to %d; want Y's, up to %d (untouched)", got, last, yLast)
	}
	if got := x.stores[2].Leader(); got != -1 {
		t.Fatalf("the refused node follows leader %d", got)
	}
	// X goes on with two of three.
	propose(t, l, metadata.Record{CreateTopic: topic("after", 1)})
}
