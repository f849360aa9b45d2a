package recordbatch

import (
	"fmt"
)

// Verify checks that batch is exactly one intact v2 batch: well-formed
// header, length field equal to len(batch), a known codec, a non-negative
// offset range and record count, and a matching CRC. It is what a follower
// or a log recovery checks: it accepts what a leader may legitimately have
// written (LogAppendTime, control batches, batches made sparse by
// compaction). It never looks inside the records.
func Verify(batch []byte) (Header, error) {
	h, err := ParseHeader(batch)
	if err != nil {
		return h, err
	}
	if h.Size() != len(batch) {
		return h, fmt.Errorf("%w: batch length says %d bytes, have %d", ErrCorrupt, h.Size(), len(batch))
	}
	if h.LastOffsetDelta < 0 {
		return h, fmt.Errorf("%w: negative last offset delta %d", ErrCorrupt, h.LastOffsetDelta)
	}
	if h.RecordCount < 0 {
		return h, fmt.Errorf("%w: negative record count %d", ErrCorrupt, h.RecordCount)
	}
	if got := CRC(batch); got != h.CRC {
		return h, fmt.Errorf("%w: stored %08x, computed %08x", ErrCRC, h.CRC, got)
	}
	if !h.Codec().Valid() {
		return h, fmt.Errorf("%w: codec id %d", ErrUnsupportedCodec, int8(h.Codec()))
	}
	return h, nil
}

// ProduceLimits are the broker settings Validate applies to a client's
// batch. The zero value checks only the format.
type ProduceLimits struct {
	// MaxBatchBytes is max.message.bytes: the largest batch accepted.
	// 0 means no limit.
	MaxBatchBytes int
	// NowMs is the broker's clock in milliseconds since the epoch, used with
	// the two windows below.
	NowMs int64
	// TimestampBeforeMaxMs is message.timestamp.before.max.ms: how far in
	// the past a CreateTime timestamp may be. 0 means no limit.
	TimestampBeforeMaxMs int64
	// TimestampAfterMaxMs is message.timestamp.after.max.ms: how far in the
	// future a CreateTime timestamp may be. 0 means no limit.
	TimestampAfterMaxMs int64
}

// Validate checks a batch sent by a producer before the broker assigns it
// offsets: everything Verify checks, plus the rules Kafka applies to client
// appends. The window checks use only the header: maxTimestamp against the
// future bound (exact) and baseTimestamp against the past bound (the
// first record; later records may be older, which only decoding would show).
func Validate(batch []byte, lim ProduceLimits) (Header, error) {
	h, err := Verify(batch)
	if err != nil {
		return h, err
	}
	if lim.MaxBatchBytes > 0 && len(batch) > lim.MaxBatchBytes {
		return h, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(batch), lim.MaxBatchBytes)
	}
	if h.BaseOffset != 0 {
		return h, fmt.Errorf("%w: base offset of a produced batch must be 0, got %d", ErrInvalidRecord, h.BaseOffset)
	}
	if h.RecordCount < 1 {
		return h, fmt.Errorf("%w: record count %d", ErrInvalidRecord, h.RecordCount)
	}
	if int64(h.RecordCount) != int64(h.LastOffsetDelta)+1 {
		return h, fmt.Errorf("%w: record count %d does not match last offset delta %d", ErrInvalidRecord, h.RecordCount, h.LastOffsetDelta)
	}
	if h.Control() {
		return h, fmt.Errorf("%w: clients may not write control batches", ErrInvalidRecord)
	}
	if h.DeleteHorizon() {
		return h, fmt.Errorf("%w: clients may not set the delete horizon flag", ErrInvalidRecord)
	}
	if h.HasProducerID() && h.BaseSequence < 0 {
		return h, fmt.Errorf("%w: producer id %d with base sequence %d", ErrInvalidRecord, h.ProducerID, h.BaseSequence)
	}
	if err := checkTimestamps(h, lim); err != nil {
		return h, err
	}
	return h, nil
}

func checkTimestamps(h Header, lim ProduceLimits) error {
	if h.LogAppendTime() {
		return fmt.Errorf("%w: producers may not set the LogAppendTime timestamp type", ErrInvalidTimestamp)
	}
	if h.BaseTimestamp < NoTimestamp || h.MaxTimestamp < NoTimestamp {
		return fmt.Errorf("%w: base %d, max %d", ErrInvalidTimestamp, h.BaseTimestamp, h.MaxTimestamp)
	}
	if h.BaseTimestamp != NoTimestamp && h.MaxTimestamp < h.BaseTimestamp {
		return fmt.Errorf("%w: max timestamp %d below base timestamp %d", ErrInvalidTimestamp, h.MaxTimestamp, h.BaseTimestamp)
	}
	if lim.TimestampAfterMaxMs > 0 && h.MaxTimestamp != NoTimestamp && h.MaxTimestamp-lim.NowMs > lim.TimestampAfterMaxMs {
		return fmt.Errorf("%w: timestamp %d is more than %d ms after the broker's clock %d", ErrInvalidTimestamp, h.MaxTimestamp, lim.TimestampAfterMaxMs, lim.NowMs)
	}
	if lim.TimestampBeforeMaxMs > 0 && h.BaseTimestamp != NoTimestamp && lim.NowMs-h.BaseTimestamp > lim.TimestampBeforeMaxMs {
		return fmt.Errorf("%w: timestamp %d is more than %d ms before the broker's clock %d", ErrInvalidTimestamp, h.BaseTimestamp, lim.TimestampBeforeMaxMs, lim.NowMs)
	}
	return nil
}

// ValidateAll splits records (a produce request's records field) into
// batches and runs Validate on each, returning their headers in order. It
// fails on the first bad batch, on trailing bytes that are not a whole
// batch, and on empty input.
func ValidateAll(records []byte, lim ProduceLimits) ([]Header, error) {
	if len(records) == 0 {
		return nil, fmt.Errorf("%w: no record batch", ErrInvalidRecord)
	}
	var hs []Header
	for len(records) > 0 {
		batch, rest, err := Next(records)
		if err != nil {
			return hs, err
		}
		h, err := Validate(batch, lim)
		if err != nil {
			return hs, err
		}
		hs = append(hs, h)
		records = rest
	}
	return hs, nil
}
