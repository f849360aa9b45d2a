package broker_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/broker"
	"logpipe/brokerd/recordbatch"
	"logpipe/brokerd/wire"
	"logpipe/internal/await"
)

// hourLong is the max wait of the long polls below: a fetch that sleeps
// to its max wait fails the test, whose own deadlines are far shorter.
const hourLong = time.Hour

// startHookedBroker starts a broker whose wire server reports to hooks.
func startHookedBroker(t *testing.T, hooks wire.Hooks) *testBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := broker.DefaultConfig()
	cfg.Listeners = "PLAINTEXT://" + ln.Addr().String()
	cfg.LogDirs = []string{t.TempDir()}
	log := slog.New(slog.DiscardHandler)
	b, err := broker.New(context.Background(), cfg, log, broker.Hooks{})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	srv := &wire.Server{Handler: b, Log: log, Hooks: hooks}
	go srv.Serve(ln)
	tb := &testBroker{t: t, addr: ln.Addr().String(), b: b, srv: srv}
	t.Cleanup(tb.stop)
	return tb
}

// countWaits counts the fetches that block, from now to the end of the test.
func countWaits(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	broker.SetBeforeFetchWait(t, func() { n.Add(1) })
	return &n
}

// longPoll is a fetch of one partition from offset, waiting up to an
// hour for a byte.
func longPoll(topic string, offset int64) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = int32(hourLong / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = 1 << 20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// fetchResult is what a fetch sent in the background got.
type fetchResult struct {
	resp *kmsg.FetchResponse
	err  error
}

// sendFetch sends req straight to cl's seed broker in the background.
func sendFetch(ctx context.Context, cl *kgo.Client, req *kmsg.FetchRequest) <-chan fetchResult {
	done := make(chan fetchResult, 1)
	go func() {
		resp, err := cl.SeedBrokers()[0].Request(ctx, req)
		r, _ := resp.(*kmsg.FetchResponse)
		done <- fetchResult{r, err}
	}()
	return done
}

// pollUntilBlocked sends a long poll of partition 0 of topic from offset 0
// with cl and returns once the fetch blocks, as counted by waits.
func pollUntilBlocked(t *testing.T, cl *kgo.Client, topic string, waits *atomic.Int64) <-chan fetchResult {
	t.Helper()
	done := sendFetch(ctxT(t), cl, longPoll(topic, 0))
	await.Eventually(t, "the fetch to block", func() error {
		if n := waits.Load(); n < 1 {
			return await.NotYet(fmt.Sprintf("%d waits", n), "at least 1")
		}
		return nil
	})
	return done
}

// awaitFetch returns the fetch's response, failing the test if it has not
// come within 30 s (the fetch itself would wait an hour).
func awaitFetch(t *testing.T, done <-chan fetchResult, what string) *kmsg.FetchResponse {
	t.Helper()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("%s: %v", what, r.err)
		}
		return r.resp
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: no answer after 30 s; the fetch sleeps towards its max wait of %v", what, hourLong)
		return nil
	}
}

// onePartition returns the response's only partition.
func onePartition(t *testing.T, resp *kmsg.FetchResponse) kmsg.FetchResponseTopicPartition {
	t.Helper()
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch response has %d topics, want 1 with 1 partition", len(resp.Topics))
	}
	return resp.Topics[0].Partitions[0]
}

// recordsIn counts the records of the batches in b.
func recordsIn(t *testing.T, b []byte) int {
	t.Helper()
	n := 0
	for len(b) > 0 {
		batch, rest, err := recordbatch.Next(b)
		if err != nil {
			t.Fatal(err)
		}
		h, err := recordbatch.ParseHeader(batch)
		if err != nil {
			t.Fatal(err)
		}
		n += int(h.RecordCount)
		b = rest
	}
	return n
}

// wantRecords checks that a fetch answered with n records and no error.
func wantRecords(t *testing.T, resp *kmsg.FetchResponse, n int) {
	t.Helper()
	p := onePartition(t, resp)
	if p.ErrorCode != 0 {
		t.Fatalf("fetch error %v, want none", kerr.ErrorForCode(p.ErrorCode))
	}
	if got := recordsIn(t, p.RecordBatches); got != n {
		t.Fatalf("fetch returned %d records (high watermark %d), want %d", got, p.HighWatermark, n)
	}
}

// produceOne appends one record to partition 0 of topic and waits for it.
func produceOne(t *testing.T, ctx context.Context, cl *kgo.Client, topic string) {
	t.Helper()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("producing to %s: %v", topic, err)
	}
}

