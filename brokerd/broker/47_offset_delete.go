package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/group"
	"logpipe/brokerd/wire"
)

// OffsetDelete v0. An empty group may drop any offsets; a consumer group
// with members only those of topics none of its members subscribes to
// (GROUP_SUBSCRIBED_TO_TOPIC otherwise). It needs DELETE on the group
// (GROUP_AUTHORIZATION_FAILED) and READ on each topic
// (TOPIC_AUTHORIZATION_FAILED for its partitions).
func init() { register(47, 0, 0, handleOffsetDelete) }

func handleOffsetDelete(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetDeleteRequest)
	if !b.allowed(ctx, c, opDelete, resGroup, req.Group) {
		b.countError("OffsetDelete", kerr.GroupAuthorizationFailed.Code)
		return group.ErrorResponse(req, kerr.GroupAuthorizationFailed.Code), nil
	}
	allowed := *req
	allowed.Topics = nil
	var denied []kmsg.OffsetDeleteRequestTopic
	for _, rt := range req.Topics {
		if b.allowed(ctx, c, opRead, resTopic, rt.Topic) {
			allowed.Topics = append(allowed.Topics, rt)
		} else {
			denied = append(denied, rt)
		}
	}
	resp, err := b.groups.coord.DeleteOffsets(ctx, &allowed)
	if err != nil {
		return nil, err
	}
	for _, rt := range denied {
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, kerr.TopicAuthorizationFailed.Code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	b.countError("OffsetDelete", resp.ErrorCode)
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			b.countError("OffsetDelete", p.ErrorCode)
		}
	}
	return resp, nil
}
