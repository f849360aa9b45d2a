package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/controller"
	"logpipe/brokerd/wire"
)

// BrokerRegistration v0–v3, on the controller listener: a starting broker
// registers with the active controller and gets its broker epoch. Its
// first listener is the inter-broker one, where other brokers reach it;
// clients are told the address of the listener they came in on.
// It needs CLUSTER_ACTION on the cluster (CLUSTER_AUTHORIZATION_FAILED).
func init() { register(62, 0, 3, handleBrokerRegistration) }

func handleBrokerRegistration(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.BrokerRegistrationRequest)
	resp := req.ResponseKind().(*kmsg.BrokerRegistrationResponse)
	if !b.allowedCluster(ctx, c, opClusterAction) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	resp.BrokerEpoch = -1
	ctl, err := b.activeController()
	if err == nil {
		reg := controller.Registration{ID: req.BrokerID, Incarnation: fmt.Sprintf("%x", req.IncarnationID), ClusterID: req.ClusterID}
		if req.Rack != nil {
			reg.Rack = *req.Rack
		}
		var ls []string
		for _, l := range req.Listeners {
			if reg.Host == "" {
				reg.Host, reg.Port = l.Host, int32(l.Port)
			}
			ls = append(ls, l.Name+"://"+net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port))))
		}
		reg.Listeners = strings.Join(ls, ",")
		resp.BrokerEpoch, err = ctl.Register(ctx, reg)
	}
	resp.ErrorCode = controlErrorCode(err)
	if err != nil && resp.ErrorCode != kerr.NotController.Code {
		b.log.Warn("broker registration refused", "broker", req.BrokerID, "err", err)
	}
	return resp, nil
}

// controlErrorCode maps the controller's errors to Kafka error codes.
func controlErrorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, controller.ErrStaleBrokerEpoch), errors.Is(err, controller.ErrUnknownBroker):
		return kerr.StaleBrokerEpoch.Code
	case errors.Is(err, controller.ErrDuplicateBroker):
		return kerr.DuplicateBrokerRegistration.Code
	case errors.Is(err, controller.ErrInconsistentCluster):
		return kerr.InconsistentClusterID.Code
	case errors.Is(err, controller.ErrFencedLeaderEpoch):
		return kerr.FencedLeaderEpoch.Code
	case errors.Is(err, controller.ErrInvalidUpdateVersion):
		return kerr.InvalidUpdateVersion.Code
	case errors.Is(err, controller.ErrIneligibleReplica):
		return kerr.IneligibleReplica.Code
	case errors.Is(err, controller.ErrUnknownPartition):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, controller.ErrNotLeader):
		return kerr.NotLeaderForPartition.Code
	}
	code, _ := codeOf(err)
	return code
}
