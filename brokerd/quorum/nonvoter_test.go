package quorum

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"logpipe/brokerd/metadata"
)

// nonvoter is a node outside the voters of a testCluster, on its own
// loopback port and folder.
type nonvoter struct {
	c    *testCluster
	id   int32
	dir  string
	addr string
	s    *Store
}

// openNonvoter opens node id as a non-voter of c in dir, listening on addr
// (a free port if empty). cluster is the cluster id the node's folder is
// known to belong to ("" for none), as the broker tells it from its log
// dirs' meta.properties: a restarted node's image is empty until the
// leader tells it how far the log is committed.
func openNonvoter(c *testCluster, id int32, dir, addr, cluster string) *nonvoter {
	c.t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	await(c.t, "the non-voter's port to be free", func() bool {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	cfg := c.cfg
	cfg.NodeID, cfg.Dir, cfg.Voters, cfg.Listener, cfg.Advertise = id, dir, c.voters, ln, ln.Addr().String()
	cfg.ClusterID = func() string { return cluster }
	s, err := Open(cfg)
	if err != nil {
		ln.Close()
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { s.Close() })
	return &nonvoter{c: c, id: id, dir: dir, addr: ln.Addr().String(), s: s}
}

// member returns node id's entry in s's configuration.
func member(s *Store, id int32) (Member, bool) {
	i := slices.IndexFunc(s.Members(), func(m Member) bool { return m.ID == id })
	if i < 0 {
		return Member{}, false
	}
	return s.Members()[i], true
}

// caughtUp waits until the non-voter has the leader's image.
func (n *nonvoter) caughtUp(l *Store) *metadata.Image {
	n.c.t.Helper()
	want := l.Image()
	await(n.c.t, fmt.Sprintf("non-voter %d to apply the leader's image (offset %d)", n.id, want.Offset), func() bool {
		return n.s.Image().Equal(want)
	})
	return want
}

func TestNonvoterJoinsFromASnapshotAndFollows(t *testing.T) {
	c := newTestCluster(t, 3, Config{SnapshotThreshold: 8, TrailingLogs: 2})
	l := c.leader()
	propose(t, l, clusterID("cl"))
	for i := range 30 {
		propose(t, l, metadata.Record{CreateTopic: topic(fmt.Sprintf("t%d", i), 1)})
	}
	// The early entries are compacted away: only a snapshot can bring a
	// new node up to date.
	if err := l.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	if first, err := l.bolt.FirstIndex(); err != nil || first <= 3 {
		t.Fatalf("leader's first log index after the snapshot: got %d (%v), want the early entries compacted away", first, err)
	}

	n := openNonvoter(c, 4, filepath.Join(t.TempDir(), "meta"), "", "")
	// Not added yet: it knows no member and no leader, and proposes
	// nothing.
	if m := n.s.Members(); m != nil {
		t.Fatalf("members known to a non-voter not added yet: got %+v, want none", m)
	}
	var nl *NotLeaderError
	if err := n.s.Propose(context.Background(), clusterID("x")); !errors.As(err, &nl) {
		t.Fatalf("propose on a non-voter not added yet: got %v, want a NotLeaderError", err)
	}
	// Only the leader adds members.
	for _, s := range c.stores {
		if s != l {
			if err := s.AddNonvoter(context.Background(), 4, n.addr); !errors.As(err, &nl) || nl.Leader != l.cfg.NodeID {
				t.Fatalf("AddNonvoter on follower %d: got %v, want a NotLeaderError naming node %d", s.cfg.NodeID, err, l.cfg.NodeID)
			}
		}
	}
	ctx := context.Background()
	if err := l.AddNonvoter(ctx, 4, n.addr); err != nil {
		t.Fatal(err)
	}
	if m, ok := member(l, 4); !ok || m.Voter || m.Addr != n.addr {
		t.Fatalf("node 4 in the leader's configuration: got %+v (present %v), want a non-voter at %s", m, ok, n.addr)
	}
	img := n.caughtUp(l)
	if len(img.Topics) != 30 || img.ClusterID != "cl" {
		t.Fatalf("the non-voter's image: %d topics, cluster %q; want 30 in cluster cl", len(img.Topics), img.ClusterID)
	}

	// Adding it again at the same address, or adding a voter, changes
	// nothing.
	before := l.raft.GetConfiguration().Index()
	if err := l.AddNonvoter(ctx, 4, n.addr); err != nil {
		t.Fatal(err)
	}
	if err := l.AddNonvoter(ctx, c.voters[1].ID, "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	if after := l.raft.GetConfiguration().Index(); after != before {
		t.Fatalf("configuration index after repeated adds: got %d, want %d (unchanged)", after, before)
	}
	if m, _ := member(l, c.voters[1].ID); !m.Voter || m.Addr != c.voters[1].Addr {
		t.Fatalf("voter %d after AddNonvoter of its id: got %+v, want a voter at %s", c.voters[1].ID, m, c.voters[1].Addr)
	}
	if err := n.s.Propose(ctx, clusterID("x")); !errors.As(err, &nl) || nl.Leader != l.cfg.NodeID {
		t.Fatalf("propose on the non-voter: got %v, want a NotLeaderError naming node %d", err, l.cfg.NodeID)
	}

	// The leader dies: the two other voters elect one (the non-voter does
	// not count, nor stand), and the non-voter follows it.
	c.stop(int(l.cfg.NodeID) - 1)
	l2 := c.leader()
	propose(t, l2, metadata.Record{CreateTopic: topic("after-failover", 1)})
	n.caughtUp(l2)
	if got := n.s.Leader(); got != l2.cfg.NodeID {
		t.Fatalf("the non-voter's leader: got %d, want %d", got, l2.cfg.NodeID)
	}
	if st := n.s.Status(); st.Role == "leader" || n.s.IsLeader() {
		t.Fatalf("the non-voter's role: got %s, want follower", st.Role)
	}

	// It restarts on its folder and catches up with what it missed.
	if err := n.s.Close(); err != nil {
		t.Fatal(err)
	}
	propose(t, l2, metadata.Record{CreateTopic: topic("while-away", 1)})
	n = openNonvoter(c, 4, n.dir, n.addr, "cl")
	if img := n.caughtUp(l2); img.Topic("while-away") == nil {
		t.Fatal("the restarted non-voter lacks the topic created while it was away")
	}

	// It comes back at another address: adding it there moves it.
	if err := n.s.Close(); err != nil {
		t.Fatal(err)
	}
	n = openNonvoter(c, 4, n.dir, "", "cl")
	if err := l2.AddNonvoter(ctx, 4, n.addr); err != nil {
		t.Fatal(err)
	}
	if m, _ := member(l2, 4); m.Voter || m.Addr != n.addr {
		t.Fatalf("node 4 after moving: got %+v, want a non-voter at %s", m, n.addr)
	}
	propose(t, l2, metadata.Record{CreateTopic: topic("after-move", 1)})
	n.caughtUp(l2)
}

// soloFolder returns the folder of node 4 as a quorum of its own (cluster
// Y), with a snapshot.
func soloFolder(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "meta")
	solo, err := Open(Config{NodeID: 4, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := solo.WaitLeader(context.Background()); err != nil {
		t.Fatal(err)
	}
	propose(t, solo, clusterID("Y"))
	if err := solo.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	if err := solo.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestNonvoterRefusesAnotherQuorumsFolder(t *testing.T) {
	dir := soloFolder(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	voters := []Voter{{1, "127.0.0.1:1"}, {2, "127.0.0.1:2"}, {3, "127.0.0.1:3"}}
	s, err := Open(Config{NodeID: 4, Dir: dir, Voters: voters, Listener: ln, Advertise: ln.Addr().String()})
	if err == nil {
		s.Close()
		t.Fatal("a non-voter on the folder of a quorum where it votes: opened, want refused")
	}
	if !strings.Contains(err.Error(), "another quorum") || !strings.Contains(err.Error(), `cluster "Y"`) {
		t.Fatalf("refusal: got %q, want it to name another quorum of cluster Y", err)
	}
}

func TestNonvoterOfAnotherClusterIsRefused(t *testing.T) {
	// Node 4 follows cluster Y (one voter) as a non-voter...
	y := newTestCluster(t, 1, Config{})
	propose(t, y.leader(), clusterID("Y"))
	dir := filepath.Join(t.TempDir(), "meta")
	n := openNonvoter(y, 4, dir, "", "")
	if err := y.leader().AddNonvoter(context.Background(), 4, n.addr); err != nil {
		t.Fatal(err)
	}
	n.caughtUp(y.leader())
	last, err := n.s.bolt.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.s.Close(); err != nil {
		t.Fatal(err)
	}

	// ... and its folder is then given to node 4 of cluster X, whose
	// leader adds it: both sides refuse the other's Raft connection, and
	// node 4's log is left as Y wrote it.
	x := newTestCluster(t, 3, Config{})
	l := x.leader()
	propose(t, l, clusterID("X"))
	n = openNonvoter(x, 4, dir, "", "Y")
	if err := l.AddNonvoter(context.Background(), 4, n.addr); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*Store{l, n.s} {
		await(t, fmt.Sprintf("node %d to see the handshake refused", s.cfg.NodeID), func() bool {
			return errors.Is(s.Refusal(), ErrClusterMismatch)
		})
	}
	if got, err := n.s.bolt.LastIndex(); err != nil || got != last {
		t.Fatalf("the refused non-voter's last log index: got %d (%v), want %d (untouched)", got, err, last)
	}
	if got := n.s.Image().ClusterID; got == "X" {
		t.Fatal("the refused non-voter applied cluster X's metadata")
	}
	// X goes on without it.
	propose(t, l, metadata.Record{CreateTopic: topic("after", 1)})
}

// TestVoterRefusesAnotherQuorumsFolder: a voter whose folder holds a Raft
// configuration with other voters than controller.quorum.voters names (a
// quorum of one opened as one of three voters, and three voters' folder
// opened as a quorum of one) is refused, naming the other quorum, and the
// folder is left as it was.
func TestVoterRefusesAnotherQuorumsFolder(t *testing.T) {
	dir := soloFolder(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	voters := []Voter{{1, "127.0.0.1:1"}, {2, "127.0.0.1:2"}, {4, ln.Addr().String()}}
	s, err := Open(Config{NodeID: 4, Dir: dir, Voters: voters, Listener: ln})
	if err == nil {
		s.Close()
		t.Fatal("node 4 of cluster Y opened as one of three voters, want refused")
	}
	for _, want := range []string{"another quorum", `cluster "Y"`, "voters are [4]", "[1 2 4]"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("refusal: got %q, want it to say %q", err, want)
		}
	}
	// Still cluster Y's: it opens alone again, with its image.
	again, err := Open(Config{NodeID: 4, Dir: dir})
	if err != nil {
		t.Fatalf("cluster Y's folder after the refusal: %v", err)
	}
	if err := again.WaitLeader(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := again.ClusterID(); got != "Y" {
		t.Errorf("cluster Y's folder after the refusal holds cluster %q", got)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}

	// Three voters' folder (bootstrapped at its first open), opened as a
	// quorum of one.
	dir3 := filepath.Join(t.TempDir(), "meta3")
	ln3, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	three, err := Open(Config{NodeID: 3, Dir: dir3, Voters: []Voter{{1, "127.0.0.1:1"}, {2, "127.0.0.1:2"}, {3, ln3.Addr().String()}}, Listener: ln3})
	if err != nil {
		t.Fatal(err)
	}
	if err := three.Close(); err != nil {
		t.Fatal(err)
	}
	ln3.Close()
	if s, err := Open(Config{NodeID: 3, Dir: dir3}); err == nil {
		s.Close()
		t.Fatal("a voter of three opened as a quorum of one, want refused")
	} else if !strings.Contains(err.Error(), "voters are [1 2 3]") || !strings.Contains(err.Error(), "quorum of one") {
		t.Fatalf("refusal: got %q, want it to name the voters [1 2 3] and a quorum of one", err)
	}
}
