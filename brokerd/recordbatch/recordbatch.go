// Package recordbatch reads, checks and patches Kafka record batches
// (message format v2, "magic 2") as raw bytes.
//
// Nothing here decompresses or decodes the records inside a batch except
// NextRecord, which splits an already decompressed payload for callers that
// need keys (the log cleaner) or per-record timestamps (timestamp lookups).
// The produce path only needs Next, Validate and the Set functions, which
// look at the fixed 61-byte header and the CRC.
//
// The header layout (big endian) is:
//
//	offset  size  field
//	     0     8  baseOffset
//	     8     4  batchLength (bytes after this field)
//	    12     4  partitionLeaderEpoch
//	    16     1  magic
//	    17     4  crc (CRC-32C of bytes 21 to the end)
//	    21     2  attributes
//	    23     4  lastOffsetDelta
//	    27     8  baseTimestamp
//	    35     8  maxTimestamp
//	    43     8  producerId
//	    51     2  producerEpoch
//	    53     4  baseSequence
//	    57     4  recordCount
//	    61        records
//
// baseOffset, batchLength, partitionLeaderEpoch and magic sit before the CRC
// and are not covered by it, so a broker may rewrite baseOffset and the
// leader epoch without recomputing it. Attributes and maxTimestamp are
// covered: SetLogAppendTime recomputes the CRC.
//
// All functions are pure and safe for concurrent use on distinct slices.
package recordbatch

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Sizes of the fixed parts of a batch.
const (
	// HeaderSize is the size of a v2 batch header; the records follow it.
	HeaderSize = 61
	// LogOverhead is the size of baseOffset plus batchLength: a batch
	// occupies LogOverhead+batchLength bytes.
	LogOverhead = 12
	// MagicV2 is the only message format this package accepts.
	MagicV2 = 2

	// minBatchLength is the smallest batchLength of a v2 batch: the header
	// after the length field, with no records.
	minBatchLength = HeaderSize - LogOverhead
	// minLegacyLength is the smallest size field of a v0 message
	// (crc, magic, attributes, key length, value length).
	minLegacyLength = 14
	// magicEnd is how many bytes are needed to see the magic byte.
	magicEnd = 17
)

// Byte offsets of the header fields.
const (
	offBaseOffset      = 0
	offLength          = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offRecordCount     = 57
)

// Attribute bits.
const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
	attrDeleteHorizon = 0x40
)

// NoTimestamp is the timestamp Kafka uses for "no timestamp".
const NoTimestamp = -1

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Codec is the compression codec in the low three bits of a batch's
// attributes.
type Codec int8

// The codecs Kafka defines. Values 5 to 7 are invalid.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

// Valid reports whether c is one of the codecs Kafka defines.
func (c Codec) Valid() bool { return c >= CodecNone && c <= CodecZstd }

// String returns Kafka's name for the codec ("none", "gzip", ...).
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

// Header is the decoded fixed header of a v2 record batch.
type Header struct {
	BaseOffset           int64
	BatchLength          int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	RecordCount          int32
}

// Size is the number of bytes the whole batch occupies.
func (h Header) Size() int { return LogOverhead + int(h.BatchLength) }

// LastOffset is the offset of the last record the batch covers
// (BaseOffset+LastOffsetDelta). After compaction a batch may hold fewer
// records than its offset range.
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// NextOffset is LastOffset()+1, the offset that follows the batch.
func (h Header) NextOffset() int64 { return h.LastOffset() + 1 }

// Codec is the compression codec from the attributes.
func (h Header) Codec() Codec { return Codec(h.Attributes & attrCodecMask) }

// LogAppendTime reports whether the timestamp type bit says LogAppendTime
// (the broker's clock) rather than CreateTime (the producer's).
func (h Header) LogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// Transactional reports whether the batch belongs to a transaction.
func (h Header) Transactional() bool { return h.Attributes&attrTransactional != 0 }

// Control reports whether the batch holds control records (transaction
// markers) rather than data.
func (h Header) Control() bool { return h.Attributes&attrControl != 0 }

// DeleteHorizon reports whether the log cleaner stored a delete horizon in
// BaseTimestamp (KIP-534).
func (h Header) DeleteHorizon() bool { return h.Attributes&attrDeleteHorizon != 0 }

// HasProducerID reports whether the batch was written by an idempotent or
// transactional producer.
func (h Header) HasProducerID() bool { return h.ProducerID >= 0 }

