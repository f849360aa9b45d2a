package group

import (
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// env drives one Group the way the coordinator does, with a clock the
// test moves. Refs are strings; replies are collected by ref.
type env struct {
	t       *testing.T
	now     time.Time
	cfg     Config
	out     Outbox
	g       *Group
	ids     int
	replies map[string]kmsg.Response
	// stored is every record written, in order, for checks and reloads.
	stored []Record
	// failNext makes the next write fail with this error.
	failNext error
}

func newEnv(t *testing.T, change func(*Config)) *env {
	e := &env{t: t, now: time.Unix(1_700_000_000, 0), replies: map[string]kmsg.Response{}}
	e.cfg = DefaultConfig()
	e.cfg.InitialRebalanceDelay = 0
	e.cfg.NewMemberID = func(prefix string) string {
		e.ids++
		return fmt.Sprintf("%s-%d", prefix, e.ids)
	}
	e.cfg.KnownPartition = func(topic string, p int32) bool { return topic != "missing" && p >= 0 && p < 10 }
	if change != nil {
		change(&e.cfg)
	}
	e.g = New("g", &e.cfg, &e.out)
	return e
}

// settle completes the writes (the first one failing if failNext is set)
// and collects the replies, as the shard does after every event. It
// checks, after every event of every test, the group's counts of members
// waiting in JoinGroup and of members supporting each protocol.
func (e *env) settle() {
	defer func() {
		waiting := 0
		supporters := map[string]int{}
		for _, m := range e.g.members {
			if m.join != nil {
				waiting++
			}
			names := map[string]bool{}
			for _, p := range m.protocols {
				names[p.name] = true
			}
			for n := range names {
				supporters[n]++
			}
		}
		if e.g.joining != waiting {
			e.t.Fatalf("members waiting in JoinGroup: got a count of %d, want %d", e.g.joining, waiting)
		}
		if !maps.Equal(e.g.supporters, supporters) {
			e.t.Fatalf("members supporting each protocol: got counts %v, want %v", e.g.supporters, supporters)
		}
	}()
	for {
		ws := e.out.TakeWrites()
		if len(ws) == 0 {
			break
		}
		for _, w := range ws {
			err := e.failNext
			e.failNext = nil
			if err == nil {
				e.stored = append(e.stored, w.Records...)
			}
			w.Done(e.now, err)
		}
	}
	for _, r := range e.out.TakeReplies() {
		ref := r.Ref.(string)
		if _, dup := e.replies[ref]; dup {
			e.t.Fatalf("second reply to %s", ref)
		}
		e.replies[ref] = r.Resp
	}
}

func (e *env) advance(d time.Duration) {
	e.now = e.now.Add(d)
	e.g.Tick(e.now)
	e.settle()
}

// take returns and forgets the reply to ref, failing if there is none.
func (e *env) take(ref string) kmsg.Response {
	e.t.Helper()
	r, ok := e.replies[ref]
	if !ok {
		e.t.Fatalf("no reply to %s (have %v)", ref, keys(e.replies))
	}
	delete(e.replies, ref)
	return r
}

func (e *env) noReply(ref string) {
	e.t.Helper()
	if r, ok := e.replies[ref]; ok {
		e.t.Fatalf("unexpected reply to %s: %+v", ref, r)
	}
}

func keys(m map[string]kmsg.Response) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

type joinOpt func(*kmsg.JoinGroupRequest)

func withVersion(v int16) joinOpt { return func(r *kmsg.JoinGroupRequest) { r.Version = v } }
func withInstance(id string) joinOpt {
	return func(r *kmsg.JoinGroupRequest) { r.InstanceID = &id }
}
func withSession(d time.Duration) joinOpt {
	return func(r *kmsg.JoinGroupRequest) { r.SessionTimeoutMillis = int32(d / time.Millisecond) }
}
func withRebalance(d time.Duration) joinOpt {
	return func(r *kmsg.JoinGroupRequest) { r.RebalanceTimeoutMillis = int32(d / time.Millisecond) }
}
func withProtocols(ps ...string) joinOpt {
	return func(r *kmsg.JoinGroupRequest) {
		r.Protocols = nil
		for _, p := range ps {
			r.Protocols = append(r.Protocols, kmsg.JoinGroupRequestProtocol{Name: p, Metadata: subscription("t1")})
		}
	}
}
func withType(pt string) joinOpt { return func(r *kmsg.JoinGroupRequest) { r.ProtocolType = pt } }
func withSubscription(topics ...string) joinOpt {
	return func(r *kmsg.JoinGroupRequest) {
		for i := range r.Protocols {
			r.Protocols[i].Metadata = subscription(topics...)
		}
	}
}

func subscription(topics ...string) []byte {
	m := kmsg.NewConsumerMemberMetadata()
	m.Version = 1
	m.Topics = topics
	return m.AppendTo(nil)
}

// join sends a JoinGroup for memberID (empty: a new member) and settles.
func (e *env) join(ref, memberID string, opts ...joinOpt) *kmsg.JoinGroupResponse {
	e.t.Helper()
	req := kmsg.NewPtrJoinGroupRequest()
	req.Version = 9
	req.Group = "g"
	req.MemberID = memberID
	req.SessionTimeoutMillis = 10000
	req.RebalanceTimeoutMillis = 20000
	req.ProtocolType = "consumer"
	withProtocols("range")(req)
	for _, o := range opts {
		o(req)
	}
	resp := e.g.Join(e.now, ref, req, "client", "/127.0.0.1")
	e.settle()
	return resp
}

// newMember joins with v9 (MEMBER_ID_REQUIRED first) and returns the
// member id; the second join waits under ref.
func (e *env) newMember(ref string, opts ...joinOpt) string {
	e.t.Helper()
	r := e.join(ref+"-probe", "", opts...)
	if r == nil || r.ErrorCode != kerr.MemberIDRequired.Code {
		e.t.Fatalf("first join: want MEMBER_ID_REQUIRED, got %+v", r)
	}
	if r2 := e.join(ref, r.MemberID, opts...); r2 != nil {
		e.t.Fatalf("second join answered at once: %+v", r2)
	}
	return r.MemberID
}

func (e *env) joined(ref string) *kmsg.JoinGroupResponse {
	e.t.Helper()
	r := e.take(ref).(*kmsg.JoinGroupResponse)
	if r.ErrorCode != 0 {
		e.t.Fatalf("join %s failed: %v", ref, kerr.ErrorForCode(r.ErrorCode))
	}
	return r
}

func (e *env) sync(ref, memberID string, gen int32, assign map[string]string) *kmsg.SyncGroupResponse {
	e.t.Helper()
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group = "g"
	req.MemberID = memberID
	req.Generation = gen
	pt, p := "consumer", e.g.Protocol()
	req.ProtocolType, req.Protocol = &pt, &p
	for id, a := range assign {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: id, MemberAssignment: []byte(a)})
	}
	resp := e.g.Sync(e.now, ref, req)
	e.settle()
	return resp
}

