package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/controller"
	"logpipe/brokerd/wire"
)

// BrokerHeartbeat v0–v1, on the controller listener: a registered broker
// tells the active controller it is alive and how far it has applied the
// metadata; the answer says whether it is fenced and, when it asked to
// shut down, whether it may.
// It needs CLUSTER_ACTION on the cluster (CLUSTER_AUTHORIZATION_FAILED).
func init() { register(63, 0, 1, handleBrokerHeartbeat) }

func handleBrokerHeartbeat(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.BrokerHeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
	if !b.allowedCluster(ctx, c, opClusterAction) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	resp.IsFenced = true
	ctl, err := b.activeController()
	if err == nil {
		var r controller.HeartbeatResult
		r, err = ctl.Heartbeat(ctx, controller.Heartbeat{ID: req.BrokerID, Epoch: req.BrokerEpoch,
			MetadataOffset: req.CurrentMetadataOffset, WantFence: req.WantFence, WantShutDown: req.WantShutdown})
		resp.IsCaughtUp, resp.IsFenced, resp.ShouldShutdown = r.IsCaughtUp, r.IsFenced, r.ShouldShutDown
	}
	resp.ErrorCode = controlErrorCode(err)
	if err != nil && resp.ErrorCode != kerr.NotController.Code && resp.ErrorCode != kerr.StaleBrokerEpoch.Code {
		b.log.Warn("broker heartbeat", "broker", req.BrokerID, "err", err)
	}
	return resp, nil
}
