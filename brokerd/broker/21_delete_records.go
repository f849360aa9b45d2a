package broker

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/storage"
	"logpipe/brokerd/wire"
)

// DeleteRecords v0–v2: move a partition's log start offset up (offset -1
// means the high watermark); whole segments below it are deleted. It
// needs DELETE on each topic (TOPIC_AUTHORIZATION_FAILED).
func init() { register(21, 0, 2, handleDeleteRecords) }

func handleDeleteRecords(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		allowed := b.allowed(ctx, c, opDelete, resTopic, rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			p := b.partition(rt.Topic, rp.Partition)
			switch {
			case !allowed:
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case p == nil:
				sp.ErrorCode = b.absent(rt.Topic, rp.Partition)
			default:
				hw := p.highWatermark()
				off := rp.Offset
				if off == -1 {
					off = hw
				}
				if off < 0 || off > hw {
					sp.ErrorCode = kerr.OffsetOutOfRange.Code
					break
				}
				if err := p.log.DeleteRecordsBefore(off); err != nil {
					if errors.Is(err, storage.ErrOffsetOutOfRange) {
						sp.ErrorCode = kerr.OffsetOutOfRange.Code
					} else {
						sp.ErrorCode = kerr.KafkaStorageError.Code
						b.log.Warn("delete records", "topic", rt.Topic, "partition", rp.Partition, "err", err)
					}
					break
				}
				sp.LowWatermark = p.log.LogStartOffset()
			}
			b.countError("DeleteRecords", sp.ErrorCode)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