func (e *env) heartbeat(memberID string, gen int32) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Version = 4
	req.Group, req.MemberID, req.Generation = "g", memberID, gen
	resp := e.g.Heartbeat(e.now, req)
	e.settle()
	return resp.ErrorCode
}

func (e *env) commit(ref, memberID string, gen int32, offsets map[TopicPartition]int64) *kmsg.OffsetCommitResponse {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group, req.MemberID, req.Generation = "g", memberID, gen
	for tp, o := range offsets {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = tp.Topic
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = tp.Partition, o
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	resp := e.g.Commit(e.now, ref, req)
	e.settle()
	if resp == nil {
		return e.take(ref).(*kmsg.OffsetCommitResponse)
	}
	return resp
}

func codes(resp *kmsg.OffsetCommitResponse) []int16 {
	var out []int16
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out = append(out, p.ErrorCode)
		}
	}
	return out
}

func wantCode(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	var wc int16
	if want != nil {
		wc = want.Code
	}
	if got != wc {
		t.Fatalf("%s: got %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

func wantState(t *testing.T, g *Group, s State) {
	t.Helper()
	if g.State() != s {
		t.Fatalf("state %v, want %v", g.State(), s)
	}
}

// stable brings n members through a first rebalance and returns their
// ids (the first is the leader) and the generation.
func (e *env) stable(n int, opts ...joinOpt) ([]string, int32) {
	e.t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		ids = append(ids, e.newMember(fmt.Sprintf("j%d", i), opts...))
		if i == 0 {
			e.advance(0) // the initial delay (0) runs out
		}
	}
	if n > 1 {
		// The first member is alone in generation 1; it rejoins.
		e.joined("j0")
		if c := e.heartbeat(ids[0], 1); c != kerr.RebalanceInProgress.Code {
			e.t.Fatalf("heartbeat during rebalance: %v", kerr.ErrorForCode(c))
		}
		if r := e.join("j0", ids[0], opts...); r != nil {
			e.t.Fatalf("rejoin answered at once: %+v", r)
		}
	}
	var gen int32
	for i := range ids {
		r := e.joined(fmt.Sprintf("j%d", i))
		gen = r.Generation
		if (r.LeaderID == ids[i]) != (len(r.Members) > 0) {
			e.t.Fatalf("member %s: leader %s with %d members", ids[i], r.LeaderID, len(r.Members))
		}
	}
	wantState(e.t, e.g, CompletingRebalance)
	assign := map[string]string{}
	for _, id := range ids {
		assign[id] = "a-" + id
	}
	for i := len(ids) - 1; i >= 0; i-- {
		var a map[string]string
		if ids[i] == e.g.Leader() {
			a = assign
		}
		if r := e.sync(fmt.Sprintf("s%d", i), ids[i], gen, a); r != nil {
			e.t.Fatalf("sync answered before the leader's: %+v", r)
		}
	}
	for i, id := range ids {
		r := e.take(fmt.Sprintf("s%d", i)).(*kmsg.SyncGroupResponse)
		if r.ErrorCode != 0 || string(r.MemberAssignment) != "a-"+id {
			e.t.Fatalf("sync of %s: %v %q", id, kerr.ErrorForCode(r.ErrorCode), r.MemberAssignment)
		}
	}
	wantState(e.t, e.g, Stable)
	return ids, gen
}

func TestJoinV4NeedsMemberIDThenLeaderGetsMembers(t *testing.T) {
	e := newEnv(t, nil)
	r := e.join("p", "")
	wantCode(t, "first join", r.ErrorCode, kerr.MemberIDRequired)
	if r.MemberID != "client-1" {
		t.Fatalf("member id %q", r.MemberID)
	}
	wantState(t, e.g, Empty)
	if r := e.join("j", r.MemberID); r != nil {
		t.Fatalf("join answered before the initial delay ran out: %+v", r)
	}
	wantState(t, e.g, PreparingRebalance)
	e.advance(0)
	jr := e.joined("j")
	if jr.Generation != 1 || jr.LeaderID != "client-1" || *jr.Protocol != "range" || len(jr.Members) != 1 {
		t.Fatalf("join result %+v", jr)
	}
	wantState(t, e.g, CompletingRebalance)
	if r := e.sync("s", "client-1", 1, map[string]string{"client-1": "A", "ghost": "B"}); r != nil {
		t.Fatalf("leader sync answered before the store: %+v", r)
	}
	sr := e.take("s").(*kmsg.SyncGroupResponse)
	if sr.ErrorCode != 0 || string(sr.MemberAssignment) != "A" || *sr.Protocol != "range" {
		t.Fatalf("sync result %+v", sr)
	}
	wantState(t, e.g, Stable)
	// The stored group metadata is Kafka's record.
	last := e.stored[len(e.stored)-1]
	var v kmsg.GroupMetadataValue
	if err := v.ReadFrom(last.Value); err != nil {
		t.Fatal(err)
	}
	if v.Version != 3 || v.Generation != 1 || *v.Protocol != "range" || *v.Leader != "client-1" || len(v.Members) != 1 || string(v.Members[0].Assignment) != "A" {
		t.Fatalf("stored %+v", v)
	}
}

func TestJoinBeforeV4HasNoMemberIDRoundTrip(t *testing.T) {
	e := newEnv(t, nil)
	if r := e.join("j", "", withVersion(3)); r != nil {
		t.Fatalf("v3 join answered at once: %+v", r)
	}
	e.advance(0)
	if r := e.joined("j"); r.MemberID != "client-1" || r.Generation != 1 {
		t.Fatalf("%+v", r)
	}
}

func TestJoinErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		prep func(e *env)
		opts []joinOpt
		id   string
		want *kerr.Error
	}{
		{name: "session too short", opts: []joinOpt{withSession(time.Second)}, want: kerr.InvalidSessionTimeout},
		{name: "session too long", opts: []joinOpt{withSession(time.Hour)}, want: kerr.InvalidSessionTimeout},
		{name: "no protocol type", opts: []joinOpt{withType("")}, want: kerr.InconsistentGroupProtocol},
		{name: "no protocols", opts: []joinOpt{withProtocols()}, want: kerr.InconsistentGroupProtocol},
		{name: "unknown member", id: "nobody", want: kerr.UnknownMemberID},
		{name: "other protocol type", prep: func(e *env) { e.stable(1) }, opts: []joinOpt{withType("connect")}, want: kerr.InconsistentGroupProtocol},
		{name: "no common protocol", prep: func(e *env) { e.stable(1) }, opts: []joinOpt{withProtocols("sticky")}, want: kerr.InconsistentGroupProtocol},
		{name: "max size", prep: func(e *env) { e.cfg.MaxSize = 1; e.stable(1) }, want: kerr.GroupMaxSizeReached},
		{name: "unknown instance with member id", prep: func(e *env) { e.stable(1) }, id: "client-1", opts: []joinOpt{withInstance("i-9")}, want: kerr.UnknownMemberID},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, nil)
			if c.prep != nil {
				c.prep(e)
			}
			r := e.join("x", c.id, c.opts...)
			if r == nil {
				t.Fatal("no immediate answer")
			}
			wantCode(t, "join", r.ErrorCode, c.want)
			if r.Generation != -1 {
				t.Fatalf("error join with generation %d", r.Generation)
			}
		})
	}
}

