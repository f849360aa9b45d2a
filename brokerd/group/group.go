package group

import (
	"bytes"
	"container/heap"
	"crypto/rand"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// State is a classic group's state, named as Kafka names it.
type State int8

// The states of a classic group. Empty: no members (offsets may remain).
// PreparingRebalance: waiting for the members to (re)join.
// CompletingRebalance: joined; waiting for the leader's assignment.
// Stable: assignment handed out. Dead: deleted; about to be dropped.
const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
)

var stateNames = [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}

// String returns Kafka's name of the state, as DescribeGroups and
// ListGroups report it.
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int8(s))
}

// Config holds the coordinator settings groups apply. DefaultConfig gives
// Kafka's defaults; a zero field means the default where noted.
type Config struct {
	// MinSessionTimeout and MaxSessionTimeout bound the session timeout a
	// member may ask for (group.min.session.timeout.ms, 6 s, and
	// group.max.session.timeout.ms, 30 min); outside them JoinGroup fails
	// with INVALID_SESSION_TIMEOUT.
	MinSessionTimeout time.Duration
	MaxSessionTimeout time.Duration
	// InitialRebalanceDelay is group.initial.rebalance.delay.ms (3 s): the
	// first rebalance of an empty group waits this long for more members,
	// and again (up to the rebalance timeout) while new ones arrive.
	// Zero completes it at once.
	InitialRebalanceDelay time.Duration
	// MaxSize is group.max.size; 0 means no limit.
	MaxSize int
	// NewMemberJoinTimeout is how long a new member's JoinGroup may wait
	// for the rebalance to complete before the member is dropped; zero
	// means Kafka's 5 minutes.
	NewMemberJoinTimeout time.Duration
	// OffsetsRetention is offsets.retention.minutes (7 days; zero means
	// that): how long the offsets of an empty group (or an offset of a
	// topic a stable consumer group no longer subscribes to) are kept.
	OffsetsRetention time.Duration
	// MaxMetadataBytes is offset.metadata.max.bytes (4096; zero means
	// that); a commit with more metadata fails with
	// OFFSET_METADATA_TOO_LARGE.
	MaxMetadataBytes int
	// KnownPartition reports whether a topic partition exists; commits
	// and offset deletions naming others fail with
	// UNKNOWN_TOPIC_OR_PARTITION. Nil accepts every partition.
	KnownPartition func(topic string, partition int32) bool
	// NewMemberID returns a new unique member id beginning with prefix
	// (the client id, or the group instance id of a static member). Nil
	// means prefix + "-" + a random UUID, as Kafka does.
	NewMemberID func(prefix string) string
	// Rebalanced, if set, is told of every completed rebalance (a new
	// generation), for metrics. It must not block or call back.
	Rebalanced func(groupID string, generation int32)
}

// DefaultConfig returns Kafka's defaults.
func DefaultConfig() Config {
	return Config{
		MinSessionTimeout:     6 * time.Second,
		MaxSessionTimeout:     30 * time.Minute,
		InitialRebalanceDelay: 3 * time.Second,
		NewMemberJoinTimeout:  5 * time.Minute,
		OffsetsRetention:      7 * 24 * time.Hour,
		MaxMetadataBytes:      4096,
	}
}

func (c *Config) newMemberID(prefix string) string {
	if c.NewMemberID != nil {
		return c.NewMemberID(prefix)
	}
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%s-%x-%x-%x-%x-%x", prefix, u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func (c *Config) newMemberJoinTimeout() time.Duration {
	if c.NewMemberJoinTimeout > 0 {
		return c.NewMemberJoinTimeout
	}
	return 5 * time.Minute
}

func (c *Config) offsetsRetention() time.Duration {
	if c.OffsetsRetention > 0 {
		return c.OffsetsRetention
	}
	return 7 * 24 * time.Hour
}

func (c *Config) maxMetadataBytes() int {
	if c.MaxMetadataBytes > 0 {
		return c.MaxMetadataBytes
	}
	return 4096
}

func (c *Config) known(topic string, partition int32) bool {
	return c.KnownPartition == nil || c.KnownPartition(topic, partition)
}

// protocol is one assignment protocol a member supports, with its
// metadata (for consumers, the subscription).
type protocol struct {
	name     string
	metadata []byte
}

// joinWait is a JoinGroup waiting for the rebalance to complete.
type joinWait struct {
	ref any
	req *kmsg.JoinGroupRequest
}

// syncWait is a SyncGroup waiting for the leader's assignment.
type syncWait struct {
	ref any
	req *kmsg.SyncGroupRequest
}

// member is one member of a group.
type member struct {
	id         string
	instanceID *string
	clientID   string
	clientHost string
	seq        uint64 // join order, for deterministic iteration

	session   time.Duration
	rebalance time.Duration
	protocols []protocol
	// assignment is what the leader gave this member in the current
	// generation; nil before the leader's SyncGroup.
	assignment []byte

	// isNew is set from a member's first JoinGroup until that join
	// completes; such a member expires at deadline even while waiting.
	isNew bool
	// deadline is when the member's session expires unless it
	// heartbeats. Members waiting in JoinGroup or SyncGroup do not expire
	// (except new ones).
	deadline time.Time

	join *joinWait
	sync *syncWait
}

func (m *member) metadataFor(name string) []byte {
	for _, p := range m.protocols {
		if p.name == name {
			return p.metadata
		}
	}
	return nil
}

// setProtocols replaces the protocols a member lists.
func (g *Group) setProtocols(m *member, ps []protocol) {
	g.countProtocols(m, -1)
	m.protocols = ps
	g.countProtocols(m, 1)
}

