package broker

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
)

// ListPartitionReassignments v0: the reassignments in progress, from the
// replicated metadata (every node answers alike). Topics null lists all;
// partitions that are not being moved, and unknown ones, are left out,
// as Kafka does. It needs DESCRIBE on the cluster
// (CLUSTER_AUTHORIZATION_FAILED).
func init() { register(46, 0, 0, handleListPartitionReassignments) }

func handleListPartitionReassignments(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ListPartitionReassignmentsRequest)
	resp := req.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	if !b.allowedCluster(ctx, c, opDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		b.countError("ListPartitionReassignments", resp.ErrorCode)
		return resp, nil
	}
	img := b.meta.Image()
	add := func(name string, parts []int32) {
		t := img.Topic(name)
		if t == nil {
			return
		}
		st := kmsg.NewListPartitionReassignmentsResponseTopic()
		st.Topic = name
		for i, p := range t.Partitions {
			if !p.Reassigning() || parts != nil && !slices.Contains(parts, int32(i)) {
				continue
			}
			sp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
			sp.Partition = int32(i)
			sp.Replicas, sp.AddingReplicas, sp.RemovingReplicas = slices.Clone(p.Replicas), slices.Clone(p.Adding), slices.Clone(p.Removing)
			st.Partitions = append(st.Partitions, sp)
		}
		if len(st.Partitions) > 0 {
			resp.Topics = append(resp.Topics, st)
		}
	}
	if req.Topics == nil {
		for _, name := range img.TopicNames() {
			add(name, nil)
		}
	}
	for _, rt := range req.Topics {
		add(rt.Topic, rt.Partitions)
	}
	return resp, nil
}
