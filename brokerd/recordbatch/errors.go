package recordbatch

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Sentinel errors. Functions wrap them with details (%w); test with
// errors.Is and map to a Kafka error code with ErrorCode.
var (
	// ErrCorrupt means the bytes are not a well-formed batch: truncated,
	// a length field out of bounds, an unknown magic. Kafka: CORRUPT_MESSAGE.
	ErrCorrupt = errors.New("recordbatch: corrupt batch")
	// ErrCRC means the stored CRC-32C does not match the batch's bytes.
	// Kafka: CORRUPT_MESSAGE.
	ErrCRC = errors.New("recordbatch: crc mismatch")
	// ErrLegacyMagic means a magic 0 or 1 message set, which this broker does
	// not store. Kafka refuses such data in produce requests v3 and later
	// with INVALID_RECORD ("only allowed to contain record batches with
	// magic version 2"), which is what ErrorCode returns.
	ErrLegacyMagic = errors.New("recordbatch: legacy message format (magic 0 or 1) is not supported")
	// ErrInvalidRecord means a well-formed batch that breaks a produce rule:
	// record count inconsistent with the offset range, a non-zero base
	// offset, control records from a client, a producer id without a
	// sequence. Kafka: INVALID_RECORD.
	ErrInvalidRecord = errors.New("recordbatch: invalid record batch")
	// ErrUnsupportedCodec means compression codec bits 5 to 7.
	// Kafka: UNSUPPORTED_COMPRESSION_TYPE.
	ErrUnsupportedCodec = errors.New("recordbatch: unsupported compression codec")
	// ErrInvalidTimestamp means timestamps below -1, a max timestamp below
	// the base timestamp, timestamps outside the configured window, or a
	// producer that set the LogAppendTime bit. Kafka: INVALID_TIMESTAMP.
	ErrInvalidTimestamp = errors.New("recordbatch: invalid timestamp")
	// ErrTooLarge means a batch above the size limit (max.message.bytes).
	// Kafka: MESSAGE_TOO_LARGE.
	ErrTooLarge = errors.New("recordbatch: batch too large")
)

// ErrorCode returns the Kafka error code for err: 0 for nil, the code of
// the sentinel err wraps, or UNKNOWN_SERVER_ERROR (-1) for anything else.
func ErrorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrCorrupt), errors.Is(err, ErrCRC):
		return kerr.CorruptMessage.Code
	case errors.Is(err, ErrLegacyMagic), errors.Is(err, ErrInvalidRecord):
		return kerr.InvalidRecord.Code
	case errors.Is(err, ErrUnsupportedCodec):
		return kerr.UnsupportedCompressionType.Code
	case errors.Is(err, ErrInvalidTimestamp):
		return kerr.InvalidTimestamp.Code
	case errors.Is(err, ErrTooLarge):
		return kerr.MessageTooLarge.Code
	}
	return kerr.UnknownServerError.Code
}
