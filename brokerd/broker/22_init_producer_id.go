package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
)

// InitProducerId v0–v4 for idempotent producers: a new producer gets a
// fresh id at epoch 0; a producer that gives its id and epoch (v3+,
// KIP-360) gets the epoch bumped, or a fresh id when the epoch would
// overflow. Transactional ids are refused: brokerd has no transactions.
// An idempotent producer needs IDEMPOTENT_WRITE on the cluster or, as in
// Kafka 3, WRITE on some topic (CLUSTER_AUTHORIZATION_FAILED).
func init() { register(22, 0, 4, handleInitProducerID) }

func handleInitProducerID(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID == nil && !b.allowedCluster(ctx, c, opIdempotentWrite) && !b.allowedAny(ctx, c, opWrite, resTopic) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		b.countError("InitProducerId", resp.ErrorCode)
		return resp, nil
	}
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		b.log.Info("refused a transactional producer: brokerd does not support transactions", "transactional.id", *req.TransactionalID)
		b.countError("InitProducerId", resp.ErrorCode)
		return resp, nil
	}
	if req.ProducerID >= 0 && req.ProducerEpoch >= 0 && req.ProducerEpoch < 1<<15-1 {
		resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch+1
		return resp, nil
	}
	id, err := b.newProducerID(ctx)
	if err != nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		b.log.Warn("allocating a producer id", "err", err)
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}
