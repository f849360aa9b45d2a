package broker

import (
	"context"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/acl"
	"logpipe/brokerd/group"
	"logpipe/brokerd/wire"
)

// Authorization: with authorizer.class.name set, every handler checks
// what Kafka's KafkaApis checks, against the ACLs of the metadata image,
// for the principal of the connection (wire.Conn.Principal) or, for a
// request another node forwarded to the controller, the principal the
// envelope carries (58_envelope.go). The node's own calls (a handler run
// with no connection) are always allowed. The brokers' own connections
// (replica fetches, registration and heartbeats, forwarding) authenticate
// like any client, so their principal must be in super.users (User:ANONYMOUS
// on PLAINTEXT listeners) or be granted CLUSTER_ACTION on the cluster.

// Shorter names for the ACL resource types and operations the handlers use.
const (
	resTopic   = kmsg.ACLResourceTypeTopic
	resGroup   = kmsg.ACLResourceTypeGroup
	resCluster = kmsg.ACLResourceTypeCluster
	resTxnID   = kmsg.ACLResourceTypeTransactionalId

	opRead            = kmsg.ACLOperationRead
	opWrite           = kmsg.ACLOperationWrite
	opCreate          = kmsg.ACLOperationCreate
	opDelete          = kmsg.ACLOperationDelete
	opAlter           = kmsg.ACLOperationAlter
	opDescribe        = kmsg.ACLOperationDescribe
	opClusterAction   = kmsg.ACLOperationClusterAction
	opDescribeConfigs = kmsg.ACLOperationDescribeConfigs
	opAlterConfigs    = kmsg.ACLOperationAlterConfigs
	opIdempotentWrite = kmsg.ACLOperationIdempotentWrite
)

type requesterKey struct{}

// withRequester returns ctx carrying who sent the request, for a request
// a node forwarded in an envelope.
func withRequester(ctx context.Context, who acl.Requester) context.Context {
	return context.WithValue(ctx, requesterKey{}, who)
}

// requester returns who sent the request: the principal a forwarding
// envelope carried, else the connection's. ok is false for the node's own
// calls, which have neither.
func requester(ctx context.Context, c *wire.Conn) (who acl.Requester, ok bool) {
	if who, ok := ctx.Value(requesterKey{}).(acl.Requester); ok {
		return who, true
	}
	if c == nil {
		return acl.Requester{}, false
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr())
	if err != nil {
		host = c.RemoteAddr()
	}
	return acl.Requester{Principal: c.Principal(), Host: host}, true
}

// allowed reports whether the request's sender may do op on the named
// resource.
func (b *Broker) allowed(ctx context.Context, c *wire.Conn, op kmsg.ACLOperation, typ kmsg.ACLResourceType, name string) bool {
	if b.authz == nil {
		return true
	}
	who, ok := requester(ctx, c)
	return !ok || b.authz.Authorize(b.meta.Image().ACLs, who, op, typ, name)
}

// allowedCluster reports whether the sender may do op on the cluster.
func (b *Broker) allowedCluster(ctx context.Context, c *wire.Conn, op kmsg.ACLOperation) bool {
	return b.allowed(ctx, c, op, resCluster, acl.ClusterName)
}

// allowedAny reports whether the sender may do op on some resource of
// the type (Kafka's authorizeByResourceType).
func (b *Broker) allowedAny(ctx context.Context, c *wire.Conn, op kmsg.ACLOperation, typ kmsg.ACLResourceType) bool {
	if b.authz == nil {
		return true
	}
	who, ok := requester(ctx, c)
	return !ok || b.authz.AuthorizeAny(b.meta.Image().ACLs, who, op, typ)
}

// operations returns the bit field of the operations the sender may do on
// the named resource, for the authorized-operations fields.
func (b *Broker) operations(ctx context.Context, c *wire.Conn, typ kmsg.ACLResourceType, name string) int32 {
	who, ok := requester(ctx, c)
	if b.authz == nil || !ok {
		return (*acl.Authorizer)(nil).Operations(nil, who, typ, name)
	}
	return b.authz.Operations(b.meta.Image().ACLs, who, typ, name)
}

// clusterOperations is operations on the cluster, none without DESCRIBE
// on it, as Kafka answers Metadata and DescribeCluster.
func (b *Broker) clusterOperations(ctx context.Context, c *wire.Conn) int32 {
	if !b.allowedCluster(ctx, c, opDescribe) {
		return 0
	}
	return b.operations(ctx, c, resCluster, acl.ClusterName)
}

// groupRefused is the answer to a JoinGroup, SyncGroup, Heartbeat or
// LeaveGroup from a sender that may not READ the group, nil when it may.
func (b *Broker) groupRefused(ctx context.Context, c *wire.Conn, req kmsg.Request, id string) kmsg.Response {
	if b.allowed(ctx, c, opRead, resGroup, id) {
		return nil
	}
	b.countError(kmsg.NameForKey(req.Key()), kerr.GroupAuthorizationFailed.Code)
	return group.ErrorResponse(req, kerr.GroupAuthorizationFailed.Code)
}