func TestSecondMemberRebalancesAndSyncWaitsForLeader(t *testing.T) {
	e := newEnv(t, nil)
	ids, gen := e.stable(2)
	if gen != 2 || e.g.Leader() != ids[0] {
		t.Fatalf("generation %d leader %s", gen, e.g.Leader())
	}
	wantCode(t, "heartbeat", e.heartbeat(ids[1], gen), nil)
	wantCode(t, "old generation", e.heartbeat(ids[1], gen-1), kerr.IllegalGeneration)
	wantCode(t, "unknown member", e.heartbeat("nobody", gen), kerr.UnknownMemberID)
	// A follower rejoining with the same metadata in Stable gets the
	// current generation without a rebalance.
	r := e.join("again", ids[1])
	if r == nil || r.ErrorCode != 0 || r.Generation != gen || len(r.Members) != 0 {
		t.Fatalf("%+v", r)
	}
	wantState(t, e.g, Stable)
	// The leader rejoining forces a rebalance.
	if r := e.join("lead", ids[0]); r != nil {
		t.Fatalf("%+v", r)
	}
	wantState(t, e.g, PreparingRebalance)
	wantCode(t, "sync during rebalance", e.sync("x", ids[1], gen, nil).ErrorCode, kerr.RebalanceInProgress)
	if r := e.join("fol", ids[1]); r != nil {
		t.Fatalf("%+v", r)
	}
	if e.joined("lead").Generation != gen+1 || e.joined("fol").Generation != gen+1 {
		t.Fatal("generation did not advance")
	}
}

