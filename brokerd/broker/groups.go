package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"logpipe/brokerd/group"
	"logpipe/brokerd/metadata"
	"logpipe/brokerd/recordbatch"
	"logpipe/brokerd/storage"
	"logpipe/brokerd/wire"
)

// groupState holds the group coordinator (package group) and what the
// broker needs to feed it: the partitions of __consumer_offsets it leads.
type groupState struct {
	coord *group.Coordinator
	// createMu serialises the creation of __consumer_offsets.
	createMu sync.Mutex
}

// offsetsSegmentBytes is Kafka's offsets.topic.segment.bytes default.
const offsetsSegmentBytes = "104857600"

// startGroups starts the group coordinator and loads the groups of every
// __consumer_offsets partition this node leads, so that a restarted
// broker resumes every group at its committed offsets.
func (b *Broker) startGroups() error {
	gc := group.DefaultConfig()
	gc.MinSessionTimeout = time.Duration(b.cfg.GroupMinSessionTimeoutMs) * time.Millisecond
	gc.MaxSessionTimeout = time.Duration(b.cfg.GroupMaxSessionTimeoutMs) * time.Millisecond
	gc.InitialRebalanceDelay = time.Duration(b.cfg.GroupInitialRebalanceDelayMs) * time.Millisecond
	if b.cfg.OffsetsRetentionMinutes > 0 {
		gc.OffsetsRetention = time.Duration(b.cfg.OffsetsRetentionMinutes) * time.Minute
	}
	if b.cfg.GroupMaxSize < 1<<31-1 {
		gc.MaxSize = int(b.cfg.GroupMaxSize)
	}
	gc.MaxMetadataBytes = int(b.cfg.OffsetMetadataMaxBytes)
	if b.hooks.Rebalanced != nil {
		gc.Rebalanced = func(id string, _ int32) { b.hooks.Rebalanced(id) }
	}
	gc.KnownPartition = func(topic string, p int32) bool {
		t := b.meta.Image().Topic(topic)
		return t != nil && p >= 0 && int(p) < len(t.Partitions)
	}
	b.groups.coord = group.NewCoordinator(group.CoordinatorConfig{
		Group:      gc,
		Partitions: b.offsetsPartitionCount,
		Open:       b.openOffsetsPartition,
		Now:        b.now,
		Log:        b.log.With("component", "group-coordinator"),
	})
	var led []int32
	if t := b.meta.Image().Topic(offsetsTopic); t != nil {
		for i, p := range t.Partitions {
			if p.Leader == b.cfg.NodeID {
				led = append(led, int32(i))
			}
		}
	}
	if err := b.groups.coord.LoadAll(context.Background(), led); err != nil {
		// The partition stays unloaded (its groups answer
		// NOT_COORDINATOR and loading is retried on their next
		// request); the broker serves everything else.
		b.log.Error("loading consumer groups", "err", err)
	}
	b.wg.Add(1)
	go b.watchOffsetsLeadership()
	return nil
}

// watchOffsetsLeadership gives up the groups of __consumer_offsets
// partitions this node no longer leads (the topic was deleted, or, with
// replication, leadership moved), whenever the metadata changes. New
// partitions are loaded on their groups' first request.
func (b *Broker) watchOffsetsLeadership() {
	defer b.wg.Done()
	for {
		changed := b.meta.Changed()
		for _, p := range b.groups.coord.Loaded() {
			if b.openOffsetsPartition(p) == nil {
				b.log.Info("no longer coordinating the groups of __consumer_offsets", "partition", p)
				b.groups.coord.Unload(p)
			}
		}
		select {
		case <-changed:
		case <-b.quit:
			return
		}
	}
}

// stopGroups stops the group coordinator: waiting JoinGroup and SyncGroup
// requests are answered NOT_COORDINATOR.
func (b *Broker) stopGroups() {
	if b.groups.coord != nil {
		b.groups.coord.Close()
	}
}

