package broker

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/metadata"
	"logpipe/brokerd/wire"
)

// IncrementalAlterConfigs v0–v1: SET, DELETE, and for list settings
// (cleanup.policy) APPEND and SUBTRACT, on topic configs. A DELETE of a
// setting the topic does not override removes nothing and succeeds, as in
// Kafka, whatever its name; on a broker, where brokerd keeps no dynamic
// settings, DELETEs alone succeed the same way (kafka-reassign-partitions
// --verify clears replication throttles so) and anything else is refused.
func init() { register(44, 0, 1, handleIncrementalAlterConfigs) }

func handleIncrementalAlterConfigs(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		alterBroker := func() error {
			for _, c := range rr.Configs {
				if c.Op != kmsg.IncrementalAlterConfigOpDelete {
					return errNoDynamicBrokerConfigs
				}
			}
			return nil
		}
		sr.ErrorCode, sr.ErrorMessage = b.alterResource(ctx, c, "IncrementalAlterConfigs", rr.ResourceType, rr.ResourceName, func() error {
			return b.incrementalAlter(ctx, rr, req.ValidateOnly)
		}, alterBroker)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

func (b *Broker) incrementalAlter(ctx context.Context, rr kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) error {
	t := b.meta.Image().Topic(rr.ResourceName)
	if t == nil {
		return newAPIError(kerr.UnknownTopicOrPartition, "topic %q does not exist", rr.ResourceName)
	}
	ac := metadata.AlterConfigs{Topic: rr.ResourceName, Set: map[string]string{}}
	for _, c := range rr.Configs {
		if _, set := t.Configs[c.Name]; c.Op == kmsg.IncrementalAlterConfigOpDelete && !set {
			continue // nothing to delete
		}
		d := topicConfigDefByName(c.Name)
		if d == nil {
			return newAPIError(kerr.InvalidConfig, "unknown topic config %q", c.Name)
		}
		val := ""
		if c.Value != nil {
			val = *c.Value
		}
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			ac.Set[c.Name] = val
		case kmsg.IncrementalAlterConfigOpDelete:
			ac.Delete = append(ac.Delete, c.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if d.typ != 7 {
				return newAPIError(kerr.InvalidConfig, "%s is not a list; APPEND and SUBTRACT apply to lists", c.Name)
			}
			cur, _ := b.effectiveTopicConfig(t.Configs, c.Name)
			items := strings.Split(cur, ",")
			for _, v := range strings.Split(val, ",") {
				i := slices.Index(items, v)
				if c.Op == kmsg.IncrementalAlterConfigOpAppend && i < 0 {
					items = append(items, v)
				} else if c.Op == kmsg.IncrementalAlterConfigOpSubtract && i >= 0 {
					items = slices.Delete(items, i, i+1)
				}
			}
			ac.Set[c.Name] = strings.Join(items, ",")
		default:
			return newAPIError(kerr.InvalidRequest, "unknown operation %d on %s", c.Op, c.Name)
		}
	}
	return b.alterTopicConfigs(ctx, ac, validateOnly)
}

// errNoDynamicBrokerConfigs refuses changes to broker settings at run time.
var errNoDynamicBrokerConfigs = newAPIError(kerr.InvalidRequest, "brokerd has no dynamic broker configs; change brokerd.yml and restart")

// alterResource runs alterTopic for a topic resource of an AlterConfigs or
// IncrementalAlterConfigs request and alterBroker (nil: refused) for a
// broker, and refuses other resources; it returns the resource's error
// code and message, counting errors under api. A topic needs
// ALTER_CONFIGS on it, a broker ALTER_CONFIGS on the cluster.
func (b *Broker) alterResource(ctx context.Context, c *wire.Conn, api string, typ kmsg.ConfigResourceType, name string, alterTopic, alterBroker func() error) (int16, *string) {
	var err error
	switch {
	case typ == resourceTopic && !b.allowed(ctx, c, opAlterConfigs, resTopic, name):
		err = newAPIError(kerr.TopicAuthorizationFailed, "altering a topic's configs needs ALTER_CONFIGS on it")
	case typ == resourceBroker && !b.allowedCluster(ctx, c, opAlterConfigs):
		err = newAPIError(kerr.ClusterAuthorizationFailed, "altering a broker's configs needs ALTER_CONFIGS on the cluster")
	case typ == resourceTopic:
		err = alterTopic()
	case typ == resourceBroker && alterBroker != nil:
		err = alterBroker()
	case typ == resourceBroker:
		err = errNoDynamicBrokerConfigs
	default:
		err = newAPIError(kerr.InvalidRequest, "brokerd alters topic configs only")
	}
	code, msg := codeOf(err)
	b.countError(api, code)
	return code, msg
}
