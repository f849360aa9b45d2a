// Package controller is the active controller of a brokerd cluster: the
// node that leads the metadata quorum runs it. It registers brokers and
// watches their heartbeats, fences a broker whose session expired and
// elects new leaders from the ISR for what it led, unfences brokers that
// caught up, carries out controlled shutdowns, commits the ISR changes
// leaders propose, and places new replicas.
//
// It changes nothing itself: every decision is a list of metadata records
// proposed to the quorum, which every node applies. Its only state of its
// own is when it last heard from each broker, kept in memory and started
// afresh when a node becomes the controller: every broker is given a full
// session, but the previous controller only what is left of its own since
// the quorum last heard from it (it may be what died).
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"logpipe/brokerd/metadata"
)

// Proposer is the metadata quorum as the controller uses it.
type Proposer interface {
	Image() *metadata.Image
	Propose(ctx context.Context, recs ...metadata.Record) error
}

// Config configures a Controller.
type Config struct {
	// SessionTimeout is broker.session.timeout.ms: a broker not heard
	// from for this long is fenced.
	SessionTimeout time.Duration
	// UncleanLeaderElection lets a replica outside the ISR lead when no
	// in-sync one is live (unclean.leader.election.enable), losing what
	// only the ISR had.
	UncleanLeaderElection bool
	// Self and SelfIncarnation are the controller's own node and process:
	// a registration of Self by this very process needs no wait for the
	// old process's session to expire (it is gone: this one is Self),
	// and one by any other process is a duplicate.
	Self            int32
	SelfIncarnation string
	// LastSeen are times the new controller already knows brokers to
	// have been alive at, earlier than its start: the previous
	// controller's last word to the quorum. Those brokers' sessions run
	// from then rather than from New.
	LastSeen map[int32]time.Time
	Now      func() time.Time
	Log      *slog.Logger
}

// Errors of the controller's operations; the broker maps them to Kafka
// error codes.
var (
	ErrStaleBrokerEpoch     = errors.New("controller: stale broker epoch")
	ErrDuplicateBroker      = errors.New("controller: another live process is registered with this node.id")
	ErrInconsistentCluster  = errors.New("controller: the broker belongs to another cluster")
	ErrUnknownBroker        = errors.New("controller: broker is not registered")
	ErrFencedLeaderEpoch    = errors.New("controller: the leader epoch is not the current one")
	ErrInvalidUpdateVersion = errors.New("controller: the partition epoch is not the current one")
	ErrIneligibleReplica    = errors.New("controller: a proposed ISR member is not a live replica")
	ErrUnknownPartition     = errors.New("controller: unknown topic or partition")
	ErrNotLeader            = errors.New("controller: the request does not come from the partition's leader")
)

// Controller is the active controller's state. Its methods are safe for
// concurrent use; they serialise on one lock so that each decision is
// made on the image the previous one left.
type Controller struct {
	cfg   Config
	store Proposer

	mu       sync.Mutex
	lastSeen map[int32]time.Time
	// applied is how far each broker said, in its last heartbeat, it
	// applied the metadata, and when it last said it had applied all of
	// it.
	applied map[int32]Progress
}

// Progress is what the controller knows of a broker's metadata from its
// heartbeats.
type Progress struct {
	// Offset is the metadata offset the broker applied, as of Heard.
	Offset int64
	// Heard is when its last heartbeat came; CaughtUp when the last one
	// that found it caught up with the controller's metadata came (zero
	// if none did).
	Heard, CaughtUp time.Time
}

// Progress returns what the controller heard of broker id's metadata;
// ok is false if nothing since it became the controller.
func (c *Controller) Progress(id int32) (p Progress, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok = c.applied[id]
	return p, ok
}

// New returns the controller of store. Every registered broker counts as
// heard from now, or when cfg.LastSeen says if that is earlier.
func New(store Proposer, cfg Config) *Controller {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	c := &Controller{cfg: cfg, store: store, lastSeen: map[int32]time.Time{}, applied: map[int32]Progress{}}
	now := cfg.Now()
	for _, id := range store.Image().BrokerIDs() {
		c.lastSeen[id] = now
		if t, ok := cfg.LastSeen[id]; ok && t.Before(now) {
			c.lastSeen[id] = t
		}
	}
	return c
}

