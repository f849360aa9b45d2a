package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
)

// LeaveGroup v0–v5: one member (v0–v2) or a batch (v3+), where a static
// member may be named by group.instance.id alone.
func init() { register(13, 0, 5, handleLeaveGroup) }

func handleLeaveGroup(b *Broker, ctx context.Context, c *wire.Conn, h wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.LeaveGroupRequest)
	if refused := b.groupRefused(ctx, c, req, req.Group); refused != nil {
		return refused, nil
	}
	resp, err := b.groups.coord.Leave(ctx, req)
	if err != nil {
		return nil, err
	}
	b.countError("LeaveGroup", resp.ErrorCode)
	for _, m := range resp.Members {
		b.countError("LeaveGroup", m.ErrorCode)
	}
	return resp, nil
}
