package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"logpipe/brokerd/metadata"
)

// Reassignment moves a partition to other replicas the way Kafka's
// controller does (AlterPartitionReassignments): the replicas become the
// target followed by the replicas being removed, the new ones (Adding)
// join as followers and catch up, and once every target replica is in the
// ISR the partition keeps the target alone; its leader moves if it was one
// of the removed. Every change of the replica set starts a new leader
// epoch, so the leader takes up the new set of followers.

// Errors of reassignments.
var (
	ErrInvalidReplicaAssignment = errors.New("controller: invalid replica assignment")
	ErrInvalidReplicationFactor = errors.New("controller: the reassignment changes the replication factor")
	ErrNoReassignment           = errors.New("controller: no reassignment in progress")
)

// Reassign starts moving a partition to target, or, with target nil,
// cancels the reassignment in progress (the partition goes back to the
// replicas it had). sameRF refuses a target of another length than the
// current replicas (AlterPartitionReassignments v1 without
// AllowReplicationFactorChange).
func (c *Controller) Reassign(ctx context.Context, topic string, part int32, target []int32, sameRF bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	img := c.store.Image()
	t := img.Topic(topic)
	if t == nil || part < 0 || int(part) >= len(t.Partitions) {
		return fmt.Errorf("%w: %s-%d", ErrUnknownPartition, topic, part)
	}
	p := t.Partitions[part]
	var n metadata.Partition
	if target == nil {
		if !p.Reassigning() {
			return fmt.Errorf("%w for %s-%d", ErrNoReassignment, topic, part)
		}
		var err error
		if n, err = cancelled(img, p, uncleanFor(t, c.cfg.UncleanLeaderElection)); err != nil {
			return fmt.Errorf("%s-%d: %w", topic, part, err)
		}
	} else {
		if err := checkTarget(img, p, target, sameRF); err != nil {
			return fmt.Errorf("%s-%d: %w", topic, part, err)
		}
		n = reassigned(p, target)
		if done, ok := completed(img, n); ok {
			n = done
		}
	}
	if err := c.store.Propose(ctx, change{topic, part, n}.record()); err != nil {
		return err
	}
	c.cfg.Log.Info("partition reassignment", "topic", topic, "partition", part, "replicas", n.Replicas, "adding", n.Adding, "removing", n.Removing, "cancel", target == nil)
	return nil
}

func checkTarget(img *metadata.Image, p metadata.Partition, target []int32, sameRF bool) error {
	if len(target) == 0 {
		return fmt.Errorf("%w: no replicas", ErrInvalidReplicaAssignment)
	}
	if sameRF && len(target) != len(p.Target()) {
		return fmt.Errorf("%w: from %d to %d replicas", ErrInvalidReplicationFactor, len(p.Target()), len(target))
	}
	for i, r := range target {
		if slices.Contains(target[:i], r) {
			return fmt.Errorf("%w: broker %d is listed twice", ErrInvalidReplicaAssignment, r)
		}
		if _, ok := img.Brokers[r]; !ok {
			return fmt.Errorf("%w: broker %d is not registered", ErrInvalidReplicaAssignment, r)
		}
	}
	return nil
}

// reassigned returns p on its way to target: replicas are target then the
// current ones not in it; the leader epoch moves on (the replica set
// changed).
func reassigned(p metadata.Partition, target []int32) metadata.Partition {
	n := metadata.Partition{
		Replicas: slices.Clone(target), ISR: slices.Clone(p.ISR), Leader: p.Leader,
		LeaderEpoch: p.LeaderEpoch + 1, Epoch: p.Epoch + 1,
	}
	for _, r := range p.Replicas {
		if !slices.Contains(target, r) {
			n.Replicas = append(n.Replicas, r)
			n.Removing = append(n.Removing, r)
		}
	}
	for _, r := range target {
		if !slices.Contains(p.Replicas, r) {
			n.Adding = append(n.Adding, r)
		}
	}
	return n
}

// cancelled returns p back on the replicas it had before the reassignment
// in progress: without those being added. It refuses when none of those
// is in the ISR any more (the partition would have no in-sync replica).
func cancelled(img *metadata.Image, p metadata.Partition, unclean bool) (metadata.Partition, error) {
	before := slices.DeleteFunc(slices.Clone(p.Replicas), func(r int32) bool { return slices.Contains(p.Adding, r) })
	if !slices.ContainsFunc(before, func(r int32) bool { return slices.Contains(p.ISR, r) }) {
		return p, fmt.Errorf("%w: none of the replicas %v it would go back to is in sync (ISR %v)", ErrInvalidReplicaAssignment, before, p.ISR)
	}
	return finish(img, p, before, unclean), nil
}

// completed returns p with its reassignment finished, once every target
// replica is in the ISR.
func completed(img *metadata.Image, p metadata.Partition) (metadata.Partition, bool) {
	if !p.Reassigning() {
		return p, false
	}
	target := p.Target()
	for _, r := range target {
		if !slices.Contains(p.ISR, r) {
			return p, false
		}
	}
	return finish(img, p, target, false), true
}

// finish returns p on replicas alone, with no reassignment in progress:
// the ISR keeps only members of replicas (one at least must be), and the
// leader is re-elected if it is not one of them any more. The leader
// epoch moves on.
func finish(img *metadata.Image, p metadata.Partition, replicas []int32, unclean bool) metadata.Partition {
	isr := slices.DeleteFunc(slices.Clone(p.ISR), func(r int32) bool { return !slices.Contains(replicas, r) })
	n := metadata.Partition{Replicas: slices.Clone(replicas), ISR: isr, Leader: p.Leader,
		LeaderEpoch: p.LeaderEpoch + 1, Epoch: p.Epoch + 1}
	if !slices.Contains(replicas, n.Leader) || !slices.Contains(isr, n.Leader) {
		n.Leader, n.ISR = electLeader(img, metadata.Partition{Replicas: replicas, ISR: isr, Leader: -1}, unclean)
	}
	return n
}

// reassignmentsDone returns the changes that finish every reassignment
// whose target replicas are all in the ISR now.
func reassignmentsDone(img *metadata.Image) []change {
	var out []change
	for _, name := range img.TopicNames() {
		for i, p := range img.Topics[name].Partitions {
			if n, ok := completed(img, p); ok {
				out = append(out, change{name, int32(i), n})
			}
		}
	}
	return out
}