// longPollSetup starts a broker with a one-partition topic and returns it
// with a consumer-side and a producer-side client.
func longPollSetup(t *testing.T, topic string, hooks wire.Hooks) (tb *testBroker, fetcher, producer *kgo.Client) {
	t.Helper()
	tb = startHookedBroker(t, hooks)
	fetcher = clClient(t, tb.addr)
	producer = clClient(t, tb.addr, kgo.DefaultProduceTopic(topic))
	if _, err := kadm.NewClient(producer).CreateTopic(ctxT(t), 1, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	return tb, fetcher, producer
}

// TestLongPollAnswersAppend: a fetch blocked in its long poll answers
// with the record as soon as it is appended.
func TestLongPollAnswersAppend(t *testing.T) {
	waits := countWaits(t)
	_, fetcher, producer := longPollSetup(t, "lp-append", wire.Hooks{})
	done := pollUntilBlocked(t, fetcher, "lp-append", waits)
	produceOne(t, ctxT(t), producer, "lp-append")
	wantRecords(t, awaitFetch(t, done, "fetch blocked before the append"), 1)
}

// TestLongPollAppendBeforeWait appends in the window the old fetch lost:
// after the fetch read the partition and found nothing, before it blocks.
// The fetch must answer with the record rather than sleep to max wait.
func TestLongPollAppendBeforeWait(t *testing.T) {
	_, fetcher, producer := longPollSetup(t, "lp-window", wire.Hooks{})
	ctx := ctxT(t)
	var appended atomic.Bool
	broker.SetBeforeFetchWait(t, func() {
		if appended.Swap(true) {
			return
		}
		// In the fetch's handler goroutine: no t.Fatal here.
		if err := producer.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
			t.Errorf("producing in the fetch's window: %v", err)
		}
	})
	done := sendFetch(ctx, fetcher, longPoll("lp-window", 0))
	wantRecords(t, awaitFetch(t, done, "fetch with an append between its read and its wait"), 1)
	if !appended.Load() {
		t.Fatal("the fetch never reached its wait: the append was not made in the window")
	}
}

// TestReadyFetchDoesNotWait: a fetch whose data is there answers without
// registering a wait, however long its max wait.
func TestReadyFetchDoesNotWait(t *testing.T) {
	waits := countWaits(t)
	_, fetcher, producer := longPollSetup(t, "lp-ready", wire.Hooks{})
	ctx := ctxT(t)
	produceOne(t, ctx, producer, "lp-ready")
	produceOne(t, ctx, producer, "lp-ready")
	wantRecords(t, awaitFetch(t, sendFetch(ctx, fetcher, longPoll("lp-ready", 0)), "fetch of ready data"), 2)
	wantRecords(t, awaitFetch(t, sendFetch(ctx, fetcher, longPoll("lp-ready", 1)), "fetch of ready data from offset 1"), 1)
	if got := waits.Load(); got != 0 {
		t.Fatalf("%d fetches blocked, want 0: their data was ready", got)
	}
}

// TestTopicDeletionEndsLongPoll: deleting the topic a fetch waits on
// answers the fetch at once, with UNKNOWN_TOPIC_OR_PARTITION.
func TestTopicDeletionEndsLongPoll(t *testing.T) {
	waits := countWaits(t)
	_, fetcher, producer := longPollSetup(t, "lp-deleted", wire.Hooks{})
	done := pollUntilBlocked(t, fetcher, "lp-deleted", waits)
	if _, err := kadm.NewClient(producer).DeleteTopic(ctxT(t), "lp-deleted"); err != nil {
		t.Fatal(err)
	}
	p := onePartition(t, awaitFetch(t, done, "fetch of a topic deleted during its wait"))
	if p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("fetch error %v, want %v", kerr.ErrorForCode(p.ErrorCode), kerr.UnknownTopicOrPartition)
	}
}

// TestDisconnectEndsLongPoll: a consumer that disconnects during a long
// poll ends its fetch's handler, which would otherwise wait an hour.
func TestDisconnectEndsLongPoll(t *testing.T) {
	waits := countWaits(t)
	var fetches atomic.Int64
	hooks := wire.Hooks{Request: func(key, _ int16, _ time.Duration, _ error) {
		if key == 1 {
			fetches.Add(1)
		}
	}}
	tb, _, _ := longPollSetup(t, "lp-gone", hooks)
	leaving, err := kgo.NewClient(kgo.SeedBrokers(tb.addr))
	if err != nil {
		t.Fatal(err)
	}
	done := pollUntilBlocked(t, leaving, "lp-gone", waits)
	leaving.Close()
	await.Eventually(t, "the fetch handler to end after its client disconnected", func() error {
		if n := fetches.Load(); n != 1 {
			return await.NotYet(fmt.Sprintf("%d fetches ended", n), "1")
		}
		return nil
	}, await.Within(10*time.Second))
	<-done
}

// TestEmptyFetchDoesNotWait: a fetch of no partitions answers at once, as
// Kafka's does, however long its max wait. The Java consumer closes its
// fetch session with such a fetch (the session's id, the final epoch), and
// a broker that waited out its fetch.max.wait.ms delayed every close.
func TestEmptyFetchDoesNotWait(t *testing.T) {
	waits := countWaits(t)
	_, fetcher, producer := longPollSetup(t, "lp-empty", wire.Hooks{})
	ctx := ctxT(t)
	produceOne(t, ctx, producer, "lp-empty")
	open := longPoll("lp-empty", 0)
	open.SessionEpoch = 0 // asks for a session
	resp := awaitFetch(t, sendFetch(ctx, fetcher, open), "fetch opening a session")
	wantRecords(t, resp, 1)
	if resp.SessionID == 0 {
		t.Fatal("no fetch session opened")
	}
	for _, tc := range []struct {
		name      string
		id, epoch int32
	}{
		{"closing the session", resp.SessionID, -1},
		{"sessionless", 0, -1},
	} {
		req := longPoll("lp-empty", 0)
		req.Topics = nil
		req.SessionID, req.SessionEpoch = tc.id, tc.epoch
		r := awaitFetch(t, sendFetch(ctx, fetcher, req), "empty fetch "+tc.name)
		if r.ErrorCode != 0 || len(r.Topics) != 0 {
			t.Fatalf("empty fetch %s: error %v, %d topics; want neither", tc.name, kerr.ErrorForCode(r.ErrorCode), len(r.Topics))
		}
	}
	if got := waits.Load(); got != 0 {
		t.Fatalf("%d fetches blocked, want 0", got)
	}
}
