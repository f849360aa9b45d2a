package broker

import (
	"context"
	"fmt"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/acl"
	"logpipe/brokerd/wire"
)

// Envelope v0, on the controller listener: a request a node forwards to
// the controller while authorization is on, carrying the client's
// principal and address, so the controller authorizes the client. The
// forwarding node must itself be allowed CLUSTER_ACTION on the cluster.
func init() { register(58, 0, 0, handleEnvelope) }

func handleEnvelope(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.EnvelopeRequest)
	resp := req.ResponseKind().(*kmsg.EnvelopeResponse)
	if !b.allowedCluster(ctx, c, opClusterAction) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	h, inner, err := wire.DecodeRequestData(req.RequestData)
	if err != nil || !forwarded[h.APIKey] || len(req.RequestPrincipal) == 0 {
		b.log.Warn("refused an envelope", "request", h.String(), "err", err)
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp, nil
	}
	if r := handlers[h.APIKey]; h.APIVersion < r.min || h.APIVersion > r.max {
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		return resp, nil
	}
	who := acl.Requester{Principal: string(req.RequestPrincipal), Host: net.IP(req.ClientHostAddress).String()}
	out, err := handlers[h.APIKey].fn(b, withRequester(ctx, who), nil, h, inner)
	if err != nil {
		return nil, err
	}
	resp.ResponseData = wire.EncodeResponseData(out, h.CorrelationID)
	return resp, nil
}

// envelope wraps a client's request for the controller.
func envelope(ctx context.Context, c *wire.Conn, h wire.Header, req kmsg.Request) *kmsg.EnvelopeRequest {
	env := kmsg.NewPtrEnvelopeRequest()
	env.RequestData = wire.EncodeRequestData(req, h.ClientID)
	who, _ := requester(ctx, c)
	env.RequestPrincipal = []byte(who.Principal)
	if ip := net.ParseIP(who.Host); ip != nil {
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		env.ClientHostAddress = ip
	}
	return env
}

// unwrap returns the controller's answer to req from its envelope.
func unwrap(req kmsg.Request, resp kmsg.Response) (kmsg.Response, error) {
	env := resp.(*kmsg.EnvelopeResponse)
	if env.ErrorCode != 0 {
		return errorResponse(req, env.ErrorCode, "the controller refused the forwarded request: "+kerr.ErrorForCode(env.ErrorCode).Error()), nil
	}
	out, err := wire.DecodeResponseData(req, env.ResponseData)
	if err != nil {
		return nil, fmt.Errorf("broker: the controller's answer to a forwarded %s: %w", kmsg.NameForKey(req.Key()), err)
	}
	return out, nil
}