func TestProtocolChosenByVote(t *testing.T) {
	e := newEnv(t, nil)
	a := e.newMember("a", withProtocols("range", "roundrobin"))
	e.advance(0)
	e.joined("a")
	b := e.newMember("b", withProtocols("roundrobin", "range", "sticky"))
	c := e.newMember("c", withProtocols("roundrobin", "range"))
	if r := e.join("a", a, withProtocols("range", "roundrobin")); r != nil {
		t.Fatal(r)
	}
	for _, ref := range []string{"a", "b", "c"} {
		if p := *e.joined(ref).Protocol; p != "roundrobin" {
			t.Fatalf("%s: protocol %s", ref, p)
		}
	}
	_, _ = b, c
}

func TestInitialDelayWaitsForMoreMembers(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.InitialRebalanceDelay = 3 * time.Second })
	e.newMember("a", withRebalance(10*time.Second))
	e.advance(time.Second)
	e.newMember("b", withRebalance(10*time.Second))
	e.advance(2 * time.Second) // 3 s: a member arrived, wait 3 s more
	e.noReply("a")
	e.advance(2 * time.Second)
	e.noReply("a")
	e.advance(time.Second) // 6 s: nobody new, complete
	if r := e.joined("a"); len(r.Members) != 2 || r.Generation != 1 {
		t.Fatalf("%+v", r)
	}
	e.joined("b")
}

func TestSessionExpiryRemovesMember(t *testing.T) {
	e := newEnv(t, nil)
	ids, gen := e.stable(2)
	e.advance(6 * time.Second)
	wantCode(t, "heartbeat", e.heartbeat(ids[0], gen), nil)
	e.advance(5 * time.Second) // ids[1] silent for 11 s > 10 s
	wantState(t, e.g, PreparingRebalance)
	wantCode(t, "expired heartbeat", e.heartbeat(ids[1], gen), kerr.UnknownMemberID)
	wantCode(t, "heartbeat", e.heartbeat(ids[0], gen), kerr.RebalanceInProgress)
	if r := e.join("j", ids[0]); r != nil {
		t.Fatal(r)
	}
	if r := e.joined("j"); r.Generation != gen+1 || len(r.Members) != 1 {
		t.Fatalf("%+v", r)
	}
	// The last member expiring leaves the group Empty, a generation on.
	e.advance(11 * time.Second)
	wantState(t, e.g, Empty)
	if e.g.Generation() != gen+2 || e.g.Protocol() != "" {
		t.Fatalf("generation %d protocol %q", e.g.Generation(), e.g.Protocol())
	}
	var v kmsg.GroupMetadataValue
	if err := v.ReadFrom(e.stored[len(e.stored)-1].Value); err != nil || v.Generation != gen+2 || len(v.Members) != 0 {
		t.Fatalf("%v %+v", err, v)
	}
}

func TestRebalanceTimeoutDropsMembersThatDoNotRejoin(t *testing.T) {
	e := newEnv(t, nil)
	ids, gen := e.stable(2)
	if r := e.join("j", ids[1], withSubscription("t2")); r != nil { // a new subscription
		t.Fatal(r)
	}
	wantState(t, e.g, PreparingRebalance)
	// The leader heartbeats (so its session stays) but never rejoins.
	for i := 0; i < 3; i++ {
		e.advance(6 * time.Second)
		wantCode(t, "heartbeat", e.heartbeat(ids[0], gen), kerr.RebalanceInProgress)
	}
	e.advance(3 * time.Second) // 21 s > rebalance timeout 20 s
	r := e.joined("j")
	if r.LeaderID != ids[1] || len(r.Members) != 1 || r.Generation != gen+1 {
		t.Fatalf("%+v", r)
	}
	wantCode(t, "dropped leader", e.heartbeat(ids[0], gen+1), kerr.UnknownMemberID)
}

