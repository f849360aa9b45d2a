package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
)

// ListOffsets v1–v6: timestamp -2 is the log start offset, -1 the high
// watermark (the end a consumer can read), anything else the first offset
// whose record timestamp is at or after it (-1 when none is).
func init() { register(2, 1, 6, handleListOffsets) }

func handleListOffsets(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ListOffsetsRequest)
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		allowed := b.allowed(ctx, c, opDescribe, resTopic, rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
			p := b.partition(rt.Topic, rp.Partition)
			switch {
			case !allowed:
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case p == nil:
				sp.ErrorCode = b.absent(rt.Topic, rp.Partition)
			case !p.leads.Load():
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
			case req.Version >= 4 && rp.CurrentLeaderEpoch >= 0 && rp.CurrentLeaderEpoch < p.leaderEpoch.Load():
				sp.ErrorCode = kerr.FencedLeaderEpoch.Code
			case req.Version >= 4 && rp.CurrentLeaderEpoch > p.leaderEpoch.Load():
				sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			default:
				sp.LeaderEpoch = p.leaderEpoch.Load()
				switch rp.Timestamp {
				case -2:
					sp.Offset = p.log.LogStartOffset()
				case -1:
					sp.Offset = p.highWatermark()
				default:
					off, ts, found, err := p.log.OffsetForTimestamp(rp.Timestamp)
					if err != nil {
						sp.ErrorCode = kerr.KafkaStorageError.Code
					} else if found && off < p.highWatermark() {
						sp.Offset, sp.Timestamp = off, ts
					}
				}
			}
			b.countError("ListOffsets", sp.ErrorCode)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