// Registration is what a starting broker tells the controller.
type Registration struct {
	ID          int32
	Incarnation string
	ClusterID   string
	Host        string
	Port        int32
	Rack        string
	// Listeners are its client listeners, "NAME://host:port,…".
	Listeners string
}

// nonvoters is the metadata quorum (quorum.Store) as it takes in
// broker-only nodes.
type nonvoters interface {
	AddNonvoter(ctx context.Context, id int32, addr string) error
}

// Register records a broker process, fenced until its first heartbeat
// that finds it caught up, and returns its broker epoch. A new process of
// a broker that is still registered (a restart) first has its old
// registration fenced: what it led is led by others now. A second live
// process with the same id is refused. A broker that is not a voter of the
// metadata quorum (a broker-only node) is made a non-voter of it at its
// address, so that the metadata log comes to it; again is a no-op, from
// another address it moves.
func (c *Controller) Register(ctx context.Context, r Registration) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	img := c.store.Image()
	if r.ClusterID != "" && r.ClusterID != img.ClusterID {
		return -1, fmt.Errorf("%w: it says %s, this is %s", ErrInconsistentCluster, r.ClusterID, img.ClusterID)
	}
	var recs []metadata.Record
	if r.ID == c.cfg.Self && c.cfg.SelfIncarnation != "" && r.Incarnation != c.cfg.SelfIncarnation {
		return -1, fmt.Errorf("%w: node.id %d is this controller's own", ErrDuplicateBroker, r.ID)
	}
	if old, ok := img.Brokers[r.ID]; ok && old.Incarnation != r.Incarnation {
		alive := c.cfg.Now().Sub(c.lastSeen[r.ID]) < c.cfg.SessionTimeout && r.ID != c.cfg.Self
		if !old.Fenced && old.Incarnation != "" && alive {
			return -1, fmt.Errorf("%w: node.id %d (%s:%d) heartbeat %v ago", ErrDuplicateBroker, r.ID, old.Host, old.Port, c.cfg.Now().Sub(c.lastSeen[r.ID]).Round(time.Millisecond))
		}
		recs = append(recs, c.fence(img, old)...)
	}
	if q, ok := c.store.(nonvoters); ok {
		if err := q.AddNonvoter(ctx, r.ID, net.JoinHostPort(r.Host, strconv.Itoa(int(r.Port)))); err != nil {
			return -1, err
		}
	}
	if old, ok := img.Brokers[r.ID]; ok && old.Incarnation == r.Incarnation && old.Host == r.Host && old.Port == r.Port && old.Rack == r.Rack && old.Listeners == r.Listeners {
		return old.Epoch, nil // a retried registration
	}
	b := metadata.Broker{ID: r.ID, Host: r.Host, Port: r.Port, Rack: r.Rack, Incarnation: r.Incarnation, Fenced: true, Listeners: r.Listeners}
	recs = append(recs, metadata.Record{RegisterBroker: &b})
	if err := c.store.Propose(ctx, recs...); err != nil {
		return -1, err
	}
	c.lastSeen[r.ID] = c.cfg.Now()
	nb := c.store.Image().Brokers[r.ID]
	c.cfg.Log.Info("broker registered", "broker", r.ID, "epoch", nb.Epoch, "address", fmt.Sprintf("%s:%d", r.Host, r.Port), "rack", r.Rack)
	return nb.Epoch, nil
}

// fence returns the records that fence b and move what it leads and the
// ISRs it is in to others.
func (c *Controller) fence(img *metadata.Image, b metadata.Broker) []metadata.Record {
	recs := []metadata.Record{{FenceBroker: &metadata.BrokerFence{ID: b.ID, Epoch: b.Epoch, Fenced: true}}}
	after, _ := img.Apply(img.Offset, recs[0])
	for _, ch := range afterFencing(after, b.ID, c.cfg.UncleanLeaderElection) {
		recs = append(recs, ch.record())
	}
	return recs
}

