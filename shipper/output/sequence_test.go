package output

import (
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"logpipe/shipper/publish"
)

// TestFirstBatchGoesAlone drives the engine's sending by hand: a
// partition's batches go one at a time until one numbered under the current
// producer id is acknowledged, and up to maxIdempotentInFlight after that;
// a pause longer than producerStateIdle and a new producer id start over. A
// broker takes a batch of a producer it has no state for whatever its first
// sequence number, so with two in flight the second could be written before
// the first, sent again after a NOT_LEADER answer from a leader not yet
// ready; that put a file's lines out of order against Kafka 3.9 right after
// the topic was made.
func TestFirstBatchGoesAlone(t *testing.T) {
	topicFormat, err := ParseFormat("t")
	if err != nil {
		t.Fatal(err)
	}
	s := &Settings{Topic: topicFormat, RequiredAcks: sarama.WaitForAll, MaxMessageBytes: 1 << 20, BulkMaxSize: 1,
		BulkFlushFrequency: time.Hour, BackoffInit: time.Millisecond, BackoffMax: time.Millisecond}
	k := NewKafka(s, 100, 1<<20, slog.New(slog.DiscardHandler), Hooks{}, func([]publish.Ack) {})
	e := newEngine(k, nil, sarama.NewConfig())
	e.pid, e.epoch = 7, 0
	topic := &topicState{name: "t"}
	part := &partState{topic: topic}
	topic.parts = []*partState{part}
	e.topics["t"] = topic
	bs := &brokerState{queue: make(chan sendItem, e.maxInFlight+1)}
	e.setLeader(part, bs)

	const n = 15
	sb := newSentBatch(n, 0)
	sb.left = n
	for i := range n {
		*sb.msgs = append(*sb.msgs, message{value: []byte{'a' + byte(i)}, topic: "t", batch: sb, index: i, size: 1})
		e.add(part, &(*sb.msgs)[i])
		e.close(part)
	}
	// sent takes the requests the engine queued for the broker and
	// returns the first sequence number of each one's batch.
	sent := func() (items []sendItem, seqs []int32) {
		for len(bs.queue) > 0 {
			it := <-bs.queue
			if len(it.batches) != 1 {
				t.Fatalf("a request of %d batches of one partition", len(it.batches))
			}
			items = append(items, it)
			seqs = append(seqs, it.batches[0].rb.FirstSequence)
		}
		return items, seqs
	}
	answer := func(it sendItem, kerr sarama.KError) {
		resp := &sarama.ProduceResponse{Version: e.version}
		resp.AddTopicPartition("t", 0, kerr)
		e.answered(answer{broker: bs, batches: it.batches, resp: resp})
	}
	// round lets the engine send and checks the first sequence numbers of
	// what it sent; ack answers those requests with success.
	round := func(what string, want ...int32) []sendItem {
		t.Helper()
		e.send(bs)
		items, seqs := sent()
		if !slices.Equal(seqs, want) {
			t.Fatalf("%s: sent batches of first sequence %v, want %v", what, seqs, want)
		}
		return items
	}
	ack := func(items []sendItem) {
		for _, it := range items {
			answer(it, sarama.ErrNoError)
		}
	}

	items := round("a new producer's first send", 0)
	answer(items[0], sarama.ErrNotLeaderForPartition)
	if !part.failed || part.known {
		t.Fatalf("after NOT_LEADER: failed %v, known %v; want failed, not known", part.failed, part.known)
	}
	// What a look-up finding the leader again does.
	e.setLeader(part, bs)
	part.failed = false
	ack(round("sent again", 0))
	if !part.known {
		t.Fatal("an acknowledged batch did not make the partition known")
	}
	ack(round("once known", 1, 2, 3, 4, 5))

	// A pause: the leader may have dropped the producer's state.
	part.ackedAt = time.Now().Add(-2 * producerStateIdle)
	ack(round("after a pause", 6))
	ack(round("known again after the pause", 7, 8, 9, 10, 11))

	e.gotPID(producerID{id: 8})
	if part.known {
		t.Fatal("a new producer id left the partition known")
	}
	ack(round("under a new producer id", 0))
	round("known under the new id", 1, 2)
}
