package broker

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/metadata"
	"logpipe/brokerd/replica"
)

// Replication, Kafka's ISR model. Each hosted partition is, by the
// metadata, led here or followed from another node:
//
//   - A leader keeps a replica.Leader: the followers' log end offsets come
//     from the offsets their fetches ask for (01_fetch.go), the high
//     watermark is the lowest in the ISR, and ISR changes it wants are
//     proposed to the controller with AlterPartition. Consumers read below
//     the high watermark; acks=all is answered once it passes the records.
//   - A follower fetches from its leader (fetcher.go), appends what it gets
//     as is, and truncates what diverged from the leader's log.
//
// Lock order: Broker.mu, then partition.appendMu, then partition.replMu,
// then the partition's watchers lock.

// role is what the metadata says about a hosted partition.
type role struct {
	leader      int32
	leaderEpoch int32
	epoch       int32 // partition epoch
	replicas    []int32
	isr         []int32
}

func roleOf(p metadata.Partition) role {
	return role{leader: p.Leader, leaderEpoch: p.LeaderEpoch, epoch: p.Epoch, replicas: p.Replicas, isr: p.ISR}
}

// applyRole brings a hosted partition in line with its metadata: it
// becomes leader (recording the new epoch's start in its log), follower
// (fetching from the leader) or neither (no leader), or, staying leader,
// takes the committed ISR. Called by reconcile, under Broker.mu.
func (b *Broker) applyRole(p *partition, st metadata.Partition) {
	r := roleOf(st)
	me := b.cfg.NodeID
	p.replMu.Lock()
	old := p.role
	p.role = r
	switch {
	case r.leader == me && (p.leader == nil || old.leaderEpoch != r.leaderEpoch):
		leo := p.log.LogEndOffset()
		if err := p.log.AssignEpochStart(r.leaderEpoch, leo); err != nil {
			b.log.Warn("recording a leader epoch", "topic", p.topic, "partition", p.index, "epoch", r.leaderEpoch, "err", err)
		}
		p.leader = replica.NewLeader(me, r.replicas, r.isr, leo, p.hw.Load(), b.now())
		p.leader.Advance(leo)
		p.hw.Store(p.leader.HighWatermark())
		p.leaderEpoch.Store(r.leaderEpoch)
		p.leads.Store(true)
		p.replMu.Unlock()
		b.fetchers.remove(p)
		b.log.Debug("leading", "topic", p.topic, "partition", p.index, "epoch", r.leaderEpoch, "isr", r.isr)
	case r.leader == me:
		if p.leader.Committed(r.isr, p.log.LogEndOffset()) {
			p.hw.Store(p.leader.HighWatermark())
		}
		p.replMu.Unlock()
	default:
		p.leader = nil
		p.leaderEpoch.Store(r.leaderEpoch)
		p.leads.Store(false)
		p.replMu.Unlock()
		if r.leader >= 0 {
			b.fetchers.follow(p, r.leader, r.leaderEpoch)
		} else {
			b.fetchers.remove(p)
		}
	}
	// Fetches and acks=all produces waiting on this partition look again:
	// its high watermark or its leadership may have changed.
	p.notify()
}

// advanced recomputes a led partition's high watermark after its log end
// moved (an append) and wakes what waits on it.
func (b *Broker) advanced(p *partition) {
	p.replMu.Lock()
	moved := p.leader != nil && p.leader.Advance(p.log.LogEndOffset())
	if moved {
		p.hw.Store(p.leader.HighWatermark())
	}
	p.replMu.Unlock()
	p.notify()
}

// followerFetched records a follower's fetch at offset on a led partition.
func (b *Broker) followerFetched(p *partition, id int32, offset int64) (known bool) {
	p.replMu.Lock()
	if p.leader == nil || !p.leader.IsReplica(id) {
		p.replMu.Unlock()
		return false
	}
	moved := p.leader.Fetched(id, offset, p.log.LogEndOffset(), b.now())
	if moved {
		p.hw.Store(p.leader.HighWatermark())
	}
	p.replMu.Unlock()
	if moved {
		p.notify()
	}
	b.maybeAlterISR(p)
	return true
}

// maybeAlterISR proposes the ISR the leader wants, if it differs from the
// committed one and nothing is pending; the answer comes back through the
// metadata (applyRole) or, if refused, clears the proposal.
func (b *Broker) maybeAlterISR(p *partition) {
	p.replMu.Lock()
	if p.leader == nil || p.role.epoch == p.refusedEpoch && b.now().Before(p.retryISRAt) {
		// A refused proposal is not sent again on the same partition
		// epoch for a while: the refusal usually means this node has
		// not applied the newer metadata yet.
		p.replMu.Unlock()
		return
	}
	want, change := p.leader.WantISR(p.log.LogEndOffset(), b.cfg.replicaLagMax(), b.now(), b.liveBroker)
	if !change {
		p.replMu.Unlock()
		return
	}
	p.leader.Propose(want)
	r := p.role
	p.replMu.Unlock()
	shrink := len(want) < len(r.isr)
	if b.hooks.ISRChange != nil {
		b.hooks.ISRChange(shrink)
	}
	b.log.Info("proposing an ISR change", "topic", p.topic, "partition", p.index, "isr", r.isr, "new_isr", want)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		epoch, err := b.alterPartition(p, r, want)
		if err != nil {
			b.log.Warn("ISR change refused", "topic", p.topic, "partition", p.index, "new_isr", want, "err", err)
		}
		p.replMu.Lock()
		defer p.replMu.Unlock()
		switch {
		case p.leader == nil:
		case err != nil:
			p.leader.Rejected()
			p.refusedEpoch, p.retryISRAt = r.epoch, b.now().Add(time.Second)
		case p.role.epoch >= epoch:
			// The metadata applied here is already as new as the answer
			// (or the controller had nothing to change): take it now;
			// otherwise applyRole will when it arrives.
			if p.leader.Committed(p.role.isr, p.log.LogEndOffset()) {
				p.hw.Store(p.leader.HighWatermark())
			}
		}
	}()
}