// countProtocols adds d to the supporters of each protocol m lists.
func (g *Group) countProtocols(m *member, d int) {
	for i, p := range m.protocols {
		if slices.ContainsFunc(m.protocols[:i], func(q protocol) bool { return q.name == p.name }) {
			continue // listed twice, supported once
		}
		if g.supporters[p.name] += d; g.supporters[p.name] == 0 {
			delete(g.supporters, p.name)
		}
	}
}

func (m *member) supports(name string) bool {
	for _, p := range m.protocols {
		if p.name == name {
			return true
		}
	}
	return false
}

// matches reports whether a JoinGroup carries exactly the member's
// protocols and metadata.
func (m *member) matches(ps []kmsg.JoinGroupRequestProtocol) bool {
	if len(ps) != len(m.protocols) {
		return false
	}
	for i, p := range ps {
		if p.Name != m.protocols[i].name || !bytes.Equal(p.Metadata, m.protocols[i].metadata) {
			return false
		}
	}
	return true
}

func copyProtocols(ps []kmsg.JoinGroupRequestProtocol) []protocol {
	out := make([]protocol, len(ps))
	for i, p := range ps {
		out[i] = protocol{name: p.Name, metadata: bytes.Clone(p.Metadata)}
		if out[i].metadata == nil {
			out[i].metadata = []byte{}
		}
	}
	return out
}

// Group is one classic consumer group and its committed offsets: Kafka's
// group state machine as a plain value. It does no I/O, starts no
// goroutine and never reads the clock: every method takes the time, and
// what must be persisted or answered later goes to the Outbox given to
// New. A Group is not safe for concurrent use; one driver owns it.
//
// Requests whose answer must wait (JoinGroup until the rebalance
// completes, SyncGroup until the leader's assignment is stored,
// OffsetCommit until its records are) return nil; their responses appear
// later in the Outbox as Replies carrying the ref given with the request.
// Every ref gets exactly one reply, at the latest from Unload.
type Group struct {
	id  string
	cfg *Config
	out *Outbox

	state State
	// stateTime is when the state last changed (Kafka's
	// currentStateTimestamp); zero when unknown.
	stateTime    time.Time
	generation   int32
	protocolType string // "" for a group that only stores offsets
	protocol     string // chosen in the current generation; "" when Empty
	leader       string // member id; "" when there are no members

	members map[string]*member
	// joining counts the members waiting in JoinGroup (join set), so
	// that a join need not look at every member to see whether all have.
	joining int
	// supporters counts, by protocol name, the members that list the
	// protocol, so that a join is checked against the group's protocols
	// without looking at every member.
	supporters map[string]int
	seq        uint64
	// pending holds the member ids handed out with MEMBER_ID_REQUIRED
	// (JoinGroup v4+), until their second JoinGroup or their expiry.
	pending map[string]time.Time
	// static maps group.instance.id to the member id holding it.
	// Invariant: every value is a key of members.
	static map[string]string
	// pendingSync holds the members of this generation that have not
	// sent SyncGroup yet; they are dropped at syncDeadline.
	pendingSync  map[string]struct{}
	syncDeadline time.Time
	// subscribed is the union of the topics the members' consumer
	// subscriptions name; nil when unknown (not a consumer group, or
	// undecodable metadata).
	subscribed map[string]struct{}

	// joinDeadline is when PreparingRebalance ends even if not every
	// member has rejoined. With initialJoin it is the initial delay of
	// an empty group, extended while new members arrive (initialLeft is
	// what remains of the rebalance timeout).
	joinDeadline   time.Time
	initialJoin    bool
	initialLeft    time.Duration
	newMemberAdded bool

	offsets map[TopicPartition]Offset

	// deadlines holds the session deadlines of the members and the
	// expiries of the pending member ids, earliest first, so that
	// NextDeadline does not look at every member. An entry is pushed
	// whenever a deadline is set or a member can expire again; entries
	// that no longer hold are dropped as they reach the top.
	deadlines deadlineQueue
}

// New returns an empty group that reports to out.
func New(id string, cfg *Config, out *Outbox) *Group {
	return &Group{
		id: id, cfg: cfg, out: out,
		members:     map[string]*member{},
		supporters:  map[string]int{},
		pending:     map[string]time.Time{},
		static:      map[string]string{},
		pendingSync: map[string]struct{}{},
		offsets:     map[TopicPartition]Offset{},
	}
}

// restore rebuilds a group from what __consumer_offsets says.
func restore(id string, cfg *Config, out *Outbox, now time.Time, meta *kmsg.GroupMetadataValue, offsets map[TopicPartition]Offset) *Group {
	g := New(id, cfg, out)
	for tp, o := range offsets {
		g.offsets[tp] = o
	}
	if meta == nil {
		return g
	}
	g.protocolType = meta.ProtocolType
	g.generation = meta.Generation
	if meta.Protocol != nil {
		g.protocol = *meta.Protocol
	}
	if meta.CurrentStateTimestamp >= 0 && meta.Version >= 2 {
		g.stateTime = time.UnixMilli(meta.CurrentStateTimestamp)
	}
	if len(meta.Members) == 0 || g.protocol == "" {
		return g
	}
	for _, mm := range meta.Members {
		m := &member{
			id: mm.MemberID, instanceID: mm.InstanceID, clientID: mm.ClientID, clientHost: mm.ClientHost,
			seq:        g.seq,
			session:    ms(mm.SessionTimeoutMillis),
			rebalance:  ms(mm.RebalanceTimeoutMillis),
			protocols:  []protocol{{name: g.protocol, metadata: mm.Subscription}},
			assignment: mm.Assignment,
		}
		if m.rebalance <= 0 {
			m.rebalance = m.session
		}
		g.seq++
		g.members[m.id] = m
		g.countProtocols(m, 1)
		g.setDeadline(m, now.Add(m.session))
		if m.instanceID != nil {
			g.static[*m.instanceID] = m.id
		}
	}
	if meta.Leader != nil && g.members[*meta.Leader] != nil {
		g.leader = *meta.Leader
	} else {
		g.leader = g.sorted()[0].id
	}
	g.subscribed = g.computeSubscribed()
	g.state = Stable
	return g
}

