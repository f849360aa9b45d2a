package controller

import (
	"slices"

	"logpipe/brokerd/metadata"
)

// A partition change is computed by pure functions of the image: the
// controller proposes what they return, and the quorum applies it on every
// node. Invariants kept: Leader is -1 or a live member of ISR; ISR ⊆
// Replicas; the ISR never becomes empty (a partition whose last in-sync
// replica is lost keeps it, leaderless, so that replica leads again when
// it returns, as Kafka does without unclean election); LeaderEpoch grows
// with every change of leader, Epoch with every change at all.

// change is one partition's new state.
type change struct {
	topic string
	index int32
	state metadata.Partition
}

func (c change) record() metadata.Record {
	return metadata.Record{ChangePartition: &metadata.ChangePartition{Topic: c.topic, Partition: c.index, State: c.state}}
}

// withState returns p with leader and isr set, and its epochs moved on
// when anything changed; ok is false if nothing did.
func withState(p metadata.Partition, leader int32, isr []int32) (metadata.Partition, bool) {
	if leader == p.Leader && slices.Equal(isr, p.ISR) {
		return p, false
	}
	n := metadata.Partition{Replicas: slices.Clone(p.Replicas), ISR: isr, Leader: leader,
		LeaderEpoch: p.LeaderEpoch, Epoch: p.Epoch + 1,
		Adding: slices.Clone(p.Adding), Removing: slices.Clone(p.Removing)}
	if leader != p.Leader {
		n.LeaderEpoch++
	}
	return n, true
}

// electLeader picks the leader of a partition: the current one if it is
// live and in the ISR, else the first live replica (in replica order, so
// the preferred replica wins) in the ISR; with unclean election allowed
// and no such replica, the first live replica at all, which becomes the
// whole ISR. -1 if nobody can lead.
func electLeader(img *metadata.Image, p metadata.Partition, unclean bool) (leader int32, isr []int32) {
	isr = p.ISR
	if p.Leader >= 0 && img.Live(p.Leader) && slices.Contains(isr, p.Leader) {
		return p.Leader, isr
	}
	for _, r := range p.Replicas {
		if img.Live(r) && slices.Contains(isr, r) {
			return r, isr
		}
	}
	if unclean {
		for _, r := range p.Replicas {
			if img.Live(r) {
				return r, []int32{r}
			}
		}
	}
	return -1, isr
}

// withoutBroker returns the ISR with gone removed, unless that would leave
// it empty.
func withoutBroker(isr []int32, gone int32) []int32 {
	if !slices.Contains(isr, gone) || len(isr) == 1 {
		return isr
	}
	return slices.DeleteFunc(slices.Clone(isr), func(r int32) bool { return r == gone })
}

// uncleanFor is whether topic t allows unclean leader election: its
// unclean.leader.election.enable config when set, else the cluster's
// (def), as Kafka resolves the topic-level key.
func uncleanFor(t *metadata.Topic, def bool) bool {
	switch t.Configs[UncleanConfig] {
	case "true":
		return true
	case "false":
		return false
	}
	return def
}

// UncleanConfig is the topic config (and broker setting) that allows
// electing a replica outside the ISR.
const UncleanConfig = "unclean.leader.election.enable"

// afterFencing returns the partition changes that fencing broker gone
// calls for, in img where gone is already fenced: it leaves every ISR it
// can leave, and every partition it led gets a new leader from its ISR
// (or, where the topic allows unclean election, any live replica).
func afterFencing(img *metadata.Image, gone int32, unclean bool) []change {
	var out []change
	for _, name := range img.TopicNames() {
		t := img.Topics[name]
		for i, p := range t.Partitions {
			if p.Leader != gone && !slices.Contains(p.ISR, gone) {
				continue
			}
			q := p
			q.ISR = withoutBroker(p.ISR, gone)
			leader, isr := electLeader(img, q, uncleanFor(t, unclean))
			if n, ok := withState(p, leader, isr); ok {
				out = append(out, change{name, int32(i), n})
			}
		}
	}
	return out
}

// leaderless returns the changes that elect a leader for partitions that
// have none and now can (a replica came back), and, if preferred, moves
// leadership back to the preferred replica (the first) where it is live
// and in the ISR.
func leaderless(img *metadata.Image, unclean, preferred bool) []change {
	var out []change
	for _, name := range img.TopicNames() {
		t := img.Topics[name]
		for i, p := range t.Partitions {
			leader, isr := p.Leader, p.ISR
			switch {
			case leader < 0 || !img.Live(leader):
				leader, isr = electLeader(img, metadata.Partition{Replicas: p.Replicas, ISR: p.ISR, Leader: -1}, uncleanFor(t, unclean))
			case preferred && len(p.Replicas) > 0 && p.Replicas[0] != leader &&
				img.Live(p.Replicas[0]) && slices.Contains(p.ISR, p.Replicas[0]):
				leader = p.Replicas[0]
			}
			if n, ok := withState(p, leader, isr); ok {
				out = append(out, change{name, int32(i), n})
			}
		}
	}
	return out
}

// ledBy counts the partitions broker id leads.
func ledBy(img *metadata.Image, id int32) int {
	n := 0
	for _, t := range img.Topics {
		for _, p := range t.Partitions {
			if p.Leader == id {
				n++
			}
		}
	}
	return n
}
