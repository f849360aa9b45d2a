// Package producers tracks idempotent producers per partition, as Kafka
// does since 0.11: for each producer id, its epoch and the metadata of its
// last five batches, so that a retried batch is recognised as a duplicate
// (and answered with its original offsets without being written again), a
// gap in sequence numbers is refused with OUT_OF_ORDER_SEQUENCE_NUMBER, and
// a fenced epoch with INVALID_PRODUCER_EPOCH.
//
// State is a pure core: no I/O, no clock, no goroutines. The broker feeds
// it every appended batch (from produce requests, and from the log when it
// rebuilds state at start) and saves it in snapshots.
package producers

import (
	"errors"
	"fmt"
	"sort"
)

// MaxBatches is how many batches per producer are remembered for
// duplicate detection; Kafka clients keep at most five in flight.
const MaxBatches = 5

// Sentinel errors of Check, mapped by the broker to Kafka error codes.
var (
	ErrOutOfOrder   = errors.New("producers: out of order sequence number")
	ErrFencedEpoch  = errors.New("producers: producer epoch is fenced by a newer one")
	ErrInvalidBatch = errors.New("producers: invalid sequence range in batch")
)

// Batch is what is remembered of one appended batch.
type Batch struct {
	FirstSeq    int32 `json:"first_seq"`
	LastSeq     int32 `json:"last_seq"`
	FirstOffset int64 `json:"first_offset"`
	LastOffset  int64 `json:"last_offset"`
	// Timestamp is the batch's max timestamp, used for expiry.
	Timestamp int64 `json:"timestamp"`
}

// Producer is the state of one producer id on one partition.
type Producer struct {
	ID      int64   `json:"id"`
	Epoch   int16   `json:"epoch"`
	Batches []Batch `json:"batches"` // oldest first; at most MaxBatches
	// LastTimestamp is the newest batch timestamp seen, for expiry.
	LastTimestamp int64 `json:"last_timestamp"`
}

// State is the producer state of one partition. The zero value is empty
// and ready. Not safe for concurrent use: the partition's append lock
// guards it.
type State struct {
	producers map[int64]*Producer
	// changes counts the changes made, for Changes.
	changes uint64
}

// Changes returns a count that grows with every change to the state, so
// that a caller can tell whether it changed since a snapshot was taken.
func (s *State) Changes() uint64 { return s.changes }

// nextSeq is the sequence number after s, wrapping at int32 as Kafka does.
func nextSeq(s int32) int32 {
	if s == 1<<31-1 {
		return 0
	}
	return s + 1
}

// Check decides what to do with a batch of an idempotent producer before
// it is appended: nil means append it; a non-nil dup means the batch was
// already appended (return dup's offsets to the client, write nothing);
// an error means refuse it.
func (s *State) Check(id int64, epoch int16, firstSeq, lastSeq int32) (dup *Batch, err error) {
	if firstSeq < 0 || lastSeq < 0 {
		return nil, fmt.Errorf("%w: sequences %d..%d", ErrInvalidBatch, firstSeq, lastSeq)
	}
	p := s.producers[id]
	if p == nil {
		if firstSeq != 0 {
			return nil, fmt.Errorf("%w: producer %d is unknown here, so its first batch must start at sequence 0, not %d", ErrOutOfOrder, id, firstSeq)
		}
		return nil, nil
	}
	switch {
	case epoch < p.Epoch:
		return nil, fmt.Errorf("%w: producer %d epoch %d, current %d", ErrFencedEpoch, id, epoch, p.Epoch)
	case epoch > p.Epoch:
		if firstSeq != 0 {
			return nil, fmt.Errorf("%w: producer %d starts epoch %d at sequence %d, not 0", ErrOutOfOrder, id, epoch, firstSeq)
		}
		return nil, nil
	}
	for i := range p.Batches {
		if b := p.Batches[i]; b.FirstSeq == firstSeq && b.LastSeq == lastSeq {
			d := b
			return &d, nil
		}
	}
	if len(p.Batches) == 0 {
		return nil, nil
	}
	last := p.Batches[len(p.Batches)-1]
	if firstSeq != nextSeq(last.LastSeq) {
		return nil, fmt.Errorf("%w: producer %d sent sequence %d, expected %d", ErrOutOfOrder, id, firstSeq, nextSeq(last.LastSeq))
	}
	return nil, nil
}

// Update records an appended batch (after Check allowed it, or when
// replaying the log). A newer epoch replaces what was known of the
// producer.
func (s *State) Update(id int64, epoch int16, b Batch) {
	if s.producers == nil {
		s.producers = map[int64]*Producer{}
	}
	p := s.producers[id]
	if p == nil || epoch > p.Epoch {
		p = &Producer{ID: id, Epoch: epoch}
		s.producers[id] = p
	} else if epoch < p.Epoch {
		return // a fenced producer's batch in the log: nothing to learn
	}
	s.changes++
	p.Batches = append(p.Batches, b)
	if len(p.Batches) > MaxBatches {
		p.Batches = append(p.Batches[:0], p.Batches[len(p.Batches)-MaxBatches:]...)
	}
	if b.Timestamp > p.LastTimestamp {
		p.LastTimestamp = b.Timestamp
	}
}

// Expire forgets producers whose newest batch timestamp is older than
// cutoff (producer.id.expiration.ms before now). It returns how many.
func (s *State) Expire(cutoff int64) int {
	n := 0
	for id, p := range s.producers {
		if p.LastTimestamp < cutoff {
			delete(s.producers, id)
			n++
		}
	}
	if n > 0 {
		s.changes++
	}
	return n
}

// TruncateTo forgets batches at or above offset (the log was truncated);
// producers left with no batch are forgotten.
func (s *State) TruncateTo(offset int64) {
	s.changes++
	for id, p := range s.producers {
		keep := p.Batches[:0]
		for _, b := range p.Batches {
			if b.LastOffset < offset {
				keep = append(keep, b)
			}
		}
		p.Batches = keep
		if len(keep) == 0 {
			delete(s.producers, id)
		}
	}
}

// Len returns the number of producers tracked.
func (s *State) Len() int { return len(s.producers) }

// Producers returns copies of every producer's state, by id.
func (s *State) Producers() []Producer {
	out := make([]Producer, 0, len(s.producers))
	for _, p := range s.producers {
		c := *p
		c.Batches = append([]Batch(nil), p.Batches...)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Load replaces the state with ps (from a snapshot).
func (s *State) Load(ps []Producer) {
	s.changes++
	s.producers = make(map[int64]*Producer, len(ps))
	for _, p := range ps {
		c := p
		c.Batches = append([]Batch(nil), p.Batches...)
		s.producers[p.ID] = &c
	}
}
