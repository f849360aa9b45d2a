package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/controller"
	"logpipe/brokerd/metadata"
	"logpipe/brokerd/wire"
)

// CreatePartitions v0–v3: raise a topic's partition count, with or
// without a manual assignment of the new partitions; validate_only checks
// without changing anything. Each topic needs ALTER on it
// (TOPIC_AUTHORIZATION_FAILED).
func init() { register(37, 0, 3, handleCreatePartitions) }

func handleCreatePartitions(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		var err error = newAPIError(kerr.TopicAuthorizationFailed, "adding partitions needs ALTER on the topic")
		if b.allowed(ctx, c, opAlter, resTopic, rt.Topic) {
			err = b.createPartitions(ctx, rt, req.ValidateOnly)
		}
		if err != nil {
			st.ErrorCode, st.ErrorMessage = codeOf(err)
			b.countError("CreatePartitions", st.ErrorCode)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func (b *Broker) createPartitions(ctx context.Context, rt kmsg.CreatePartitionsRequestTopic, validateOnly bool) error {
	img := b.meta.Image()
	t := img.Topic(rt.Topic)
	if t == nil {
		return newAPIError(kerr.UnknownTopicOrPartition, "topic %q does not exist", rt.Topic)
	}
	have := int32(len(t.Partitions))
	if rt.Count <= have {
		return newAPIError(kerr.InvalidPartitions, "topic %q has %d partitions; the new count %d must be larger", rt.Topic, have, rt.Count)
	}
	add := rt.Count - have
	rf := int16(len(t.Partitions[0].Replicas))
	var assign [][]int32
	if rt.Assignment != nil {
		if int32(len(rt.Assignment)) != add {
			return newAPIError(kerr.InvalidReplicaAssignment, "%d assignments given for %d new partitions", len(rt.Assignment), add)
		}
		for i, a := range rt.Assignment {
			if len(a.Replicas) != int(rf) {
				return newAPIError(kerr.InvalidReplicaAssignment, "new partition %d has %d replicas, the topic has %d", have+int32(i), len(a.Replicas), rf)
			}
			seen := map[int32]bool{}
			for _, r := range a.Replicas {
				if _, ok := img.Brokers[r]; !ok || seen[r] {
					return newAPIError(kerr.InvalidReplicaAssignment, "broker %d is unknown or repeated", r)
				}
				seen[r] = true
			}
			assign = append(assign, append([]int32(nil), a.Replicas...))
		}
	} else {
		brokers := liveBrokers(img)
		if int(rf) > len(brokers) {
			return newAPIError(kerr.InvalidReplicationFactor, "replication factor %d is larger than the %d available brokers", rf, len(brokers))
		}
		assign = controller.Place(brokers, rt.Topic, have, add, int(rf))
	}
	if validateOnly {
		return nil
	}
	if err := b.propose(ctx, metadata.Record{AddPartitions: &metadata.AddPartitions{Topic: rt.Topic, Partitions: controller.Partitions(assign)}}); err != nil {
		return err
	}
	b.log.Info("added partitions", "topic", rt.Topic, "from", have, "to", rt.Count)
	return nil
}
