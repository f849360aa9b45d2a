package broker_test

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/broker"
	"logpipe/brokerd/fetchsession"
	"logpipe/brokerd/wire"
	"logpipe/internal/await"
)

// sessionFetch is a consumer's Fetch v12 with the session fields, waiting
// up to wait for a byte.
func sessionFetch(id, epoch int32, wait time.Duration) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.ReplicaID, req.SessionID, req.SessionEpoch = -1, id, epoch
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = int32(wait/time.Millisecond), 1, 1<<20
	return req
}

// listAt adds partitions of topic to req, fetched from offset.
func listAt(req *kmsg.FetchRequest, topic string, offset int64, parts ...int32) *kmsg.FetchRequest {
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	for _, p := range parts {
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p, offset, 1<<20
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// forgetting adds forgotten partitions of topic to req.
func forgetting(req *kmsg.FetchRequest, topic string, parts ...int32) *kmsg.FetchRequest {
	ft := kmsg.NewFetchRequestForgottenTopic()
	ft.Topic, ft.Partitions = topic, parts
	req.ForgottenTopics = append(req.ForgottenTopics, ft)
	return req
}

// partName names a partition "topic-N".
func partName(topic string, p int32) string { return topic + "-" + strconv.Itoa(int(p)) }

// answeredIn returns the partitions of a fetch response by name, failing
// the test if one is answered twice.
func answeredIn(t *testing.T, resp *kmsg.FetchResponse) map[string]kmsg.FetchResponseTopicPartition {
	t.Helper()
	out := map[string]kmsg.FetchResponseTopicPartition{}
	for _, rt := range resp.Topics {
		for _, sp := range rt.Partitions {
			name := partName(rt.Topic, sp.Partition)
			if _, dup := out[name]; dup {
				t.Fatalf("fetch answered %s twice, want once", name)
			}
			out[name] = sp
		}
	}
	return out
}

// namesIn names the partitions a fetch answers, in order.
func namesIn(resp *kmsg.FetchResponse) []string {
	var out []string
	for _, rt := range resp.Topics {
		for _, sp := range rt.Partitions {
			out = append(out, partName(rt.Topic, sp.Partition))
		}
	}
	return out
}

// readIn names the partitions of request topics.
func readIn(topics []kmsg.FetchRequestTopic) []string {
	var out []string
	for _, rt := range topics {
		for _, rp := range rt.Partitions {
			out = append(out, partName(rt.Topic, rp.Partition))
		}
	}
	return out
}

// rawClient is a connection to the broker at addr, closed with the test.
func rawClient(t *testing.T, addr string) *wire.Client {
	t.Helper()
	c, err := wire.Dial(addr, "fetchsession-test", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// fetch sends req on c and returns the answer.
func fetch(t *testing.T, c *wire.Client, req *kmsg.FetchRequest) *kmsg.FetchResponse {
	t.Helper()
	resp, err := c.Request(req, time.Now().Add(30*time.Second))
	if err != nil {
		t.Fatalf("fetch session %d epoch %d: %v", req.SessionID, req.SessionEpoch, err)
	}
	return resp.(*kmsg.FetchResponse)
}

// produceValues appends values to partition p of topic and waits for them.
func produceValues(t *testing.T, cl *kgo.Client, topic string, p int32, values ...string) {
	t.Helper()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Topic: topic, Partition: p, Value: []byte(v)}
	}
	if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatalf("producing to %s: %v", partName(topic, p), err)
	}
}

// sessionSetup starts a broker (with change applied to its config, if not
// nil) with topic of parts partitions, and returns it with a producer
// writing to the partitions it names.
func sessionSetup(t *testing.T, topic string, parts int32, change func(*broker.Config)) (*testBroker, *kgo.Client) {
	t.Helper()
	tb := clStart(t, "", change)
	producer := clClient(t, tb.addr, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if _, err := kadm.NewClient(producer).CreateTopic(ctxT(t), parts, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	return tb, producer
}

// consumeInOrder reads n more records of topic with cl, checking that each
// partition's come once, in order: value "p<partition>-<i>" at offset i.
func consumeInOrder(t *testing.T, cl *kgo.Client, next map[int32]int64, n int) {
	t.Helper()
	ctx := ctxT(t)
	for got := 0; got < n; {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", got, n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetching %s: %v", partName(topic, p), err) })
		fs.EachRecord(func(r *kgo.Record) {
			want := fmt.Sprintf("p%d-%d", r.Partition, next[r.Partition])
			if r.Offset != next[r.Partition] || string(r.Value) != want {
				t.Fatalf("partition %d: got offset %d value %q, want offset %d value %q", r.Partition, r.Offset, r.Value, next[r.Partition], want)
			}
			next[r.Partition]++
			got++
		})
	}
}

