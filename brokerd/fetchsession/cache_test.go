package fetchsession

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// clock is a settable time source for the cache.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// at moves the clock to d after its start.
func (c *clock) at(d time.Duration) { c.t = time.Unix(1e9, 0).Add(d) }

func newCache(slots int) (*Cache, *clock) {
	clk := &clock{}
	clk.at(0)
	return New(slots, DefaultEvictAfter, clk.now), clk
}

// tp names a partition as "topic-N" in the tests.
func tp(topic string, p int32) string { return fmt.Sprintf("%s-%d", topic, p) }

// request is a Fetch v12 of a fetcher (replica -1 for a consumer) with
// the session fields and the partitions, each "topic-N" at offset 0.
func request(replica, id, epoch int32, parts ...string) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.ReplicaID, req.SessionID, req.SessionEpoch = replica, id, epoch
	for _, s := range parts {
		topic, n, _ := strings.Cut(s, "-")
		p, err := strconv.Atoi(n)
		if err != nil {
			panic("partition name " + s)
		}
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != topic {
			t := kmsg.NewFetchRequestTopic()
			t.Topic = topic
			req.Topics = append(req.Topics, t)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = int32(p)
		last := &req.Topics[len(req.Topics)-1]
		last.Partitions = append(last.Partitions, rp)
	}
	return req
}

// forget adds forgotten partitions to req.
func forget(req *kmsg.FetchRequest, topic string, parts ...int32) *kmsg.FetchRequest {
	ft := kmsg.NewFetchRequestForgottenTopic()
	ft.Topic, ft.Partitions = topic, parts
	req.ForgottenTopics = append(req.ForgottenTopics, ft)
	return req
}

// names lists the partitions of request topics, in order.
func names(topics []kmsg.FetchRequestTopic) []string {
	var out []string
	for _, t := range topics {
		for _, p := range t.Partitions {
			out = append(out, tp(t.Topic, p.Partition))
		}
	}
	return out
}

// answered lists the partitions of a response, in order.
func answered(resp *kmsg.FetchResponse) []string {
	var out []string
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			out = append(out, tp(t.Topic, p.Partition))
		}
	}
	return out
}

