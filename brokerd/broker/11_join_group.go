package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
)

// JoinGroup v0–v9: member ids (v4+ answers a first join without one with
// MEMBER_ID_REQUIRED and the id to use), static membership (v5+,
// group.instance.id), protocol selection by vote, the leader receiving
// every member's metadata, SkipAssignment for a returning static leader
// (v9). The request waits until the rebalance completes.
func init() { register(11, 0, 9, handleJoinGroup) }

func handleJoinGroup(b *Broker, ctx context.Context, c *wire.Conn, h wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.JoinGroupRequest)
	if refused := b.groupRefused(ctx, c, req, req.Group); refused != nil {
		return refused, nil
	}
	resp, err := b.groups.coord.Join(ctx, req, h.ClientID, clientHost(c))
	if err != nil {
		return nil, err
	}
	b.countError("JoinGroup", resp.ErrorCode)
	return resp, nil
}