func TestPendingMemberIDExpiresAndBlocksCompletion(t *testing.T) {
	e := newEnv(t, nil)
	ids, _ := e.stable(1)
	// A new member gets its id but does not come back.
	r := e.join("p", "")
	wantCode(t, "probe", r.ErrorCode, kerr.MemberIDRequired)
	if r := e.join("lead", ids[0]); r != nil {
		t.Fatal(r)
	}
	e.noReply("lead") // waits for the pending member
	e.advance(10 * time.Second)
	if r := e.joined("lead"); len(r.Members) != 1 {
		t.Fatalf("%+v", r)
	}
}

func TestMembersThatDoNotSyncAreRemoved(t *testing.T) {
	e := newEnv(t, nil)
	ids, gen := e.stable(2)
	if r := e.join("a", ids[0]); r != nil {
		t.Fatal(r)
	}
	if r := e.join("b", ids[1]); r != nil {
		t.Fatal(r)
	}
	e.joined("a")
	e.joined("b")
	// Only the leader syncs; it gets its assignment, the group is Stable.
	if r := e.sync("s", ids[0], gen+1, map[string]string{ids[0]: "x", ids[1]: "y"}); r != nil {
		t.Fatal(r)
	}
	e.take("s")
	wantState(t, e.g, Stable)
	for i := 0; i < 3; i++ {
		e.advance(7 * time.Second)
		e.heartbeat(ids[0], gen+1)
		e.heartbeat(ids[1], gen+1)
	}
	// 21 s after the join: ids[1] never sent SyncGroup.
	wantState(t, e.g, PreparingRebalance)
	wantCode(t, "removed", e.heartbeat(ids[1], gen+1), kerr.UnknownMemberID)
}

func TestLeaveGroup(t *testing.T) {
	e := newEnv(t, nil)
	ids, gen := e.stable(3, withVersion(5))
	_ = gen
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Version = 5
	req.Group = "g"
	inst := "nope"
	req.Members = []kmsg.LeaveGroupRequestMember{{MemberID: ids[2]}, {MemberID: "nobody"}, {InstanceID: &inst}}
	resp := e.g.Leave(e.now, req)
	e.settle()
	if resp.ErrorCode != 0 || len(resp.Members) != 3 {
		t.Fatalf("%+v", resp)
	}
	wantCode(t, "leaving member", resp.Members[0].ErrorCode, nil)
	wantCode(t, "unknown member", resp.Members[1].ErrorCode, kerr.UnknownMemberID)
	wantCode(t, "unknown instance", resp.Members[2].ErrorCode, kerr.UnknownMemberID)
	wantState(t, e.g, PreparingRebalance)
	old := kmsg.NewPtrLeaveGroupRequest()
	old.Version = 1
	old.Group, old.MemberID = "g", ids[1]
	if r := e.g.Leave(e.now, old); r.ErrorCode != 0 {
		t.Fatalf("%+v", r)
	}
	e.settle()
	if r := e.join("j", ids[0], withVersion(5)); r != nil {
		t.Fatal(r)
	}
	if r := e.joined("j"); len(r.Members) != 1 {
		t.Fatalf("%+v", r)
	}
}

