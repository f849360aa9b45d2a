package recordbatch

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// AppendRecord appends r's wire encoding to dst, computing r's length field
// (the caller need not set r.Length). It is the inverse of NextRecord plus
// kmsg.Record.ReadFrom.
func AppendRecord(dst []byte, r kmsg.Record) []byte {
	r.Length = 0
	body := r.AppendTo(nil)[1:] // a zero varint is one byte
	dst = binary.AppendVarint(dst, int64(len(body)))
	return append(dst, body...)
}

// Build returns a v2 batch with h's fields and the given records payload,
// which must already be compressed with the codec in h.Attributes (see
// AppendRecord for the uncompressed form). Build sets Magic and BatchLength
// from the payload and computes the CRC; h.CRC, h.Magic and h.BatchLength are
// ignored.
func Build(h Header, payload []byte) []byte {
	rb := kmsg.RecordBatch{
		FirstOffset:          h.BaseOffset,
		Length:               int32(minBatchLength + len(payload)),
		PartitionLeaderEpoch: h.PartitionLeaderEpoch,
		Magic:                MagicV2,
		Attributes:           h.Attributes,
		LastOffsetDelta:      h.LastOffsetDelta,
		FirstTimestamp:       h.BaseTimestamp,
		MaxTimestamp:         h.MaxTimestamp,
		ProducerID:           h.ProducerID,
		ProducerEpoch:        h.ProducerEpoch,
		FirstSequence:        h.BaseSequence,
		NumRecords:           h.RecordCount,
		Records:              payload,
	}
	out := rb.AppendTo(make([]byte, 0, HeaderSize+len(payload)))
	UpdateCRC(out)
	return out
}
