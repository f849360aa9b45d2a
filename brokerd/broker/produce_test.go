package broker_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestProduceManyPartitionsInOneRequest sends Produce requests of four
// batches of 100 KiB to partitions out of order, and one to a partition
// the topic does not have between them: each answer must sit in its
// request's place with its own partition's offsets or error, and every
// record must be read back where it was written.
func TestProduceManyPartitionsInOneRequest(t *testing.T) {
	tb := startBroker(t, "", "", nil)
	adm := grpAdmin(t, tb.addr)
	if r, err := adm.CreateTopic(ctxT(t), 4, 1, nil, "multi"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	const records = 100
	order := []int32{2, 0, 9, 3, 1}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "multi"
	for _, p := range order {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = p
		rp.Records = frameBatch(records)
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	frame := encodeFrame(req, 9)

	fc := dialFrames(t, tb.addr)
	for round := range int64(2) {
		var resp kmsg.ProduceResponse
		resp.Version = 9
		if err := resp.ReadFrom(fc.roundTrip(frame)[1:]); err != nil { // past the header's empty tags
			t.Fatal(err)
		}
		if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != len(order) {
			t.Fatalf("round %d: answer for %d topics, want 1 with %d partitions: %+v", round, len(resp.Topics), len(order), resp.Topics)
		}
		for i, sp := range resp.Topics[0].Partitions {
			if sp.Partition != order[i] {
				t.Errorf("round %d: answer %d is for partition %d, want %d", round, i, sp.Partition, order[i])
			}
			switch {
			case order[i] == 9:
				if sp.ErrorCode != kerr.UnknownTopicOrPartition.Code || sp.BaseOffset != -1 {
					t.Errorf("round %d: partition 9: error %d, base offset %d; want UNKNOWN_TOPIC_OR_PARTITION, -1", round, sp.ErrorCode, sp.BaseOffset)
				}
			case sp.ErrorCode != 0 || sp.BaseOffset != round*records:
				t.Errorf("round %d: partition %d: error %d, base offset %d; want 0, %d", round, sp.Partition, sp.ErrorCode, sp.BaseOffset, round*records)
			}
		}
	}

	cl := clClient(t, tb.addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"multi": {
		0: kgo.NewOffset().AtStart(), 1: kgo.NewOffset().AtStart(), 2: kgo.NewOffset().AtStart(), 3: kgo.NewOffset().AtStart(),
	}}))
	next := map[int32]int64{}
	ctx := ctxT(t)
	for total := 0; total < 4*2*records; {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records: %v", total, 4*2*records, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset != next[r.Partition] {
				t.Fatalf("partition %d: offset %d after %d", r.Partition, r.Offset, next[r.Partition]-1)
			}
			if got, want := string(r.Value), string(frameValue(int(r.Offset%records))); got != want {
				t.Fatalf("partition %d offset %d: value %.20q…, want %.20q…", r.Partition, r.Offset, got, want)
			}
			next[r.Partition]++
			total++
		})
	}
}
