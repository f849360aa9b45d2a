package broker_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/internal/await"
)

func grpCreateTopic(t *testing.T, adm *kadm.Client, topic string, partitions int32) {
	t.Helper()
	if _, err := adm.CreateTopic(grpCtx(t), partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
}

// grpProduce writes values "v-from" .. "v-(from+n-1)", value i to
// partition i % partitions.
func grpProduce(t *testing.T, addr, topic string, from, n int, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i) % partitions, Value: []byte(fmt.Sprintf("v-%d", i))})
	}
	if err := cl.ProduceSync(grpCtx(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// grpSeen records what a group consumed: every value, by whom, and any
// value consumed twice.
type grpSeen struct {
	mu     sync.Mutex
	by     map[string]string
	counts map[string]int
	dups   []string
	errs   []error
}

func newGrpSeen() *grpSeen {
	return &grpSeen{by: map[string]string{}, counts: map[string]int{}}
}

func (s *grpSeen) add(member string, vals ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range vals {
		if prev, ok := s.by[v]; ok {
			s.dups = append(s.dups, fmt.Sprintf("%s by %s and %s", v, prev, member))
			continue
		}
		s.by[v] = member
		s.counts[member]++
	}
}

func (s *grpSeen) fail(err error) {
	s.mu.Lock()
	s.errs = append(s.errs, err)
	s.mu.Unlock()
}

func (s *grpSeen) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.by)
}

// reached is a check for await.Eventually: at least n values were seen.
func (s *grpSeen) reached(n int) func() error {
	return func() error {
		if got := s.len(); got < n {
			return await.NotYet(got, fmt.Sprintf("at least %d", n))
		}
		return nil
	}
}

func (s *grpSeen) count(member string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[member]
}

// check fails on duplicates or client errors, and unless every value
// from..to-1 was seen.
func (s *grpSeen) check(t *testing.T, from, to int) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.dups) > 0 {
		t.Fatalf("consumed twice: %v", s.dups)
	}
	if len(s.errs) > 0 {
		t.Fatalf("consumer errors: %v", s.errs)
	}
	for i := from; i < to; i++ {
		if _, ok := s.by[fmt.Sprintf("v-%d", i)]; !ok {
			t.Fatalf("v-%d was never consumed", i)
		}
	}
	if len(s.by) != to-from {
		t.Fatalf("consumed %d values, want %d", len(s.by), to-from)
	}
}

// grpMember is a franz-go group consumer that processes a poll, commits
// it synchronously, and only then lets a rebalance happen, so that the
// group consumes every record exactly once.
type grpMember struct {
	name   string
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

func grpConsume(t *testing.T, addr, group, topic, name string, seen *grpSeen, opts ...kgo.Opt) *grpMember {
	t.Helper()
	base := []kgo.Opt{
		kgo.SeedBrokers(addr), kgo.ClientID(name),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(4 * time.Second), kgo.HeartbeatInterval(100 * time.Millisecond),
		kgo.RebalanceTimeout(10 * time.Second), kgo.FetchMaxWait(200 * time.Millisecond),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &grpMember{name: name, cl: cl, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.done)
		// A poll abandoned by stop must still let the client leave.
		defer cl.AllowRebalance()
		for {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				return
			}
			fs.EachError(func(topic string, p int32, err error) {
				if !errors.Is(err, context.Canceled) {
					seen.fail(fmt.Errorf("%s: fetch %s/%d: %w", name, topic, p, err))
				}
			})
			recs := fs.Records()
			if len(recs) > 0 {
				vals := make([]string, len(recs))
				for i, r := range recs {
					vals[i] = string(r.Value)
				}
				seen.add(name, vals...)
				if err := cl.CommitRecords(ctx, recs...); err != nil && ctx.Err() == nil {
					seen.fail(fmt.Errorf("%s: commit: %w", name, err))
				}
			}
			cl.AllowRebalance()
		}
	}()
	t.Cleanup(m.stop)
	return m
}

// stop ends the poll loop and closes the client, which leaves the group.
func (m *grpMember) stop() {
	m.once.Do(func() {
		m.cancel()
		<-m.done
		m.cl.Close()
	})
}

func grpDescribe(t *testing.T, adm *kadm.Client, group string) kadm.DescribedGroup {
	t.Helper()
	ds, err := adm.DescribeGroups(grpCtx(t), group)
	if err != nil {
		t.Fatal(err)
	}
	d := ds[group]
	if d.Err != nil {
		t.Fatalf("describing %s: %v", group, d.Err)
	}
	return d
}

// grpState is a check for await.Eventually: group is in state want.
func grpState(t *testing.T, adm *kadm.Client, group, want string) func() error {
	return func() error {
		if got := grpDescribe(t, adm, group).State; got != want {
			return await.NotYet(got, want)
		}
		return nil
	}
}

