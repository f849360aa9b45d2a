package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
)

// OffsetDelete v0. An empty group may drop any offsets; a consumer group
// with members only those of topics none of its members subscribes to
// (GROUP_SUBSCRIBED_TO_TOPIC otherwise).
func init() { register(47, 0, 0, handleOffsetDelete) }

func handleOffsetDelete(b *Broker, ctx context.Context, _ *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	resp, err := b.groups.coord.DeleteOffsets(ctx, kreq.(*kmsg.OffsetDeleteRequest))
	if err != nil {
		return nil, err
	}
	b.countError("OffsetDelete", resp.ErrorCode)
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			b.countError("OffsetDelete", p.ErrorCode)
		}
	}
	return resp, nil
}
