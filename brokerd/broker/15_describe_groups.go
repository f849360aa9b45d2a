package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
)

// DescribeGroups v0–v5. Member metadata and assignments are shown only
// for Stable groups, as Kafka does; unknown groups are reported Dead.
// brokerd has no ACLs, so authorized operations (v3+, when asked) are
// every group operation: READ, DELETE and DESCRIBE.
func init() { register(15, 0, 5, handleDescribeGroups) }

// groupOperations is the bit set of ACL operations READ (3), DELETE (6)
// and DESCRIBE (8).
const groupOperations = 1<<3 | 1<<6 | 1<<8

func handleDescribeGroups(b *Broker, ctx context.Context, _ *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		d, err := b.groups.coord.Describe(ctx, id)
		if err != nil {
			return nil, err
		}
		if req.IncludeAuthorizedOperations && d.ErrorCode == 0 {
			d.AuthorizedOperations = groupOperations
		}
		b.countError("DescribeGroups", d.ErrorCode)
		resp.Groups = append(resp.Groups, d)
	}
	return resp, nil
}
