package controller

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"logpipe/brokerd/metadata"
	"logpipe/brokerd/quorum"
)

// TestRegisterMakesBrokerOnlyNodesNonvoters registers brokers with the
// controller of a real metadata quorum (one voter, node 1, over TCP): a
// broker that is not a voter becomes a non-voter of the quorum at its
// address, once; a refused registration changes nothing; a new process of
// the broker at another address moves it there.
func TestRegisterMakesBrokerOnlyNodesNonvoters(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	st, err := quorum.Open(quorum.Config{NodeID: 1, Dir: filepath.Join(t.TempDir(), "meta"),
		Voters: []quorum.Voter{{ID: 1, Addr: ln.Addr().String()}}, Listener: ln})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	id := "c"
	if err := st.Propose(ctx, metadata.Record{SetClusterID: &id}); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Unix(1000, 0)}
	c := New(st, Config{SessionTimeout: 2 * time.Second, Now: clk.now, Self: 1, SelfIncarnation: "self"})
	voter := quorum.Member{ID: 1, Addr: ln.Addr().String(), Voter: true}

	// The controller's own node is a voter: it stays one.
	if _, err := c.Register(ctx, Registration{ID: 1, Incarnation: "self", ClusterID: "c", Host: "127.0.0.1", Port: 9001}); err != nil {
		t.Fatal(err)
	}
	if got := st.Members(); !slices.Equal(got, []quorum.Member{voter}) {
		t.Fatalf("members after the voter registered: got %+v, want only %+v", got, voter)
	}

	// A broker-only node joins as a non-voter; registering again (a
	// retry) changes nothing.
	e4, err := c.Register(ctx, Registration{ID: 4, Incarnation: "four", ClusterID: "c", Host: "127.0.0.1", Port: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := []quorum.Member{voter, {ID: 4, Addr: "127.0.0.1:1"}}
	if got := st.Members(); !slices.Equal(got, want) {
		t.Fatalf("members after node 4 registered: got %+v, want %+v", got, want)
	}
	if e, err := c.Register(ctx, Registration{ID: 4, Incarnation: "four", ClusterID: "c", Host: "127.0.0.1", Port: 1}); err != nil || e != e4 {
		t.Fatalf("retried registration: epoch %d (%v), want %d", e, err, e4)
	}
	if got := st.Members(); !slices.Equal(got, want) {
		t.Fatalf("members after a retried registration: got %+v, want %+v", got, want)
	}
	if r, err := c.Heartbeat(ctx, Heartbeat{ID: 4, Epoch: e4, MetadataOffset: st.Image().Offset}); err != nil || r.IsFenced {
		t.Fatalf("node 4's heartbeat: %+v (%v), want unfenced", r, err)
	}

	// Refused: another live process with node.id 4, and a node of
	// another cluster. Neither moves nor adds a member.
	if _, err := c.Register(ctx, Registration{ID: 4, Incarnation: "second", ClusterID: "c", Host: "127.0.0.1", Port: 2}); !errors.Is(err, ErrDuplicateBroker) {
		t.Fatalf("second live process of node 4: got %v, want ErrDuplicateBroker", err)
	}
	if _, err := c.Register(ctx, Registration{ID: 5, Incarnation: "five", ClusterID: "other", Host: "127.0.0.1", Port: 3}); !errors.Is(err, ErrInconsistentCluster) {
		t.Fatalf("node of another cluster: got %v, want ErrInconsistentCluster", err)
	}
	if got := st.Members(); !slices.Equal(got, want) {
		t.Fatalf("members after refused registrations: got %+v, want %+v", got, want)
	}

	// Node 4's session expires; it comes back at another address.
	clk.t = clk.t.Add(3 * time.Second)
	if _, err := c.Register(ctx, Registration{ID: 4, Incarnation: "restarted", ClusterID: "c", Host: "127.0.0.1", Port: 2}); err != nil {
		t.Fatal(err)
	}
	want = []quorum.Member{voter, {ID: 4, Addr: "127.0.0.1:2"}}
	if got := st.Members(); !slices.Equal(got, want) {
		t.Fatalf("members after node 4 moved: got %+v, want %+v", got, want)
	}
}
