package broker

import (
	"context"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/quorum"
	"logpipe/brokerd/wire"
)

// DescribeQuorum v0–v2 for __cluster_metadata-0, answered by the active
// controller (other nodes forward it), as kafka-metadata-quorum.sh asks:
// the leader, its Raft term as the leader epoch, the commit index as the
// high watermark, and the members. The leader's own log end offset is its
// last Raft index; another member's is how far it said it applied the
// metadata in its last heartbeat (a lower bound), with that heartbeat's
// time as its last fetch, and the time of its last heartbeat that found
// it caught up; -1 where nothing was heard since this node took over. It
// needs DESCRIBE on the cluster (CLUSTER_AUTHORIZATION_FAILED).
func init() { register(55, 0, 2, handleDescribeQuorum) }

// clusterMetadataTopic is the name Kafka gives the metadata log.
const clusterMetadataTopic = "__cluster_metadata"

func handleDescribeQuorum(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeQuorumRequest)
	resp := req.ResponseKind().(*kmsg.DescribeQuorumResponse)
	if !b.allowedCluster(ctx, c, opDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		b.countError("DescribeQuorum", resp.ErrorCode)
		return resp, nil
	}
	ctl, err := b.activeController()
	if err != nil {
		resp.ErrorCode = kerr.NotLeaderForPartition.Code
		return resp, nil
	}
	members := b.meta.Members()
	st := b.meta.Status()
	for _, rt := range req.Topics {
		t := kmsg.NewDescribeQuorumResponseTopic()
		t.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			p := kmsg.NewDescribeQuorumResponseTopicPartition()
			p.Partition = rp.Partition
			if rt.Topic != clusterMetadataTopic || rp.Partition != 0 {
				p.ErrorCode = kerr.UnknownTopicOrPartition.Code
				t.Partitions = append(t.Partitions, p)
				continue
			}
			p.LeaderID, p.LeaderEpoch, p.HighWatermark = b.cfg.NodeID, int32(st.Term), int64(st.CommitIndex)
			now := b.now().UnixMilli()
			for _, m := range members {
				rs := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
				rs.ReplicaID, rs.LogEndOffset, rs.LastFetchTimestamp, rs.LastCaughtUpTimestamp = m.ID, -1, -1, -1
				if m.ID == b.cfg.NodeID {
					rs.LogEndOffset, rs.LastFetchTimestamp, rs.LastCaughtUpTimestamp = int64(b.meta.LastIndex()), now, now
				} else if pr, ok := ctl.Progress(m.ID); ok {
					rs.LogEndOffset, rs.LastFetchTimestamp = pr.Offset, pr.Heard.UnixMilli()
					if !pr.CaughtUp.IsZero() {
						rs.LastCaughtUpTimestamp = pr.CaughtUp.UnixMilli()
					}
				}
				if m.Voter {
					p.CurrentVoters = append(p.CurrentVoters, rs)
				} else {
					p.Observers = append(p.Observers, rs)
				}
			}
			t.Partitions = append(t.Partitions, p)
		}
		resp.Topics = append(resp.Topics, t)
	}
	if req.Version >= 2 {
		resp.Nodes = quorumNodes(b.cfg.controllerListener(), members)
	}
	return resp, nil
}

// quorumNodes lists the members' Raft endpoints (DescribeQuorum v2).
func quorumNodes(listener string, members []quorum.Member) []kmsg.DescribeQuorumResponseNode {
	var out []kmsg.DescribeQuorumResponseNode
	for _, m := range members {
		host, port, err := net.SplitHostPort(m.Addr)
		n, perr := strconv.ParseUint(port, 10, 16)
		if err != nil || perr != nil {
			continue
		}
		node := kmsg.NewDescribeQuorumResponseNode()
		node.NodeID = m.ID
		l := kmsg.NewDescribeQuorumResponseNodeListener()
		l.Name, l.Host, l.Port = listener, host, uint16(n)
		node.Listeners = append(node.Listeners, l)
		out = append(out, node)
	}
	return out
}
