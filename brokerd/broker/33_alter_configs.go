package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/metadata"
	"logpipe/brokerd/wire"
)

// AlterConfigs v0–v2 (the legacy API: the given set replaces all of a
// topic's overrides). Broker settings are static and refused.
func init() { register(33, 0, 2, handleAlterConfigs) }

func handleAlterConfigs(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		sr.ErrorCode, sr.ErrorMessage = b.alterResource(ctx, c, "AlterConfigs", rr.ResourceType, rr.ResourceName, func() error {
			ac := metadata.AlterConfigs{Topic: rr.ResourceName, Set: map[string]string{}, Replace: true}
			for _, c := range rr.Configs {
				if c.Value != nil {
					ac.Set[c.Name] = *c.Value
				}
			}
			return b.alterTopicConfigs(ctx, ac, req.ValidateOnly)
		}, nil)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}