func ms(n int32) time.Duration { return time.Duration(n) * time.Millisecond }

// canExpire reports whether the member's session can expire now: members
// waiting in JoinGroup or SyncGroup do not, except new ones.
func (m *member) canExpire() bool { return m.isNew || m.join == nil && m.sync == nil }

// setDeadline sets when m's session expires unless it heartbeats.
func (g *Group) setDeadline(m *member, t time.Time) {
	m.deadline = t
	g.armDeadline(m)
}

// armDeadline schedules m's deadline if its session can expire now. Call
// it whenever a member stops waiting in JoinGroup or SyncGroup without
// getting a new deadline.
func (g *Group) armDeadline(m *member) {
	if m.canExpire() && !m.deadline.IsZero() {
		g.pushDeadline(m.deadline, m.id)
	}
}

// pushDeadline adds a deadline to the queue, rebuilding the queue from
// the deadlines that hold when dropped ones pile up.
func (g *Group) pushDeadline(at time.Time, id string) {
	heap.Push(&g.deadlines, deadlineEntry{at: at, id: id})
	if len(g.deadlines) <= 4*(len(g.members)+len(g.pending))+64 {
		return
	}
	g.deadlines = g.deadlines[:0]
	for id, exp := range g.pending {
		g.deadlines = append(g.deadlines, deadlineEntry{at: exp, id: id})
	}
	for _, m := range g.members {
		if m.canExpire() && !m.deadline.IsZero() {
			g.deadlines = append(g.deadlines, deadlineEntry{at: m.deadline, id: m.id})
		}
	}
	heap.Init(&g.deadlines)
}

// holds reports whether a queued deadline is still one: a pending member
// id expiring then, or a member whose session can expire and ends then.
func (g *Group) holds(e deadlineEntry) bool {
	if exp, ok := g.pending[e.id]; ok && exp.Equal(e.at) {
		return true
	}
	m := g.members[e.id]
	return m != nil && m.canExpire() && m.deadline.Equal(e.at)
}

// ID returns the group id.
func (g *Group) ID() string { return g.id }

// State returns the group's state.
func (g *Group) State() State { return g.state }

// Generation returns the current generation id.
func (g *Group) Generation() int32 { return g.generation }

// ProtocolType returns the protocol type ("consumer", ...), empty for a
// group that only stores offsets.
func (g *Group) ProtocolType() string { return g.protocolType }

// Protocol returns the protocol chosen for the current generation.
func (g *Group) Protocol() string { return g.protocol }

// Leader returns the leader's member id, empty without members.
func (g *Group) Leader() string { return g.leader }

// MemberIDs returns the member ids in join order.
func (g *Group) MemberIDs() []string {
	ms := g.sorted()
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.id
	}
	return out
}

// Disposable reports whether the group holds nothing worth keeping: no
// members, no pending members, no offsets and no generation. A driver
// may drop such a group (one a failed request created).
func (g *Group) Disposable() bool {
	return g.state == Dead || g.state == Empty && len(g.members) == 0 && len(g.pending) == 0 && len(g.offsets) == 0 && g.generation == 0
}

func (g *Group) sorted() []*member {
	out := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

func (g *Group) transition(s State, now time.Time) {
	g.state = s
	g.stateTime = now
}

func (g *Group) reply(ref any, resp kmsg.Response) {
	g.out.Replies = append(g.out.Replies, Reply{Ref: ref, Resp: resp})
}

func (g *Group) write(recs []Record, done func(time.Time, error)) {
	g.out.Writes = append(g.out.Writes, &Write{Group: g.id, Records: recs, done: done})
}

// rebalanceTimeout is the largest rebalance timeout of the members.
func (g *Group) rebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalance)
	}
	return d
}

// validateMember is Kafka's validateCurrentMember: a static member's
// instance id must map to its member id, and the member must exist.
func (g *Group) validateMember(memberID string, instanceID *string) int16 {
	if instanceID != nil {
		cur, ok := g.static[*instanceID]
		switch {
		case !ok:
			return kerr.UnknownMemberID.Code
		case cur != memberID:
			return kerr.FencedInstanceID.Code
		}
	}
	if g.members[memberID] == nil {
		return kerr.UnknownMemberID.Code
	}
	return 0
}

// supportsProtocols reports whether a joining member can be part of the
// group: any protocol type will do for an empty group, otherwise the type
// must match and the member must support a protocol every member does.
func (g *Group) supportsProtocols(protocolType string, ps []kmsg.JoinGroupRequestProtocol) bool {
	if g.state == Empty {
		return protocolType != "" && len(ps) > 0
	}
	if protocolType != g.protocolType {
		return false
	}
	return slices.ContainsFunc(ps, func(p kmsg.JoinGroupRequestProtocol) bool { return g.supporters[p.Name] == len(g.members) })
}