// ParseHeader decodes the header at the start of b. b may be just the header
// (HeaderSize bytes) or a whole batch; ParseHeader does not look past the
// header, so it neither requires b to hold the whole batch nor checks the
// CRC (see Verify). Errors: ErrCorrupt when b is shorter than a header, the
// magic is unknown or batchLength is below the header's size;
// ErrLegacyMagic for magic 0 or 1.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < magicEnd {
		return Header{}, fmt.Errorf("%w: %d bytes, too short for a batch header", ErrCorrupt, len(b))
	}
	if err := checkMagic(b[offMagic]); err != nil {
		return Header{}, err
	}
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("%w: %d bytes, too short for a batch header", ErrCorrupt, len(b))
	}
	h := Header{
		BaseOffset:           int64(binary.BigEndian.Uint64(b[offBaseOffset:])),
		BatchLength:          int32(binary.BigEndian.Uint32(b[offLength:])),
		PartitionLeaderEpoch: int32(binary.BigEndian.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  binary.BigEndian.Uint32(b[offCRC:]),
		Attributes:           int16(binary.BigEndian.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:        int64(binary.BigEndian.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:         int64(binary.BigEndian.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(binary.BigEndian.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(binary.BigEndian.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(binary.BigEndian.Uint32(b[offBaseSequence:])),
		RecordCount:          int32(binary.BigEndian.Uint32(b[offRecordCount:])),
	}
	if h.BatchLength < minBatchLength {
		return Header{}, fmt.Errorf("%w: batch length %d below the minimum %d", ErrCorrupt, h.BatchLength, minBatchLength)
	}
	return h, nil
}

func checkMagic(m byte) error {
	switch int8(m) {
	case MagicV2:
		return nil
	case 0, 1:
		return fmt.Errorf("%w: magic %d", ErrLegacyMagic, m)
	}
	return fmt.Errorf("%w: unknown magic %d", ErrCorrupt, int8(m))
}

// Next splits the first batch off b, which holds one or more batches back to
// back (the records field of a produce request, or a slice of a log file).
// It checks only what is needed to find the batch's end: the length field,
// the magic, and that b holds the whole batch. Use Verify or Validate on the
// returned batch to check it. The returned slices alias b.
//
// Next returns ErrCorrupt when b is empty or shorter than the batch it
// starts, and ErrLegacyMagic (with the legacy message set's bytes as batch,
// if b holds them) for magic 0 or 1.
func Next(b []byte) (batch, rest []byte, err error) {
	if len(b) < LogOverhead {
		return nil, b, fmt.Errorf("%w: %d bytes left, too short for a batch", ErrCorrupt, len(b))
	}
	length := int32(binary.BigEndian.Uint32(b[offLength:]))
	if length < minLegacyLength {
		return nil, b, fmt.Errorf("%w: batch length %d", ErrCorrupt, length)
	}
	if len(b) < magicEnd {
		return nil, b, fmt.Errorf("%w: %d bytes left, too short for a batch", ErrCorrupt, len(b))
	}
	size := LogOverhead + int64(length)
	if err := checkMagic(b[offMagic]); err != nil {
		if int8(b[offMagic]) < MagicV2 && int8(b[offMagic]) >= 0 && int64(len(b)) >= size {
			return b[:size], b[size:], err
		}
		return nil, b, err
	}
	if length < minBatchLength {
		return nil, b, fmt.Errorf("%w: batch length %d below the minimum %d", ErrCorrupt, length, minBatchLength)
	}
	if int64(len(b)) < size {
		return nil, b, fmt.Errorf("%w: batch of %d bytes truncated to %d", ErrCorrupt, size, len(b))
	}
	return b[:size], b[size:], nil
}

// Size returns the total size of the batch starting at b from its length
// field, or -1 when b is shorter than LogOverhead.
func Size(b []byte) int64 {
	if len(b) < LogOverhead {
		return -1
	}
	return LogOverhead + int64(int32(binary.BigEndian.Uint32(b[offLength:])))
}

// CRC computes the CRC-32C (Castagnoli) that a batch's crc field must hold:
// the checksum of everything from the attributes to the end. batch must be
// at least HeaderSize bytes.
func CRC(batch []byte) uint32 {
	return crc32.Checksum(batch[offAttributes:], castagnoli)
}

// UpdateCRC recomputes and stores the batch's CRC. Call it after changing
// any byte from the attributes on. batch must be at least HeaderSize bytes.
func UpdateCRC(batch []byte) {
	binary.BigEndian.PutUint32(batch[offCRC:], CRC(batch))
}

// Payload returns the records part of a batch, compressed as the batch's
// codec says. It aliases batch.
func Payload(batch []byte) []byte { return batch[HeaderSize:] }

// SetBaseOffset stores the batch's base offset. The field is outside the CRC.
func SetBaseOffset(batch []byte, offset int64) {
	binary.BigEndian.PutUint64(batch[offBaseOffset:], uint64(offset))
}

// SetPartitionLeaderEpoch stores the leader epoch the broker appended the
// batch in. The field is outside the CRC.
func SetPartitionLeaderEpoch(batch []byte, epoch int32) {
	binary.BigEndian.PutUint32(batch[offLeaderEpoch:], uint32(epoch))
}

// SetLogAppendTime marks the batch's timestamps as LogAppendTime and sets
// its maxTimestamp to ts (milliseconds since the epoch), as a broker does for
// topics with message.timestamp.type=LogAppendTime. Both fields are covered
// by the CRC, which is recomputed. Record timestamps are left as they are:
// readers take every record's timestamp from maxTimestamp for such batches.
func SetLogAppendTime(batch []byte, ts int64) {
	attrs := binary.BigEndian.Uint16(batch[offAttributes:])
	binary.BigEndian.PutUint16(batch[offAttributes:], attrs|attrLogAppendTime)
	binary.BigEndian.PutUint64(batch[offMaxTimestamp:], uint64(ts))
	UpdateCRC(batch)
}
