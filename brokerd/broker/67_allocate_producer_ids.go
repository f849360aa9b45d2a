package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
)

// AllocateProducerIds v0, on the controller listener: a broker takes a
// block of producer ids, recorded in the metadata so that no id is handed
// out twice in the cluster.
// It needs CLUSTER_ACTION on the cluster (CLUSTER_AUTHORIZATION_FAILED).
func init() { register(67, 0, 0, handleAllocateProducerIDs) }

func handleAllocateProducerIDs(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.AllocateProducerIDsRequest)
	resp := req.ResponseKind().(*kmsg.AllocateProducerIDsResponse)
	if !b.allowedCluster(ctx, c, opClusterAction) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	ctl, err := b.activeController()
	if err == nil {
		resp.ProducerIDStart, err = ctl.AllocateProducerIDs(ctx, req.BrokerID, req.BrokerEpoch, producerIDBlockSize)
		resp.ProducerIDLen = producerIDBlockSize
	}
	resp.ErrorCode = controlErrorCode(err)
	return resp, nil
}
