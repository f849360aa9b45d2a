package broker

import (
	"context"
	"sort"
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
		out = append(out, PartitionStats{
			Topic: p.topic, Partition: p.index,
			LogStartOffset: p.log.LogStartOffset(), LogEndOffset: p.log.LogEndOffset(), HighWatermark: p.highWatermark(),
			SizeBytes: p.log.Size(), Segments: len(p.log.SegmentBases()), Producers: producers,
		})
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
