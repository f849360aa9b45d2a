// Package quorum is brokerd's replicated metadata store: the metadata
// records (package metadata) are the commands of a Raft log kept by
// hashicorp/raft, and every node applies the committed entries, in log
// order, to its image. The Raft leader is the cluster's active controller.
//
// A node configured without voters runs a quorum of one over an in-memory
// transport: the same code path as a cluster, with no network.
//
// A node that is not one of the voters is a non-voter (a broker-only
// node): it starts with no configuration of its own and waits for the
// leader to add it (AddNonvoter); from then on the leader sends it the log,
// or a snapshot, which it applies like every other node. It never votes,
// never stands for election and is not counted in the majority.
//
// On disk, in the metadata folder (Kafka's __cluster_metadata-0): raft.db
// (bbolt: the Raft log and its term and vote) and snapshots/ (the image as
// of an entry, so the log stays bounded and a node that was away catches
// up from a snapshot).
package quorum

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"logpipe/brokerd/metadata"
)

// Voter is one member of the quorum (an entry of controller.quorum.voters).
type Voter struct {
	ID int32
	// Addr is host:port of the voter's controller listener.
	Addr string
}

// Config configures a Store. Zero durations take the defaults below.
type Config struct {
	NodeID int32
	// Dir holds the Raft log and snapshots.
	Dir string
	// Voters are the quorum's voting members. Empty means a quorum of
	// one, this node alone, with no network. A node not among them is a
	// non-voter.
	Voters []Voter
	// Listener accepts the other nodes' Raft connections; needed when
	// Voters is not empty.
	Listener net.Listener
	// DialTLS, when set, makes the Raft streams this node dials speak TLS
	// (offering RaftALPN): it returns the client configuration for the
	// peer at addr, host:port. The accepting side is SplitTLSListener's
	// (SplitSharedTLSListener's on a non-voter).
	DialTLS func(addr string) (*tls.Config, error)
	// StreamAuth, when set, makes the Raft streams authenticate with
	// SASL both ways: the ones this node dials send its token, the ones
	// it accepts are checked.
	StreamAuth *StreamAuth
	// Advertise is host:port where the leader reaches a non-voter's
	// Listener; a voter is reached at its entry in Voters.
	Advertise string
	// ClusterID returns the cluster id this node's data belongs to when
	// the image has none yet (meta.properties); it may be nil.
	ClusterID func() string
	Log       *slog.Logger

	// HeartbeatTimeout is how long a follower waits for the leader before
	// it stands for election; ElectionTimeout how long a candidate waits
	// for votes; LeaderLeaseTimeout how long a leader keeps leading
	// without hearing from a majority.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	// SnapshotThreshold is how many entries since the last snapshot make
	// the next one; TrailingLogs how many entries a snapshot leaves in the
	// log for followers that are a little behind.
	SnapshotThreshold uint64
	TrailingLogs      uint64
}

// Defaults of Config. A leader that dies is replaced within about
// HeartbeatTimeout plus ElectionTimeout (1–2 s with these), which is what
// the broker's failover time is built on.
const (
	DefaultHeartbeatTimeout   = 500 * time.Millisecond
	DefaultElectionTimeout    = 500 * time.Millisecond
	DefaultLeaderLeaseTimeout = 250 * time.Millisecond
	DefaultSnapshotThreshold  = 4096
	DefaultTrailingLogs       = 1024
	// soloTimeout is the heartbeat and election timeout of a quorum of
	// one: there is nobody to wait for, only the first election.
	soloTimeout = 50 * time.Millisecond
)

// ParseVoters parses controller.quorum.voters: "1@host:9093,2@host:9193".
func ParseVoters(s string) ([]Voter, error) {
	var out []Voter
	seen := map[int32]bool{}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		id, addr, ok := strings.Cut(part, "@")
		if !ok {
			return nil, fmt.Errorf("quorum: voter %q is not id@host:port", part)
		}
		n, err := strconv.ParseInt(id, 10, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("quorum: voter %q: the id must be a node.id", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("quorum: voter %q: %v", part, err)
		}
		if seen[int32(n)] {
			return nil, fmt.Errorf("quorum: voter id %d is listed twice", n)
		}
		seen[int32(n)] = true
		out = append(out, Voter{ID: int32(n), Addr: addr})
	}
	return out, nil
}