// offsetsPartitionCount is the partition count of __consumer_offsets as
// it exists, else offsets.topic.num.partitions (Kafka computes a group's
// partition from the topic's actual count).
func (b *Broker) offsetsPartitionCount() int32 {
	if t := b.meta.Image().Topic(offsetsTopic); t != nil {
		return int32(len(t.Partitions))
	}
	return b.cfg.OffsetsTopicPartitions
}

// openOffsetsPartition returns partition p of __consumer_offsets if this
// node hosts and leads it.
func (b *Broker) openOffsetsPartition(p int32) group.PartitionLog {
	t := b.meta.Image().Topic(offsetsTopic)
	if t == nil || p < 0 || int(p) >= len(t.Partitions) || t.Partitions[p].Leader != b.cfg.NodeID {
		return nil
	}
	part := b.partition(offsetsTopic, p)
	if part == nil {
		return nil
	}
	return &offsetsLog{b: b, p: part}
}

// offsetsLog is a __consumer_offsets partition as the coordinator writes
// and reads it.
type offsetsLog struct {
	b *Broker
	p *partition
}

// Append appends through the leader path, as a produce with acks=all
// would: it returns once the ISR has the records, so a committed offset
// survives the loss of the coordinator's node.
func (l *offsetsLog) Append(batch []byte) error {
	h, err := recordbatch.ParseHeader(batch)
	epoch := l.p.leaderEpoch.Load()
	var last int64
	if err == nil {
		_, last, _, err = l.b.appendAsLeader(l.p, batch, h, l.b.now())
	}
	if err == nil {
		minISR := 1
		if t := l.b.meta.Image().Topic(offsetsTopic); t != nil {
			v, _ := l.b.effectiveTopicConfig(t.Configs, "min.insync.replicas")
			minISR, _ = strconv.Atoi(v)
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.b.cfg.requestTimeout())
		defer cancel()
		err = l.b.awaitReplicated(ctx, l.p, last, epoch, l.b.cfg.requestTimeout(), minISR)
		var ae *apiError
		if errors.As(err, &ae) {
			return fmt.Errorf("%w: %v", ae.err, ae.msg)
		}
		return err
	}
	code := storage.ErrorCode(err)
	if ke, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return fmt.Errorf("%w: %v", ke, err)
	}
	return err
}

func (l *offsetsLog) Read(offset int64, maxBytes int) ([]byte, error) {
	rr, err := l.p.log.Read(offset, maxBytes)
	if err != nil {
		return nil, err
	}
	defer rr.Close()
	return rr.Bytes()
}

func (l *offsetsLog) StartOffset() int64 { return l.p.log.LogStartOffset() }

// ensureOffsetsTopic returns __consumer_offsets, creating it on first use
// as Kafka does: offsets.topic.num.partitions partitions, replication
// offsets.topic.replication.factor (capped at the number of brokers),
// compacted.
func (b *Broker) ensureOffsetsTopic(ctx context.Context) (*metadata.Topic, error) {
	if t := b.meta.Image().Topic(offsetsTopic); t != nil {
		return t, nil
	}
	b.groups.createMu.Lock()
	defer b.groups.createMu.Unlock()
	if t := b.meta.Image().Topic(offsetsTopic); t != nil {
		return t, nil
	}
	rf := min(b.cfg.OffsetsTopicReplicationFactor, int16(len(b.meta.Image().LiveBrokerIDs())))
	t, err := b.createTopic(ctx, topicSpec{
		name:       offsetsTopic,
		partitions: b.cfg.OffsetsTopicPartitions,
		rf:         max(rf, 1),
		configs: map[string]string{
			"cleanup.policy":   storage.PolicyCompact,
			"compression.type": "producer",
			"segment.bytes":    offsetsSegmentBytes,
		},
	}, false)
	var ae *apiError
	if errors.As(err, &ae) && ae.err == kerr.TopicAlreadyExists {
		if t := b.meta.Image().Topic(offsetsTopic); t != nil {
			return t, nil
		}
	}
	return t, err
}

// clientHost is a client's address as Kafka reports it in group
// descriptions: "/" and the IP address.
func clientHost(c *wire.Conn) string {
	if c == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(c.RemoteAddr())
	if err != nil {
		host = c.RemoteAddr()
	}
	return "/" + host
}
