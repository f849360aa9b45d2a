package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
)

// AllocateProducerIds v0, on the controller listener: a broker takes a
// block of producer ids, recorded in the metadata so that no id is handed
// out twice in the cluster.
func init() { register(67, 0, 0, handleAllocateProducerIDs) }

func handleAllocateProducerIDs(b *Broker, ctx context.Context, _ *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.AllocateProducerIDsRequest)
	resp := req.ResponseKind().(*kmsg.AllocateProducerIDsResponse)
	ctl, err := b.activeController()
	if err == nil {
		resp.ProducerIDStart, err = ctl.AllocateProducerIDs(ctx, req.BrokerID, req.BrokerEpoch, producerIDBlockSize)
		resp.ProducerIDLen = producerIDBlockSize
	}
	resp.ErrorCode = controlErrorCode(err)
	return resp, nil
}