// valuesFor returns the values of records i to j-1 of partition p.
func valuesFor(p int32, i, j int) []string {
	var out []string
	for ; i < j; i++ {
		out = append(out, fmt.Sprintf("p%d-%d", p, i))
	}
	return out
}

// TestFranzGoUsesFetchSessions: franz-go, which opens fetch sessions by
// default, consumes 200 partitions through a broker that keeps them: after
// its first (full) fetch, its fetches are incremental, and once it has
// caught up, an answer carries only the partitions written to, every
// record coming once and in order.
func TestFranzGoUsesFetchSessions(t *testing.T) {
	const topic, parts = "fs-200", 200
	var mu sync.Mutex
	var incremental, narrow int // incremental answers; those reading the whole session but answering only written partitions
	written := map[string]bool{}
	broker.SetAfterFetch(t, func(kind fetchsession.Kind, read *kmsg.FetchRequest, resp *kmsg.FetchResponse) {
		if kind != fetchsession.Incremental {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		incremental++
		answered := namesIn(resp)
		if len(readIn(read.Topics)) != parts || len(answered) == 0 {
			return
		}
		for _, name := range answered {
			if !written[name] {
				return
			}
		}
		narrow++
	})
	tb, producer := sessionSetup(t, topic, parts, nil)
	for p := range int32(parts) {
		produceValues(t, producer, topic, p, valuesFor(p, 0, 5)...)
	}
	cl := clClient(t, tb.addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	next := map[int32]int64{}
	consumeInOrder(t, cl, next, 5*parts)

	// Caught up, the consumer waits in an incremental fetch; three
	// partitions get records.
	mu.Lock()
	for _, p := range []int32{7, 77, 177} {
		written[partName(topic, p)] = true
	}
	mu.Unlock()
	for _, p := range []int32{7, 77, 177} {
		produceValues(t, producer, topic, p, valuesFor(p, 5, 8)...)
	}
	consumeInOrder(t, cl, next, 9)
	for p := range int32(parts) {
		want := int64(5)
		if p == 7 || p == 77 || p == 177 {
			want = 8
		}
		if next[p] != want {
			t.Errorf("partition %d: consumed up to offset %d, want %d", p, next[p], want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	st := tb.b.FetchSessions()
	if st.Consumers.Full < 1 || st.Consumers.Incremental < 1 || incremental < 1 {
		t.Errorf("consumer fetches: %+v (%d incremental answers seen); want at least one full and one incremental", st.Consumers, incremental)
	}
	if narrow < 1 {
		t.Errorf("no incremental answer read the %d partitions and answered only those written to (of %d incremental answers); want one at least", parts, incremental)
	}
	if st.Sessions != 1 || st.Partitions != parts {
		t.Errorf("cache: %d sessions of %d partitions, want 1 of %d", st.Sessions, st.Partitions, parts)
	}
}

// TestSaramaAndKcatFetchWithoutSessions: sarama and librdkafka (kcat)
// never open fetch sessions (they send session 0 with epoch -1); they
// consume through a broker that keeps sessions as before.
func TestSaramaAndKcatFetchWithoutSessions(t *testing.T) {
	kcat := requireTool(t, "kcat")
	const topic = "fs-plain"
	tb, producer := sessionSetup(t, topic, 1, nil)
	produceValues(t, producer, topic, 0, valuesFor(0, 0, 50)...)

	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	c, err := sarama.NewConsumer([]string{tb.addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition(topic, 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for i := range 50 {
		select {
		case m := <-pc.Messages():
			if want := fmt.Sprintf("p0-%d", i); m.Offset != int64(i) || string(m.Value) != want {
				t.Fatalf("sarama: got offset %d value %q, want offset %d value %q", m.Offset, m.Value, i, want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("sarama: no record %d after 30 s", i)
		}
	}
	out := run(t, "", kcat, "-b", tb.addr, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%o %s\n")
	var want strings.Builder
	for i, v := range valuesFor(0, 0, 50) {
		fmt.Fprintf(&want, "%d %s\n", i, v)
	}
	if out != want.String() {
		t.Fatalf("kcat consumed:\n%s\nwant:\n%s", out, want.String())
	}
	st := tb.b.FetchSessions()
	if st.Consumers.Sessionless < 2 || st.Consumers.Full != 0 || st.Consumers.Incremental != 0 || st.Consumers.Failed != 0 || st.Sessions != 0 {
		t.Fatalf("sarama's and kcat's fetches: %+v, %d sessions; want sessionless only (at least 2), no session", st.Consumers, st.Sessions)
	}
}

// TestFetchSessionsOff: with max.incremental.fetch.session.cache.slots 0,
// a request for a session is answered with session 0 (franz-go then
// fetches without one, and consumes everything), and an incremental one
// finds no session.
func TestFetchSessionsOff(t *testing.T) {
	const topic = "fs-off"
	tb, producer := sessionSetup(t, topic, 4, func(c *broker.Config) { c.FetchSessionCacheSlots = 0 })
	for p := range int32(4) {
		produceValues(t, producer, topic, p, valuesFor(p, 0, 20)...)
	}
	cl := clClient(t, tb.addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	next := map[int32]int64{}
	consumeInOrder(t, cl, next, 80)
	produceValues(t, producer, topic, 2, valuesFor(2, 20, 21)...)
	consumeInOrder(t, cl, next, 1)

	raw := rawClient(t, tb.addr)
	resp := fetch(t, raw, listAt(sessionFetch(0, 0, 0), topic, 0, 0))
	if resp.SessionID != 0 || resp.ErrorCode != 0 || len(answeredIn(t, resp)) != 1 {
		t.Errorf("a request for a session: session %d, error %v, %d partitions; want session 0, no error, 1 partition", resp.SessionID, kerr.ErrorForCode(resp.ErrorCode), len(answeredIn(t, resp)))
	}
	if resp := fetch(t, raw, sessionFetch(1, 1, 0)); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code {
		t.Errorf("an incremental request: error %v, want %v", kerr.ErrorForCode(resp.ErrorCode), kerr.FetchSessionIDNotFound)
	}
	st := tb.b.FetchSessions()
	if st.Sessions != 0 || st.Consumers.Incremental != 0 || st.Consumers.Full < 2 {
		t.Errorf("fetches without slots: %+v, %d sessions; want full ones (franz-go's first and ours), no incremental one, no session", st.Consumers, st.Sessions)
	}
}

// TestIncrementalLongPollWakesOnAnySessionPartition: an incremental fetch
// that lists no partition waits, and wakes when a partition of its session
// gets a record, answering that partition alone.
func TestIncrementalLongPollWakesOnAnySessionPartition(t *testing.T) {
	const topic = "fs-wait"
	tb, producer := sessionSetup(t, topic, 2, nil)
	raw := rawClient(t, tb.addr)
	resp := fetch(t, raw, listAt(sessionFetch(0, 0, 0), topic, 0, 0, 1))
	if resp.SessionID == 0 || len(answeredIn(t, resp)) != 2 {
		t.Fatalf("opening a session: session %d answering %d partitions; want a session answering 2", resp.SessionID, len(answeredIn(t, resp)))
	}
	waits := countWaits(t)
	done := make(chan *kmsg.FetchResponse, 1)
	go func() {
		r, err := raw.Request(sessionFetch(resp.SessionID, 1, hourLong), time.Now().Add(time.Minute))
		if err != nil {
			t.Errorf("incremental long poll: %v", err)
		}
		fr, _ := r.(*kmsg.FetchResponse)
		done <- fr
	}()
	await.Eventually(t, "the incremental fetch to block", func() error {
		if n := waits.Load(); n < 1 {
			return await.NotYet(fmt.Sprintf("%d waits", n), "at least 1")
		}
		return nil
	})
	produceValues(t, producer, topic, 1, "v")
	var got *kmsg.FetchResponse
	select {
	case got = <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the incremental fetch did not answer within 30 s of a record on a partition of its session; it waits up to %v", hourLong)
	}
	if got == nil {
		t.FailNow()
	}
	answered := answeredIn(t, got)
	if sp, ok := answered[partName(topic, 1)]; len(answered) != 1 || !ok || recordsIn(t, sp.RecordBatches) != 1 {
		t.Fatalf("the incremental fetch answered %v, want %s alone with its record", slices.Sorted(maps.Keys(answered)), partName(topic, 1))
	}
}

// TestSessionPartitionDeleted: a session whose partition stops being
// hosted (its topic deleted) answers the partition's error in its next
// fetch; once forgotten, the session goes on.
func TestSessionPartitionDeleted(t *testing.T) {
	tb, producer := sessionSetup(t, "fs-kept", 1, nil)
	if _, err := kadm.NewClient(producer).CreateTopic(ctxT(t), 1, 1, nil, "fs-gone"); err != nil {
		t.Fatal(err)
	}
	raw := rawClient(t, tb.addr)
	resp := fetch(t, raw, listAt(listAt(sessionFetch(0, 0, 0), "fs-kept", 0, 0), "fs-gone", 0, 0))
	id := resp.SessionID
	if _, err := kadm.NewClient(producer).DeleteTopic(ctxT(t), "fs-gone"); err != nil {
		t.Fatal(err)
	}
	resp = fetch(t, raw, sessionFetch(id, 1, time.Minute))
	answered := answeredIn(t, resp)
	if sp, ok := answered["fs-gone-0"]; len(answered) != 1 || !ok || sp.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("the fetch after fs-gone was deleted answered %v (fs-gone-0: error %v), want fs-gone-0 alone with %v", slices.Sorted(maps.Keys(answered)), kerr.ErrorForCode(sp.ErrorCode), kerr.UnknownTopicOrPartition)
	}
	produceValues(t, producer, "fs-kept", 0, "v")
	resp = fetch(t, raw, forgetting(sessionFetch(id, 2, time.Minute), "fs-gone", 0))
	answered = answeredIn(t, resp)
	if sp, ok := answered["fs-kept-0"]; resp.ErrorCode != 0 || len(answered) != 1 || !ok || sp.ErrorCode != 0 || recordsIn(t, sp.RecordBatches) != 1 {
		t.Fatalf("after forgetting fs-gone-0: error %v, answered %v (fs-kept-0: error %v, %d bytes of records); want fs-kept-0 alone with its record", kerr.ErrorForCode(resp.ErrorCode), slices.Sorted(maps.Keys(answered)), kerr.ErrorForCode(sp.ErrorCode), len(sp.RecordBatches))
	}
	if st := tb.b.FetchSessions(); st.Sessions != 1 || st.Partitions != 1 {
		t.Fatalf("cache: %d sessions of %d partitions, want 1 of 1", st.Sessions, st.Partitions)
	}
}

// modelSession is what the random test expects of one session.
type modelSession struct {
	epoch int32
	parts map[string]bool
	hw    map[string]int64 // as last answered
}

// TestFetchSessionRandomRequests sends random sequences of fetches (new,
// incremental, closing, with right, wrong and unknown ids and epochs,
// random partitions listed and forgotten, some unknown) over one
// connection, while records are written, and checks each answer against a
// model of the sessions: the error it expects, the session id, partitions
// only from the session, each with news. The connection stays open (a
// panic would close it) and the cache holds what the model holds.
func TestFetchSessionRandomRequests(t *testing.T) {
	tb, producer := sessionSetup(t, "fz-a", 3, nil)
	if _, err := kadm.NewClient(producer).CreateTopic(ctxT(t), 2, 1, nil, "fz-b"); err != nil {
		t.Fatal(err)
	}
	pool := []string{"fz-a-0", "fz-a-1", "fz-a-2", "fz-b-0", "fz-b-1", "fz-none-0"}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	raw := rawClient(t, tb.addr)
	model := map[int32]*modelSession{}
	some := func() []string {
		var out []string
		for _, name := range pool {
			if rng.IntN(3) == 0 {
				out = append(out, name)
			}
		}
		return out
	}
	split := func(name string) (string, int32) {
		i := strings.LastIndexByte(name, '-')
		p, _ := strconv.Atoi(name[i+1:])
		return name[:i], int32(p)
	}
	for step := range 400 {
		if rng.IntN(8) == 0 {
			topic, p := split(pool[rng.IntN(5)])
			produceValues(t, producer, topic, p, "r")
		}
		// Pick the session fields.
		var id, epoch int32
		ids := slices.Sorted(maps.Keys(model))
		switch r := rng.IntN(10); {
		case r < 2 || len(ids) == 0:
			id, epoch = 0, int32(rng.IntN(2))-1 // sessionless or new
		case r < 7:
			id = ids[rng.IntN(len(ids))]
			epoch = model[id].epoch // the right one
		case r < 8:
			id = ids[rng.IntN(len(ids))]
			epoch = int32(rng.IntN(4)) - 2 // close, reopen, or wrong
			if epoch == -2 {
				epoch = model[id].epoch + 1 + int32(rng.IntN(3))
			}
		default:
			id, epoch = rng.Int32N(1<<30)+1, int32(rng.IntN(5))+1 // most likely unknown
		}
		listed, forgotten := some(), []string(nil)
		if rng.IntN(3) == 0 {
			forgotten = some()
		}
		req := sessionFetch(id, epoch, 0)
		req.MinBytes = 0
		for _, name := range listed {
			topic, p := split(name)
			listAt(req, topic, int64(rng.IntN(3)), p)
		}
		for _, name := range forgotten {
			topic, p := split(name)
			forgetting(req, topic, p)
		}
		resp := fetch(t, raw, req)
		answered := answeredIn(t, resp)
		what := fmt.Sprintf("step %d (session %d epoch %d, listing %v, forgetting %v)", step, id, epoch, listed, forgotten)

		// What the model expects.
		m := model[id]
		wantErr := int16(0)
		switch {
		case epoch == -1 || epoch == 0:
			delete(model, id)
			m = nil
			if epoch == 0 && len(listed) > 0 {
				m = &modelSession{epoch: 1, parts: map[string]bool{}, hw: map[string]int64{}}
				for _, name := range listed {
					m.parts[name] = true
				}
			}
		case m == nil:
			wantErr = kerr.FetchSessionIDNotFound.Code
		case epoch != m.epoch:
			wantErr = kerr.InvalidFetchSessionEpoch.Code
		default:
			for _, name := range listed {
				m.parts[name] = true
			}
			for _, name := range forgotten {
				delete(m.parts, name)
				delete(m.hw, name) // forgotten, it is new if listed again
			}
			if len(m.parts) == 0 {
				delete(model, id)
				m = nil
			} else {
				m.epoch = fetchsession.NextEpoch(m.epoch)
			}
		}
		if resp.ErrorCode != wantErr {
			t.Fatalf("%s: error %v, want %v", what, kerr.ErrorForCode(resp.ErrorCode), kerr.ErrorForCode(wantErr))
		}
		if wantErr != 0 {
			if resp.SessionID != 0 || len(answered) != 0 {
				t.Fatalf("%s: a session error answered with session %d and %d partitions, want 0 and none", what, resp.SessionID, len(answered))
			}
			continue
		}
		switch {
		case m == nil:
			// Sessionless: every listed partition is answered.
			if resp.SessionID != 0 || len(answered) != len(listed) {
				t.Fatalf("%s: sessionless answer with session %d and %d partitions, want 0 and the %d listed", what, resp.SessionID, len(answered), len(listed))
			}
		case epoch == 0:
			if resp.SessionID == 0 || len(answered) != len(m.parts) {
				t.Fatalf("%s: new session answered with session %d and %d partitions, want a session and the %d listed", what, resp.SessionID, len(answered), len(m.parts))
			}
			model[resp.SessionID] = m
		default:
			if resp.SessionID != id {
				t.Fatalf("%s: answered with session %d, want %d", what, resp.SessionID, id)
			}
			for name, sp := range answered {
				last, known := m.hw[name]
				if !m.parts[name] {
					t.Fatalf("%s: answered %s, which is not in the session %v", what, name, m.parts)
				}
				if known && sp.ErrorCode == 0 && len(sp.RecordBatches) == 0 && sp.HighWatermark == last {
					t.Fatalf("%s: answered %s with nothing new (high watermark %d as before, no records, no error)", what, name, last)
				}
			}
		}
		if m != nil {
			for name, sp := range answered {
				m.hw[name] = sp.HighWatermark
				if sp.ErrorCode != 0 {
					m.hw[name] = -1
				}
			}
		}
	}
	if _, err := raw.Request(kmsg.NewPtrApiVersionsRequest(), time.Now().Add(10*time.Second)); err != nil {
		t.Fatalf("the connection after the random fetches: %v", err)
	}
	st := tb.b.FetchSessions()
	wantParts := 0
	for _, m := range model {
		wantParts += len(m.parts)
	}
	if st.Sessions != len(model) || st.Partitions != wantParts {
		t.Fatalf("cache: %d sessions of %d partitions, want the model's %d of %d", st.Sessions, st.Partitions, len(model), wantParts)
	}
}
