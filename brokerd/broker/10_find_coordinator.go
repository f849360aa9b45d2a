package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/group"
	"logpipe/brokerd/wire"
)

// FindCoordinator v0–v4 (v4 batches keys). A group's coordinator is the
// leader of its __consumer_offsets partition (abs(Java hashCode of the
// group id) % partitions); the topic is created on first use. brokerd
// has no transactions, so transaction keys (type 1) get
// COORDINATOR_NOT_AVAILABLE; other key types INVALID_REQUEST. A group key
// needs DESCRIBE on the group (GROUP_AUTHORIZATION_FAILED), a transaction
// key DESCRIBE on the transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
func init() { register(10, 0, 4, handleFindCoordinator) }

func handleFindCoordinator(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	for _, key := range keys {
		co := b.findCoordinator(ctx, c, req.CoordinatorType, key)
		b.countError("FindCoordinator", co.ErrorCode)
		resp.Coordinators = append(resp.Coordinators, co)
	}
	if req.Version < 4 {
		co := resp.Coordinators[0]
		resp.Coordinators = nil
		resp.ErrorCode, resp.ErrorMessage = co.ErrorCode, co.ErrorMessage
		resp.NodeID, resp.Host, resp.Port = co.NodeID, co.Host, co.Port
	}
	return resp, nil
}

func (b *Broker) findCoordinator(ctx context.Context, c *wire.Conn, keyType int8, key string) kmsg.FindCoordinatorResponseCoordinator {
	co := kmsg.NewFindCoordinatorResponseCoordinator()
	co.Key = key
	co.NodeID, co.Port = -1, -1
	fail := func(err *kerr.Error, msg string) kmsg.FindCoordinatorResponseCoordinator {
		co.ErrorCode = err.Code
		co.ErrorMessage = &msg
		return co
	}
	switch keyType {
	case 0:
		if !b.allowed(ctx, c, opDescribe, resGroup, key) {
			return fail(kerr.GroupAuthorizationFailed, "finding a group's coordinator needs DESCRIBE on the group")
		}
	case 1:
		if !b.allowed(ctx, c, opDescribe, resTxnID, key) {
			return fail(kerr.TransactionalIDAuthorizationFailed, "finding a transaction's coordinator needs DESCRIBE on the transactional id")
		}
		return fail(kerr.CoordinatorNotAvailable, "brokerd does not support transactions")
	default:
		return fail(kerr.InvalidRequest, "unknown coordinator key type")
	}
	t, err := b.ensureOffsetsTopic(ctx)
	if err != nil {
		b.log.Warn("creating __consumer_offsets", "err", err)
		return fail(kerr.CoordinatorNotAvailable, "the offsets topic could not be created: "+err.Error())
	}
	p := t.Partitions[group.PartitionFor(key, int32(len(t.Partitions)))]
	br, ok := b.meta.Image().Brokers[p.Leader]
	if p.Leader < 0 || !ok {
		return fail(kerr.CoordinatorNotAvailable, "the group's offsets partition has no leader")
	}
	host, port, ok := endpoint(c, br)
	if !ok {
		return fail(kerr.CoordinatorNotAvailable, "the coordinator has no endpoint on this listener")
	}
	co.NodeID, co.Host, co.Port = br.ID, host, port
	return co
}
