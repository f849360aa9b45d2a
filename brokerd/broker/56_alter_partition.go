package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/controller"
	"logpipe/brokerd/metadata"
	"logpipe/brokerd/wire"
)

// AlterPartition v0–v3, on the controller listener: a partition's leader
// proposes a new ISR, based on the partition epoch it knows; the
// controller commits it or says why not.
// It needs CLUSTER_ACTION on the cluster (CLUSTER_AUTHORIZATION_FAILED).
func init() { register(56, 0, 3, handleAlterPartition) }

func handleAlterPartition(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.AlterPartitionRequest)
	resp := req.ResponseKind().(*kmsg.AlterPartitionResponse)
	if !b.allowedCluster(ctx, c, opClusterAction) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil
	}
	ctl, cerr := b.activeController()
	if cerr == nil && !b.brokerEpochIs(req.BrokerID, req.BrokerEpoch) {
		cerr = controller.ErrStaleBrokerEpoch
	}
	if cerr != nil {
		resp.ErrorCode = controlErrorCode(cerr)
		return resp, nil
	}
	for _, rt := range req.Topics {
		name := rt.Topic
		if req.Version >= 2 {
			if t := b.meta.Image().TopicByID(metadata.UUID(rt.TopicID)); t != nil {
				name = t.Name
			}
		}
		st := kmsg.NewAlterPartitionResponseTopic()
		st.Topic, st.TopidID = rt.Topic, rt.TopicID // kmsg spells it TopidID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionResponseTopicPartition()
			sp.Partition = rp.Partition
			isr := rp.NewISR
			if req.Version >= 3 {
				isr = isr[:0:0]
				for _, e := range rp.NewEpochISR {
					isr = append(isr, e.BrokerID)
				}
			}
			var p metadata.Partition
			var err error
			if name == "" {
				err = controller.ErrUnknownPartition
			} else {
				p, err = ctl.AlterPartition(ctx, controller.PartitionUpdate{Topic: name, Partition: rp.Partition,
					Leader: req.BrokerID, LeaderEpoch: rp.LeaderEpoch, Epoch: rp.PartitionEpoch, ISR: isr})
			}
			sp.ErrorCode = controlErrorCode(err)
			if sp.ErrorCode == kerr.UnknownTopicOrPartition.Code && req.Version >= 2 {
				sp.ErrorCode = kerr.UnknownTopicID.Code
			}
			sp.LeaderID, sp.LeaderEpoch, sp.ISR, sp.PartitionEpoch = p.Leader, p.LeaderEpoch, p.ISR, p.Epoch
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

// brokerEpochIs reports whether broker id is registered with epoch.
func (b *Broker) brokerEpochIs(id int32, epoch int64) bool {
	br, ok := b.meta.Image().Brokers[id]
	return ok && br.Epoch == epoch
}