// grpAssigned returns, per member id, how many partitions of topic it
// was assigned.
func grpAssigned(d kadm.DescribedGroup, topic string) map[string]int {
	out := map[string]int{}
	for _, m := range d.Members {
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range c.Topics {
				if t.Topic == topic {
					out[m.MemberID] += len(t.Partitions)
				}
			}
		}
	}
	return out
}

// grpWaitStable waits until the group is Stable with n members, each
// assigned per partitions of topic.
func grpWaitStable(t *testing.T, adm *kadm.Client, group, topic string, n, per int) kadm.DescribedGroup {
	t.Helper()
	var d kadm.DescribedGroup
	want := fmt.Sprintf("Stable, %d members with %d partitions each", n, per)
	await.Eventually(t, fmt.Sprintf("%s stable with %d members", group, n), func() error {
		ds, err := adm.DescribeGroups(grpCtx(t), group)
		if err != nil {
			return err
		}
		d = ds[group]
		if d.Err != nil {
			return d.Err
		}
		a := grpAssigned(d, topic)
		if d.State != "Stable" || len(d.Members) != n || len(a) != n {
			return await.NotYet(fmt.Sprintf("%s, %d members, partitions per member %v", d.State, len(d.Members), a), want)
		}
		for _, c := range a {
			if c != per {
				return await.NotYet(fmt.Sprintf("partitions per member %v", a), want)
			}
		}
		return nil
	})
	return d
}

// grpWaitCommitted waits until the group's committed offset of every
// partition of topic is want.
func grpWaitCommitted(t *testing.T, adm *kadm.Client, group, topic string, partitions int32, want int64) {
	t.Helper()
	await.Eventually(t, fmt.Sprintf("%s committed %d on every partition", group, want), func() error {
		os, err := adm.FetchOffsets(grpCtx(t), group)
		if err != nil {
			return err
		}
		if err := os.Error(); err != nil {
			return err
		}
		for p := int32(0); p < partitions; p++ {
			if o, ok := os.Lookup(topic, p); !ok || o.At != want {
				return await.NotYet(fmt.Sprintf("partition %d at %d (committed: %v)", p, o.At, ok), want)
			}
		}
		return nil
	})
}

func TestGroupFranzGoMembersShareAndRebalance(t *testing.T) {
	gb, adm := grpStartAdmin(t, "", "")
	const topic, group = "events", "fg"
	grpCreateTopic(t, adm, topic, 6)
	seen := newGrpSeen()
	a := grpConsume(t, gb.addr, group, topic, "a", seen)
	b := grpConsume(t, gb.addr, group, topic, "b", seen)
	c := grpConsume(t, gb.addr, group, topic, "c", seen)
	d := grpWaitStable(t, adm, group, topic, 3, 2)
	if d.ProtocolType != "consumer" || d.Protocol != "cooperative-sticky" {
		t.Fatalf("protocol %s/%s", d.ProtocolType, d.Protocol)
	}
	for _, m := range d.Members {
		if !strings.HasPrefix(m.ClientHost, "/127.0.0.1") || m.ClientID == "" {
			t.Fatalf("member %+v", m)
		}
	}

	grpProduce(t, gb.addr, topic, 0, 300, 6)
	await.Eventually(t, "300 records consumed", seen.reached(300))
	grpWaitCommitted(t, adm, group, topic, 6, 50)
	seen.check(t, 0, 300)
	for _, m := range []*grpMember{a, b, c} {
		if n := seen.count(m.name); n != 100 {
			t.Fatalf("member %s consumed %d records, want its 2 partitions' 100", m.name, n)
		}
	}

	// c leaves; a and b take over its partitions and resume at the
	// committed offsets.
	c.stop()
	grpWaitStable(t, adm, group, topic, 2, 3)
	grpProduce(t, gb.addr, topic, 300, 300, 6)
	await.Eventually(t, "600 records consumed", seen.reached(600))
	grpWaitCommitted(t, adm, group, topic, 6, 100)
	seen.check(t, 0, 600)
	if seen.count("c") != 100 || seen.count("a")+seen.count("b") != 500 {
		t.Fatalf("a %d b %d c %d", seen.count("a"), seen.count("b"), seen.count("c"))
	}
}