// answer is the broker's side: a response reading f.Topics, with each
// partition's high watermark, last stable offset and log start offset
// taken from state ("topic-N" → high watermark; missing: 10) and change
// (if not nil) applied to each partition.
func answer(f *Fetch, hw map[string]int64, change func(name string, sp *kmsg.FetchResponseTopicPartition)) *kmsg.FetchResponse {
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(12)
	for _, rt := range f.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			name := tp(rt.Topic, rp.Partition)
			sp.HighWatermark = 10
			if h, ok := hw[name]; ok {
				sp.HighWatermark = h
			}
			sp.LastStableOffset, sp.LogStartOffset = sp.HighWatermark, 0
			sp.RecordBatches = []byte{}
			if change != nil {
				change(name, &sp)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// open opens a session with a full request and returns its id.
func open(t *testing.T, c *Cache, replica int32, parts ...string) int32 {
	t.Helper()
	f := c.Open(request(replica, 0, 0, parts...))
	if f.Kind != Full {
		t.Fatalf("full request served as %v, want full", f.Kind)
	}
	resp := answer(f, nil, nil)
	f.Finish(resp)
	if resp.ErrorCode != 0 {
		t.Fatalf("full request: error %v, want none", kerr.ErrorForCode(resp.ErrorCode))
	}
	if got := answered(resp); !slices.Equal(got, parts) {
		t.Fatalf("full answer carries %v, want every partition %v", got, parts)
	}
	return resp.SessionID
}

// incremental sends an incremental request and returns the fetch and the
// answer to the state hw.
func incremental(t *testing.T, c *Cache, req *kmsg.FetchRequest, hw map[string]int64) (*Fetch, *kmsg.FetchResponse) {
	t.Helper()
	f := c.Open(req)
	resp := answer(f, hw, nil)
	f.Finish(resp)
	return f, resp
}

func TestOpenDecidesTheKind(t *testing.T) {
	c, _ := newCache(10)
	id := open(t, c, -1, "a-0")
	old := request(-1, 0, 0, "a-0")
	old.SetVersion(6) // no session fields on the wire
	for _, tc := range []struct {
		name      string
		req       *kmsg.FetchRequest
		kind      Kind
		errorCode int16
	}{
		{"v6", old, Sessionless, 0},
		{"id 0, epoch -1", request(-1, 0, -1, "a-0"), Sessionless, 0},
		{"unknown id", request(-1, id+1, 1), Failed, kerr.FetchSessionIDNotFound.Code},
		{"id 0, epoch 1", request(-1, 0, 1), Failed, kerr.FetchSessionIDNotFound.Code},
		{"epoch 2 for 1", request(-1, id, 2), Failed, kerr.InvalidFetchSessionEpoch.Code},
		{"epoch -2", request(-1, id, -2), Failed, kerr.InvalidFetchSessionEpoch.Code},
		{"the next epoch", request(-1, id, 1), Incremental, 0},
		{"the same epoch again", request(-1, id, 1), Failed, kerr.InvalidFetchSessionEpoch.Code},
	} {
		f := c.Open(tc.req)
		resp := answer(f, nil, nil)
		f.Finish(resp)
		if f.Kind != tc.kind || resp.ErrorCode != tc.errorCode {
			t.Errorf("%s: served %v with error %v, want %v with error %v", tc.name, f.Kind, kerr.ErrorForCode(resp.ErrorCode), tc.kind, kerr.ErrorForCode(tc.errorCode))
		}
		if resp.ErrorCode != 0 && (len(resp.Topics) != 0 || resp.SessionID != 0) {
			t.Errorf("%s: a session error answered with session %d and %v, want session 0 and no partitions", tc.name, resp.SessionID, answered(resp))
		}
	}
	st := c.Stats()
	if want := (Counts{Sessionless: 2, Full: 1, Incremental: 1, Failed: 5}); st.Consumers != want || st.Followers != (Counts{}) {
		t.Errorf("counts: consumers %+v, followers %+v; want %+v and none", st.Consumers, st.Followers, want)
	}
	// Epoch -1 closes the session; its id is then unknown.
	f := c.Open(request(-1, id, -1, "a-0"))
	resp := answer(f, nil, nil)
	f.Finish(resp)
	if f.Kind != Sessionless || resp.SessionID != 0 || c.Stats().Sessions != 0 {
		t.Fatalf("closing: served %v with session %d, %d sessions left; want sessionless, 0, 0", f.Kind, resp.SessionID, c.Stats().Sessions)
	}
	if _, resp := incremental(t, c, request(-1, id, 2), nil); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Fatalf("closed session: error %v, want %v", kerr.ErrorForCode(resp.ErrorCode), kerr.FetchSessionIDNotFound)
	}
}

// TestIncrementalAnswersOnlyNews: an incremental fetch reads every
// partition of its session and answers those with something new, which
// then go to the end of the session's order.
func TestIncrementalAnswersOnlyNews(t *testing.T) {
	c, _ := newCache(10)
	id := open(t, c, -1, "a-0", "a-1", "b-0")
	f, resp := incremental(t, c, request(-1, id, 1), nil)
	if got := names(f.Topics); !slices.Equal(got, []string{"a-0", "a-1", "b-0"}) {
		t.Fatalf("incremental read %v, want the session's partitions", got)
	}
	if resp.SessionID != id || len(resp.Topics) != 0 {
		t.Fatalf("nothing changed: session %d answering %v, want session %d answering none", resp.SessionID, answered(resp), id)
	}
	_, resp = incremental(t, c, request(-1, id, 2), map[string]int64{"a-1": 11})
	if got := answered(resp); !slices.Equal(got, []string{"a-1"}) {
		t.Fatalf("a-1's high watermark moved: answered %v, want [a-1]", got)
	}
	f, _ = incremental(t, c, request(-1, id, 3), map[string]int64{"a-1": 11})
	if got := names(f.Topics); !slices.Equal(got, []string{"a-0", "b-0", "a-1"}) {
		t.Fatalf("after a-1 was answered the session reads %v, want a-1 last", got)
	}
	// Each kind of news, from a state the session knows.
	sameExcept := func(change func(*kmsg.FetchResponseTopicPartition)) []string {
		t.Helper()
		f := c.Open(request(-1, id, c.sessions[id].epoch))
		resp := answer(f, map[string]int64{"a-1": 11}, func(name string, sp *kmsg.FetchResponseTopicPartition) {
			if name == "b-0" && change != nil {
				change(sp)
			}
		})
		f.Finish(resp)
		return answered(resp)
	}
	for _, tc := range []struct {
		what      string
		change    func(*kmsg.FetchResponseTopicPartition)
		again     func(*kmsg.FetchResponseTopicPartition)
		wantAgain bool
	}{
		{"records", withRecords, withRecords, true},
		{"a new log start offset", withLogStart, withLogStart, false},
		{"a new last stable offset", withLSO, withLSO, false},
		{"a diverging epoch", withDivergingEpoch, withDivergingEpoch, true},
		// Once an error is gone, the partition is answered again although
		// its offsets are what they were before the error.
		{"an error", withError, nil, true},
	} {
		sameExcept(nil)
		if got := sameExcept(tc.change); !slices.Equal(got, []string{"b-0"}) {
			t.Errorf("b-0 has %s: answered %v, want [b-0]", tc.what, got)
		}
		want := []string(nil)
		if tc.wantAgain {
			want = []string{"b-0"}
		}
		if got := sameExcept(tc.again); !slices.Equal(got, want) {
			t.Errorf("the fetch after b-0 had %s: answered %v, want %v", tc.what, got, want)
		}
	}
}

func withRecords(sp *kmsg.FetchResponseTopicPartition)  { sp.RecordBatches = []byte{1} }
func withLogStart(sp *kmsg.FetchResponseTopicPartition) { sp.LogStartOffset = 5 }
func withLSO(sp *kmsg.FetchResponseTopicPartition)      { sp.LastStableOffset = 9 }
func withError(sp *kmsg.FetchResponseTopicPartition)    { sp.ErrorCode = kerr.NotLeaderForPartition.Code }
func withDivergingEpoch(sp *kmsg.FetchResponseTopicPartition) {
	sp.DivergingEpoch.Epoch, sp.DivergingEpoch.EndOffset = 1, 3
}

// TestListedAndForgottenPartitions: an incremental request adds and
// updates the partitions it lists, removes those it forgets, and keeps the
// rest with their parameters; forgetting every partition closes the
// session.
func TestListedAndForgottenPartitions(t *testing.T) {
	c, _ := newCache(10)
	id := open(t, c, -1, "a-0", "a-1", "b-0")
	req := forget(request(-1, id, 1, "c-0", "a-1"), "a", 0)
	req.Topics[1].Partitions[0].FetchOffset = 42
	f, resp := incremental(t, c, req, nil)
	if got := names(f.Topics); !slices.Equal(got, []string{"a-1", "b-0", "c-0"}) {
		t.Fatalf("after adding c-0 and forgetting a-0 the session reads %v, want [a-1 b-0 c-0]", got)
	}
	if off := f.Topics[0].Partitions[0].FetchOffset; off != 42 {
		t.Errorf("a-1 is read at offset %d, want the 42 the request gave", off)
	}
	if got := answered(resp); !slices.Equal(got, []string{"c-0"}) {
		t.Errorf("answered %v, want the new partition [c-0] only", got)
	}
	if st := c.Stats(); st.Sessions != 1 || st.Partitions != 3 {
		t.Errorf("stats: %d sessions, %d partitions; want 1 and 3", st.Sessions, st.Partitions)
	}
	// An omitted partition keeps its offset.
	f, _ = incremental(t, c, request(-1, id, 2), nil)
	if off := f.Topics[0].Partitions[0].FetchOffset; off != 42 {
		t.Errorf("a-1, omitted, is read at offset %d, want 42", off)
	}
	// Forgetting the rest closes the session; the request is served
	// sessionless.
	f, _ = incremental(t, c, forget(forget(request(-1, id, 3), "a", 1), "b", 0, 7), nil)
	if f.Kind != Incremental {
		t.Fatalf("forgetting two of three: served %v, want incremental", f.Kind)
	}
	f, resp = incremental(t, c, forget(request(-1, id, 4), "c", 0), nil)
	if f.Kind != Sessionless || resp.SessionID != 0 || len(f.Topics) != 0 {
		t.Fatalf("forgetting the last partition: served %v with session %d reading %v; want sessionless, 0, nothing", f.Kind, resp.SessionID, names(f.Topics))
	}
	if st := c.Stats(); st.Sessions != 0 || st.Partitions != 0 {
		t.Errorf("stats after the session closed: %d sessions, %d partitions; want 0 and 0", st.Sessions, st.Partitions)
	}
}

// TestDuplicateRequest: of two requests with the same epoch, the second
// is refused; of two in flight at once (the second with the next epoch,
// sent before the first was answered), the first is answered with
// INVALID_FETCH_SESSION_EPOCH.
func TestDuplicateRequest(t *testing.T) {
	c, _ := newCache(10)
	id := open(t, c, -1, "a-0")
	first := c.Open(request(-1, id, 1))
	second := c.Open(request(-1, id, 2))
	r2 := answer(second, map[string]int64{"a-0": 12}, nil)
	second.Finish(r2)
	r1 := answer(first, map[string]int64{"a-0": 11}, nil)
	first.Finish(r1)
	if r1.ErrorCode != kerr.InvalidFetchSessionEpoch.Code || len(r1.Topics) != 0 {
		t.Errorf("the overtaken request: error %v with %v, want %v and no partitions", kerr.ErrorForCode(r1.ErrorCode), answered(r1), kerr.InvalidFetchSessionEpoch)
	}
	if r2.ErrorCode != 0 || !slices.Equal(answered(r2), []string{"a-0"}) {
		t.Errorf("the newer request: error %v with %v, want none with [a-0]", kerr.ErrorForCode(r2.ErrorCode), answered(r2))
	}
}

// TestEpochWraps: after the largest epoch comes 1.
func TestEpochWraps(t *testing.T) {
	c, _ := newCache(10)
	id := open(t, c, -1, "a-0")
	c.sessions[id].epoch = math.MaxInt32
	if f, resp := incremental(t, c, request(-1, id, math.MaxInt32), nil); f.Kind != Incremental || resp.ErrorCode != 0 {
		t.Fatalf("epoch %d: served %v, error %v; want incremental", int32(math.MaxInt32), f.Kind, kerr.ErrorForCode(resp.ErrorCode))
	}
	if f, resp := incremental(t, c, request(-1, id, 1), nil); f.Kind != Incremental || resp.ErrorCode != 0 {
		t.Fatalf("epoch 1 after %d: served %v, error %v; want incremental", int32(math.MaxInt32), f.Kind, kerr.ErrorForCode(resp.ErrorCode))
	}
	for e, want := range map[int32]int32{-1: -1, 0: 1, 1: 2, math.MaxInt32: 1} {
		if got := NextEpoch(e); got != want {
			t.Errorf("NextEpoch(%d) = %d, want %d", e, got, want)
		}
	}
}

// TestNoSlots: with no slots, a full request opens nothing.
func TestNoSlots(t *testing.T) {
	c, _ := newCache(0)
	f := c.Open(request(-1, 0, 0, "a-0"))
	resp := answer(f, nil, nil)
	f.Finish(resp)
	if resp.SessionID != 0 || resp.ErrorCode != 0 || len(resp.Topics) != 1 {
		t.Fatalf("full request without slots: session %d, error %v, %d topics; want 0, none, 1", resp.SessionID, kerr.ErrorForCode(resp.ErrorCode), len(resp.Topics))
	}
	if st := c.Stats(); st.Sessions != 0 || st.Evictions != 0 {
		t.Fatalf("stats: %+v, want no sessions nor evictions", st)
	}
}

// TestEviction follows the admission rules of the package comment with a
// cache of two slots.
func TestEviction(t *testing.T) {
	c, clk := newCache(2)
	tryOpen := func(replica int32, parts ...string) int32 {
		f := c.Open(request(replica, 0, 0, parts...))
		resp := answer(f, nil, nil)
		f.Finish(resp)
		return resp.SessionID
	}
	alive := func(what string, want map[int32]bool) {
		t.Helper()
		for id, w := range want {
			if got := c.sessions[id] != nil; got != w {
				t.Errorf("%s: session %d cached %v, want %v", what, id, got, w)
			}
		}
	}
	use := func(id int32) {
		t.Helper()
		s := c.sessions[id]
		if s == nil {
			t.Fatalf("using session %d: got none cached, want it cached", id)
		}
		if f, resp := incremental(t, c, request(-1, id, s.epoch), nil); f.Kind != Incremental {
			t.Fatalf("using session %d: %v", id, kerr.ErrorForCode(resp.ErrorCode))
		}
	}
	c1 := tryOpen(-1, "a-0", "a-1")
	c2 := tryOpen(-1, "a-0", "a-1", "a-2")
	clk.at(time.Second)
	if id := tryOpen(-1, "b-0", "b-1", "b-2", "b-3", "b-4"); id != 0 {
		t.Fatalf("a consumer session of 5 evicted a young consumer session (got session %d)", id)
	}
	f1 := tryOpen(1, "c-0")
	alive("a follower's session evicts the smaller consumer session", map[int32]bool{c1: false, c2: true, f1: true})
	f2 := tryOpen(2, "c-0")
	alive("a follower's session evicts a consumer's even larger", map[int32]bool{c2: false, f1: true, f2: true})
	clk.at(2 * time.Second)
	if id := tryOpen(-1, "b-0", "b-1", "b-2"); id != 0 {
		t.Errorf("a consumer session evicted a follower's (got session %d)", id)
	}
	if id := tryOpen(3, "c-0", "c-1", "c-2"); id != 0 {
		t.Errorf("a follower session evicted a young follower session (got session %d)", id)
	}
	if st := c.Stats(); st.Evictions != 2 || st.Sessions != 2 || st.Partitions != 2 {
		t.Errorf("stats: %+v, want 2 evictions, 2 sessions of 2 partitions", st)
	}
	// Unused for longer than the eviction time: the least recently used
	// goes first, for any newcomer.
	clk.at(200 * time.Second)
	use(f2)
	cn := tryOpen(-1, "d-0")
	alive("a stale session is evicted first", map[int32]bool{f1: false, f2: true, cn: true})
	// A follower's session evicts a young consumer's before an old
	// follower's.
	clk.at(250 * time.Second)
	f4 := tryOpen(4, "e-0", "e-1")
	alive("a follower's session evicts a consumer's before an old follower's", map[int32]bool{cn: false, f2: true, f4: true})
	// Among old followers' sessions the smaller goes; an equal one stays.
	clk.at(400 * time.Second)
	use(f2)
	use(f4)
	f5 := tryOpen(5, "g-0", "g-1")
	alive("a session of 2 evicts an old one of 1", map[int32]bool{f2: false, f4: true, f5: true})
	if id := tryOpen(6, "h-0", "h-1"); id != 0 {
		t.Errorf("a session of 2 evicted an old one of 2 (got session %d)", id)
	}
	// Among equally valuable sessions, the least recently used goes.
	clk.at(600 * time.Second)
	use(f5)
	clk.at(601 * time.Second)
	use(f4)
	f7 := tryOpen(7, "i-0", "i-1", "i-2")
	alive("the least recently used of two equal sessions goes", map[int32]bool{f5: false, f4: true, f7: true})
}
