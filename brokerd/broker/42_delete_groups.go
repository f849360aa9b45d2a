package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
)

// DeleteGroups v0–v2. Only groups without members can go
// (NON_EMPTY_GROUP otherwise); their offsets and metadata get tombstones
// in __consumer_offsets.
func init() { register(42, 0, 2, handleDeleteGroups) }

func handleDeleteGroups(b *Broker, ctx context.Context, _ *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, id := range req.Groups {
		code, err := b.groups.coord.Delete(ctx, id)
		if err != nil {
			return nil, err
		}
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group, rg.ErrorCode = id, code
		b.countError("DeleteGroups", code)
		resp.Groups = append(resp.Groups, rg)
	}
	return resp, nil
}