// Heartbeat is a broker's periodic word to the controller.
type Heartbeat struct {
	ID    int32
	Epoch int64
	// MetadataOffset is the last metadata offset the broker applied.
	MetadataOffset int64
	WantFence      bool
	WantShutDown   bool
}

// HeartbeatResult is the controller's answer.
type HeartbeatResult struct {
	IsCaughtUp     bool
	IsFenced       bool
	ShouldShutDown bool
}

// Heartbeat records that a broker is alive and acts on what it asks: a
// fenced broker that has applied the metadata up to its registration is
// unfenced (and leads what has no leader and it can lead); one that wants
// to shut down has its leadership and ISR places moved to others first,
// and is told it may stop when it leads nothing others could lead.
func (c *Controller) Heartbeat(ctx context.Context, hb Heartbeat) (HeartbeatResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	img := c.store.Image()
	b, ok := img.Brokers[hb.ID]
	if !ok {
		return HeartbeatResult{}, fmt.Errorf("%w: %d", ErrUnknownBroker, hb.ID)
	}
	if b.Epoch != hb.Epoch {
		return HeartbeatResult{}, fmt.Errorf("%w: broker %d sent epoch %d, registered as %d", ErrStaleBrokerEpoch, hb.ID, hb.Epoch, b.Epoch)
	}
	now := c.cfg.Now()
	c.lastSeen[hb.ID] = now
	pr := c.applied[hb.ID]
	pr.Offset, pr.Heard = hb.MetadataOffset, now
	if hb.MetadataOffset >= img.Offset {
		pr.CaughtUp = now
	}
	c.applied[hb.ID] = pr
	caughtUp := hb.MetadataOffset >= b.Epoch
	switch {
	case hb.WantShutDown || hb.WantFence:
		if !b.Fenced {
			if err := c.store.Propose(ctx, c.fence(img, b)...); err != nil {
				return HeartbeatResult{}, err
			}
			c.cfg.Log.Info("broker fenced at its request", "broker", hb.ID, "shutting_down", hb.WantShutDown)
		}
	case b.Fenced && caughtUp:
		recs := []metadata.Record{{FenceBroker: &metadata.BrokerFence{ID: b.ID, Epoch: b.Epoch, Fenced: false}}}
		after, _ := img.Apply(img.Offset, recs[0])
		for _, ch := range leaderless(after, c.cfg.UncleanLeaderElection, false) {
			recs = append(recs, ch.record())
		}
		if err := c.store.Propose(ctx, recs...); err != nil {
			return HeartbeatResult{}, err
		}
		c.cfg.Log.Info("broker unfenced", "broker", hb.ID, "epoch", b.Epoch)
	}
	after := c.store.Image()
	nb := after.Brokers[hb.ID]
	return HeartbeatResult{
		IsCaughtUp:     caughtUp,
		IsFenced:       nb.Fenced,
		ShouldShutDown: hb.WantShutDown && ledBy(after, hb.ID) == 0,
	}, nil
}

// Tick fences the brokers whose session expired, elects leaders where
// that became possible, finishes reassignments whose new replicas caught
// up, and, if rebalance, moves leadership back to
// preferred replicas (auto.leader.rebalance.enable). The controller's node
// calls it every heartbeat interval.
func (c *Controller) Tick(ctx context.Context, rebalance bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	img := c.store.Image()
	now := c.cfg.Now()
	var recs []metadata.Record
	for _, id := range img.LiveBrokerIDs() {
		seen, ok := c.lastSeen[id]
		if !ok {
			c.lastSeen[id] = now
			continue
		}
		if now.Sub(seen) < c.cfg.SessionTimeout {
			continue
		}
		b := img.Brokers[id]
		c.cfg.Log.Warn("broker session expired; fencing it", "broker", id, "last_heartbeat", now.Sub(seen).Round(time.Millisecond))
		fr := c.fence(img, b)
		recs = append(recs, fr...)
		for _, r := range fr {
			img, _ = img.Apply(img.Offset, r)
		}
	}
	for _, ch := range leaderless(img, c.cfg.UncleanLeaderElection, rebalance) {
		recs = append(recs, ch.record())
		img, _ = img.Apply(img.Offset, ch.record())
	}
	for _, ch := range reassignmentsDone(img) {
		recs = append(recs, ch.record())
	}
	if len(recs) == 0 {
		return nil
	}
	return c.store.Propose(ctx, recs...)
}