func TestStaticMemberReplacedWithoutRebalance(t *testing.T) {
	for _, v := range []int16{5, 9} {
		t.Run(fmt.Sprint("v", v), func(t *testing.T) {
			e := newEnv(t, nil)
			a := e.join("a", "", withVersion(v), withInstance("ia"))
			if a != nil {
				t.Fatalf("static members join without MEMBER_ID_REQUIRED: %+v", a)
			}
			e.advance(0)
			leader := e.joined("a").MemberID
			e.sync("s", leader, 1, map[string]string{leader: "A"})
			e.take("s")
			b := e.join("b", "", withVersion(v), withInstance("ib"), withProtocols("range", "roundrobin"))
			if b != nil {
				t.Fatal(b)
			}
			if r := e.join("a", leader, withVersion(v), withInstance("ia")); r != nil {
				t.Fatal(r)
			}
			e.joined("a")
			follower := e.joined("b").MemberID
			e.sync("s1", follower, 2, nil)
			e.sync("s0", leader, 2, map[string]string{leader: "A2", follower: "B2"})
			e.take("s0")
			e.take("s1")
			wantState(t, e.g, Stable)

			// The leader restarts: same instance id, no member id.
			r := e.join("a2", "", withVersion(v), withInstance("ia"))
			if r != nil {
				t.Fatalf("answered before the store: %+v", r)
			}
			r = e.joined("a2")
			wantState(t, e.g, Stable)
			if r.Generation != 2 || r.MemberID == leader {
				t.Fatalf("%+v", r)
			}
			if v >= 9 {
				if r.LeaderID != r.MemberID || !r.SkipAssignment || len(r.Members) != 2 {
					t.Fatalf("v9 leader rejoin: %+v", r)
				}
			} else if r.LeaderID != leader || len(r.Members) != 0 {
				t.Fatalf("pre-v9 rejoin must name the old leader id: %+v", r)
			}
			// Its assignment survives; the old id is fenced.
			sr := e.sync("s2", r.MemberID, 2, nil)
			if sr == nil || string(sr.MemberAssignment) != "A2" {
				t.Fatalf("%+v", sr)
			}
			hb := kmsg.NewPtrHeartbeatRequest()
			ia := "ia"
			hb.Group, hb.MemberID, hb.Generation, hb.InstanceID = "g", leader, 2, &ia
			wantCode(t, "old member", e.g.Heartbeat(e.now, hb).ErrorCode, kerr.FencedInstanceID)

			// A rejoin with other protocols that leave the group's choice
			// alone needs no rebalance either.
			if r := e.join("a3", "", withVersion(v), withInstance("ia"), withProtocols("sticky", "range")); r != nil {
				t.Fatal(r)
			}
			wantState(t, e.g, Stable)
			e.joined("a3")
			// One that would change the choice (a tie, now broken
			// towards roundrobin) rebalances.
			if r := e.join("a4", "", withVersion(v), withInstance("ia"), withProtocols("roundrobin", "range")); r != nil {
				t.Fatal(r)
			}
			wantState(t, e.g, PreparingRebalance)
			e.noReply("a4")
			if r := e.join("a3b", "", withVersion(v), withInstance("ia"), withProtocols("sticky")); r == nil || r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
				t.Fatalf("%+v", r)
			}
		})
	}
}

func TestStaticMemberFencedWhileWaiting(t *testing.T) {
	e := newEnv(t, nil)
	e.join("a", "", withInstance("ia"))
	e.advance(0)
	a := e.joined("a").MemberID
	e.join("b", "", withInstance("ib"))
	e.join("a", a, withInstance("ia"))
	e.joined("a")
	b := e.joined("b").MemberID
	// The follower waits for its assignment when another process with
	// its instance id joins: the waiting one is fenced.
	if r := e.sync("s", b, 2, nil); r != nil {
		t.Fatal(r)
	}
	if r := e.join("b2", "", withInstance("ib")); r != nil {
		t.Fatal(r)
	}
	wantCode(t, "fenced sync", e.take("s").(*kmsg.SyncGroupResponse).ErrorCode, kerr.FencedInstanceID)
	wantState(t, e.g, PreparingRebalance)
	e.join("a", a, withInstance("ia"))
	e.joined("a")
	if r := e.joined("b2"); r.MemberID == b || r.Generation != 3 {
		t.Fatalf("%+v", r)
	}
	// Administrators remove static members by instance id.
	l := kmsg.NewPtrLeaveGroupRequest()
	l.Version = 5
	l.Group = "g"
	ia, ib := "ia", "ib"
	l.Members = []kmsg.LeaveGroupRequestMember{{InstanceID: &ia}, {InstanceID: &ib}}
	if r := e.g.Leave(e.now, l); r.Members[0].ErrorCode != 0 || r.Members[1].ErrorCode != 0 {
		t.Fatalf("%+v", r)
	}
	e.settle()
	wantState(t, e.g, Empty)
}

func TestSyncErrors(t *testing.T) {
	e := newEnv(t, nil)
	ids, gen := e.stable(1)
	wantCode(t, "generation", e.sync("a", ids[0], gen+1, nil).ErrorCode, kerr.IllegalGeneration)
	wantCode(t, "member", e.sync("b", "x", gen, nil).ErrorCode, kerr.UnknownMemberID)
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group, req.MemberID, req.Generation = "g", ids[0], gen
	other := "roundrobin"
	req.Protocol = &other
	wantCode(t, "protocol", e.g.Sync(e.now, "c", req).ErrorCode, kerr.InconsistentGroupProtocol)
}

func TestSyncStoreFailureRebalances(t *testing.T) {
	e := newEnv(t, nil)
	id := e.newMember("j")
	e.advance(0)
	e.joined("j")
	e.failNext = fmt.Errorf("disk: %w", kerr.NotLeaderForPartition)
	if r := e.sync("s", id, 1, map[string]string{id: "A"}); r != nil {
		t.Fatal(r)
	}
	wantCode(t, "sync", e.take("s").(*kmsg.SyncGroupResponse).ErrorCode, kerr.NotCoordinator)
	wantState(t, e.g, PreparingRebalance)
}