// acceptsNewMember applies group.max.size to a member that is not yet in
// the group.
func (g *Group) acceptsNewMember() bool {
	if g.cfg.MaxSize <= 0 {
		return true
	}
	switch g.state {
	case Empty, Dead:
		return true
	case PreparingRebalance:
		return g.joining < g.cfg.MaxSize
	default:
		return len(g.members) < g.cfg.MaxSize
	}
}

func joinError(req *kmsg.JoinGroupRequest, code int16, memberID string) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.ErrorCode = code
	resp.MemberID = memberID
	return resp
}

// joinResult is the successful JoinGroup answer for m in the current
// generation; the leader's carries every member's metadata.
func (g *Group) joinResult(req *kmsg.JoinGroupRequest, memberID string, withMembers bool, leader string) *kmsg.JoinGroupResponse {
	resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.Generation = g.generation
	pt, p := g.protocolType, g.protocol
	resp.ProtocolType = &pt
	resp.Protocol = &p
	resp.LeaderID = leader
	resp.MemberID = memberID
	if withMembers {
		for _, m := range g.sorted() {
			jm := kmsg.NewJoinGroupResponseMember()
			jm.MemberID = m.id
			jm.InstanceID = m.instanceID
			jm.ProtocolMetadata = m.metadataFor(g.protocol)
			resp.Members = append(resp.Members, jm)
		}
	}
	return resp
}

// Join handles JoinGroup v0–v9. It returns the response, or nil when the
// member waits for the rebalance (the answer then comes as a Reply with
// ref). clientHost is the client's address as Kafka reports it
// ("/127.0.0.1").
func (g *Group) Join(now time.Time, ref any, req *kmsg.JoinGroupRequest, clientID, clientHost string) *kmsg.JoinGroupResponse {
	session := ms(req.SessionTimeoutMillis)
	if session < g.cfg.MinSessionTimeout || session > g.cfg.MaxSessionTimeout {
		return joinError(req, kerr.InvalidSessionTimeout.Code, req.MemberID)
	}
	if g.state == Dead {
		return joinError(req, kerr.CoordinatorNotAvailable.Code, req.MemberID)
	}
	if !g.supportsProtocols(req.ProtocolType, req.Protocols) {
		return joinError(req, kerr.InconsistentGroupProtocol.Code, req.MemberID)
	}
	_, isPending := g.pending[req.MemberID]
	if req.MemberID == "" || isPending {
		if !g.acceptsNewMember() && !(req.InstanceID != nil && g.static[*req.InstanceID] != "") {
			delete(g.pending, req.MemberID)
			return joinError(req, kerr.GroupMaxSizeReached.Code, "")
		}
	}
	if req.MemberID == "" {
		prefix := clientID
		if req.InstanceID != nil {
			prefix = *req.InstanceID
		}
		id := g.cfg.newMemberID(prefix)
		switch {
		case req.InstanceID != nil && g.static[*req.InstanceID] != "":
			return g.replaceStatic(now, ref, req, g.static[*req.InstanceID], id, clientID, clientHost)
		case req.InstanceID == nil && req.Version >= 4:
			// KIP-394: hand out the id first; the member joins with it.
			g.pending[id] = now.Add(session)
			g.pushDeadline(g.pending[id], id)
			return joinError(req, kerr.MemberIDRequired.Code, id)
		}
		g.addMember(now, ref, req, id, clientID, clientHost)
		g.tryCompleteJoin(now)
		return nil
	}
	if isPending {
		if req.InstanceID != nil {
			// Pending ids are only handed to dynamic members.
			return joinError(req, kerr.UnknownMemberID.Code, req.MemberID)
		}
		delete(g.pending, req.MemberID)
		g.addMember(now, ref, req, req.MemberID, clientID, clientHost)
		g.tryCompleteJoin(now)
		return nil
	}
	if code := g.validateMember(req.MemberID, req.InstanceID); code != 0 {
		return joinError(req, code, req.MemberID)
	}
	m := g.members[req.MemberID]
	switch g.state {
	case PreparingRebalance:
		g.updateMember(m, ref, req)
	case CompletingRebalance:
		if m.matches(req.Protocols) {
			// A retried join: answer with the generation in progress.
			return g.joinResult(req, m.id, m.id == g.leader, g.leader)
		}
		g.updateMember(m, ref, req)
		g.prepareRebalance(now)
	case Stable:
		if m.id != g.leader && m.matches(req.Protocols) {
			// Nothing changed: a follower gets the current generation.
			return g.joinResult(req, m.id, false, g.leader)
		}
		// The leader rejoining, or changed metadata (a new
		// subscription): rebalance.
		g.updateMember(m, ref, req)
		g.prepareRebalance(now)
	default:
		return joinError(req, kerr.UnknownMemberID.Code, req.MemberID)
	}
	g.tryCompleteJoin(now)
	return nil
}

// addMember adds a new member waiting in JoinGroup and starts a rebalance
// if none is under way.
func (g *Group) addMember(now time.Time, ref any, req *kmsg.JoinGroupRequest, id, clientID, clientHost string) {
	m := &member{
		id: id, instanceID: req.InstanceID, clientID: clientID, clientHost: clientHost,
		seq:   g.seq,
		isNew: true,
	}
	g.seq++
	g.setJoin(m, ref, req)
	if g.state == PreparingRebalance && g.generation == 0 {
		g.newMemberAdded = true
	}
	if len(g.members) == 0 {
		g.protocolType = req.ProtocolType
	}
	g.members[id] = m
	g.setDeadline(m, now.Add(g.cfg.newMemberJoinTimeout()))
	if m.instanceID != nil {
		g.static[*m.instanceID] = id
	}
	if g.leader == "" {
		g.leader = id
	}
	g.maybePrepareRebalance(now)
}

