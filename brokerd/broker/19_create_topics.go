package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
)

// CreateTopics v0–v7, with per-topic configs, manual replica assignments
// and validate_only. Each topic needs CREATE on the cluster or on the
// topic (TOPIC_AUTHORIZATION_FAILED); a created topic's configs are shown
// only with DESCRIBE_CONFIGS on it (else its config error is
// TOPIC_AUTHORIZATION_FAILED). A topic created whose partition logs this
// node could not open (out of file descriptors) is answered
// KAFKA_STORAGE_ERROR, saying so: it exists, and the logs are retried.
func init() { register(19, 0, 7, handleCreateTopics) }

func handleCreateTopics(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	clusterCreate := b.allowedCluster(ctx, c, opCreate)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		var err error
		if seen[rt.Topic] > 1 {
			err = newAPIError(kerr.InvalidRequest, "topic %q appears more than once in the request", rt.Topic)
		} else if !clusterCreate && !b.allowed(ctx, c, opCreate, resTopic, rt.Topic) {
			err = newAPIError(kerr.TopicAuthorizationFailed, "creating a topic needs CREATE on the cluster or on the topic")
		} else {
			spec := topicSpec{name: rt.Topic, partitions: rt.NumPartitions, rf: rt.ReplicationFactor, configs: map[string]string{}}
			if len(rt.ReplicaAssignment) > 0 {
				spec.assignment = map[int32][]int32{}
				for _, a := range rt.ReplicaAssignment {
					spec.assignment[a.Partition] = a.Replicas
				}
			}
			for _, c := range rt.Configs {
				if c.Value != nil {
					spec.configs[c.Name] = *c.Value
				}
			}
			if len(spec.configs) == 0 {
				spec.configs = nil
			}
			t, cerr := b.createTopic(ctx, spec, req.ValidateOnly)
			err = cerr
			if err == nil && !req.ValidateOnly {
				err = b.unopenedOf(rt.Topic)
			}
			if err == nil {
				st.TopicID = t.ID
				st.NumPartitions = int32(len(t.Partitions))
				st.ReplicationFactor = int16(len(t.Partitions[0].Replicas))
				describable := b.allowed(ctx, c, opDescribeConfigs, resTopic, rt.Topic)
				if !describable {
					st.ConfigErrorCode = kerr.TopicAuthorizationFailed.Code
				}
				for _, d := range topicConfigs {
					if !describable {
						break
					}
					v, override := b.effectiveTopicConfig(t.Configs, d.name)
					c := kmsg.NewCreateTopicsResponseTopicConfig()
					c.Name = d.name
					c.Value = &v
					c.Source = 5 // DEFAULT_CONFIG
					if override {
						c.Source = 1 // DYNAMIC_TOPIC_CONFIG
					}
					st.Configs = append(st.Configs, c)
				}
			}
		}
		if err != nil {
			st.ErrorCode, st.ErrorMessage = codeOf(err)
			b.countError("CreateTopics", st.ErrorCode)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
