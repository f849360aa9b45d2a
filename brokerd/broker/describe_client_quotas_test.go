package broker_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/broker"
	"logpipe/brokerd/wire"
)

// TestDescribeClientQuotas asks a node with authorization on for client
// quotas: a super user gets no entries (brokerd holds no quotas), a user
// without DESCRIBE_CONFIGS on the cluster is refused, a malformed filter
// is refused, and AlterClientQuotas is not offered.
func TestDescribeClientQuotas(t *testing.T) {
	named := func(b *broker.Broker) wire.Handler { return namedClients{b} }
	tb := startBrokerServing(t, t.TempDir(), "", authzConfig, named)
	ctx := ctxT(t)
	describe := func(who string, comps ...kmsg.DescribeClientQuotasRequestComponent) *kmsg.DescribeClientQuotasResponse {
		t.Helper()
		cl, _ := as(t, who, tb.addr)
		req := kmsg.NewPtrDescribeClientQuotasRequest()
		req.Components = comps
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatalf("%s describing client quotas: %v", who, err)
		}
		return resp
	}
	user := func(typ string, match kmsg.QuotasMatchType, name string) kmsg.DescribeClientQuotasRequestComponent {
		c := kmsg.NewDescribeClientQuotasRequestComponent()
		c.EntityType, c.MatchType = typ, match
		if name != "" {
			c.Match = &name
		}
		return c
	}

	resp := describe("admin", user("user", kmsg.QuotasMatchTypeExact, "alice"))
	if resp.ErrorCode != 0 || resp.Entries == nil || len(resp.Entries) != 0 {
		t.Fatalf("admin describing alice's quotas: got code %s, entries %v; want no error and an empty list", kerr.ErrorForCode(resp.ErrorCode), resp.Entries)
	}
	if resp := describe("bob", user("user", kmsg.QuotasMatchTypeAny, "")); resp.ErrorCode != kerr.ClusterAuthorizationFailed.Code {
		t.Fatalf("bob describing quotas: got %s, want CLUSTER_AUTHORIZATION_FAILED", kerr.ErrorForCode(resp.ErrorCode))
	}
	for _, bad := range [][]kmsg.DescribeClientQuotasRequestComponent{
		{user("group", kmsg.QuotasMatchTypeAny, "")},
		{user("user", kmsg.QuotasMatchTypeAny, ""), user("user", kmsg.QuotasMatchTypeDefault, "")},
		{user("client-id", kmsg.QuotasMatchTypeExact, "")},
	} {
		if resp := describe("admin", bad...); resp.ErrorCode != kerr.InvalidRequest.Code || resp.ErrorMessage == nil {
			t.Fatalf("admin describing quotas with filter %+v: got %s, want INVALID_REQUEST with a message", bad, kerr.ErrorForCode(resp.ErrorCode))
		}
	}

	cl, _ := as(t, "admin", tb.addr)
	versions, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range versions.ApiKeys {
		if k.ApiKey == 49 {
			t.Fatalf("ApiVersions offers AlterClientQuotas v%d–v%d; want it not offered (quotas are not enforced)", k.MinVersion, k.MaxVersion)
		}
	}
}
