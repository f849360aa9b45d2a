package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
)

// DescribeGroups v0–v5. Member metadata and assignments are shown only
// for Stable groups, as Kafka does; unknown groups are reported Dead.
// Each group needs DESCRIBE (GROUP_AUTHORIZATION_FAILED); its authorized
// operations (v3+, when asked) are those the sender may do on it, every
// group operation (READ, DELETE, DESCRIBE) without authorization.
func init() { register(15, 0, 5, handleDescribeGroups) }

func handleDescribeGroups(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		if !b.allowed(ctx, c, opDescribe, resGroup, id) {
			d := kmsg.NewDescribeGroupsResponseGroup()
			d.Group, d.ErrorCode = id, kerr.GroupAuthorizationFailed.Code
			b.countError("DescribeGroups", d.ErrorCode)
			resp.Groups = append(resp.Groups, d)
			continue
		}
		d, err := b.groups.coord.Describe(ctx, id)
		if err != nil {
			return nil, err
		}
		if req.IncludeAuthorizedOperations && d.ErrorCode == 0 {
			d.AuthorizedOperations = b.operations(ctx, c, resGroup, id)
		}
		b.countError("DescribeGroups", d.ErrorCode)
		resp.Groups = append(resp.Groups, d)
	}
	return resp, nil
}