// ErrNotLeader is returned by Propose on a node that is not the active
// controller; NotLeaderError says which node is, if known.
var ErrNotLeader = errors.New("quorum: this node is not the active controller")

// NotLeaderError is ErrNotLeader with the leader's id (-1 if unknown).
type NotLeaderError struct{ Leader int32 }

func (e *NotLeaderError) Error() string {
	if e.Leader < 0 {
		return ErrNotLeader.Error() + " (no controller is elected yet)"
	}
	return fmt.Sprintf("%v (node %d is)", ErrNotLeader, e.Leader)
}

// Unwrap makes errors.Is(err, ErrNotLeader) hold.
func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }

// Store is a metadata.Store replicated by Raft.
type Store struct {
	cfg   Config
	fsm   *fsm
	raft  *raft.Raft
	bolt  *raftboltdb.BoltStore
	trans raft.Transport
	// solo is a quorum of one, over an in-memory transport.
	solo bool

	// stored is the cluster id found in the folder's own log when it was
	// opened, which the image only shows once Raft has applied that
	// entry: a restarted node learns its commit index from the leader.
	stored string

	mu      sync.Mutex
	refusal error // the last handshake refused, by either side

	observer      *raft.Observer
	observations  chan raft.Observation
	leaderChanged atomic.Pointer[chan struct{}]

	closeOnce sync.Once
	closeErr  error
}

var _ metadata.Store = (*Store)(nil)