// updateMember records a member's new JoinGroup: its protocols, timeouts
// and the request waiting for the rebalance.
func (g *Group) updateMember(m *member, ref any, req *kmsg.JoinGroupRequest) {
	if m.join != nil && m.join.ref != ref {
		// The same member joined again before its earlier JoinGroup was
		// answered (the client gave up on it): free the old one.
		g.reply(m.join.ref, joinError(m.join.req, kerr.RebalanceInProgress.Code, m.id))
	}
	g.setJoin(m, ref, req)
}

func (g *Group) setJoin(m *member, ref any, req *kmsg.JoinGroupRequest) {
	g.setProtocols(m, copyProtocols(req.Protocols))
	m.session = ms(req.SessionTimeoutMillis)
	m.rebalance = ms(req.RebalanceTimeoutMillis)
	if req.Version == 0 || m.rebalance <= 0 {
		m.rebalance = m.session
	}
	if m.join == nil {
		g.joining++
	}
	m.join = &joinWait{ref: ref, req: req}
}

// endJoin returns the JoinGroup m is waiting in (nil if none) and stops
// the wait; the caller answers it.
func (g *Group) endJoin(m *member) *joinWait {
	w := m.join
	if w != nil {
		m.join = nil
		g.joining--
	}
	return w
}

// replaceStatic handles a known group.instance.id joining with no member
// id (KIP-345): the new member takes the old one's place, and the old one
// is fenced. In a stable group whose protocol would not change, the
// group carries on without a rebalance once the new member id is stored.
func (g *Group) replaceStatic(now time.Time, ref any, req *kmsg.JoinGroupRequest, oldID, newID, clientID, clientHost string) *kmsg.JoinGroupResponse {
	m := g.members[oldID]
	prevLeader := g.leader
	if w := g.endJoin(m); w != nil {
		g.reply(w.ref, joinError(w.req, kerr.FencedInstanceID.Code, oldID))
	}
	if m.sync != nil {
		g.reply(m.sync.ref, syncError(m.sync.req, kerr.FencedInstanceID.Code))
		m.sync = nil
	}
	old := *m
	g.renameMember(m, newID)
	m.clientID, m.clientHost = clientID, clientHost
	g.setDeadline(m, now.Add(ms(req.SessionTimeoutMillis)))
	g.setJoin(m, ref, req)

	switch g.state {
	case Stable:
		if g.selectProtocol() != g.protocol {
			g.prepareRebalance(now)
			return nil
		}
		assign := map[string][]byte{}
		for _, x := range g.members {
			assign[x.id] = x.assignment
		}
		g.write(g.metadataRecords(assign), func(now time.Time, err error) {
			if g.members[newID] != m || m.join == nil {
				return
			}
			w := g.endJoin(m)
			g.armDeadline(m)
			if err != nil {
				// Undo: the old member id stays.
				g.renameMember(m, oldID)
				g.setProtocols(m, old.protocols)
				m.session, m.rebalance = old.session, old.rebalance
				m.clientID, m.clientHost = old.clientID, old.clientHost
				g.setDeadline(m, now.Add(m.session))
				resp := g.joinResult(w.req, "", false, prevLeader)
				resp.ErrorCode = storeErrorCode(err)
				g.reply(w.ref, resp)
				return
			}
			var resp *kmsg.JoinGroupResponse
			if w.req.Version >= 9 {
				// KIP-814: the leader learns it leads but skips the
				// assignment, since the group stays as it is.
				isLeader := g.leader == newID
				resp = g.joinResult(w.req, newID, isLeader, g.leader)
				resp.SkipAssignment = isLeader
			} else {
				// Older clients get the previous leader id, so that a
				// returning leader does not run an assignment the
				// stable group would ignore.
				resp = g.joinResult(w.req, newID, false, prevLeader)
			}
			g.reply(w.ref, resp)
		})
		return nil
	case CompletingRebalance:
		// The leader may already be assigning to the old member id.
		g.prepareRebalance(now)
	}
	g.tryCompleteJoin(now)
	return nil
}

// renameMember gives m a new member id, keeping its place in the group.
func (g *Group) renameMember(m *member, id string) {
	old := m.id
	delete(g.members, old)
	m.id = id
	g.members[id] = m
	if g.leader == old {
		g.leader = id
	}
	if m.instanceID != nil {
		g.static[*m.instanceID] = id
	}
	delete(g.pendingSync, old)
}

func (g *Group) maybePrepareRebalance(now time.Time) {
	switch g.state {
	case Stable, CompletingRebalance, Empty:
		g.prepareRebalance(now)
	}
}

// prepareRebalance moves to PreparingRebalance: members must rejoin.
// SyncGroups waiting for an assignment that will not come are answered
// REBALANCE_IN_PROGRESS.
func (g *Group) prepareRebalance(now time.Time) {
	if g.state == CompletingRebalance {
		g.failSyncs(now, kerr.RebalanceInProgress.Code)
	}
	g.pendingSync = map[string]struct{}{}
	g.syncDeadline = time.Time{}
	if g.state == Empty {
		d := g.cfg.InitialRebalanceDelay
		g.initialJoin = true
		g.initialLeft = max(g.rebalanceTimeout()-d, 0)
		g.joinDeadline = now.Add(d)
	} else {
		g.initialJoin = false
		g.joinDeadline = now.Add(g.rebalanceTimeout())
	}
	g.transition(PreparingRebalance, now)
	g.tryCompleteJoin(now)
}

