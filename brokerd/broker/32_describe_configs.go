package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
)

// DescribeConfigs v0–v4 for topics (every honoured setting, with its
// source and, on request, synonyms) and for this broker (read-only static
// settings).
func init() { register(32, 0, 4, handleDescribeConfigs) }

func handleDescribeConfigs(b *Broker, _ context.Context, _ *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		switch rr.ResourceType {
		case resourceTopic:
			b.describeTopicConfigs(req, rr, &sr)
		case resourceBroker:
			b.describeBrokerConfigs(rr, &sr)
		default:
			sr.ErrorCode = kerr.InvalidRequest.Code
			m := "brokerd describes topic and broker configs only"
			sr.ErrorMessage = &m
		}
		b.countError("DescribeConfigs", sr.ErrorCode)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}