// Open opens (creating if new) the store in cfg.Dir and starts its Raft
// node. A new voter bootstraps the quorum from cfg.Voters; every voter does
// the same with the same list, and the first election makes the cluster.
// A new non-voter bootstraps nothing: it follows once the leader adds it;
// one whose folder holds a quorum in which it votes is refused.
// Open returns at once: use WaitLeader, or watch Changed, for the quorum.
func Open(cfg Config) (*Store, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	solo := len(cfg.Voters) == 0
	if solo {
		cfg.Voters = []Voter{{ID: cfg.NodeID}}
	}
	advertise := cfg.Advertise
	me := slices.IndexFunc(cfg.Voters, func(v Voter) bool { return v.ID == cfg.NodeID })
	if me >= 0 {
		advertise = cfg.Voters[me].Addr
	} else if advertise == "" {
		return nil, fmt.Errorf("quorum: node.id %d is not one of the voters, and a non-voter needs the address the leader reaches it at", cfg.NodeID)
	}
	if !solo && cfg.Listener == nil {
		return nil, errors.New("quorum: a listener is needed for the other nodes")
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "snapshots"), 0o755); err != nil {
		return nil, fmt.Errorf("quorum: %w", err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = serverID(cfg.NodeID)
	rc.HeartbeatTimeout = orDefault(cfg.HeartbeatTimeout, DefaultHeartbeatTimeout)
	rc.ElectionTimeout = orDefault(cfg.ElectionTimeout, DefaultElectionTimeout)
	rc.LeaderLeaseTimeout = orDefault(cfg.LeaderLeaseTimeout, DefaultLeaderLeaseTimeout)
	if solo {
		rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = soloTimeout, soloTimeout, soloTimeout
	}
	rc.LeaderLeaseTimeout = min(rc.LeaderLeaseTimeout, rc.HeartbeatTimeout)
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	if rc.SnapshotThreshold == 0 {
		rc.SnapshotThreshold = DefaultSnapshotThreshold
	}
	rc.TrailingLogs = cfg.TrailingLogs
	if rc.TrailingLogs == 0 {
		rc.TrailingLogs = DefaultTrailingLogs
	}
	rc.Logger = newRaftLogger(cfg.Log)
	rc.NoLegacyTelemetry = true

	bolt, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(cfg.Dir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: time.Second},
	})
	if err != nil {
		if errors.Is(err, bbolt.ErrTimeout) {
			return nil, fmt.Errorf("quorum: %s is in use by another process", cfg.Dir)
		}
		return nil, fmt.Errorf("quorum: opening the Raft log in %s: %w", cfg.Dir, err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(cfg.Dir, "snapshots"), 2, rc.Logger)
	if err != nil {
		bolt.Close()
		return nil, fmt.Errorf("quorum: %w", err)
	}
	s := &Store{cfg: cfg, fsm: newFSM(), bolt: bolt, solo: solo}
	var stream *streamLayer
	var servers []raft.Server
	if solo {
		addr, t := raft.NewInmemTransport("")
		s.trans = t
		servers = []raft.Server{{ID: rc.LocalID, Address: addr}}
	} else {
		stream = newStreamLayer(cfg.Listener, tcpAddr(advertise), s.ClusterID, s.noteRefusal, cfg.StreamAuth)
		stream.dialTLS = cfg.DialTLS
		s.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: stream, MaxPool: 3, Timeout: 2 * time.Second, Logger: rc.Logger,
		})
		for _, v := range cfg.Voters {
			servers = append(servers, raft.Server{ID: serverID(v.ID), Address: raft.ServerAddress(v.Addr)})
		}
	}
	fail := func(err error) (*Store, error) {
		if c, ok := s.trans.(io.Closer); ok {
			c.Close()
		}
		bolt.Close()
		return nil, err
	}
	exists, err := raft.HasExistingState(bolt, bolt, snaps)
	if err != nil {
		return fail(fmt.Errorf("quorum: %w", err))
	}
	if exists {
		if metas, err := snaps.List(); err == nil && len(metas) == 0 {
			// Without a snapshot the entry that set the cluster id is
			// among the log's first; with one, NewRaft restores it.
			s.stored = loggedClusterID(bolt)
		}
	}
	if exists && me < 0 {
		if err := checkNonvoterState(cfg, rc, bolt, snaps); err != nil {
			return fail(err)
		}
	}
	if exists && me >= 0 {
		if err := checkVoterState(cfg, rc, bolt, snaps, solo); err != nil {
			return fail(err)
		}
	}
	if !exists && me >= 0 {
		if err := raft.BootstrapCluster(rc, bolt, bolt, snaps, s.trans, raft.Configuration{Servers: servers}); err != nil {
			return fail(fmt.Errorf("quorum: bootstrapping: %w", err))
		}
	}
	r, err := raft.NewRaft(rc, s.fsm, bolt, bolt, snaps, s.trans)
	if err != nil {
		return fail(fmt.Errorf("quorum: %w", err))
	}
	s.raft = r
	s.watchLeader()
	if stream != nil {
		// Only now: NewRaft has restored the snapshot, so the image
		// holds the cluster id a handshake is checked against.
		stream.start()
	}
	return s, nil
}

// loggedClusterID returns the cluster id the first entry of logs that sets
// one names, "" if none does.
func loggedClusterID(logs raft.LogStore) string {
	first, err := logs.FirstIndex()
	if err != nil {
		return ""
	}
	last, err := logs.LastIndex()
	if err != nil {
		return ""
	}
	for i := max(first, 1); i <= last; i++ {
		var l raft.Log
		if logs.GetLog(i, &l) != nil {
			return ""
		}
		if l.Type != raft.LogCommand {
			continue
		}
		recs, err := metadata.DecodeEntry(l.Data)
		if err != nil {
			return ""
		}
		for _, r := range recs {
			if r.SetClusterID != nil {
				return *r.SetClusterID
			}
		}
	}
	return ""
}

