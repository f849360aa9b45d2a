package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
)

// DescribeConfigs v0–v4 for topics (every honoured setting, with its
// source and, on request, synonyms) and for this broker (read-only static
// settings). A topic needs DESCRIBE_CONFIGS on it
// (TOPIC_AUTHORIZATION_FAILED), a broker DESCRIBE_CONFIGS on the cluster
// (CLUSTER_AUTHORIZATION_FAILED).
func init() { register(32, 0, 4, handleDescribeConfigs) }

func handleDescribeConfigs(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		switch rr.ResourceType {
		case resourceTopic:
			if !b.allowed(ctx, c, opDescribeConfigs, resTopic, rr.ResourceName) {
				sr.ErrorCode = kerr.TopicAuthorizationFailed.Code
				break
			}
			b.describeTopicConfigs(req, rr, &sr)
		case resourceBroker:
			if !b.allowedCluster(ctx, c, opDescribeConfigs) {
				sr.ErrorCode = kerr.ClusterAuthorizationFailed.Code
				break
			}
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
