package broker_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
)

// TestOffsetForLeaderEpoch asks a leader where its epochs end: the current
// epoch ends at the log end offset, a newer current epoch than the
// leader's is unknown to it, a partition it does not have is unknown; and
// franz-go, seeing OffsetForLeaderEpoch v2+ served, takes the leader
// epochs of Metadata as real (it treats them as -1 otherwise, and then
// keeps a stale leader learned from a NOT_LEADER answer for good).
func TestOffsetForLeaderEpoch(t *testing.T) {
	tb := clStart(t, "", nil)
	ctx := ctxT(t)
	cl := clClient(t, tb.addr, kgo.DefaultProduceTopic("e"), kgo.AllowAutoTopicCreation())
	for range 5 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := wire.Dial(tb.addr, "test", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ask := func(topic string, epoch, current int32) kmsg.OffsetForLeaderEpochResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.Version, req.ReplicaID = 4, -1
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.LeaderEpoch, rp.CurrentLeaderEpoch = epoch, current
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		kresp, err := conn.Request(req, time.Now().Add(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		resp := kresp.(*kmsg.OffsetForLeaderEpochResponse)
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("response %+v, want one partition", resp.Topics)
		}
		return resp.Topics[0].Partitions[0]
	}
	if got := ask("e", 0, 0); got.ErrorCode != 0 || got.LeaderEpoch != 0 || got.EndOffset != 5 {
		t.Errorf("epoch 0 of e-0: error %d, epoch %d, end %d; want epoch 0 ending at 5", got.ErrorCode, got.LeaderEpoch, got.EndOffset)
	}
	if got := ask("e", 0, 3); got.ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Errorf("current epoch 3 of a leader in epoch 0: error %d, want UNKNOWN_LEADER_EPOCH", got.ErrorCode)
	}
	if got := ask("nope", 0, -1); got.ErrorCode != kerr.UnknownTopicOrPartition.Code || got.EndOffset != -1 {
		t.Errorf("unknown topic: error %d, end %d; want UNKNOWN_TOPIC_OR_PARTITION, -1", got.ErrorCode, got.EndOffset)
	}
	if _, epoch, err := cl.PartitionLeader("e", 0); err != nil || epoch != 0 {
		t.Errorf("franz-go's leader epoch of e-0: %d (%v), want 0 from Metadata", epoch, err)
	}
}