func TestCommitRules(t *testing.T) {
	e := newEnv(t, nil)
	tp := TopicPartition{"t1", 0}
	// Anonymous commits are fine while the group has no members.
	r := e.commit("c1", "", -1, map[TopicPartition]int64{tp: 5})
	wantCode(t, "simple commit", codes(r)[0], nil)
	if o, ok := e.g.CommittedOffset(tp); !ok || o.Offset != 5 {
		t.Fatalf("%+v %v", o, ok)
	}
	wantCode(t, "member of no group", codes(e.commit("c2", "m", 3, map[TopicPartition]int64{tp: 6}))[0], kerr.UnknownMemberID)

	ids, gen := e.stable(1)
	wantCode(t, "anonymous in active group", codes(e.commit("c3", "", -1, map[TopicPartition]int64{tp: 7}))[0], kerr.UnknownMemberID)
	wantCode(t, "old generation", codes(e.commit("c4", ids[0], gen-1, map[TopicPartition]int64{tp: 7}))[0], kerr.IllegalGeneration)
	r = e.commit("c5", ids[0], gen, map[TopicPartition]int64{tp: 8, {"missing", 0}: 1, {"t1", 99}: 1})
	got := map[int16]int{}
	for _, c := range codes(r) {
		got[c]++
	}
	if got[0] != 1 || got[kerr.UnknownTopicOrPartition.Code] != 2 {
		t.Fatalf("codes %v", codes(r))
	}
	if o, _ := e.g.CommittedOffset(tp); o.Offset != 8 {
		t.Fatalf("offset %d", o.Offset)
	}
	// A failed write changes nothing and maps the error as Kafka does.
	e.failNext = kerr.NotEnoughReplicas
	wantCode(t, "failed append", codes(e.commit("c6", ids[0], gen, map[TopicPartition]int64{tp: 9}))[0], kerr.CoordinatorNotAvailable)
	if o, _ := e.g.CommittedOffset(tp); o.Offset != 8 {
		t.Fatalf("offset %d after a failed commit", o.Offset)
	}
	// Metadata too large.
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group, req.MemberID, req.Generation = "g", ids[0], gen
	big := string(make([]byte, 5000))
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t1", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1, Metadata: &big}}}}
	wantCode(t, "metadata", codes(e.g.Commit(e.now, "c7", req))[0], kerr.OffsetMetadataTooLarge)
	// During CompletingRebalance commits wait for the new assignment.
	e.join("j", ids[0])
	e.joined("j")
	wantCode(t, "completing", codes(e.commit("c8", ids[0], gen+1, map[TopicPartition]int64{tp: 9}))[0], kerr.RebalanceInProgress)
}

func TestCommitV0IsAnonymous(t *testing.T) {
	e := newEnv(t, nil)
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 0
	req.Group = "g"
	req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t1", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 2, Offset: 42}}}}
	if r := e.g.Commit(e.now, "c", req); r != nil {
		t.Fatalf("%+v", r)
	}
	e.settle()
	wantCode(t, "v0", codes(e.take("c").(*kmsg.OffsetCommitResponse))[0], nil)
	out := e.g.FetchOffsets([]kmsg.OffsetFetchRequestTopic{{Topic: "t1", Partitions: []int32{2, 3}}})
	if out[0].Partitions[0].Offset != 42 || out[0].Partitions[1].Offset != -1 || *out[0].Partitions[1].Metadata != "" {
		t.Fatalf("%+v", out)
	}
	if all := e.g.FetchOffsets(nil); len(all) != 1 || len(all[0].Partitions) != 1 {
		t.Fatalf("%+v", all)
	}
}

func TestDeleteGroupAndOffsets(t *testing.T) {
	e := newEnv(t, nil)
	ids, gen := e.stable(1, withSubscription("t1"))
	e.commit("c", ids[0], gen, map[TopicPartition]int64{{"t1", 0}: 1, {"t2", 0}: 2})
	wantCode(t, "delete non-empty", e.g.Delete(), kerr.NonEmptyGroup)

	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = "g"
	req.Topics = []kmsg.OffsetDeleteRequestTopic{
		{Topic: "t1", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}},
		{Topic: "t2", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}},
		{Topic: "missing", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}},
	}
	resp := e.g.DeleteOffsets(req)
	e.settle()
	wantCode(t, "group", resp.ErrorCode, nil)
	wantCode(t, "subscribed", resp.Topics[0].Partitions[0].ErrorCode, kerr.GroupSubscribedToTopic)
	wantCode(t, "unsubscribed", resp.Topics[1].Partitions[0].ErrorCode, nil)
	wantCode(t, "unknown topic", resp.Topics[2].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
	if _, ok := e.g.CommittedOffset(TopicPartition{"t2", 0}); ok {
		t.Fatal("t2 offset survived")
	}
	if last := e.stored[len(e.stored)-1]; last.Value != nil {
		t.Fatal("no tombstone for the deleted offset")
	}

	l := kmsg.NewPtrLeaveGroupRequest()
	l.Group, l.MemberID = "g", ids[0]
	e.g.Leave(e.now, l)
	e.settle()
	wantState(t, e.g, Empty)
	wantCode(t, "delete", e.g.Delete(), nil)
	e.settle()
	wantState(t, e.g, Dead)
	tomb := e.stored[len(e.stored)-2:]
	if tomb[0].Value != nil || tomb[1].Value != nil {
		t.Fatal("no tombstones for the deleted group")
	}
	wantCode(t, "delete again", e.g.Delete(), kerr.GroupIDNotFound)
}

