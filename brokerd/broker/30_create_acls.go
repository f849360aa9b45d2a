package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/acl"
	"logpipe/brokerd/metadata"
	"logpipe/brokerd/wire"
)

// CreateAcls v0–v3: add ACLs to the replicated metadata, in one record;
// an ACL that exists already is kept once, an invalid one is refused with
// INVALID_REQUEST. It needs ALTER on the cluster; other nodes forward it
// to the active controller.
func init() { register(30, 0, 3, handleCreateACLs) }

func handleCreateACLs(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.CreateACLsRequest)
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	resp.Results = make([]kmsg.CreateACLsResponseResult, len(req.Creations))
	for i := range resp.Results {
		resp.Results[i] = kmsg.NewCreateACLsResponseResult()
	}
	fail := func(i int, err error) {
		resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = codeOf(err)
		b.countError("CreateAcls", resp.Results[i].ErrorCode)
	}
	if !b.allowedCluster(ctx, c, opAlter) {
		for i := range resp.Results {
			fail(i, newAPIError(kerr.ClusterAuthorizationFailed, "creating ACLs needs ALTER on the cluster"))
		}
		return resp, nil
	}
	var add []acl.Binding
	var added []int // index in the request of each of add
	for i, cr := range req.Creations {
		bd := acl.Binding{ResourceType: cr.ResourceType, ResourceName: cr.ResourceName, PatternType: cr.ResourcePatternType,
			Principal: cr.Principal, Host: cr.Host, Operation: cr.Operation, Permission: cr.PermissionType}
		if err := bd.Validate(); err != nil {
			fail(i, newAPIError(kerr.InvalidRequest, "%v", err))
			continue
		}
		add, added = append(add, bd), append(added, i)
	}
	if len(add) == 0 {
		return resp, nil
	}
	if err := b.propose(ctx, metadata.Record{CreateACLs: add}); err != nil {
		for _, i := range added {
			fail(i, err)
		}
		return resp, nil
	}
	for _, bd := range add {
		b.log.Info("created ACL", "acl", bd.String())
	}
	return resp, nil
}
