package broker

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"logpipe/brokerd/group"
	"logpipe/brokerd/metadata"
	"logpipe/brokerd/storage"
)

// ledPartition is partition t-0 led by node 1 of replicas 1, 2 and 3, all in
// the ISR at partition epoch 1, holding 10 records (offsets 0-9) that
// neither follower has fetched yet.
func ledPartition(t *testing.T) (*Broker, *partition) {
	t.Helper()
	l, err := storage.Open(filepath.Join(t.TempDir(), "t-0"), storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	// The defaults: replica.lag.time.max.ms (30 s) does not run out, so
	// the leader proposes no ISR change of its own.
	cfg := DefaultConfig()
	cfg.NodeID = 1
	b := &Broker{cfg: cfg, log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now, quit: make(chan struct{})}
	p := &partition{topic: "t", index: 0, log: l}
	b.applyRole(p, shrunk(1, 1, 2, 3))
	recs := make([]group.Record, 10)
	for i := range recs {
		recs[i] = group.Record{Value: []byte("r")}
	}
	if _, _, err := l.AppendAsLeader(group.BuildBatch(recs, time.Now()), 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	b.advanced(p)
	if hw := p.hw.Load(); hw != 0 {
		t.Fatalf("high watermark %d before any follower fetched, want 0", hw)
	}
	return b, p
}

// shrunk is t-0's metadata at partition epoch epoch with ISR isr, node 1
// leading at leader epoch 1.
func shrunk(epoch int32, isr ...int32) metadata.Partition {
	return metadata.Partition{Leader: 1, LeaderEpoch: 1, Epoch: epoch, Replicas: []int32{1, 2, 3}, ISR: isr}
}

// awaitAsync runs awaitReplicated for offsets 0-9 with min.insync.replicas
// minISR and returns where its answer comes.
func awaitAsync(b *Broker, p *partition, timeout time.Duration, minISR int) <-chan error {
	out := make(chan error, 1)
	go func() { out <- b.awaitReplicated(context.Background(), p, 9, 1, timeout, minISR) }()
	return out
}

// answerCode waits for an awaitReplicated answer and returns its Kafka code.
func answerCode(t *testing.T, answer <-chan error) int16 {
	t.Helper()
	select {
	case err := <-answer:
		code, _ := codeOf(err)
		return code
	case <-time.After(time.Minute):
		t.Fatal("awaitReplicated did not answer")
		return 0
	}
}

// TestAcksAllWhenTheISRShrinksBelowMinimum replays, step by step, the
// interleaving where an acks=all write was appended while the leader's
// metadata still showed three replicas in sync, and the controller then
// committed an ISR of the leader alone: the high watermark passes the
// records (the leader is the whole ISR), yet they are on one replica where
// min.insync.replicas is 2, so the producer gets
// NOT_ENOUGH_REPLICAS_AFTER_APPEND, as Kafka answers, and never success.
func TestAcksAllWhenTheISRShrinksBelowMinimum(t *testing.T) {
	b, p := ledPartition(t)
	answer := awaitAsync(b, p, time.Minute, 2)
	b.applyRole(p, shrunk(2, 1))
	if hw := p.hw.Load(); hw != 10 {
		t.Fatalf("high watermark %d with the leader alone in the ISR, want 10", hw)
	}
	if code := answerCode(t, answer); code != kerr.NotEnoughReplicasAfterAppend.Code {
		t.Fatalf("answer %v, want NOT_ENOUGH_REPLICAS_AFTER_APPEND", kerr.ErrorForCode(code))
	}
}

// TestAcksAllWhenTheISRShrinksToTheMinimum: the same write, but one
// follower fetched past it before the controller committed an ISR of that
// follower and the leader: two replicas hold it, which is
// min.insync.replicas, so it is acknowledged.
func TestAcksAllWhenTheISRShrinksToTheMinimum(t *testing.T) {
	b, p := ledPartition(t)
	answer := awaitAsync(b, p, time.Minute, 2)
	if !b.followerFetched(p, 2, 10) {
		t.Fatal("node 2 is not known as a replica")
	}
	if hw := p.hw.Load(); hw != 0 {
		t.Fatalf("high watermark %d with node 3 still in the ISR and behind, want 0", hw)
	}
	b.applyRole(p, shrunk(2, 1, 2))
	if code := answerCode(t, answer); code != 0 {
		t.Fatalf("answer %v, want success", kerr.ErrorForCode(code))
	}
}

// TestAcksAllTimesOutBelowMinimum: when request.timeout.ms runs out with
// the whole ISR silent, the answer is REQUEST_TIMED_OUT; when it runs out
// after the committed ISR fell below min.insync.replicas (3 here: an ISR
// of two whose follower is silent), it is NOT_ENOUGH_REPLICAS_AFTER_APPEND.
func TestAcksAllTimesOutBelowMinimum(t *testing.T) {
	b, p := ledPartition(t)
	if code := answerCode(t, awaitAsync(b, p, 50*time.Millisecond, 3)); code != kerr.RequestTimedOut.Code {
		t.Fatalf("answer %v with the whole ISR silent, want REQUEST_TIMED_OUT", kerr.ErrorForCode(code))
	}
	answer := awaitAsync(b, p, 200*time.Millisecond, 3)
	b.applyRole(p, shrunk(2, 1, 2))
	if hw := p.hw.Load(); hw != 0 {
		t.Fatalf("high watermark %d with node 2 in the ISR and behind, want 0", hw)
	}
	if code := answerCode(t, answer); code != kerr.NotEnoughReplicasAfterAppend.Code {
		t.Fatalf("answer %v with the ISR shrunk below the minimum, want NOT_ENOUGH_REPLICAS_AFTER_APPEND", kerr.ErrorForCode(code))
	}
}
