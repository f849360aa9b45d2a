package broker_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/broker"
	"logpipe/brokerd/group"
	"logpipe/brokerd/wire"
	"logpipe/internal/await"
)

// produceTo is an acks=all produce of one record to one partition.
func produceTo(topic string, partition int32) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = partition
	rp.Records = group.BuildBatch([]group.Record{{Value: []byte("x")}}, time.Now())
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// TestProduceDuringTopicRecreation deletes a topic and re-creates it with
// fewer partitions while a producer writes to it. The produce handler used
// to index the new metadata with a partition number of the old topic and
// panic, which took the whole broker down. First the race is made
// deterministic: a produce to partition 5 of 6 is held after it found the
// hosted partition while the topic becomes a one-partition topic; it must
// be answered UNKNOWN_TOPIC_OR_PARTITION on its open connection. Then the
// same franz-go client writes to all six partitions in a loop while the
// topic is deleted and re-created, 6 and 1 partitions in turn, and another
// client is served after every step. Nothing may panic and the broker must
// stay up.
func TestProduceDuringTopicRecreation(t *testing.T) {
	const topic = "churn"
	var panics atomic.Int64
	tb := startHookedBroker(t, wire.Hooks{Panic: func(int16, int16) { panics.Add(1) }})
	ctx := ctxT(t)
	admin := kadm.NewClient(clClient(t, tb.addr))
	recreate := func(partitions int32) {
		t.Helper()
		if _, err := admin.DeleteTopic(ctx, topic); err != nil {
			t.Fatalf("deleting %s: %v", topic, err)
		}
		create(t, ctx, admin, topic, partitions)
	}
	other := clClient(t, tb.addr)
	served := func(when string) {
		t.Helper()
		resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, other)
		if err != nil || len(resp.Brokers) != 1 {
			t.Fatalf("another client's metadata request %s: %v", when, err)
		}
	}
	create(t, ctx, admin, topic, 6)

	held, release := make(chan struct{}), make(chan struct{})
	var hold, unhold sync.Once
	broker.SetAfterProducePartition(t, func(tp string, p int32) {
		if tp == topic && p == 5 {
			hold.Do(func() { close(held); <-release })
		}
	})
	t.Cleanup(func() { unhold.Do(func() { close(release) }) })
	raw := clClient(t, tb.addr)
	type result struct {
		resp kmsg.Response
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := raw.SeedBrokers()[0].Request(ctx, produceTo(topic, 5))
		done <- result{resp, err}
	}()
	select {
	case <-held:
	case <-ctx.Done():
		t.Fatal("the produce to partition 5 never reached the broker")
	}
	recreate(1)
	served("while a produce is held")
	unhold.Do(func() { close(release) })
	r := <-done
	if r.err != nil {
		t.Fatalf("the held produce got no answer: %v (panics: %d)", r.err, panics.Load())
	}
	if code := r.resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("the held produce answered %v, want %v", kerr.ErrorForCode(code), kerr.UnknownTopicOrPartition)
	}

	// The same race left to chance: a producer with stale metadata keeps
	// writing to all six partitions, whatever the topic has now.
	var written atomic.Int64
	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for pctx.Err() == nil {
			req := produceTo(topic, 0)
			for p := int32(1); p < 6; p++ {
				rp := req.Topics[0].Partitions[0]
				rp.Partition = p
				req.Topics[0].Partitions = append(req.Topics[0].Partitions, rp)
			}
			resp, err := raw.SeedBrokers()[0].Request(pctx, req)
			if err != nil {
				if pctx.Err() == nil {
					t.Errorf("a produce during the re-creations got no answer: %v", err)
				}
				return
			}
			for _, p := range resp.(*kmsg.ProduceResponse).Topics[0].Partitions {
				if p.ErrorCode == 0 {
					written.Add(1)
				}
			}
		}
	}()
	defer func() { stop(); wg.Wait() }()
	recreate(6)
	await.Eventually(t, "the producer to write", func() error {
		if written.Load() == 0 {
			return await.NotYet("nothing written", "a record written")
		}
		return nil
	})
	for i := range 6 {
		recreate(int32(1 + 5*(i%2)))
		served("after a re-creation")
	}
	before := written.Load()
	await.Eventually(t, "the producer to write after the last re-creation", func() error {
		if n := written.Load(); n <= before {
			return await.NotYet(fmt.Sprintf("%d written", n), fmt.Sprintf("more than %d", before))
		}
		return nil
	})
	served("at the end")
	if got := panics.Load(); got != 0 {
		t.Fatalf("%d requests panicked, want 0", got)
	}
}

// create creates topic with the given partition count.
func create(t *testing.T, ctx context.Context, admin *kadm.Client, topic string, partitions int32) {
	t.Helper()
	resp, err := admin.CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("creating %s with %d partitions: %v", topic, partitions, err)
	}
}
