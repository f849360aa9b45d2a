package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/storage"
	"logpipe/brokerd/wire"
)

// OffsetForLeaderEpoch v0–v4 (KIP-101, KIP-320): for each partition, the
// largest leader epoch at or below the one asked for that this replica's
// log knows, and the offset where that epoch ended (the log end offset for
// the current epoch). Consumers use it to find out whether their position
// was truncated after a leader change; clients that see brokers serve v2+
// also trust the leader epochs of Metadata. Only the leader answers, except
// to the debugging replica id -2, as Kafka does. A consumer needs DESCRIBE
// on the topic, a replica (replica id set) CLUSTER_ACTION on the cluster.
func init() { register(23, 0, 4, handleOffsetForLeaderEpoch) }

// debuggingReplicaID is the replica id of a tool that may ask any replica.
const debuggingReplicaID = -2

func handleOffsetForLeaderEpoch(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	anyReplica := req.Version >= 3 && req.ReplicaID == debuggingReplicaID
	replica := req.Version >= 3 && req.ReplicaID >= 0
	clusterOK := replica && b.allowedCluster(ctx, c, opClusterAction)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = storage.UndefinedEpoch, storage.UndefinedEpochOffset
			p := b.partition(rt.Topic, rp.Partition)
			switch {
			case replica && !clusterOK, !replica && !b.allowed(ctx, c, opDescribe, resTopic, rt.Topic):
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case p == nil:
				sp.ErrorCode = b.absent(rt.Topic, rp.Partition)
			case !anyReplica && !p.leads.Load():
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
			case req.Version >= 2 && rp.CurrentLeaderEpoch >= 0 && rp.CurrentLeaderEpoch < p.leaderEpoch.Load():
				sp.ErrorCode = kerr.FencedLeaderEpoch.Code
			case req.Version >= 2 && rp.CurrentLeaderEpoch > p.leaderEpoch.Load():
				sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			default:
				sp.LeaderEpoch, sp.EndOffset = p.log.EndOffsetForEpoch(rp.LeaderEpoch)
			}
			b.countError("OffsetForLeaderEpoch", sp.ErrorCode)
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