// allJoined reports whether every member is waiting in JoinGroup and no
// member id handed out is still to be used.
func (g *Group) allJoined() bool {
	return len(g.pending) == 0 && g.joining == len(g.members)
}

// tryCompleteJoin completes the join phase once everyone has joined
// (except during an initial delay, which always runs its course).
func (g *Group) tryCompleteJoin(now time.Time) {
	if g.state == PreparingRebalance && !g.initialJoin && g.allJoined() {
		g.completeJoin(now)
	}
}

// completeJoin ends the join phase: dynamic members that did not rejoin
// are dropped, a new generation starts and every waiting member is
// answered (the leader with the members' metadata).
func (g *Group) completeJoin(now time.Time) {
	g.joinDeadline = time.Time{}
	g.initialJoin = false
	for _, m := range g.sorted() {
		if m.join == nil && m.instanceID == nil {
			g.removeMember(m)
		}
	}
	if len(g.members) > 0 && !g.electJoinedLeader() {
		// Only static members that have not rejoined remain: wait for
		// them to rejoin or expire.
		g.joinDeadline = now.Add(g.rebalanceTimeout())
		return
	}
	g.generation++
	if g.cfg.Rebalanced != nil {
		g.cfg.Rebalanced(g.id, g.generation)
	}
	if len(g.members) == 0 {
		g.protocol = ""
		g.subscribed = nil
		g.transition(Empty, now)
		g.write(g.metadataRecords(nil), nil)
		return
	}
	g.protocol = g.selectProtocol()
	g.subscribed = g.computeSubscribed()
	g.transition(CompletingRebalance, now)
	for _, m := range g.sorted() {
		if w := g.endJoin(m); w != nil {
			g.reply(w.ref, g.joinResult(w.req, m.id, m.id == g.leader, g.leader))
		}
		m.isNew = false
		g.setDeadline(m, now.Add(m.session))
		g.pendingSync[m.id] = struct{}{}
	}
	g.syncDeadline = now.Add(g.rebalanceTimeout())
}

// electJoinedLeader keeps the leader if it rejoined, else picks the
// earliest member that did. It reports false when none did.
func (g *Group) electJoinedLeader() bool {
	if l := g.members[g.leader]; l != nil && l.join != nil {
		return true
	}
	for _, m := range g.sorted() {
		if m.join != nil {
			g.leader = m.id
			return true
		}
	}
	return false
}

// selectProtocol picks the protocol for the next generation as Kafka
// does: among the protocols every member supports, each member votes for
// the first it lists; most votes win (ties go to the earliest in the
// first member's list).
func (g *Group) selectProtocol() string {
	ms := g.sorted()
	if len(ms) == 0 {
		return ""
	}
	var candidates []string
	for _, p := range ms[0].protocols {
		all := true
		for _, m := range ms[1:] {
			if !m.supports(p.name) {
				all = false
				break
			}
		}
		if all {
			candidates = append(candidates, p.name)
		}
	}
	votes := map[string]int{}
	for _, m := range ms {
		for _, p := range m.protocols {
			if slices.Contains(candidates, p.name) {
				votes[p.name]++
				break
			}
		}
	}
	best, bestVotes := "", 0
	for _, c := range candidates {
		if votes[c] > bestVotes {
			best, bestVotes = c, votes[c]
		}
	}
	return best
}

// computeSubscribed decodes the consumer subscriptions of the members for
// the chosen protocol; nil if this is not a consumer group or one does
// not decode.
func (g *Group) computeSubscribed() map[string]struct{} {
	if g.protocolType != "consumer" || g.protocol == "" {
		return nil
	}
	out := map[string]struct{}{}
	for _, m := range g.members {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.metadataFor(g.protocol)); err != nil {
			return nil
		}
		for _, t := range md.Topics {
			out[t] = struct{}{}
		}
	}
	return out
}

// removeMember drops a member without touching the group's state.
func (g *Group) removeMember(m *member) {
	if m.join != nil {
		g.joining--
	}
	g.countProtocols(m, -1)
	delete(g.members, m.id)
	delete(g.pendingSync, m.id)
	if m.instanceID != nil && g.static[*m.instanceID] == m.id {
		delete(g.static, *m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		if ms := g.sorted(); len(ms) > 0 {
			g.leader = ms[0].id
		}
	}
}

// removeAndRebalance drops a member that left or expired, answering any
// request it has waiting, and rebalances the others.
func (g *Group) removeAndRebalance(now time.Time, m *member) {
	if w := g.endJoin(m); w != nil {
		g.reply(w.ref, joinError(w.req, kerr.UnknownMemberID.Code, m.id))
	}
	if m.sync != nil {
		g.reply(m.sync.ref, syncError(m.sync.req, kerr.UnknownMemberID.Code))
		m.sync = nil
	}
	g.removeMember(m)
	switch g.state {
	case Stable, CompletingRebalance:
		g.prepareRebalance(now)
	case PreparingRebalance:
		g.tryCompleteJoin(now)
	}
}

func syncError(req *kmsg.SyncGroupRequest, code int16) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	resp.ErrorCode = code
	return resp
}

// failSyncs clears the assignments and answers waiting SyncGroups with
// code.
func (g *Group) failSyncs(now time.Time, code int16) {
	for _, m := range g.sorted() {
		m.assignment = nil
		if m.sync != nil {
			g.reply(m.sync.ref, syncError(m.sync.req, code))
			m.sync = nil
			g.setDeadline(m, now.Add(m.session))
		}
	}
}