// liveBroker reports whether the metadata applied here shows broker id
// registered and unfenced: one the controller would let into an ISR.
func (b *Broker) liveBroker(id int32) bool { return b.meta.Image().Live(id) }

// alterPartition sends one AlterPartition to the controller and returns
// the partition epoch it answered.
func (b *Broker) alterPartition(p *partition, r role, isr []int32) (int32, error) {
	req := kmsg.NewPtrAlterPartitionRequest()
	req.BrokerID, req.BrokerEpoch = b.cfg.NodeID, b.cp.epoch.Load()
	rt := kmsg.NewAlterPartitionRequestTopic()
	rt.Topic = p.topic
	if t := b.meta.Image().Topic(p.topic); t != nil {
		rt.TopicID = t.ID
	}
	rp := kmsg.NewAlterPartitionRequestTopicPartition()
	rp.Partition, rp.LeaderEpoch, rp.PartitionEpoch = p.index, r.leaderEpoch, r.epoch
	rp.NewISR = isr
	for _, id := range isr {
		e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
		e.BrokerID, e.BrokerEpoch = id, -1
		rp.NewEpochISR = append(rp.NewEpochISR, e)
	}
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.requestTimeout())
	defer cancel()
	kresp, err := b.toController(ctx, req)
	if err != nil {
		return -1, err
	}
	resp := kresp.(*kmsg.AlterPartitionResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return -1, err
	}
	epoch := int32(-1)
	for _, t := range resp.Topics {
		for _, sp := range t.Partitions {
			if err := kerr.ErrorForCode(sp.ErrorCode); err != nil {
				return -1, err
			}
			epoch = sp.PartitionEpoch
		}
	}
	return epoch, nil
}

// checkISRs proposes the ISR changes that time calls for (followers that
// stopped catching up), every half replica.lag.time.max.ms.
func (b *Broker) checkISRs() {
	defer b.wg.Done()
	t := time.NewTicker(max(b.cfg.replicaLagMax()/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-b.quit:
			return
		case <-t.C:
		}
		for _, p := range b.hosted() {
			if p.leads.Load() {
				b.maybeAlterISR(p)
			}
		}
	}
}

// awaitReplicated waits, for an acks=all produce appended up to last, until
// the high watermark passes last, the partition's leadership changes, or
// timeout. It returns the error for the client, nil once replicated.
func (b *Broker) awaitReplicated(ctx context.Context, p *partition, last int64, epoch int32, timeout time.Duration, minISR int) error {
	w := newWaiter()
	p.watch(w)
	defer p.unwatch(w)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	// belowMinISR is the error when the committed ISR is below
	// min.insync.replicas, as the records stand (when), nil otherwise.
	belowMinISR := func(when string) error {
		p.replMu.Lock()
		isr := len(p.role.isr)
		p.replMu.Unlock()
		if isr < minISR {
			return newAPIError(kerr.NotEnoughReplicasAfterAppend, "%s-%d: the ISR shrank to %d, below min.insync.replicas %d, %s", p.topic, p.index, isr, minISR, when)
		}
		return nil
	}
	for {
		if p.hw.Load() > last {
			// As Kafka: the HW may have passed the records because the
			// ISR shrank below min.insync.replicas meanwhile (this node's
			// image may have shown the old ISR when the request was
			// checked), and then they are not acknowledged.
			return belowMinISR("by the time the records were replicated")
		}
		if !p.leads.Load() || p.leaderEpoch.Load() != epoch {
			return newAPIError(kerr.NotLeaderForPartition, "%s-%d changed leader before the records were replicated", p.topic, p.index)
		}
		select {
		case <-w:
		case <-timer.C:
			if err := belowMinISR("before the records were replicated"); err != nil {
				return err
			}
			return newAPIError(kerr.RequestTimedOut, "%s-%d: the records were not replicated to the ISR within %v", p.topic, p.index, timeout)
		case <-ctx.Done():
			return newAPIError(kerr.RequestTimedOut, "%s-%d: %v", p.topic, p.index, ctx.Err())
		case <-b.quit:
			return newAPIError(kerr.NotLeaderForPartition, "the broker is shutting down")
		}
	}
}
