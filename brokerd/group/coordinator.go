package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// PartitionLog is one partition of __consumer_offsets as its leader sees
// it.
type PartitionLog interface {
	// Append stores one batch built by BuildBatch as the partition's
	// leader and returns once it is committed. An error with a Kafka
	// code is (or wraps) a *kerr.Error.
	Append(batch []byte) error
	// Read returns whole batches starting with the one holding offset,
	// about maxBytes of them; nothing at the log end.
	Read(offset int64, maxBytes int) ([]byte, error)
	// StartOffset returns the log start offset.
	StartOffset() int64
}

// CoordinatorConfig configures a Coordinator.
type CoordinatorConfig struct {
	// Group holds the settings every group applies.
	Group Config
	// Partitions returns the partition count of __consumer_offsets
	// (the topic's, or offsets.topic.num.partitions before it exists).
	Partitions func() int32
	// Open returns the log of a __consumer_offsets partition if this
	// broker leads it, else nil: requests for its groups then get
	// NOT_COORDINATOR.
	Open func(partition int32) PartitionLog
	// RetentionCheck is offsets.retention.check.interval.ms (10 minutes
	// when zero): how often expired offsets are removed.
	RetentionCheck time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives the coordinator's log lines; nil discards them.
	Log *slog.Logger
}

// Coordinator is the group coordinator of one broker. It runs one
// goroutine per __consumer_offsets partition it leads (a shard), which
// owns the groups stored in that partition: it loads them from the log,
// runs their requests and timers one at a time, appends their records
// and delivers their answers. Requests reach a shard over a channel and
// wait for their answer on their own; every send and receive also
// watches the shard's end, so nothing blocks past Close.
//
// Its methods are safe for concurrent use. Those taking a context return
// an error only when the context ends first (the connection should then
// be dropped); every other problem is a Kafka error code in the response.
type Coordinator struct {
	cfg CoordinatorConfig
	log *slog.Logger

	mu     sync.Mutex
	shards map[int32]*shard
	closed bool
	wg     sync.WaitGroup
}

// NewCoordinator returns a coordinator with no partition loaded.
func NewCoordinator(cfg CoordinatorConfig) *Coordinator {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RetentionCheck <= 0 {
		cfg.RetentionCheck = 10 * time.Minute
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Coordinator{cfg: cfg, log: log, shards: map[int32]*shard{}}
}

// errNotCoordinator means the shard went away before answering.
var errNotCoordinator = errors.New("group: not the coordinator")

// Load starts serving the groups of partition p of __consumer_offsets
// (if this broker leads it and it is not served already) and waits until
// they are read from the log.
func (c *Coordinator) Load(ctx context.Context, p int32) error {
	s, code := c.shardOf(p)
	if code != 0 {
		return kerr.ErrorForCode(code)
	}
	select {
	case <-s.loaded:
		return nil
	case <-s.done:
		return errNotCoordinator
	case <-ctx.Done():
		return ctx.Err()
	}
}

// LoadAll loads several partitions at once (each in its shard) and waits
// for all of them; it returns the errors of those that failed.
func (c *Coordinator) LoadAll(ctx context.Context, ps []int32) error {
	var errs []error
	shards := make(map[int32]*shard, len(ps))
	for _, p := range ps {
		s, code := c.shardOf(p)
		if code != 0 {
			errs = append(errs, fmt.Errorf("group: __consumer_offsets partition %d: %w", p, kerr.ErrorForCode(code)))
			continue
		}
		shards[p] = s
	}
	for p, s := range shards {
		select {
		case <-s.loaded:
		case <-s.done:
			errs = append(errs, fmt.Errorf("group: __consumer_offsets partition %d could not be loaded", p))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.Join(errs...)
}

// Unload stops serving partition p: waiting requests are answered
// NOT_COORDINATOR. Call it when another broker becomes its leader.
func (c *Coordinator) Unload(p int32) {
	c.mu.Lock()
	s := c.shards[p]
	delete(c.shards, p)
	c.mu.Unlock()
	if s != nil {
		s.stopOnce.Do(func() { close(s.stop) })
		<-s.done
	}
}

// Loaded returns the partitions being served, sorted.
func (c *Coordinator) Loaded() []int32 {
	var out []int32
	for _, s := range c.loadedShards() {
		out = append(out, s.p)
	}
	return out
}

// Close unloads every partition and waits for the shards to end. It is
// safe to call more than once.
func (c *Coordinator) Close() {
	c.mu.Lock()
	c.closed = true
	shards := c.shards
	c.shards = map[int32]*shard{}
	c.mu.Unlock()
	for _, s := range shards {
		s.stopOnce.Do(func() { close(s.stop) })
	}
	c.wg.Wait()
}

// Partition returns the __consumer_offsets partition of a group.
func (c *Coordinator) Partition(groupID string) int32 {
	return PartitionFor(groupID, max(c.cfg.Partitions(), 1))
}

// shardOf returns the shard of partition p, starting it if this broker
// leads p.
func (c *Coordinator) shardOf(p int32) (*shard, int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	if s := c.shards[p]; s != nil {
		return s, 0
	}
	plog := c.cfg.Open(p)
	if plog == nil {
		return nil, kerr.NotCoordinator.Code
	}
	s := &shard{
		c: c, p: p, plog: plog,
		ops:    make(chan op),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
		loaded: make(chan struct{}),
		groups: map[string]*Group{},
		sched:  newSchedule(),
	}
	c.shards[p] = s
	c.wg.Add(1)
	go s.run()
	return s, 0
}

// shardFor returns the shard coordinating a group.
func (c *Coordinator) shardFor(groupID string) (*shard, int16) {
	if c.cfg.Partitions() <= 0 {
		return nil, kerr.NotCoordinator.Code
	}
	return c.shardOf(c.Partition(groupID))
}

func (c *Coordinator) loadedShards() []*shard {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*shard, 0, len(c.shards))
	for _, s := range c.shards {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].p < out[j].p })
	return out
}