// watchLeader makes LeaderChanged fire whenever the quorum's leader
// changes (this node's leadership included).
func (s *Store) watchLeader() {
	ch := make(chan struct{})
	s.leaderChanged.Store(&ch)
	obs := make(chan raft.Observation, 4)
	s.observations = obs
	s.observer = raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	s.raft.RegisterObserver(s.observer)
	go func() {
		for range obs {
			next := make(chan struct{})
			close(*s.leaderChanged.Swap(&next))
		}
	}()
}

// LeaderChanged returns a channel closed at the next change of the
// quorum's leader.
func (s *Store) LeaderChanged() <-chan struct{} { return *s.leaderChanged.Load() }

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// checkNonvoterState refuses the stored state of a non-voter in whose
// Raft configuration it is a voter: that folder belongs to another quorum
// (this node was one of its controllers, or a node of its own quorum of
// one), and joining ours with it would mix two clusters' logs.
func checkNonvoterState(cfg Config, rc *raft.Config, logs *raftboltdb.BoltStore, snaps raft.SnapshotStore) error {
	voters, cluster, err := storedVoters(cfg, rc, logs, snaps, true)
	if err != nil {
		return err
	}
	if slices.Contains(voters, rc.LocalID) {
		return fmt.Errorf("quorum: %s holds the metadata of another quorum (cluster %q), in which node %d is a voter; it cannot follow this one as a non-voter", cfg.Dir, cluster, cfg.NodeID)
	}
	return nil
}

// checkVoterState refuses the stored state of a voter whose Raft
// configuration has other voters than cfg.Voters (a quorum of one when
// solo): that folder belongs to another quorum, whose log this node would
// go on with on its own, unseen by the quorum it was configured for, or
// wait for voters that will never answer. The voters of a quorum are
// fixed (controller.quorum.voters), so no legitimate restart meets this.
func checkVoterState(cfg Config, rc *raft.Config, logs *raftboltdb.BoltStore, snaps raft.SnapshotStore, solo bool) error {
	// The configuration alone first: restoring the snapshot's image
	// twice would slow every restart.
	voters, _, err := storedVoters(cfg, rc, logs, snaps, false)
	if err != nil {
		return err
	}
	var want []raft.ServerID
	for _, v := range cfg.Voters {
		want = append(want, serverID(v.ID))
	}
	slices.Sort(want)
	if slices.Equal(voters, want) {
		return nil
	}
	configured := fmt.Sprintf("controller.quorum.voters names voters %v", want)
	if solo {
		configured = "without controller.quorum.voters this node is a quorum of one"
	}
	_, cluster, err := storedVoters(cfg, rc, logs, snaps, true)
	if err != nil {
		return err
	}
	return fmt.Errorf("quorum: %s holds the metadata of another quorum (cluster %q) whose voters are %v, but %s: this node's metadata belongs to another cluster", cfg.Dir, cluster, voters, configured)
}

// storedVoters reads the voters of the Raft configuration in the folder's
// log and snapshots, sorted, and, withImage, the cluster id of the image
// they hold (else, or without it, what cfg.ClusterID says).
func storedVoters(cfg Config, rc *raft.Config, logs *raftboltdb.BoltStore, snaps raft.SnapshotStore, withImage bool) ([]raft.ServerID, string, error) {
	probe := *rc // GetConfiguration marks its Config as not to be started
	probe.NoSnapshotRestoreOnStart = !withImage
	_, trans := raft.NewInmemTransport("")
	defer trans.Close()
	f := newFSM()
	conf, err := raft.GetConfiguration(&probe, f, logs, logs, snaps, trans)
	if err != nil {
		return nil, "", fmt.Errorf("quorum: reading the stored configuration in %s: %w", cfg.Dir, err)
	}
	var voters []raft.ServerID
	for _, srv := range conf.Servers {
		if srv.Suffrage == raft.Voter {
			voters = append(voters, srv.ID)
		}
	}
	slices.Sort(voters)
	cluster := f.img.Load().ClusterID
	if cluster == "" && cfg.ClusterID != nil {
		cluster = cfg.ClusterID()
	}
	return voters, cluster, nil
}

