package broker

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
)

// DescribeClientQuotas v0–v1 (KIP-546). brokerd enforces no client
// quotas, so it holds none and every filter matches no entry; it is served
// so that tools that ask for quotas with other things (kafka-configs
// --describe --entity-type users) work. As on Kafka it needs
// DESCRIBE_CONFIGS on the cluster. AlterClientQuotas is not served: a
// quota that would not be enforced is not accepted either.
func init() { register(48, 0, 1, handleDescribeClientQuotas) }

// quotaEntityTypes are the entity types Kafka's client quotas name.
var quotaEntityTypes = []string{"user", "client-id", "ip"}

func handleDescribeClientQuotas(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeClientQuotasRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
	fail := func(code int16, msg string) (kmsg.Response, error) {
		resp.ErrorCode, resp.ErrorMessage = code, &msg
		b.countError("DescribeClientQuotas", code)
		return resp, nil
	}
	if !b.allowedCluster(ctx, c, opDescribeConfigs) {
		return fail(kerr.ClusterAuthorizationFailed.Code, "DESCRIBE_CONFIGS on the cluster is needed to describe client quotas")
	}
	var seen []string
	for _, f := range req.Components {
		switch {
		case !slices.Contains(quotaEntityTypes, f.EntityType):
			return fail(kerr.InvalidRequest.Code, "unknown quota entity type "+f.EntityType)
		case slices.Contains(seen, f.EntityType):
			return fail(kerr.InvalidRequest.Code, "entity type "+f.EntityType+" is filtered twice")
		case f.MatchType == kmsg.QuotasMatchTypeExact && f.Match == nil:
			return fail(kerr.InvalidRequest.Code, "an exact match on "+f.EntityType+" names no entity")
		case f.MatchType < kmsg.QuotasMatchTypeExact || f.MatchType > kmsg.QuotasMatchTypeAny:
			return fail(kerr.InvalidRequest.Code, "unknown match type")
		}
		seen = append(seen, f.EntityType)
	}
	resp.Entries = []kmsg.DescribeClientQuotasResponseEntry{}
	return resp, nil
}
