package broker

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/group"
	"logpipe/brokerd/wire"
)

// OffsetFetch v0–v8: named partitions, or (v2+, null topics) every
// partition the group has an offset for; v8 asks for several groups at
// once. Partitions without a commit answer offset -1. RequireStable (v7+)
// needs nothing: brokerd has no transactional commits to wait for. Each
// group needs READ (GROUP_AUTHORIZATION_FAILED), each topic DESCRIBE:
// named topics answer TOPIC_AUTHORIZATION_FAILED, and when every
// partition is asked for, those topics are left out.
func init() { register(9, 0, 8, handleOffsetFetch) }

func handleOffsetFetch(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetFetchRequest)
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			var topics []kmsg.OffsetFetchRequestTopic
			if rg.Topics != nil {
				topics = make([]kmsg.OffsetFetchRequestTopic, 0, len(rg.Topics))
				for _, t := range rg.Topics {
					topics = append(topics, kmsg.OffsetFetchRequestTopic{Topic: t.Topic, Partitions: t.Partitions})
				}
			}
			out, code, err := b.fetchOffsets(ctx, c, rg.Group, topics)
			if err != nil {
				return nil, err
			}
			sg := kmsg.NewOffsetFetchResponseGroup()
			sg.Group = rg.Group
			sg.ErrorCode = code
			sg.Topics = out
			b.countError("OffsetFetch", code)
			resp.Groups = append(resp.Groups, sg)
		}
		return resp, nil
	}
	topics := req.Topics
	if req.Version < 2 && topics == nil {
		// Before v2 the list is not nullable: empty asks for nothing.
		topics = []kmsg.OffsetFetchRequestTopic{}
	}
	out, code, err := b.fetchOffsets(ctx, c, req.Group, topics)
	if err != nil {
		return nil, err
	}
	b.countError("OffsetFetch", code)
	if code != 0 {
		if req.Version >= 2 {
			resp.ErrorCode = code
			return resp, nil
		}
		// v0 and v1 carry errors per partition only.
		for _, rt := range topics {
			st := kmsg.NewOffsetFetchResponseTopic()
			st.Topic = rt.Topic
			for _, p := range rt.Partitions {
				sp := kmsg.NewOffsetFetchResponseTopicPartition()
				sp.Partition, sp.Offset, sp.ErrorCode = p, -1, code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil
	}
	for _, t := range out {
		st := kmsg.NewOffsetFetchResponseTopic()
		st.Topic = t.Topic
		for _, p := range t.Partitions {
			sp := kmsg.NewOffsetFetchResponseTopicPartition()
			sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata, sp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// fetchOffsets is the coordinator's FetchOffsets for what the sender may
// see: code GROUP_AUTHORIZATION_FAILED without READ on the group; topics
// it may not DESCRIBE answer TOPIC_AUTHORIZATION_FAILED when named and
// are left out when topics is nil (every partition with an offset).
func (b *Broker) fetchOffsets(ctx context.Context, c *wire.Conn, groupID string, topics []kmsg.OffsetFetchRequestTopic) ([]kmsg.OffsetFetchResponseGroupTopic, int16, error) {
	if !b.allowed(ctx, c, opRead, resGroup, groupID) {
		return nil, kerr.GroupAuthorizationFailed.Code, nil
	}
	if topics == nil {
		out, code, err := b.groups.coord.FetchOffsets(ctx, groupID, nil)
		out = slices.DeleteFunc(out, func(t kmsg.OffsetFetchResponseGroupTopic) bool {
			return !b.allowed(ctx, c, opDescribe, resTopic, t.Topic)
		})
		return out, code, err
	}
	allowed := make([]kmsg.OffsetFetchRequestTopic, 0, len(topics))
	var denied []kmsg.OffsetFetchRequestTopic
	for _, t := range topics {
		if b.allowed(ctx, c, opDescribe, resTopic, t.Topic) {
			allowed = append(allowed, t)
		} else {
			denied = append(denied, t)
		}
	}
	out, code, err := b.groups.coord.FetchOffsets(ctx, groupID, allowed)
	if code != 0 || err != nil {
		return out, code, err
	}
	refused := group.FetchOffsetsUnknown(denied)
	for i := range refused {
		for j := range refused[i].Partitions {
			refused[i].Partitions[j].ErrorCode = kerr.TopicAuthorizationFailed.Code
		}
	}
	return append(out, refused...), 0, nil
}
