// Package replica is the replication state of one partition on its leader,
// as Kafka's ISR model has it: the log end offset (LEO) of each follower,
// learnt from the offsets its fetches ask for; the high watermark (HW), the
// lowest LEO in the ISR, below which records are committed and consumers
// may read; and the ISR changes the leader should propose: a follower that
// has not caught up for replica.lag.time.max.ms leaves, one that caught up
// with the HW comes back.
//
// Leader is a pure type: no I/O, no clock (callers pass the time), no
// goroutines and no locking; its owner serialises calls.
package replica

import (
	"slices"
	"time"
)

// follower is what the leader knows of one follower.
type follower struct {
	// leo is the offset of the follower's last fetch: everything below
	// it is in its log. -1 until it fetched in this leader epoch.
	leo int64
	// lastCaughtUp is the last time the follower had all the leader had
	// (Kafka's lastCaughtUpTimeMs).
	lastCaughtUp time.Time
	// lastFetch and leoAtLastFetch are the time of its previous fetch and
	// the leader's LEO then.
	lastFetch      time.Time
	leoAtLastFetch int64
}

// Leader is the state of a partition this node leads, for one leader
// epoch.
//
// Invariants: hw never decreases; hw <= the leader's LEO; isr holds the
// leader.
type Leader struct {
	self     int32
	replicas []int32
	// isr is the ISR committed in the metadata; pending, when not nil, is
	// a change proposed to the controller and not yet committed.
	isr     []int32
	pending []int32
	// epochStart is the leader's LEO when it became leader: a follower
	// rejoins the ISR only once it has every record of this epoch's
	// start, so it cannot hold a divergent tail.
	epochStart int64
	hw         int64
	followers  map[int32]*follower
}

// NewLeader returns the state of a partition this node (self) starts to
// lead at its log end offset leo, with the committed replicas and ISR, and
// hw as known (a restarted or new leader's high watermark, at most leo).
// Followers count as caught up at now: each gets a full
// replica.lag.time.max.ms to fetch before it is dropped from the ISR.
func NewLeader(self int32, replicas, isr []int32, leo, hw int64, now time.Time) *Leader {
	l := &Leader{self: self, replicas: slices.Clone(replicas), isr: slices.Clone(isr),
		epochStart: leo, hw: min(hw, leo), followers: map[int32]*follower{}}
	for _, r := range replicas {
		if r != self {
			l.followers[r] = &follower{leo: -1, lastCaughtUp: now, lastFetch: now, leoAtLastFetch: leo}
		}
	}
	return l
}

// HighWatermark returns the high watermark.
func (l *Leader) HighWatermark() int64 { return l.hw }

// ISR returns the committed ISR.
func (l *Leader) ISR() []int32 { return slices.Clone(l.isr) }

// Pending returns the proposed ISR not yet committed, or nil.
func (l *Leader) Pending() []int32 { return slices.Clone(l.pending) }

// FollowerLEO returns what the leader knows of a follower's log end
// offset (-1 if it has not fetched in this epoch).
func (l *Leader) FollowerLEO(id int32) int64 {
	if f := l.followers[id]; f != nil {
		return f.leo
	}
	return -1
}

// IsReplica reports whether id is a follower of this partition.
func (l *Leader) IsReplica(id int32) bool { return l.followers[id] != nil }

// Fetched records a fetch by follower id at offset (its LEO) at now, when
// the leader's LEO is leo. It returns whether the high watermark moved.
func (l *Leader) Fetched(id int32, offset, leo int64, now time.Time) bool {
	f := l.followers[id]
	if f == nil {
		return false
	}
	f.leo = min(offset, leo)
	switch {
	case offset >= leo:
		f.lastCaughtUp = now
	case offset >= f.leoAtLastFetch:
		f.lastCaughtUp = f.lastFetch
	}
	f.lastFetch, f.leoAtLastFetch = now, leo
	return l.Advance(leo)
}

// Advance recomputes the high watermark after the leader's LEO became leo
// (an append; with an ISR of the leader alone the HW follows it at once).
// It returns whether the HW moved.
func (l *Leader) Advance(leo int64) bool {
	hw := leo
	for _, r := range l.maximalISR() {
		if r == l.self {
			continue
		}
		f := l.followers[r]
		if f == nil || f.leo < 0 {
			return false // an ISR member not heard from holds the HW
		}
		hw = min(hw, f.leo)
	}
	if hw <= l.hw {
		return false
	}
	l.hw = hw
	return true
}

// maximalISR is the committed ISR with the pending additions: the HW
// waits for a follower being added as soon as it is proposed, and for one
// being removed until the removal is committed (Kafka's KIP-497 rule), so
// the HW never counts on fewer replicas than the controller does.
func (l *Leader) maximalISR() []int32 {
	out := slices.Clone(l.isr)
	for _, r := range l.pending {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// WantISR returns the ISR the leader should propose at now, given its LEO
// and replica.lag.time.max.ms, and whether it differs from the committed
// one; nothing while a proposal is pending. Followers that have not caught
// up for lagMax leave; followers whose LEO reached the HW and this epoch's
// start come back if eligible says the controller would take them (a
// live, unfenced broker: as Kafka's KIP-841, a follower that caught up
// just before it was fenced or shut down is not proposed, since the
// controller would refuse the whole change, and with it the followers
// that may rejoin).
func (l *Leader) WantISR(leo int64, lagMax time.Duration, now time.Time, eligible func(id int32) bool) ([]int32, bool) {
	if l.pending != nil {
		return nil, false
	}
	var want []int32
	for _, r := range l.replicas {
		if r == l.self {
			want = append(want, r)
			continue
		}
		f := l.followers[r]
		in := slices.Contains(l.isr, r)
		switch {
		case in && now.Sub(f.lastCaughtUp) <= lagMax:
			want = append(want, r)
		case !in && f.leo >= 0 && f.leo >= l.hw && f.leo >= l.epochStart && now.Sub(f.lastCaughtUp) <= lagMax && eligible(r):
			want = append(want, r)
		}
	}
	slices.Sort(want)
	cur := slices.Sorted(slices.Values(l.isr))
	if slices.Equal(want, cur) {
		return nil, false
	}
	return want, true
}

// Propose marks isr as proposed to the controller.
func (l *Leader) Propose(isr []int32) { l.pending = slices.Clone(isr) }

// Committed sets the ISR the metadata now holds (a proposal's outcome, or
// a change the controller made) and clears any pending proposal. It
// returns whether the HW moved (fewer members to wait for).
func (l *Leader) Committed(isr []int32, leo int64) bool {
	l.isr, l.pending = slices.Clone(isr), nil
	return l.Advance(leo)
}

// Rejected clears a pending proposal the controller refused.
func (l *Leader) Rejected() { l.pending = nil }
