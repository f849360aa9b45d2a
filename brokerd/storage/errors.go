package storage

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"

	"logpipe/brokerd/recordbatch"
)

// Sentinel errors; functions wrap them with details (%w).
var (
	// ErrOffsetOutOfRange means an offset below the log start offset or
	// above the log end offset. Kafka: OFFSET_OUT_OF_RANGE.
	ErrOffsetOutOfRange = errors.New("storage: offset out of range")
	// ErrClosed means the log was closed or deleted.
	ErrClosed = errors.New("storage: log closed")
	// ErrRecordListTooLarge means one append larger than segment.bytes.
	// Kafka: RECORD_LIST_TOO_LARGE.
	ErrRecordListTooLarge = errors.New("storage: append larger than a segment")
	// ErrUnexpectedOffset means a follower append whose offsets do not
	// continue the log (below the log end offset, or not increasing).
	ErrUnexpectedOffset = errors.New("storage: unexpected offset in follower append")
	// ErrStaleEpoch means an append or epoch assignment with a leader epoch
	// older than the newest one in the leader epoch cache.
	// Kafka: FENCED_LEADER_EPOCH.
	ErrStaleEpoch = errors.New("storage: stale leader epoch")
	// ErrCorruptLog means on-disk data that recovery cannot repair by
	// cutting a torn tail (for example an unreadable checkpoint file).
	ErrCorruptLog = errors.New("storage: corrupt log")
)

// ErrorCode returns the Kafka error code for an error from this package:
// 0 for nil, the matching code for the sentinels here and in recordbatch,
// NOT_LEADER_OR_FOLLOWER for a closed log, and KAFKA_STORAGE_ERROR for
// anything else (I/O failures).
func ErrorCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, ErrRecordListTooLarge):
		return kerr.RecordListTooLarge.Code
	case errors.Is(err, ErrStaleEpoch):
		return kerr.FencedLeaderEpoch.Code
	case errors.Is(err, ErrClosed):
		return kerr.NotLeaderForPartition.Code
	}
	if c := recordbatch.ErrorCode(err); c != kerr.UnknownServerError.Code {
		return c
	}
	return kerr.KafkaStorageError.Code
}
