package broker

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/controller"
	"logpipe/brokerd/wire"
)

// AlterPartitionReassignments v0–v1: start moving partitions to other
// replicas, or (replicas null) cancel a move in progress. The active
// controller carries it out (package controller, reassign.go); other
// nodes forward the request to it. v1's AllowReplicationFactorChange
// false refuses a target of another length (KIP-860). It needs ALTER on
// the cluster (CLUSTER_AUTHORIZATION_FAILED).
func init() { register(45, 0, 1, handleAlterPartitionReassignments) }

func handleAlterPartitionReassignments(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	resp.AllowReplicationFactorChange = req.AllowReplicationFactorChange
	if !b.allowedCluster(ctx, c, opAlter) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		b.countError("AlterPartitionReassignments", resp.ErrorCode)
		return resp, nil
	}
	ctl, err := b.activeController()
	if err != nil {
		resp.ErrorCode, resp.ErrorMessage = codeOf(err)
		return resp, nil
	}
	sameRF := req.Version >= 1 && !req.AllowReplicationFactorChange
	for _, rt := range req.Topics {
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = rp.Partition
			if err := ctl.Reassign(ctx, rt.Topic, rp.Partition, rp.Replicas, sameRF); err != nil {
				sp.ErrorCode = reassignErrorCode(err)
				m := err.Error()
				sp.ErrorMessage = &m
				b.countError("AlterPartitionReassignments", sp.ErrorCode)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}

func reassignErrorCode(err error) int16 {
	switch {
	case errors.Is(err, controller.ErrInvalidReplicaAssignment):
		return kerr.InvalidReplicaAssignment.Code
	case errors.Is(err, controller.ErrInvalidReplicationFactor):
		return kerr.InvalidReplicationFactor.Code
	case errors.Is(err, controller.ErrNoReassignment):
		return kerr.NoReassignmentInProgress.Code
	}
	return controlErrorCode(err)
}
