package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
)

// Heartbeat v0–v4 (v3+ checks group.instance.id). A heartbeat during a
// rebalance answers REBALANCE_IN_PROGRESS, telling the member to rejoin.
func init() { register(12, 0, 4, handleHeartbeat) }

func handleHeartbeat(b *Broker, ctx context.Context, c *wire.Conn, h wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.HeartbeatRequest)
	if refused := b.groupRefused(ctx, c, req, req.Group); refused != nil {
		return refused, nil
	}
	resp, err := b.groups.coord.Heartbeat(ctx, req)
	if err != nil {
		return nil, err
	}
	b.countError("Heartbeat", resp.ErrorCode)
	return resp, nil
}
