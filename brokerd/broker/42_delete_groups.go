package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
)

// DeleteGroups v0–v2. Only groups without members can go
// (NON_EMPTY_GROUP otherwise); their offsets and metadata get tombstones
// in __consumer_offsets. Each group needs DELETE
// (GROUP_AUTHORIZATION_FAILED).
func init() { register(42, 0, 2, handleDeleteGroups) }

func handleDeleteGroups(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	for _, id := range req.Groups {
		code := kerr.GroupAuthorizationFailed.Code
		if b.allowed(ctx, c, opDelete, resGroup, id) {
			var err error
			if code, err = b.groups.coord.Delete(ctx, id); err != nil {
				return nil, err
			}
		}
		rg := kmsg.NewDeleteGroupsResponseGroup()
		rg.Group, rg.ErrorCode = id, code
		b.countError("DeleteGroups", code)
		resp.Groups = append(resp.Groups, rg)
	}
	return resp, nil
}