// forget drops a shard that ended by itself (a failed load).
func (c *Coordinator) forget(s *shard) {
	c.mu.Lock()
	if c.shards[s.p] == s {
		delete(c.shards, s.p)
	}
	c.mu.Unlock()
}

// op is a request run in a shard's goroutine. fn returns the answer now,
// or nil when the group answers later on ref; with always, fn's result
// is sent on ref even if nil.
type op struct {
	fn     func(now time.Time, ref any) kmsg.Response
	ref    chan kmsg.Response
	always bool
}

// shard serves the groups of one __consumer_offsets partition.
type shard struct {
	c    *Coordinator
	p    int32
	plog PartitionLog

	ops      chan op
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{} // closed when run returns
	loaded   chan struct{} // closed once the groups are read

	// Owned by run's goroutine.
	groups map[string]*Group
	out    Outbox
	sched  *schedule
}

// call runs fn in the shard and waits for its answer.
func (s *shard) call(ctx context.Context, always bool, fn func(now time.Time, ref any) kmsg.Response) (kmsg.Response, error) {
	o := op{fn: fn, ref: make(chan kmsg.Response, 1), always: always}
	// A request read before its client went away (a LeaveGroup or an
	// OffsetCommit sent just before closing) is still carried out when
	// the shard has room for it, although its context is cancelled.
	select {
	case s.ops <- o:
	default:
		select {
		case s.ops <- o:
		case <-s.done:
			return nil, errNotCoordinator
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	select {
	case r := <-o.ref:
		return r, nil
	case <-s.done:
		select {
		case r := <-o.ref:
			return r, nil
		default:
			return nil, errNotCoordinator
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// do runs fn in the shard and returns once it, and the writes it caused,
// are done.
func (s *shard) do(ctx context.Context, fn func(now time.Time)) error {
	_, err := s.call(ctx, true, func(now time.Time, _ any) kmsg.Response {
		fn(now)
		return nil
	})
	return err
}

// group returns a group, creating it if create is set.
func (s *shard) group(id string, create bool) *Group {
	s.sched.touch(id)
	g := s.groups[id]
	if g == nil && create {
		g = New(id, &s.c.cfg.Group, &s.out)
		s.groups[id] = g
	}
	return g
}

// tidy drops a group that is Dead or holds nothing.
func (s *shard) tidy(g *Group) {
	if g != nil && g.Disposable() && s.groups[g.id] == g {
		delete(s.groups, g.id)
	}
}

func (s *shard) run() {
	defer s.c.wg.Done()
	defer close(s.done)
	if err := s.load(); err != nil {
		s.c.log.Error("loading __consumer_offsets partition failed", "partition", s.p, "err", err)
		s.c.forget(s)
		return
	}
	close(s.loaded)
	for id := range s.groups {
		s.sched.touch(id)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	retention := time.NewTicker(s.c.cfg.RetentionCheck)
	defer retention.Stop()
	for {
		s.sched.update(s.groups)
		s.arm(timer)
		select {
		case <-s.stop:
			for _, g := range s.groups {
				g.Unload()
			}
			s.deliver()
			return
		case o := <-s.ops:
			now := s.c.cfg.Now()
			resp := o.fn(now, o.ref)
			if resp != nil || o.always {
				s.out.Replies = append(s.out.Replies, Reply{Ref: o.ref, Resp: resp})
			}
			s.flush(now)
		case <-timer.C:
			now := s.c.cfg.Now()
			due := s.sched.takeDue(now)
			for _, id := range due {
				if g := s.groups[id]; g != nil {
					g.Tick(now)
				}
			}
			s.flush(now)
			for _, id := range due {
				s.tidy(s.groups[id])
			}
		case <-retention.C:
			now := s.c.cfg.Now()
			for id, g := range s.groups {
				s.sched.touch(id)
				if g.ExpireOffsets(now) {
					delete(s.groups, id)
				}
			}
			s.flush(now)
		}
	}
}

// arm sets the timer to the earliest group deadline.
func (s *shard) arm(t *time.Timer) {
	wait := time.Hour
	if next, ok := s.sched.next(); ok {
		wait = max(next.Sub(s.c.cfg.Now()), 0)
	}
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
	t.Reset(wait)
}

// flush appends the pending writes, then delivers the replies.
func (s *shard) flush(now time.Time) {
	for {
		ws := s.out.TakeWrites()
		if len(ws) == 0 {
			break
		}
		for _, w := range ws {
			s.sched.touch(w.Group)
			err := s.plog.Append(BuildBatch(w.Records, now))
			if err != nil {
				s.c.log.Warn("writing to __consumer_offsets failed", "partition", s.p, "group", w.Group, "err", err)
			}
			w.Done(now, err)
		}
	}
	s.deliver()
}

func (s *shard) deliver() {
	for _, r := range s.out.TakeReplies() {
		select {
		case r.Ref.(chan kmsg.Response) <- r.Resp:
		default:
			// Every ref is answered once; a second answer is a bug in
			// the state machine, which must not block the shard.
			s.c.log.Error("dropped a second answer to one group request", "partition", s.p)
		}
	}
}

// load reads the partition from its start and rebuilds its groups.
func (s *shard) load() error {
	start := time.Now()
	l := NewLoader()
	off := s.plog.StartOffset()
	for {
		data, err := s.plog.Read(off, readChunk)
		if err != nil {
			return err
		}
		if len(data) == 0 {
			break
		}
		next, err := l.AddBatches(data)
		if err != nil {
			return err
		}
		if next <= off {
			break
		}
		off = next
	}
	s.groups = l.Groups(s.c.cfg.Now(), &s.c.cfg.Group, &s.out)
	if len(s.groups) > 0 || l.Skipped > 0 {
		s.c.log.Info("loaded groups", "partition", s.p, "groups", len(s.groups), "skipped_records", l.Skipped, "took", time.Since(start))
	}
	return nil
}

// orNil turns a nil response pointer into a nil interface.
func orNil[P interface {
	*E
	kmsg.Response
}, E any](p P) kmsg.Response {
	if p == nil {
		return nil
	}
	return p
}

// ErrorResponse returns the response to a group request that failed as a
// whole with code (NOT_COORDINATOR, INVALID_GROUP_ID, ...), for the
// requests a coordinator answers: JoinGroup, SyncGroup, Heartbeat,
// LeaveGroup, OffsetCommit and OffsetDelete.
func ErrorResponse(req kmsg.Request, code int16) kmsg.Response {
	switch r := req.(type) {
	case *kmsg.JoinGroupRequest:
		return joinError(r, code, r.MemberID)
	case *kmsg.SyncGroupRequest:
		return syncError(r, code)
	case *kmsg.HeartbeatRequest:
		resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.LeaveGroupRequest:
		resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = code
		return resp
	case *kmsg.OffsetCommitRequest:
		return CommitError(r, code)
	case *kmsg.OffsetDeleteRequest:
		resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
		resp.ErrorCode = code
		return resp
	}
	panic("group: ErrorResponse of a request the coordinator does not answer")
}

// route runs fn in the shard of group id and turns a shard that is
// missing or went away into an error response.
func (c *Coordinator) route(ctx context.Context, req kmsg.Request, id string, fn func(s *shard, now time.Time, ref any) kmsg.Response) (kmsg.Response, error) {
	s, code := c.shardFor(id)
	if code != 0 {
		return ErrorResponse(req, code), nil
	}
	resp, err := s.call(ctx, false, func(now time.Time, ref any) kmsg.Response { return fn(s, now, ref) })
	if errors.Is(err, errNotCoordinator) {
		return ErrorResponse(req, kerr.NotCoordinator.Code), nil
	}
	return resp, err
}

// Join handles JoinGroup; it may wait for the rebalance to complete.
// clientHost is the client's address as Kafka reports it ("/127.0.0.1").
func (c *Coordinator) Join(ctx context.Context, req *kmsg.JoinGroupRequest, clientID, clientHost string) (*kmsg.JoinGroupResponse, error) {
	if req.Group == "" {
		return joinError(req, kerr.InvalidGroupID.Code, req.MemberID), nil
	}
	resp, err := c.route(ctx, req, req.Group, func(s *shard, now time.Time, ref any) kmsg.Response {
		g := s.group(req.Group, req.MemberID == "")
		if g == nil {
			return joinError(req, kerr.UnknownMemberID.Code, req.MemberID)
		}
		defer s.tidy(g)
		return orNil(g.Join(now, ref, req, clientID, clientHost))
	})
	if err != nil {
		return nil, err
	}
	return resp.(*kmsg.JoinGroupResponse), nil
}

// Sync handles SyncGroup; a member may wait for the leader's assignment.
func (c *Coordinator) Sync(ctx context.Context, req *kmsg.SyncGroupRequest) (*kmsg.SyncGroupResponse, error) {
	if req.Group == "" {
		return syncError(req, kerr.InvalidGroupID.Code), nil
	}
	resp, err := c.route(ctx, req, req.Group, func(s *shard, now time.Time, ref any) kmsg.Response {
		g := s.group(req.Group, false)
		if g == nil {
			return syncError(req, kerr.UnknownMemberID.Code)
		}
		return orNil(g.Sync(now, ref, req))
	})
	if err != nil {
		return nil, err
	}
	return resp.(*kmsg.SyncGroupResponse), nil
}

// Heartbeat handles Heartbeat.
func (c *Coordinator) Heartbeat(ctx context.Context, req *kmsg.HeartbeatRequest) (*kmsg.HeartbeatResponse, error) {
	if req.Group == "" {
		return ErrorResponse(req, kerr.InvalidGroupID.Code).(*kmsg.HeartbeatResponse), nil
	}
	resp, err := c.route(ctx, req, req.Group, func(s *shard, now time.Time, _ any) kmsg.Response {
		g := s.group(req.Group, false)
		if g == nil {
			return ErrorResponse(req, kerr.UnknownMemberID.Code)
		}
		return g.Heartbeat(now, req)
	})
	if err != nil {
		return nil, err
	}
	return resp.(*kmsg.HeartbeatResponse), nil
}

// Leave handles LeaveGroup.
func (c *Coordinator) Leave(ctx context.Context, req *kmsg.LeaveGroupRequest) (*kmsg.LeaveGroupResponse, error) {
	if req.Group == "" {
		return ErrorResponse(req, kerr.InvalidGroupID.Code).(*kmsg.LeaveGroupResponse), nil
	}
	resp, err := c.route(ctx, req, req.Group, func(s *shard, now time.Time, _ any) kmsg.Response {
		g := s.group(req.Group, false)
		if g == nil {
			resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
			if req.Version < 3 {
				resp.ErrorCode = kerr.UnknownMemberID.Code
			}
			for _, lm := range req.Members {
				rm := kmsg.NewLeaveGroupResponseMember()
				rm.MemberID, rm.InstanceID = lm.MemberID, lm.InstanceID
				rm.ErrorCode = kerr.UnknownMemberID.Code
				resp.Members = append(resp.Members, rm)
			}
			return resp
		}
		return g.Leave(now, req)
	})
	if err != nil {
		return nil, err
	}
	return resp.(*kmsg.LeaveGroupResponse), nil
}

// Commit handles OffsetCommit; it answers once the offsets are stored.
func (c *Coordinator) Commit(ctx context.Context, req *kmsg.OffsetCommitRequest) (*kmsg.OffsetCommitResponse, error) {
	resp, err := c.route(ctx, req, req.Group, func(s *shard, now time.Time, ref any) kmsg.Response {
		g := s.group(req.Group, false)
		if g == nil {
			if req.Generation >= 0 {
				// A member of a generation of a group that is gone.
				return CommitError(req, kerr.IllegalGeneration.Code)
			}
			g = s.group(req.Group, true)
		}
		return orNil(g.Commit(now, ref, req))
	})
	if err != nil {
		return nil, err
	}
	return resp.(*kmsg.OffsetCommitResponse), nil
}

// FetchOffsets handles one group of OffsetFetch: the committed offsets of
// the partitions asked for, or of all partitions with one when topics is
// nil. code is a group-level error (NOT_COORDINATOR, ...).
func (c *Coordinator) FetchOffsets(ctx context.Context, groupID string, topics []kmsg.OffsetFetchRequestTopic) (out []kmsg.OffsetFetchResponseGroupTopic, code int16, err error) {
	s, code := c.shardFor(groupID)
	if code != 0 {
		return nil, code, nil
	}
	err = s.do(ctx, func(time.Time) {
		if g := s.group(groupID, false); g != nil && g.State() != Dead {
			out = g.FetchOffsets(topics)
		} else {
			out = FetchOffsetsUnknown(topics)
		}
	})
	if errors.Is(err, errNotCoordinator) {
		return nil, kerr.NotCoordinator.Code, nil
	}
	return out, 0, err
}

// Describe handles one group of DescribeGroups. A group that does not
// exist is reported Dead, as Kafka does.
func (c *Coordinator) Describe(ctx context.Context, groupID string) (kmsg.DescribeGroupsResponseGroup, error) {
	d := kmsg.NewDescribeGroupsResponseGroup()
	d.Group = groupID
	s, code := c.shardFor(groupID)
	if code != 0 {
		d.ErrorCode = code
		return d, nil
	}
	err := s.do(ctx, func(time.Time) {
		if g := s.group(groupID, false); g != nil {
			d = g.Describe()
		} else {
			d.State = Dead.String()
		}
	})
	if errors.Is(err, errNotCoordinator) {
		d.ErrorCode = kerr.NotCoordinator.Code
		return d, nil
	}
	return d, err
}

// List returns every group this broker coordinates, sorted by id.
func (c *Coordinator) List(ctx context.Context) ([]Listing, error) {
	var out []Listing
	for _, s := range c.loadedShards() {
		err := s.do(ctx, func(time.Time) {
			for _, g := range s.groups {
				if g.State() != Dead {
					out = append(out, g.Listing())
				}
			}
		})
		if err != nil && !errors.Is(err, errNotCoordinator) {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return out, nil
}

// Delete handles one group of DeleteGroups.
func (c *Coordinator) Delete(ctx context.Context, groupID string) (int16, error) {
	s, code := c.shardFor(groupID)
	if code != 0 {
		return code, nil
	}
	code = kerr.GroupIDNotFound.Code
	err := s.do(ctx, func(time.Time) {
		if g := s.group(groupID, false); g != nil {
			code = g.Delete()
			s.tidy(g)
		}
	})
	if errors.Is(err, errNotCoordinator) {
		return kerr.NotCoordinator.Code, nil
	}
	return code, err
}

// DeleteOffsets handles OffsetDelete.
func (c *Coordinator) DeleteOffsets(ctx context.Context, req *kmsg.OffsetDeleteRequest) (*kmsg.OffsetDeleteResponse, error) {
	resp, err := c.route(ctx, req, req.Group, func(s *shard, _ time.Time, _ any) kmsg.Response {
		g := s.group(req.Group, false)
		if g == nil {
			return ErrorResponse(req, kerr.GroupIDNotFound.Code)
		}
		return g.DeleteOffsets(req)
	})
	if err != nil {
		return nil, err
	}
	return resp.(*kmsg.OffsetDeleteResponse), nil
}