// Sync handles SyncGroup v0–v5. It returns the response, or nil when the
// member waits for the leader's assignment (answered later as a Reply
// with ref).
func (g *Group) Sync(now time.Time, ref any, req *kmsg.SyncGroupRequest) *kmsg.SyncGroupResponse {
	if g.state == Dead {
		return syncError(req, kerr.CoordinatorNotAvailable.Code)
	}
	if code := g.validateMember(req.MemberID, req.InstanceID); code != 0 {
		return syncError(req, code)
	}
	if req.Generation != g.generation {
		return syncError(req, kerr.IllegalGeneration.Code)
	}
	if req.ProtocolType != nil && *req.ProtocolType != g.protocolType || req.Protocol != nil && *req.Protocol != g.protocol {
		return syncError(req, kerr.InconsistentGroupProtocol.Code)
	}
	m := g.members[req.MemberID]
	switch g.state {
	case PreparingRebalance:
		return syncError(req, kerr.RebalanceInProgress.Code)
	case CompletingRebalance:
		if m.sync != nil && m.sync.ref != ref {
			g.reply(m.sync.ref, syncError(m.sync.req, kerr.RebalanceInProgress.Code))
		}
		m.sync = &syncWait{ref: ref, req: req}
		delete(g.pendingSync, m.id)
		if m.id == g.leader {
			g.storeAssignment(req)
		}
		return nil
	case Stable:
		delete(g.pendingSync, m.id)
		g.setDeadline(m, now.Add(m.session))
		return g.syncResult(req, m)
	default:
		return syncError(req, kerr.UnknownMemberID.Code)
	}
}

func (g *Group) syncResult(req *kmsg.SyncGroupRequest, m *member) *kmsg.SyncGroupResponse {
	resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
	pt, p := g.protocolType, g.protocol
	resp.ProtocolType = &pt
	resp.Protocol = &p
	resp.MemberAssignment = m.assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	return resp
}

// storeAssignment persists the leader's assignment (members it left out
// get an empty one) and, once stored, hands it out and makes the group
// Stable.
func (g *Group) storeAssignment(req *kmsg.SyncGroupRequest) {
	assign := make(map[string][]byte, len(g.members))
	for id := range g.members {
		assign[id] = []byte{}
	}
	for _, a := range req.GroupAssignment {
		if _, ok := assign[a.MemberID]; ok {
			assign[a.MemberID] = bytes.Clone(a.MemberAssignment)
			if assign[a.MemberID] == nil {
				assign[a.MemberID] = []byte{}
			}
		}
	}
	gen := g.generation
	g.write(g.metadataRecords(assign), func(now time.Time, err error) {
		if g.state != CompletingRebalance || g.generation != gen {
			return
		}
		if err != nil {
			g.failSyncs(now, storeErrorCode(err))
			g.prepareRebalance(now)
			return
		}
		for _, m := range g.sorted() {
			m.assignment = assign[m.id]
			if m.sync != nil {
				g.reply(m.sync.ref, g.syncResult(m.sync.req, m))
				m.sync = nil
				g.setDeadline(m, now.Add(m.session))
			}
		}
		g.transition(Stable, now)
	})
}

// metadataRecords is the group metadata record: protocol, generation,
// leader and the members with their subscriptions and the given
// assignments.
func (g *Group) metadataRecords(assign map[string][]byte) []Record {
	v := kmsg.NewGroupMetadataValue()
	v.Version = groupValueVersion
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.protocol != "" {
		p := g.protocol
		v.Protocol = &p
	}
	if g.leader != "" {
		l := g.leader
		v.Leader = &l
	}
	v.CurrentStateTimestamp = -1
	if !g.stateTime.IsZero() {
		v.CurrentStateTimestamp = g.stateTime.UnixMilli()
	}
	for _, m := range g.sorted() {
		vm := kmsg.NewGroupMetadataValueMember()
		vm.MemberID = m.id
		vm.InstanceID = m.instanceID
		vm.ClientID = m.clientID
		vm.ClientHost = m.clientHost
		vm.RebalanceTimeoutMillis = int32(m.rebalance / time.Millisecond)
		vm.SessionTimeoutMillis = int32(m.session / time.Millisecond)
		vm.Subscription = m.metadataFor(g.protocol)
		if vm.Subscription == nil {
			vm.Subscription = []byte{}
		}
		vm.Assignment = assign[m.id]
		if vm.Assignment == nil {
			vm.Assignment = []byte{}
		}
		v.Members = append(v.Members, vm)
	}
	return []Record{{Key: groupKey(g.id), Value: v.AppendTo(nil)}}
}

// Heartbeat handles Heartbeat v0–v4.
func (g *Group) Heartbeat(now time.Time, req *kmsg.HeartbeatRequest) *kmsg.HeartbeatResponse {
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	if g.state == Dead {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	}
	if code := g.validateMember(req.MemberID, req.InstanceID); code != 0 {
		resp.ErrorCode = code
		return resp
	}
	if req.Generation != g.generation {
		resp.ErrorCode = kerr.IllegalGeneration.Code
		return resp
	}
	m := g.members[req.MemberID]
	switch g.state {
	case CompletingRebalance, Stable:
		g.setDeadline(m, now.Add(m.session))
	case PreparingRebalance:
		g.setDeadline(m, now.Add(m.session))
		resp.ErrorCode = kerr.RebalanceInProgress.Code
	default:
		resp.ErrorCode = kerr.UnknownMemberID.Code
	}
	return resp
}

