package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
)

// OffsetFetch v0–v8: named partitions, or (v2+, null topics) every
// partition the group has an offset for; v8 asks for several groups at
// once. Partitions without a commit answer offset -1. RequireStable (v7+)
// needs nothing: brokerd has no transactional commits to wait for.
func init() { register(9, 0, 8, handleOffsetFetch) }

func handleOffsetFetch(b *Broker, ctx context.Context, _ *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
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
			out, code, err := b.groups.coord.FetchOffsets(ctx, rg.Group, topics)
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
	out, code, err := b.groups.coord.FetchOffsets(ctx, req.Group, topics)
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