func TestGroupAdminWithKadm(t *testing.T) {
	gb, adm := grpStartAdmin(t, "", "")
	ctx := grpCtx(t)
	const topic, group = "adm", "admg"
	grpCreateTopic(t, adm, topic, 3)
	grpCreateTopic(t, adm, "other", 1)
	grpProduce(t, gb.addr, topic, 0, 30, 3)
	seen := newGrpSeen()
	m := grpConsume(t, gb.addr, group, topic, "solo", seen, kgo.Balancers(kgo.RoundRobinBalancer()))
	await.Eventually(t, "30 records", seen.reached(30))
	grpWaitCommitted(t, adm, group, topic, 3, 10)
	seen.check(t, 0, 30)
	// An offset for a topic the group does not consume.
	if r, err := adm.CommitOffsets(ctx, group, kadm.Offsets{"other": {0: {Topic: "other", Partition: 0, At: 1, LeaderEpoch: -1}}}); err != nil || !errors.Is(r.Error(), kerr.UnknownMemberID) {
		t.Fatalf("an outside commit to an active group: %v %v", err, r.Error())
	}

	ls, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if g, ok := ls[group]; !ok || g.State != "Stable" || g.ProtocolType != "consumer" || g.Coordinator != 1 {
		t.Fatalf("listed %+v", ls)
	}
	if ls, err := adm.ListGroups(ctx, "Empty"); err != nil || len(ls) != 0 {
		t.Fatalf("Empty filter: %v %v", ls, err)
	}
	d := grpDescribe(t, adm, group)
	if d.State != "Stable" || d.Protocol != "roundrobin" || len(d.Members) != 1 || grpAssigned(d, topic)[d.Members[0].MemberID] != 3 || d.Members[0].ClientID != "solo" {
		t.Fatalf("described %+v", d)
	}
	os, err := adm.FetchOffsets(ctx, group)
	if err != nil || os.Error() != nil {
		t.Fatal(err, os.Error())
	}
	for p := int32(0); p < 3; p++ {
		if o, _ := os.Lookup(topic, p); o.At != 10 {
			t.Fatalf("partition %d at %d", p, o.At)
		}
	}

	// While the member consumes the topic, its offsets cannot go, nor
	// can the group.
	dor, err := adm.DeleteOffsets(ctx, group, kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := dor.Lookup(topic, 0); !errors.Is(e, kerr.GroupSubscribedToTopic) {
		t.Fatalf("delete subscribed offset: %v", e)
	}
	dgr, err := adm.DeleteGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(dgr[group].Err, kerr.NonEmptyGroup) {
		t.Fatalf("delete active group: %v", dgr[group].Err)
	}

	m.stop()
	await.Eventually(t, "group empty", grpState(t, adm, group, "Empty"), await.Within(30*time.Second))
	if ls, err := adm.ListGroups(ctx, "empty"); err != nil || len(ls) != 1 {
		t.Fatalf("empty filter: %v %v", ls, err)
	}
	dor, err = adm.DeleteOffsets(ctx, group, kadm.TopicsSet{topic: {0: {}}})
	if err != nil || dor.Error() != nil {
		t.Fatal(err, dor.Error())
	}
	os, _ = adm.FetchOffsets(ctx, group)
	if o, ok := os.Lookup(topic, 0); ok && o.At >= 0 {
		t.Fatalf("deleted offset still there: %+v", o)
	}
	if o, _ := os.Lookup(topic, 1); o.At != 10 {
		t.Fatalf("partition 1 at %d", o.At)
	}
	dgr, err = adm.DeleteGroups(ctx, group)
	if err != nil || dgr.Error() != nil {
		t.Fatal(err, dgr.Error())
	}
	if d := grpDescribe(t, adm, group); d.State != "Dead" {
		t.Fatalf("deleted group is %s", d.State)
	}
	if ls, _ := adm.ListGroups(ctx); len(ls) != 0 {
		t.Fatalf("listed after delete: %v", ls)
	}
	if os, _ := adm.FetchOffsets(ctx, group); len(os) != 0 {
		t.Fatalf("offsets after delete: %v", os)
	}

	// A group that only stores offsets (an admin commit).
	if r, err := adm.CommitOffsets(ctx, "simple", kadm.Offsets{topic: {2: {Topic: topic, Partition: 2, At: 7, LeaderEpoch: -1, Metadata: "m"}}}); err != nil || r.Error() != nil {
		t.Fatal(err, r.Error())
	}
	os, _ = adm.FetchOffsets(ctx, "simple")
	if o, _ := os.Lookup(topic, 2); o.At != 7 || o.Metadata != "m" {
		t.Fatalf("%+v", o)
	}
	if d := grpDescribe(t, adm, "simple"); d.State != "Empty" || d.ProtocolType != "" {
		t.Fatalf("%+v", d)
	}
	r, err := adm.CommitOffsets(ctx, "simple", kadm.Offsets{"nope": {0: {Topic: "nope", At: 1, LeaderEpoch: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := r.Lookup("nope", 0); !errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("commit to a missing topic: %v", o.Err)
	}
}

// grpSaramaHandler records messages and commits after each.
type grpSaramaHandler struct {
	name   string
	seen   *grpSeen
	mu     sync.Mutex
	setups int
}

func (h *grpSaramaHandler) Setup(sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	h.setups++
	h.mu.Unlock()
	return nil
}

func (h *grpSaramaHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *grpSaramaHandler) sessions() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.setups
}

func (h *grpSaramaHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		sess.MarkMessage(msg, "")
		sess.Commit()
		h.seen.add(h.name, string(msg.Value))
	}
	return nil
}

// grpSaramaMember runs a sarama consumer group member until stopped.
func grpSaramaMember(t *testing.T, addr, group, topic, instance string, seen *grpSeen) (*grpSaramaHandler, func()) {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0
	cfg.ClientID = "sarama-" + instance
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Consumer.Offsets.AutoCommit.Enable = false
	cfg.Consumer.Group.Session.Timeout = 4 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 200 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Timeout = 10 * time.Second
	cfg.Consumer.Group.InstanceId = instance
	cfg.Consumer.MaxWaitTime = 200 * time.Millisecond
	cg, err := sarama.NewConsumerGroup([]string{addr}, group, cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &grpSaramaHandler{name: instance, seen: seen}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := cg.Consume(ctx, []string{topic}, h); err != nil && ctx.Err() == nil {
				seen.fail(fmt.Errorf("%s: %w", instance, err))
				return
			}
		}
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			cg.Close()
		})
	}
	t.Cleanup(stop)
	return h, stop
}