// ClusterID returns the cluster this node's data belongs to: the image's,
// else its log's, else what Config.ClusterID says; "" for a new node.
func (s *Store) ClusterID() string {
	if id := s.fsm.img.Load().ClusterID; id != "" {
		return id
	}
	if s.stored != "" {
		return s.stored
	}
	if s.cfg.ClusterID != nil {
		return s.cfg.ClusterID()
	}
	return ""
}

func (s *Store) noteRefusal(err error) {
	s.mu.Lock()
	s.refusal = err
	s.mu.Unlock()
	s.cfg.Log.Warn("metadata quorum connection refused", "err", err)
}

// Refusal returns the last refused handshake with another voter (nil if
// none): a voter of another cluster, or one that takes this node for one.
func (s *Store) Refusal() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refusal
}

// Image implements metadata.Store.
func (s *Store) Image() *metadata.Image { return s.fsm.img.Load() }

// Changed implements metadata.Store.
func (s *Store) Changed() <-chan struct{} { return *s.fsm.changed.Load() }

// Failed is closed when this node met a metadata entry it cannot apply
// (written by a newer release); Err then says why. The node must stop.
func (s *Store) Failed() <-chan struct{} { return s.fsm.fatalCh }

// Err returns why the store failed, or nil.
func (s *Store) Err() error { return s.fsm.failed() }

// Propose implements metadata.Store. Only the leader proposes; elsewhere
// it returns a *NotLeaderError at once. The records are one entry: they
// are committed together or not at all.
func (s *Store) Propose(ctx context.Context, recs ...metadata.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.fsm.failed(); err != nil {
		return err
	}
	if s.raft.State() != raft.Leader {
		return &NotLeaderError{Leader: s.Leader()}
	}
	b, err := metadata.EncodeEntry(recs)
	if err != nil {
		return err
	}
	f := s.raft.Apply(b, timeoutOf(ctx))
	if err := f.Error(); err != nil {
		return s.raftError("proposing", err)
	}
	if a, ok := f.Response().(applied); ok {
		return a.err
	}
	return nil
}

// timeoutOf is how long a Raft operation may take under ctx.
func timeoutOf(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		return max(time.Until(dl), time.Millisecond)
	}
	return 10 * time.Second
}

// raftError turns the error of a leader's Raft operation into this
// package's: a *NotLeaderError if leadership was lost meanwhile.
func (s *Store) raftError(doing string, err error) error {
	if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress) {
		return &NotLeaderError{Leader: s.Leader()}
	}
	return fmt.Errorf("quorum: %s: %w", doing, err)
}

// AddNonvoter makes node id a non-voting member of the quorum, reached at
// addr: the leader sends it the log, or a snapshot, to apply, but it never
// votes, never stands for election and is not counted in the majority.
// Nothing changes when id is a voter, or a non-voter at addr already; a
// non-voter elsewhere is moved to addr. Only the leader changes the
// membership; elsewhere it returns a *NotLeaderError.
func (s *Store) AddNonvoter(ctx context.Context, id int32, addr string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.raft.State() != raft.Leader {
		return &NotLeaderError{Leader: s.Leader()}
	}
	if slices.ContainsFunc(s.Members(), func(m Member) bool { return m.ID == id && (m.Voter || m.Addr == addr) }) {
		return nil
	}
	if s.solo {
		return fmt.Errorf("quorum: a quorum of one has no network; node %d cannot join it", id)
	}
	if err := s.raft.AddNonvoter(serverID(id), raft.ServerAddress(addr), 0, timeoutOf(ctx)).Error(); err != nil {
		return s.raftError(fmt.Sprintf("adding node %d as a non-voter", id), err)
	}
	s.cfg.Log.Info("node added to the metadata quorum as a non-voter", "node", id, "address", addr)
	return nil
}

// Member is a node of the quorum's Raft configuration.
type Member struct {
	// ID is the node's node.id.
	ID int32
	// Addr is where the leader reaches it.
	Addr string
	// Voter is false for a non-voter (a broker-only node).
	Voter bool
}

