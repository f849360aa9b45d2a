package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/acl"
	"logpipe/brokerd/wire"
)

// DescribeAcls v0–v3: the ACLs a filter selects, grouped by resource
// pattern, from the replicated metadata (every node answers alike). It
// needs DESCRIBE on the cluster.
func init() { register(29, 0, 3, handleDescribeACLs) }

func handleDescribeACLs(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeACLsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	if !b.allowedCluster(ctx, c, opDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		b.countError("DescribeAcls", resp.ErrorCode)
		return resp, nil
	}
	f := aclFilter(req.ResourceType, req.ResourceName, req.ResourcePatternType, req.Principal, req.Host, req.Operation, req.PermissionType)
	if err := f.ValidateFilter(); err != nil {
		msg := err.Error()
		resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, &msg
		b.countError("DescribeAcls", resp.ErrorCode)
		return resp, nil
	}
	// Bindings come sorted by resource pattern first: a pattern's ACLs
	// are consecutive.
	for _, bd := range b.meta.Image().ACLs.Bindings(f) {
		n := len(resp.Resources)
		if n == 0 || resp.Resources[n-1].ResourceType != bd.ResourceType || resp.Resources[n-1].ResourceName != bd.ResourceName ||
			resp.Resources[n-1].ResourcePatternType != bd.PatternType {
			r := kmsg.NewDescribeACLsResponseResource()
			r.ResourceType, r.ResourceName, r.ResourcePatternType = bd.ResourceType, bd.ResourceName, bd.PatternType
			resp.Resources = append(resp.Resources, r)
			n++
		}
		e := kmsg.NewDescribeACLsResponseResourceACL()
		e.Principal, e.Host, e.Operation, e.PermissionType = bd.Principal, bd.Host, bd.Operation, bd.Permission
		resp.Resources[n-1].ACLs = append(resp.Resources[n-1].ACLs, e)
	}
	return resp, nil
}

// aclFilter is the filter of DescribeAcls and of each DeleteAcls filter.
func aclFilter(typ kmsg.ACLResourceType, name *string, pattern kmsg.ACLResourcePatternType, principal, host *string,
	op kmsg.ACLOperation, perm kmsg.ACLPermissionType) acl.Filter {
	return acl.Filter{ResourceType: typ, ResourceName: name, PatternType: pattern, Principal: principal, Host: host, Operation: op, Permission: perm}
}
