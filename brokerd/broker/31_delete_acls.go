package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/acl"
	"logpipe/brokerd/metadata"
	"logpipe/brokerd/wire"
)

// DeleteAcls v0–v3: remove the ACLs each filter selects, in one record,
// answering for each filter the ACLs it matched. It needs ALTER on the
// cluster; other nodes forward it to the active controller.
func init() { register(31, 0, 3, handleDeleteACLs) }

func handleDeleteACLs(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteACLsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	resp.Results = make([]kmsg.DeleteACLsResponseResult, len(req.Filters))
	for i := range resp.Results {
		resp.Results[i] = kmsg.NewDeleteACLsResponseResult()
	}
	fail := func(i int, err error) {
		resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = codeOf(err)
		resp.Results[i].MatchingACLs = nil
		b.countError("DeleteAcls", resp.Results[i].ErrorCode)
	}
	if !b.allowedCluster(ctx, c, opAlter) {
		for i := range resp.Results {
			fail(i, newAPIError(kerr.ClusterAuthorizationFailed, "deleting ACLs needs ALTER on the cluster"))
		}
		return resp, nil
	}
	img := b.meta.Image()
	var remove []acl.Binding
	var matched []int // filters that matched something
	for i, rf := range req.Filters {
		f := aclFilter(rf.ResourceType, rf.ResourceName, rf.ResourcePatternType, rf.Principal, rf.Host, rf.Operation, rf.PermissionType)
		if err := f.ValidateFilter(); err != nil {
			fail(i, newAPIError(kerr.InvalidRequest, "%v", err))
			continue
		}
		bs := img.ACLs.Bindings(f)
		for _, bd := range bs {
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName, m.ResourcePatternType = bd.ResourceType, bd.ResourceName, bd.PatternType
			m.Principal, m.Host, m.Operation, m.PermissionType = bd.Principal, bd.Host, bd.Operation, bd.Permission
			resp.Results[i].MatchingACLs = append(resp.Results[i].MatchingACLs, m)
		}
		if len(bs) > 0 {
			remove, matched = append(remove, bs...), append(matched, i)
		}
	}
	if len(remove) == 0 {
		return resp, nil
	}
	if err := b.propose(ctx, metadata.Record{DeleteACLs: remove}); err != nil {
		for _, i := range matched {
			fail(i, err)
		}
		return resp, nil
	}
	for _, bd := range remove {
		b.log.Info("deleted ACL", "acl", bd.String())
	}
	return resp, nil
}