func TestGroupSaramaStaticMembers(t *testing.T) {
	gb, adm := grpStartAdmin(t, "", "")
	const topic, group = "sar", "sarg"
	grpCreateTopic(t, adm, topic, 4)
	seen := newGrpSeen()
	h1, _ := grpSaramaMember(t, gb.addr, group, topic, "s1", seen)
	_, stop2 := grpSaramaMember(t, gb.addr, group, topic, "s2", seen)
	d := grpWaitStable(t, adm, group, topic, 2, 2)
	inst := map[string]string{}
	for _, m := range d.Members {
		if m.InstanceID == nil {
			t.Fatalf("member %s has no instance id", m.MemberID)
		}
		inst[*m.InstanceID] = m.MemberID
	}
	if d.Protocol != "range" || inst["s1"] == "" || inst["s2"] == "" {
		t.Fatalf("described %+v", d)
	}
	grpProduce(t, gb.addr, topic, 0, 80, 4)
	await.Eventually(t, "80 records", seen.reached(80))
	grpWaitCommitted(t, adm, group, topic, 4, 20)
	seen.check(t, 0, 80)

	// s2 restarts: a static member closes without leaving, and its
	// successor takes its place with no rebalance (KIP-345).
	sessions := h1.sessions()
	stop2()
	h2, _ := grpSaramaMember(t, gb.addr, group, topic, "s2", seen)
	await.Eventually(t, "s2 replaced", func() error {
		d := grpDescribe(t, adm, group)
		s2 := "none"
		for _, m := range d.Members {
			if m.InstanceID != nil && *m.InstanceID == "s2" {
				s2 = m.MemberID
			}
		}
		if s2 == "none" || s2 == inst["s2"] || d.State != "Stable" || len(d.Members) != 2 {
			return await.NotYet(fmt.Sprintf("%s with %d members, s2 is member %s", d.State, len(d.Members), s2),
				fmt.Sprintf("Stable with 2 members, s2 a member other than %s", inst["s2"]))
		}
		return nil
	}, await.Within(30*time.Second))
	await.Eventually(t, "s2 consuming", func() error {
		if n := h2.sessions(); n == 0 {
			return await.NotYet("no sessions", "at least one")
		}
		return nil
	}, await.Within(30*time.Second))
	grpProduce(t, gb.addr, topic, 80, 40, 4)
	await.Eventually(t, "120 records", seen.reached(120))
	grpWaitCommitted(t, adm, group, topic, 4, 30)
	seen.check(t, 0, 120)
	if got := h1.sessions(); got != sessions {
		t.Fatalf("s1 went through %d more rebalances when s2 was replaced", got-sessions)
	}
	if d := grpDescribe(t, adm, group); grpAssigned(d, topic)[inst["s1"]] != 2 {
		t.Fatalf("s1 lost its partitions: %+v", d)
	}
}

func TestGroupOffsetsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	gb, adm := grpStartAdmin(t, dir, "")
	const topic, group = "rs", "rsg"
	grpCreateTopic(t, adm, topic, 3)
	grpProduce(t, gb.addr, topic, 0, 30, 3)
	seen := newGrpSeen()
	m := grpConsume(t, gb.addr, group, topic, "first", seen, kgo.Balancers(kgo.RangeBalancer()))
	await.Eventually(t, "30 records", seen.reached(30))
	grpWaitCommitted(t, adm, group, topic, 3, 10)
	m.stop()
	await.Eventually(t, "group empty", grpState(t, adm, group, "Empty"), await.Within(30*time.Second))
	gb.stop()

	gb2, adm2 := grpStartAdmin(t, dir, "")
	grpWaitCommitted(t, adm2, group, topic, 3, 10)
	if d := grpDescribe(t, adm2, group); d.State != "Empty" || d.ProtocolType != "consumer" {
		t.Fatalf("after restart: %+v", d)
	}
	if ls, err := adm2.ListGroups(grpCtx(t)); err != nil || ls[group].State != "Empty" {
		t.Fatalf("listed %v %v", ls, err)
	}
	grpProduce(t, gb2.addr, topic, 30, 30, 3)
	m2 := grpConsume(t, gb2.addr, group, topic, "second", seen, kgo.Balancers(kgo.RangeBalancer()))
	await.Eventually(t, "60 records", seen.reached(60))
	grpWaitCommitted(t, adm2, group, topic, 3, 20)
	seen.check(t, 0, 60)
	if seen.count("second") != 30 {
		t.Fatalf("the restarted group consumed %d records, want the 30 new ones", seen.count("second"))
	}
	m2.stop()
}

func TestGroupMembersSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	gb, adm := grpStartAdmin(t, dir, "")
	const topic, group = "live", "liveg"
	grpCreateTopic(t, adm, topic, 2)
	seen := newGrpSeen()
	grpConsume(t, gb.addr, group, topic, "m", seen, kgo.SessionTimeout(20*time.Second))
	d := grpWaitStable(t, adm, group, topic, 1, 2)
	grpProduce(t, gb.addr, topic, 0, 20, 2)
	await.Eventually(t, "20 records", seen.reached(20))
	grpWaitCommitted(t, adm, group, topic, 2, 10)

	// Restart on the same address while the member runs: the group
	// comes back Stable with the member, which carries on.
	gb.stop()
	gb2, adm2 := grpStartAdmin(t, dir, gb.addr)
	d2 := grpDescribe(t, adm2, group)
	if d2.State != "Stable" || len(d2.Members) != 1 || d2.Members[0].MemberID != d.Members[0].MemberID {
		t.Fatalf("after restart %+v, before %+v", d2, d)
	}
	grpProduce(t, gb2.addr, topic, 20, 20, 2)
	await.Eventually(t, "40 records", seen.reached(40))
	grpWaitCommitted(t, adm2, group, topic, 2, 20)
	seen.check(t, 0, 40)
}

func TestGroupKcat(t *testing.T) {
	kcat := requireTool(t, "kcat")
	gb, adm := grpStartAdmin(t, "", "")
	const topic, group = "kc", "kcg"
	grpCreateTopic(t, adm, topic, 2)
	grpProduce(t, gb.addr, topic, 0, 20, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, "-b", gb.addr, "-G", group, topic, "-c", "20", "-q", "-f", "%s\n",
		"-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=6000", "-X", "auto.commit.interval.ms=100")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(l, "v-") {
			got = append(got, l)
		}
	}
	sort.Strings(got)
	if len(got) != 20 {
		t.Fatalf("kcat printed %d records:\n%s", len(got), out)
	}
	seen := newGrpSeen()
	seen.add("kcat", got...)
	seen.check(t, 0, 20)
	// librdkafka commits what it consumed when it closes.
	grpWaitCommitted(t, adm, group, topic, 2, 10)
	if d := grpDescribe(t, adm, group); d.State != "Empty" || d.ProtocolType != "consumer" {
		t.Fatalf("after kcat left: %+v", d)
	}
}

// grpRaw is a bare Kafka protocol connection, to send requests at
// versions the client libraries would not pick.
type grpRaw struct {
	t    *testing.T
	c    net.Conn
	corr int32
}

func grpDial(t *testing.T, addr string) *grpRaw {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &grpRaw{t: t, c: c}
}

// send writes a request at version v; recv reads its response.
func (r *grpRaw) send(req kmsg.Request, v int16) {
	r.t.Helper()
	req.SetVersion(v)
	r.corr++
	buf := kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw")).AppendRequest(nil, req, r.corr)
	if _, err := r.c.Write(buf); err != nil {
		r.t.Fatal(err)
	}
}

