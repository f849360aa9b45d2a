package benchkit

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"logpipe/internal/await"
)

// CreateReplicatedTopic creates topic with partitions partitions of
// replicas replicas each and min.insync.replicas minISR, and waits until
// every partition has a leader and all its replicas in its ISR.
func CreateReplicatedTopic(ctx context.Context, adm *kadm.Client, topic string, partitions, replicas, minISR int) error {
	isr := strconv.Itoa(minISR)
	resp, err := adm.CreateTopic(ctx, int32(partitions), int16(replicas), map[string]*string{"min.insync.replicas": &isr}, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("benchkit: create topic %s: %w", topic, err)
	}
	return WaitInSync(ctx, adm, topic, partitions, replicas)
}

// WaitInSync waits until topic has partitions partitions, each with a
// leader and replicas replicas in its ISR.
func WaitInSync(ctx context.Context, adm *kadm.Client, topic string, partitions, replicas int) error {
	err := await.Poll(ctx, 100*time.Millisecond, func(ctx context.Context) error {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return err
		}
		t := md.Topics[topic]
		if t.Err != nil {
			return t.Err
		}
		if len(t.Partitions) != partitions {
			return await.NotYet(fmt.Sprintf("%d partitions", len(t.Partitions)), partitions)
		}
		for _, p := range t.Partitions.Sorted() {
			if p.Err != nil || p.Leader < 0 || len(p.ISR) != replicas {
				return await.NotYet(fmt.Sprintf("partition %d with leader %d, ISR %v (%v)", p.Partition, p.Leader, p.ISR, p.Err),
					fmt.Sprintf("a leader and %d in-sync replicas", replicas))
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("benchkit: %s fully in sync: %w", topic, err)
	}
	return nil
}

// BusiestLeader returns the partition of topic with the highest end
// offset and the node that leads it.
func BusiestLeader(ctx context.Context, adm *kadm.Client, topic string) (partition, leader int32, err error) {
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, 0, fmt.Errorf("benchkit: end offsets of %s: %w", topic, err)
	}
	best := int64(-1)
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && o.Offset > best {
			best, partition = o.Offset, o.Partition
		}
	})
	if best < 0 {
		return 0, 0, fmt.Errorf("benchkit: no end offset of %s", topic)
	}
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return 0, 0, fmt.Errorf("benchkit: metadata of %s: %w", topic, err)
	}
	p, ok := md.Topics[topic].Partitions[partition]
	if !ok || p.Leader < 0 {
		return 0, 0, fmt.Errorf("benchkit: partition %d of %s has no leader", partition, topic)
	}
	return partition, p.Leader, nil
}
