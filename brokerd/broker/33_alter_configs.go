package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/metadata"
	"logpipe/brokerd/wire"
)

// AlterConfigs v0–v2 (the legacy API: the given set replaces all of a
// topic's overrides). Broker settings are static and refused.
func init() { register(33, 0, 2, handleAlterConfigs) }

func handleAlterConfigs(b *Broker, ctx context.Context, _ *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		var err error
		switch rr.ResourceType {
		case resourceTopic:
			ac := metadata.AlterConfigs{Topic: rr.ResourceName, Set: map[string]string{}, Replace: true}
			for _, c := range rr.Configs {
				if c.Value != nil {
					ac.Set[c.Name] = *c.Value
				}
			}
			err = b.alterTopicConfigs(ctx, ac, req.ValidateOnly)
		case resourceBroker:
			err = newAPIError(kerr.InvalidRequest, "brokerd has no dynamic broker configs; change brokerd.yml and restart")
		default:
			err = newAPIError(kerr.InvalidRequest, "brokerd alters topic configs only")
		}
		if err != nil {
			sr.ErrorCode, sr.ErrorMessage = codeOf(err)
			b.countError("AlterConfigs", sr.ErrorCode)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}
