package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
)

// SyncGroup v0–v5 (v5 checks the protocol type and name). The leader's
// assignment is stored in __consumer_offsets before anyone gets theirs;
// followers wait for it.
func init() { register(14, 0, 5, handleSyncGroup) }

func handleSyncGroup(b *Broker, ctx context.Context, c *wire.Conn, h wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.SyncGroupRequest)
	if refused := b.groupRefused(ctx, c, req, req.Group); refused != nil {
		return refused, nil
	}
	resp, err := b.groups.coord.Sync(ctx, req)
	if err != nil {
		return nil, err
	}
	b.countError("SyncGroup", resp.ErrorCode)
	return resp, nil
}
