package broker

import (
	"context"
	"sort"

	"logpipe/brokerd/fetchsession"
)

// PartitionStats describes one hosted partition, for metrics.
type PartitionStats struct {
	Topic          string
	Partition      int32
	LogStartOffset int64
	LogEndOffset   int64
	HighWatermark  int64
	SizeBytes      int64
	Segments       int
	Producers      int
	// Leader is whether this node leads the partition; UnderReplicated,
	// for a leader, whether its ISR lacks replicas.
	Leader          bool
	UnderReplicated bool
	// ISR is the partition's in-sync replica count as last applied.
	ISR int
	// FetchLag is, on a follower, how far its log end was behind the
	// leader's high watermark at its last fetch.
	FetchLag int64
}

// ClusterStats is this node's view of the cluster, for metrics.
type ClusterStats struct {
	// RaftRole is "leader", "follower", "candidate" or "shutdown".
	RaftRole              string
	RaftTerm, CommitIndex uint64
	// ActiveController is whether this node is the active controller.
	ActiveController bool
	// OfflinePartitions counts the partitions without a leader (reported
	// by the active controller only, as Kafka does, else 0).
	OfflinePartitions int
}

// Cluster returns this node's view of the cluster.
func (b *Broker) Cluster() ClusterStats {
	st := b.meta.Status()
	cs := ClusterStats{RaftRole: st.Role, RaftTerm: st.Term, CommitIndex: st.CommitIndex, ActiveController: b.cp.ctl.Load() != nil && b.meta.IsLeader()}
	if cs.ActiveController {
		for _, t := range b.meta.Image().Topics {
			for _, p := range t.Partitions {
				if p.Leader < 0 {
					cs.OfflinePartitions++
				}
			}
		}
	}
	return cs
}

// Partitions returns the state of every hosted partition, sorted by topic
// and partition. It takes no lock a request waits on for long.
func (b *Broker) Partitions() []PartitionStats {
	parts := b.hosted()
	out := make([]PartitionStats, 0, len(parts))
	for _, p := range parts {
		p.appendMu.Lock()
		producers := p.producers.Len()
		p.appendMu.Unlock()
		p.replMu.Lock()
		isr, replicas := len(p.role.isr), len(p.role.replicas)
		p.replMu.Unlock()
		leads := p.leads.Load()
		ps := PartitionStats{
			Topic: p.topic, Partition: p.index,
			LogStartOffset: p.log.LogStartOffset(), LogEndOffset: p.log.LogEndOffset(), HighWatermark: p.highWatermark(),
			SizeBytes: p.log.Size(), Segments: p.log.Segments(), Producers: producers,
			Leader: leads, UnderReplicated: leads && isr < replicas, ISR: isr,
		}
		if !leads {
			ps.FetchLag = p.fetchLag.Load()
		}
		out = append(out, ps)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}

// GroupCounts returns how many consumer groups this node coordinates, by
// state (Empty, Stable, PreparingRebalance, ...).
func (b *Broker) GroupCounts(ctx context.Context) (map[string]int, error) {
	ls, err := b.groups.coord.List(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, l := range ls {
		out[l.State.String()]++
	}
	return out, nil
}

// FetchSessions returns the figures of this node's fetch session cache:
// sessions and partitions cached, evictions, and fetch requests by how
// they were served.
func (b *Broker) FetchSessions() fetchsession.Stats { return b.fetchSessions.Stats() }