// Leave handles LeaveGroup v0–v5: one member (v0–v2) or a batch of
// members, possibly named only by group instance id (v3+).
func (g *Group) Leave(now time.Time, req *kmsg.LeaveGroupRequest) *kmsg.LeaveGroupResponse {
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	if g.state == Dead {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp
	}
	if req.Version < 3 {
		resp.ErrorCode = g.leaveOne(now, req.MemberID, nil)
		return resp
	}
	for _, lm := range req.Members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID = lm.MemberID
		rm.InstanceID = lm.InstanceID
		rm.ErrorCode = g.leaveOne(now, lm.MemberID, lm.InstanceID)
		resp.Members = append(resp.Members, rm)
	}
	return resp
}

func (g *Group) leaveOne(now time.Time, memberID string, instanceID *string) int16 {
	if memberID == "" {
		// An administrator removing a static member by instance id.
		if instanceID != nil {
			if id, ok := g.static[*instanceID]; ok {
				g.removeAndRebalance(now, g.members[id])
				return 0
			}
		}
		return kerr.UnknownMemberID.Code
	}
	if _, ok := g.pending[memberID]; ok {
		delete(g.pending, memberID)
		g.tryCompleteJoin(now)
		return 0
	}
	if code := g.validateMember(memberID, instanceID); code != 0 {
		return code
	}
	g.removeAndRebalance(now, g.members[memberID])
	return 0
}

// NextDeadline returns the earliest time at which Tick has something to
// do; ok is false when nothing is scheduled.
func (g *Group) NextDeadline() (t time.Time, ok bool) {
	consider := func(d time.Time) {
		if !d.IsZero() && (!ok || d.Before(t)) {
			t, ok = d, true
		}
	}
	for len(g.deadlines) > 0 {
		deadlineChecks.Add(1)
		if top := g.deadlines[0]; g.holds(top) {
			consider(top.at)
			break
		}
		heap.Pop(&g.deadlines)
	}
	if g.state == PreparingRebalance {
		consider(g.joinDeadline)
	}
	if g.state == CompletingRebalance || g.state == Stable {
		consider(g.syncDeadline)
	}
	return t, ok
}

// Tick runs what is due at now: expiry of pending member ids and of
// member sessions, the end of the join phase, and the removal of members
// that did not send SyncGroup in time.
func (g *Group) Tick(now time.Time) {
	for round := 0; round < 8; round++ {
		if t, ok := g.NextDeadline(); !ok || t.After(now) {
			return
		}
		g.tickOnce(now)
	}
}

func (g *Group) tickOnce(now time.Time) {
	expiredPending := false
	for id, exp := range g.pending {
		if !now.Before(exp) {
			delete(g.pending, id)
			expiredPending = true
		}
	}
	if expiredPending {
		g.tryCompleteJoin(now)
	}
	for _, m := range g.sorted() {
		if g.members[m.id] != m {
			continue
		}
		if m.canExpire() && !now.Before(m.deadline) {
			g.removeAndRebalance(now, m)
		}
	}
	if g.state == PreparingRebalance && !g.joinDeadline.IsZero() && !now.Before(g.joinDeadline) {
		if g.initialJoin && g.newMemberAdded && g.initialLeft > 0 {
			// Members keep arriving: wait a little more, within the
			// rebalance timeout.
			g.newMemberAdded = false
			d := min(g.cfg.InitialRebalanceDelay, g.initialLeft)
			g.initialLeft = max(g.initialLeft-g.cfg.InitialRebalanceDelay, 0)
			g.joinDeadline = now.Add(d)
		} else {
			g.completeJoin(now)
		}
	}
	if (g.state == CompletingRebalance || g.state == Stable) && !g.syncDeadline.IsZero() && !now.Before(g.syncDeadline) {
		g.syncDeadline = time.Time{}
		if len(g.pendingSync) > 0 {
			for _, m := range g.sorted() {
				if _, ok := g.pendingSync[m.id]; ok {
					g.removeMember(m)
				}
			}
			g.pendingSync = map[string]struct{}{}
			g.prepareRebalance(now)
		}
	}
}

// Unload answers every waiting request NOT_COORDINATOR: the driver is
// giving the group up (shutdown, or another broker now leads its
// partition).
func (g *Group) Unload() {
	for _, m := range g.sorted() {
		if w := g.endJoin(m); w != nil {
			g.reply(w.ref, joinError(w.req, kerr.NotCoordinator.Code, m.id))
		}
		if m.sync != nil {
			g.reply(m.sync.ref, syncError(m.sync.req, kerr.NotCoordinator.Code))
			m.sync = nil
		}
	}
}

// Describe returns the group as DescribeGroups v0–v5 reports it: members
// with their metadata and assignments only when Stable.
func (g *Group) Describe() kmsg.DescribeGroupsResponseGroup {
	d := kmsg.NewDescribeGroupsResponseGroup()
	d.Group = g.id
	d.State = g.state.String()
	d.ProtocolType = g.protocolType
	if g.state == Stable {
		d.Protocol = g.protocol
	}
	for _, m := range g.sorted() {
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID = m.id
		dm.InstanceID = m.instanceID
		dm.ClientID = m.clientID
		dm.ClientHost = m.clientHost
		dm.ProtocolMetadata, dm.MemberAssignment = []byte{}, []byte{}
		if g.state == Stable {
			if md := m.metadataFor(g.protocol); md != nil {
				dm.ProtocolMetadata = md
			}
			if m.assignment != nil {
				dm.MemberAssignment = m.assignment
			}
		}
		d.Members = append(d.Members, dm)
	}
	return d
}
