package broker

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/producers"
	"logpipe/brokerd/recordbatch"
)

// producerIDBlockSize is how many producer ids a broker takes from the
// metadata at a time.
const producerIDBlockSize = 1000

// idAllocator hands out producer ids from blocks recorded in the metadata.
type idAllocator struct {
	mu         sync.Mutex
	next, stop int64
}

// newProducerID returns an id no other producer got, on any broker, ever:
// ids come in blocks that the active controller records in the metadata.
func (b *Broker) newProducerID(ctx context.Context) (int64, error) {
	a := &b.ids
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.next >= a.stop {
		req := kmsg.NewPtrAllocateProducerIDsRequest()
		req.BrokerID, req.BrokerEpoch = b.cfg.NodeID, b.cp.epoch.Load()
		kresp, err := b.toController(ctx, req)
		if err != nil {
			return -1, err
		}
		resp := kresp.(*kmsg.AllocateProducerIDsResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return -1, fmt.Errorf("broker: allocating producer ids: %w", err)
		}
		a.next, a.stop = resp.ProducerIDStart, resp.ProducerIDStart+int64(resp.ProducerIDLen)
	}
	id := a.next
	a.next++
	return id, nil
}

// loadProducerState rebuilds a partition's producer state: the newest
// snapshot, then the batch headers appended after it (records are not
// decompressed).
func (p *partition) loadProducerState() error {
	end := p.log.LogEndOffset()
	from, err := producers.LoadSnapshot(p.log.Dir(), end, &p.producers)
	if err != nil {
		return err
	}
	from = max(from, p.log.LogStartOffset())
	for from < end {
		rr, err := p.log.Read(from, 1<<20)
		if err != nil {
			return fmt.Errorf("broker: rebuilding producer state of %s-%d: %w", p.topic, p.index, err)
		}
		data, err := rr.Bytes()
		rr.Close()
		if err != nil {
			return err
		}
		if len(data) == 0 {
			break
		}
		for rest := data; len(rest) > 0; {
			batch, r, err := recordbatch.Next(rest)
			if err != nil {
				return fmt.Errorf("broker: rebuilding producer state of %s-%d: %w", p.topic, p.index, err)
			}
			rest = r
			h, err := recordbatch.ParseHeader(batch)
			if err != nil {
				return err
			}
			if h.HasProducerID() && h.BaseSequence >= 0 {
				p.producers.Update(h.ProducerID, h.ProducerEpoch, batchMeta(h))
			}
			from = h.NextOffset()
		}
	}
	return nil
}

func batchMeta(h recordbatch.Header) producers.Batch {
	return producers.Batch{
		FirstSeq:    h.BaseSequence,
		LastSeq:     lastSequence(h),
		FirstOffset: h.BaseOffset,
		LastOffset:  h.LastOffset(),
		Timestamp:   h.MaxTimestamp,
	}
}

func lastSequence(h recordbatch.Header) int32 {
	s := int64(h.BaseSequence) + int64(h.LastOffsetDelta)
	if s > 1<<31-1 {
		s -= 1 << 31
	}
	return int32(s)
}

// saveProducerState writes a snapshot at the log end, so the next start
// reads no batch headers.
func (p *partition) saveProducerState() error {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	return producers.WriteSnapshot(p.log.Dir(), p.log.LogEndOffset(), &p.producers)
}

// producerError maps producer-state refusals to Kafka errors.
func producerError(err error) error {
	switch {
	case errors.Is(err, producers.ErrOutOfOrder), errors.Is(err, producers.ErrInvalidBatch):
		return newAPIError(kerr.OutOfOrderSequenceNumber, "%v", err)
	case errors.Is(err, producers.ErrFencedEpoch):
		return newAPIError(kerr.InvalidProducerEpoch, "%v", err)
	}
	return err
}