func (r *grpRaw) recv(req kmsg.Request) kmsg.Response {
	r.t.Helper()
	r.c.SetReadDeadline(time.Now().Add(60 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(r.c, size[:]); err != nil {
		r.t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(size[:]))
	if _, err := io.ReadFull(r.c, body); err != nil {
		r.t.Fatal(err)
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != r.corr {
		r.t.Fatalf("correlation id %d, want %d", corr, r.corr)
	}
	body = body[4:]
	resp := req.ResponseKind()
	if resp.IsFlexible() {
		body = body[1:] // no tagged fields in the response header
	}
	if err := resp.ReadFrom(body); err != nil {
		r.t.Fatalf("%s v%d response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp
}

func (r *grpRaw) do(req kmsg.Request, v int16) kmsg.Response {
	r.t.Helper()
	r.send(req, v)
	return r.recv(req)
}

func grpWant(t *testing.T, what string, got int16, want *kerr.Error) {
	t.Helper()
	var w int16
	if want != nil {
		w = want.Code
	}
	if got != w {
		t.Fatalf("%s: got %v, want %v", what, kerr.ErrorForCode(got), want)
	}
}

func TestGroupProtocolVersions(t *testing.T) {
	gb, adm := grpStartAdmin(t, "", "")
	grpCreateTopic(t, adm, "rawt", 2)
	c1, c2 := grpDial(t, gb.addr), grpDial(t, gb.addr)
	_, port, _ := net.SplitHostPort(gb.addr)

	// FindCoordinator: v0 single key, v4 batched, transactions refused.
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "raw"
	r0 := c1.do(fc, 0).(*kmsg.FindCoordinatorResponse)
	if r0.ErrorCode != 0 || r0.NodeID != 1 || fmt.Sprint(r0.Port) != port {
		t.Fatalf("find coordinator v0: %+v", r0)
	}
	fc4 := kmsg.NewPtrFindCoordinatorRequest()
	fc4.CoordinatorKeys = []string{"raw", "x"}
	r4 := c1.do(fc4, 4).(*kmsg.FindCoordinatorResponse)
	if len(r4.Coordinators) != 2 || r4.Coordinators[1].Key != "x" || r4.Coordinators[1].NodeID != 1 || r4.Coordinators[0].ErrorCode != 0 {
		t.Fatalf("find coordinator v4: %+v", r4)
	}
	fc4.CoordinatorType = 1
	r4 = c1.do(fc4, 4).(*kmsg.FindCoordinatorResponse)
	grpWant(t, "transaction coordinator", r4.Coordinators[0].ErrorCode, kerr.CoordinatorNotAvailable)
	if ls, err := adm.ListTopics(grpCtx(t), "__consumer_offsets"); err != nil || len(ls["__consumer_offsets"].Partitions) != 8 || !ls["__consumer_offsets"].IsInternal {
		t.Fatalf("offsets topic: %+v %v", ls, err)
	}

	// An empty group id is refused for group membership.
	jg := kmsg.NewPtrJoinGroupRequest()
	jg.SessionTimeoutMillis = 6000
	jg.ProtocolType = "consumer"
	jg.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0}}}
	grpWant(t, "empty group id", c1.do(jg, 5).(*kmsg.JoinGroupResponse).ErrorCode, kerr.InvalidGroupID)

	// JoinGroup v0 (no rebalance timeout, no member id round trip).
	jg.Group = "raw"
	j1 := c1.do(jg, 0).(*kmsg.JoinGroupResponse)
	if j1.ErrorCode != 0 || j1.Generation != 1 || j1.LeaderID != j1.MemberID || len(j1.Members) != 1 || *j1.Protocol != "range" || !strings.HasPrefix(j1.MemberID, "raw-") {
		t.Fatalf("join v0: %+v", j1)
	}
	m1 := j1.MemberID
	sg := kmsg.NewPtrSyncGroupRequest()
	sg.Group, sg.MemberID, sg.Generation = "raw", m1, 1
	sg.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: m1, MemberAssignment: []byte("one")}}
	if s := c1.do(sg, 0).(*kmsg.SyncGroupResponse); s.ErrorCode != 0 || string(s.MemberAssignment) != "one" {
		t.Fatalf("sync v0: %+v", s)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "raw", m1, 1
	grpWant(t, "heartbeat v0", c1.do(hb, 0).(*kmsg.HeartbeatResponse).ErrorCode, nil)

	// OffsetCommit v1 and v8, OffsetFetch v1, v3 (all partitions), v8.
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Group, oc.MemberID, oc.Generation = "raw", m1, 1
	meta := "meta"
	oc.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "rawt", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 11, Timestamp: -1, LeaderEpoch: -1, Metadata: &meta}}}}
	if r := c1.do(oc, 1).(*kmsg.OffsetCommitResponse); r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("commit v1: %+v", r)
	}
	oc.Generation = 7
	grpWant(t, "commit of another generation", c1.do(oc, 8).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, kerr.IllegalGeneration)
	oc.Generation = 1
	oc.Topics[0].Partitions[0].Partition, oc.Topics[0].Partitions[0].Offset, oc.Topics[0].Partitions[0].LeaderEpoch = 1, 12, 0
	grpWant(t, "commit v8", c1.do(oc, 8).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Group = "raw"
	of.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "rawt", Partitions: []int32{0, 1}}, {Topic: "unknown", Partitions: []int32{0}}}
	f1 := c1.do(of, 1).(*kmsg.OffsetFetchResponse)
	if len(f1.Topics) != 2 || f1.Topics[0].Partitions[0].Offset != 11 || *f1.Topics[0].Partitions[0].Metadata != "meta" || f1.Topics[0].Partitions[1].Offset != 12 || f1.Topics[1].Partitions[0].Offset != -1 {
		t.Fatalf("fetch v1: %+v", f1)
	}
	of.Topics = nil
	f3 := c1.do(of, 3).(*kmsg.OffsetFetchResponse)
	if f3.ErrorCode != 0 || len(f3.Topics) != 1 || len(f3.Topics[0].Partitions) != 2 {
		t.Fatalf("fetch v3 all: %+v", f3)
	}
	of8 := kmsg.NewPtrOffsetFetchRequest()
	of8.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "raw"}, {Group: "none", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "rawt", Partitions: []int32{0}}}}}
	f8 := c1.do(of8, 8).(*kmsg.OffsetFetchResponse)
	if len(f8.Groups) != 2 || len(f8.Groups[0].Topics[0].Partitions) != 2 || f8.Groups[0].Topics[0].Partitions[1].LeaderEpoch != 0 || f8.Groups[1].Topics[0].Partitions[0].Offset != -1 {
		t.Fatalf("fetch v8: %+v", f8)
	}

	// A second member with JoinGroup v4: the member id round trip, then
	// the first member hears of the rebalance and rejoins.
	jg4 := kmsg.NewPtrJoinGroupRequest()
	jg4.Group, jg4.SessionTimeoutMillis, jg4.RebalanceTimeoutMillis, jg4.ProtocolType = "raw", 6000, 10000, "consumer"
	jg4.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "roundrobin", Metadata: []byte("x")}, {Name: "range", Metadata: []byte("y")}}
	need := c2.do(jg4, 4).(*kmsg.JoinGroupResponse)
	grpWant(t, "join v4 without id", need.ErrorCode, kerr.MemberIDRequired)
	jg4.MemberID = need.MemberID
	c2.send(jg4, 4)
	await.Eventually(t, "rebalance announced", func() error {
		if code := c1.do(hb, 0).(*kmsg.HeartbeatResponse).ErrorCode; code != kerr.RebalanceInProgress.Code {
			return await.NotYet(kerr.ErrorForCode(code), kerr.RebalanceInProgress)
		}
		return nil
	}, await.Within(10*time.Second))
	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{"raw"}
	if d := c1.do(dg, 0).(*kmsg.DescribeGroupsResponse).Groups[0]; d.State != "PreparingRebalance" || len(d.Members) != 2 || len(d.Members[0].MemberAssignment) != 0 {
		t.Fatalf("describe v0 during rebalance: %+v", d)
	}
	jg.MemberID = m1
	j1 = c1.do(jg, 0).(*kmsg.JoinGroupResponse)
	j2 := c2.recv(jg4).(*kmsg.JoinGroupResponse)
	if j1.Generation != 2 || j2.Generation != 2 || j1.LeaderID != m1 || len(j1.Members) != 2 || len(j2.Members) != 0 || *j2.Protocol != "range" {
		t.Fatalf("rejoin: %+v / %+v", j1, j2)
	}
	m2 := need.MemberID
	sg2 := kmsg.NewPtrSyncGroupRequest()
	sg2.Group, sg2.MemberID, sg2.Generation = "raw", m2, 2
	pt, proto := "consumer", "range"
	sg2.ProtocolType, sg2.Protocol = &pt, &proto
	c2.send(sg2, 5)
	sg.Generation = 2
	sg.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: m1, MemberAssignment: []byte("A")}, {MemberID: m2, MemberAssignment: []byte("B")}}
	if s := c1.do(sg, 3).(*kmsg.SyncGroupResponse); s.ErrorCode != 0 || string(s.MemberAssignment) != "A" {
		t.Fatalf("leader sync: %+v", s)
	}
	if s := c2.recv(sg2).(*kmsg.SyncGroupResponse); s.ErrorCode != 0 || string(s.MemberAssignment) != "B" || *s.Protocol != "range" {
		t.Fatalf("follower sync v5: %+v", s)
	}
	dg.IncludeAuthorizedOperations = true
	d := c1.do(dg, 5).(*kmsg.DescribeGroupsResponse).Groups[0]
	if d.State != "Stable" || d.Protocol != "range" || len(d.Members) != 2 || d.AuthorizedOperations != 1<<3|1<<6|1<<8 {
		t.Fatalf("describe v5: %+v", d)
	}
	for _, m := range d.Members {
		if m.MemberID == m2 && (string(m.ProtocolMetadata) != "y" || string(m.MemberAssignment) != "B") {
			t.Fatalf("member %+v", m)
		}
	}

	// ListGroups v0 and v4 with a state filter.
	lg := kmsg.NewPtrListGroupsRequest()
	if l := c1.do(lg, 0).(*kmsg.ListGroupsResponse); len(l.Groups) != 1 || l.Groups[0].Group != "raw" || l.Groups[0].ProtocolType != "consumer" {
		t.Fatalf("list v0: %+v", l)
	}
	lg.StatesFilter = []string{"stable"}
	if l := c1.do(lg, 4).(*kmsg.ListGroupsResponse); len(l.Groups) != 1 || l.Groups[0].GroupState != "Stable" {
		t.Fatalf("list v4: %+v", l)
	}
	lg.StatesFilter = []string{"Empty", "Dead"}
	if l := c1.do(lg, 4).(*kmsg.ListGroupsResponse); len(l.Groups) != 0 {
		t.Fatalf("list v4 empty: %+v", l)
	}

	// OffsetDelete of a topic the (non-consumer-protocol metadata) group
	// is in, DeleteGroups of an active group.
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "raw"
	od.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "rawt", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
	if r := c1.do(od, 0).(*kmsg.OffsetDeleteResponse); r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != kerr.GroupSubscribedToTopic.Code {
		t.Fatalf("offset delete while subscribed (subscriptions unknown): %+v", r)
	}
	dl := kmsg.NewPtrDeleteGroupsRequest()
	dl.Groups = []string{"raw", "nope"}
	r := c1.do(dl, 0).(*kmsg.DeleteGroupsResponse)
	grpWant(t, "delete active group", r.Groups[0].ErrorCode, kerr.NonEmptyGroup)
	grpWant(t, "delete unknown group", r.Groups[1].ErrorCode, kerr.GroupIDNotFound)

	// LeaveGroup v3 (batch) and v0.
	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Group = "raw"
	lv.Members = []kmsg.LeaveGroupRequestMember{{MemberID: m2}, {MemberID: "ghost"}}
	l3 := c1.do(lv, 3).(*kmsg.LeaveGroupResponse)
	if l3.ErrorCode != 0 || len(l3.Members) != 2 || l3.Members[0].ErrorCode != 0 || l3.Members[1].ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("leave v3: %+v", l3)
	}
	lv0 := kmsg.NewPtrLeaveGroupRequest()
	lv0.Group, lv0.MemberID = "raw", m1
	grpWant(t, "leave v0", c1.do(lv0, 0).(*kmsg.LeaveGroupResponse).ErrorCode, nil)
	grpWant(t, "leave v0 again", c1.do(lv0, 0).(*kmsg.LeaveGroupResponse).ErrorCode, kerr.UnknownMemberID)
	grpWant(t, "heartbeat after leaving", c1.do(hb, 2).(*kmsg.HeartbeatResponse).ErrorCode, kerr.UnknownMemberID)

	// Empty now: anonymous v0 commits, offset deletion, group deletion.
	oc0 := kmsg.NewPtrOffsetCommitRequest()
	oc0.Group = "raw"
	oc0.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "rawt", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 99}}}}
	grpWant(t, "commit v0", c1.do(oc0, 0).(*kmsg.OffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)
	if r := c1.do(od, 0).(*kmsg.OffsetDeleteResponse); r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("offset delete when empty: %+v", r)
	}
	of.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "rawt", Partitions: []int32{0, 1}}}
	if f := c1.do(of, 5).(*kmsg.OffsetFetchResponse); f.Topics[0].Partitions[0].Offset != -1 || f.Topics[0].Partitions[1].Offset != 12 {
		t.Fatalf("fetch after offset delete: %+v", f)
	}
	dl.Groups = []string{"raw"}
	grpWant(t, "delete empty group", c1.do(dl, 2).(*kmsg.DeleteGroupsResponse).Groups[0].ErrorCode, nil)
	if f := c1.do(of, 5).(*kmsg.OffsetFetchResponse); f.Topics[0].Partitions[1].Offset != -1 {
		t.Fatalf("fetch after group delete: %+v", f)
	}
	grpWant(t, "offset delete of a deleted group", c1.do(od, 0).(*kmsg.OffsetDeleteResponse).ErrorCode, kerr.GroupIDNotFound)
}
