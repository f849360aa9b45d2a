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
	// A snapshot at the log end holds the whole state: the next stop need
	// not write it again unless the state changes.
	p.saved = savedProducers{from == end, end, p.producers.Changes()}
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

// savedProducers is the producer state the newest snapshot on disk
// holds: the state as of change count changes, at log end offset end.
type savedProducers struct {
	valid   bool
	end     int64
	changes uint64
}

// saveProducerState writes a snapshot at the log end, so the next start
// reads no batch headers, unless the newest snapshot already holds the
// state at this log end (an idle partition since the last start).
func (p *partition) saveProducerState() error {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	end := p.log.LogEndOffset()
	if p.saved == (savedProducers{true, end, p.producers.Changes()}) {
		return nil
	}
	if err := producers.WriteSnapshot(p.log.Dir(), end, &p.producers); err != nil {
		return err
	}
	p.saved = savedProducers{true, end, p.producers.Changes()}
	return nil
}

// closeParallelism is how many partitions closeLogs closes at once: each
// close waits on the disk (a snapshot's fsyncs), so a node with
// thousands of partitions stops in a fraction of the time.
const closeParallelism = 16

// closeLogs saves the producer state of each partition and closes its
// log, closeParallelism at a time, and returns what failed.
func closeLogs(parts []*partition) []error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	next := make(chan *partition)
	for range min(closeParallelism, len(parts)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range next {
				err := errors.Join(p.saveProducerState(), p.log.Close())
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	for _, p := range parts {
		next <- p
	}
	close(next)
	wg.Wait()
	return errs
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