func TestExpireOffsets(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.OffsetsRetention = time.Hour })
	e.commit("c", "", -1, map[TopicPartition]int64{{"t1", 0}: 1})
	e.advance(30 * time.Minute)
	e.commit("c2", "", -1, map[TopicPartition]int64{{"t1", 1}: 1})
	if e.g.ExpireOffsets(e.now.Add(45 * time.Minute)) {
		t.Fatal("group died with an offset left")
	}
	e.settle()
	if _, ok := e.g.CommittedOffset(TopicPartition{"t1", 0}); ok {
		t.Fatal("old offset kept")
	}
	if !e.g.ExpireOffsets(e.now.Add(2 * time.Hour)) {
		t.Fatal("empty group without offsets should die")
	}
	wantState(t, e.g, Dead)
}

func TestUnloadAnswersWaiters(t *testing.T) {
	e := newEnv(t, nil)
	ids, _ := e.stable(2)
	if r := e.join("w", ids[0]); r != nil {
		t.Fatal(r)
	}
	e.g.Unload()
	e.settle()
	wantCode(t, "unloaded join", e.take("w").(*kmsg.JoinGroupResponse).ErrorCode, kerr.NotCoordinator)
}

func TestWriteErrorMapping(t *testing.T) {
	for _, c := range []struct {
		err           error
		commit, store *kerr.Error
	}{
		{kerr.UnknownTopicOrPartition, kerr.CoordinatorNotAvailable, kerr.CoordinatorNotAvailable},
		{kerr.NotLeaderForPartition, kerr.NotCoordinator, kerr.NotCoordinator},
		{kerr.MessageTooLarge, kerr.InvalidCommitOffsetSize, kerr.UnknownServerError},
		{kerr.RequestTimedOut, kerr.RequestTimedOut, kerr.RebalanceInProgress},
		{errors.New("plain"), kerr.UnknownServerError, kerr.UnknownServerError},
	} {
		wantCode(t, fmt.Sprint("commit ", c.err), commitErrorCode(c.err), c.commit)
		wantCode(t, fmt.Sprint("store ", c.err), storeErrorCode(c.err), c.store)
	}
}

func TestStaticMemberKeptWhenItDoesNotRejoin(t *testing.T) {
	e := newEnv(t, nil)
	e.join("a", "", withInstance("ia"))
	e.advance(0)
	a := e.joined("a").MemberID
	e.sync("s", a, 1, map[string]string{a: "A"})
	e.take("s")
	// A dynamic member arrives; the static leader is slow to rejoin.
	b := e.newMember("b")
	for i := 0; i < 2; i++ {
		e.advance(9 * time.Second)
		wantCode(t, "static leader heartbeat", e.heartbeat(a, 1), kerr.RebalanceInProgress)
	}
	e.advance(3 * time.Second) // rebalance timeout: a is kept, b leads
	r := e.joined("b")
	if r.LeaderID != b || len(r.Members) != 2 || r.Generation != 2 {
		t.Fatalf("%+v", r)
	}
	if len(e.g.MemberIDs()) != 2 {
		t.Fatalf("members %v", e.g.MemberIDs())
	}
}

func TestNewMemberGivesUpAfterJoinTimeout(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.NewMemberJoinTimeout = time.Minute })
	ids, _ := e.stable(1, withSession(10*time.Minute), withRebalance(10*time.Minute))
	// A new member joins; the leader keeps heartbeating but never
	// rejoins, so the join phase lasts the whole rebalance timeout.
	e.newMember("n", withSession(10*time.Minute), withRebalance(10*time.Minute))
	for i := 0; i < 7; i++ {
		e.advance(9 * time.Second)
		e.heartbeat(ids[0], 1)
	}
	wantCode(t, "new member dropped", e.take("n").(*kmsg.JoinGroupResponse).ErrorCode, kerr.UnknownMemberID)
	wantState(t, e.g, PreparingRebalance)
}