// NextExpiry returns when the first live broker's session runs out if it
// sends no heartbeat before then (zero if no broker is live), so that the
// controller's node can call Tick right then instead of up to a heartbeat
// interval later.
func (c *Controller) NextExpiry() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	var first time.Time
	for _, id := range c.store.Image().LiveBrokerIDs() {
		seen, ok := c.lastSeen[id]
		if !ok {
			continue
		}
		if at := seen.Add(c.cfg.SessionTimeout); first.IsZero() || at.Before(first) {
			first = at
		}
	}
	return first
}

// PartitionUpdate is a leader's proposal for a partition's ISR
// (AlterPartition).
type PartitionUpdate struct {
	Topic       string
	Partition   int32
	Leader      int32
	LeaderEpoch int32
	// Epoch is the partition epoch the leader's proposal is based on.
	Epoch int32
	ISR   []int32
}

// AlterPartition commits a leader's ISR change if it is based on the
// current state, and returns the state committed. A new ISR member must
// be a live replica (the leader has seen it catch up).
func (c *Controller) AlterPartition(ctx context.Context, u PartitionUpdate) (metadata.Partition, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	img := c.store.Image()
	t := img.Topic(u.Topic)
	if t == nil || u.Partition < 0 || int(u.Partition) >= len(t.Partitions) {
		return metadata.Partition{}, fmt.Errorf("%w: %s-%d", ErrUnknownPartition, u.Topic, u.Partition)
	}
	p := t.Partitions[u.Partition]
	switch {
	case u.Leader != p.Leader:
		return p, fmt.Errorf("%w: %s-%d is led by %d, not %d", ErrNotLeader, u.Topic, u.Partition, p.Leader, u.Leader)
	case u.LeaderEpoch != p.LeaderEpoch:
		return p, fmt.Errorf("%w: %s-%d is at leader epoch %d, not %d", ErrFencedLeaderEpoch, u.Topic, u.Partition, p.LeaderEpoch, u.LeaderEpoch)
	case u.Epoch != p.Epoch:
		return p, fmt.Errorf("%w: %s-%d is at partition epoch %d, not %d", ErrInvalidUpdateVersion, u.Topic, u.Partition, p.Epoch, u.Epoch)
	}
	isr := slices.Clone(u.ISR)
	slices.Sort(isr)
	isr = slices.Compact(isr)
	if !slices.Contains(isr, p.Leader) {
		return p, fmt.Errorf("%w: the leader %d must stay in the ISR", ErrIneligibleReplica, p.Leader)
	}
	for _, r := range isr {
		if !slices.Contains(p.Replicas, r) || (!slices.Contains(p.ISR, r) && !img.Live(r)) {
			return p, fmt.Errorf("%w: %d", ErrIneligibleReplica, r)
		}
	}
	n, ok := withState(p, p.Leader, isr)
	if !ok {
		return p, nil
	}
	// The last target replica of a reassignment caught up: it ends now.
	if done, ok := completed(img, n); ok {
		n = done
	}
	if err := c.store.Propose(ctx, change{u.Topic, u.Partition, n}.record()); err != nil {
		return p, err
	}
	return c.store.Image().Topic(u.Topic).Partitions[u.Partition], nil
}

// AllocateProducerIDs records a block of size producer ids for a broker
// and returns its first id.
func (c *Controller) AllocateProducerIDs(ctx context.Context, broker int32, epoch int64, size int64) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	img := c.store.Image()
	if b, ok := img.Brokers[broker]; !ok || b.Epoch != epoch {
		return -1, fmt.Errorf("%w: broker %d epoch %d", ErrStaleBrokerEpoch, broker, epoch)
	}
	first := img.NextProducerID
	if err := c.store.Propose(ctx, metadata.Record{ProducerIDs: &metadata.ProducerIDBlock{Broker: broker, First: first, Size: size}}); err != nil {
		return -1, err
	}
	return first, nil
}