// Members returns the quorum's latest configuration as this node knows it,
// in the order of the configuration (the voters first, as they were
// listed, then the non-voters as they were added); nil for a non-voter
// that was not added yet.
func (s *Store) Members() []Member {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	var out []Member
	for _, srv := range f.Configuration().Servers {
		id, err := strconv.ParseInt(string(srv.ID), 10, 32)
		if err != nil {
			continue
		}
		out = append(out, Member{ID: int32(id), Addr: string(srv.Address), Voter: srv.Suffrage == raft.Voter})
	}
	return out
}

func serverID(id int32) raft.ServerID { return raft.ServerID(strconv.Itoa(int(id))) }

// Leader returns the node id of the active controller, or -1 if none is
// known.
func (s *Store) Leader() int32 {
	_, id := s.raft.LeaderWithID()
	if id == "" {
		return -1
	}
	n, err := strconv.ParseInt(string(id), 10, 32)
	if err != nil {
		return -1
	}
	return int32(n)
}

// IsLeader reports whether this node is the active controller.
func (s *Store) IsLeader() bool { return s.raft.State() == raft.Leader }

// LastContact returns when this node last heard from a leader of the
// quorum (zero if never). On a node that just became leader, it is when
// the previous leader was last heard from.
func (s *Store) LastContact() time.Time { return s.raft.LastContact() }

// Status is a moment's view of this node's Raft state, for metrics.
type Status struct {
	Role        string // "leader", "follower", "candidate" or "shutdown"
	Term        uint64
	CommitIndex uint64
	Leader      int32
}

// Status returns this node's Raft state.
func (s *Store) Status() Status {
	role := "follower"
	switch s.raft.State() {
	case raft.Leader:
		role = "leader"
	case raft.Candidate:
		role = "candidate"
	case raft.Shutdown:
		role = "shutdown"
	}
	return Status{Role: role, Term: s.raft.CurrentTerm(), CommitIndex: s.raft.CommitIndex(), Leader: s.Leader()}
}

// WaitLeader waits until a leader is elected and this node has applied
// every entry committed before it learnt of that leader (so the image it
// serves is current), or ctx ends.
func (s *Store) WaitLeader(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if s.Leader() >= 0 {
			if s.IsLeader() {
				// A new leader's own no-op entry commits what earlier
				// terms left; Barrier waits for it to be applied here.
				if err := s.raft.Barrier(5 * time.Second).Error(); err == nil {
					return nil
				}
			} else if s.raft.AppliedIndex() >= s.raft.CommitIndex() && s.raft.CommitIndex() > 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.Failed():
			return s.Err()
		case <-t.C:
		}
	}
}

// TransferLeadership asks another voter to take over as controller (a
// controlled shutdown). It returns once that happened or failed.
func (s *Store) TransferLeadership() error {
	if !s.IsLeader() || len(s.cfg.Voters) < 2 {
		return nil
	}
	return s.raft.LeadershipTransfer().Error()
}

// Close stops the Raft node and closes its files. Safe to call more than
// once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if err := s.raft.Shutdown().Error(); err != nil {
			errs = append(errs, err)
		}
		s.raft.DeregisterObserver(s.observer)
		close(s.observations)
		if c, ok := s.trans.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
		errs = append(errs, s.bolt.Close())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// newRaftLogger sends the Raft library's warnings and errors to log.
func newRaftLogger(log *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:   "raft",
		Level:  hclog.Warn,
		Output: slogWriter{log},
	})
}

// slogWriter turns the Raft library's log lines into slog records.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	line := string(p)
	for len(line) > 0 && (line[len(line)-1] == '\n' || line[len(line)-1] == '\r') {
		line = line[:len(line)-1]
	}
	w.log.Warn("metadata quorum", "raft", line)
	return len(p), nil
}

// LastIndex returns the index of the last entry in this node's Raft log.
func (s *Store) LastIndex() uint64 { return s.raft.LastIndex() }
