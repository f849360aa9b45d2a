package storage

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Kafka's defaults for the topic settings Config mirrors.
const (
	DefaultSegmentBytes       = 1 << 30 // segment.bytes: 1 GiB
	DefaultSegmentAge         = 7 * 24 * time.Hour
	DefaultRetention          = 7 * 24 * time.Hour // retention.ms (log.retention.hours=168)
	DefaultIndexIntervalBytes = 4096               // index.interval.bytes
	DefaultMaxMessageBytes    = 1048588            // max.message.bytes
	DefaultDeleteRetention    = 24 * time.Hour     // delete.retention.ms
)

// Cleanup policies (cleanup.policy).
const (
	PolicyDelete        = "delete"
	PolicyCompact       = "compact"
	PolicyCompactDelete = "compact,delete"
)

// Config holds one partition's log settings. Each field carries the Kafka
// topic setting it mirrors. A zero field means Kafka's default, so Config{}
// behaves like a topic created with no overrides.
type Config struct {
	// SegmentBytes is segment.bytes: a segment is rolled before an append
	// would take it past this size. Default 1 GiB; at most 2^31-1 because
	// index positions are 32-bit.
	SegmentBytes int64
	// SegmentAge is segment.ms: a non-empty segment is rolled once this long
	// has passed since its first append (by the broker's clock). Default
	// 7 days.
	SegmentAge time.Duration
	// Retention is retention.ms: with the delete policy, a segment whose
	// newest timestamp is older than this is deleted. Default 7 days;
	// negative means keep forever.
	Retention time.Duration
	// RetentionBytes is retention.bytes: with the delete policy, the oldest
	// segments are deleted while the log would stay at least this large
	// without them. Zero or negative means no limit (Kafka's default -1).
	RetentionBytes int64
	// IndexIntervalBytes is index.interval.bytes: an offset and a time
	// index entry are added whenever more than this many bytes were appended
	// since the last entry. Default 4096.
	IndexIntervalBytes int
	// MaxMessageBytes is max.message.bytes: the largest batch a producer may
	// append. Default 1048588.
	MaxMessageBytes int
	// FlushMessages is flush.messages: fsync after this many records.
	// Zero (the default, like Kafka's Long.MAX_VALUE) never forces a flush.
	FlushMessages int64
	// FlushInterval is flush.ms: fsync when an append finds the last flush older
	// than this. Zero (the default) never forces a flush. Durability then
	// comes from replication and acks; segments are fsynced when rolled
	// and when the log is closed, as in Kafka.
	FlushInterval time.Duration
	// CleanupPolicy is cleanup.policy: PolicyDelete (default),
	// PolicyCompact or PolicyCompactDelete.
	CleanupPolicy string
	// DeleteRetention is delete.retention.ms: how long the cleaner keeps
	// a tombstone (a record with a null value) after its batch's newest
	// timestamp. Default 1 day.
	DeleteRetention time.Duration
	// MinCompactionLag is min.compaction.lag.ms: segments holding a
	// timestamp newer than this are not compacted yet. Default 0.
	MinCompactionLag time.Duration
	// LogAppendTime is message.timestamp.type=LogAppendTime: the leader
	// stamps each batch with its own clock. Default false (CreateTime).
	LogAppendTime bool
	// TimestampBeforeMax is message.timestamp.before.max.ms and
	// TimestampAfterMax message.timestamp.after.max.ms: how far a producer's
	// CreateTime timestamp may lie in the past or future. Zero means no
	// limit.
	TimestampBeforeMax time.Duration
	TimestampAfterMax  time.Duration
	// Clock tells the time where no caller passes it (follower appends,
	// flush.ms). Nil means time.Now. Tests inject a fake clock here.
	Clock func() time.Time
}

// withDefaults returns c with zero fields set to Kafka's defaults.
func (c Config) withDefaults() Config {
	if c.SegmentBytes == 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	if c.SegmentAge == 0 {
		c.SegmentAge = DefaultSegmentAge
	}
	if c.Retention == 0 {
		c.Retention = DefaultRetention
	}
	if c.RetentionBytes == 0 {
		c.RetentionBytes = -1
	}
	if c.IndexIntervalBytes == 0 {
		c.IndexIntervalBytes = DefaultIndexIntervalBytes
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.CleanupPolicy == "" {
		c.CleanupPolicy = PolicyDelete
	}
	if c.DeleteRetention == 0 {
		c.DeleteRetention = DefaultDeleteRetention
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}

// Validate reports every setting out of range, joined into one error.
// Zero fields are valid (they mean the default).
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("storage: "+format, args...))
	}
	if c.SegmentBytes < 0 || c.SegmentBytes > math.MaxInt32 {
		bad("segment.bytes %d out of range [1, %d]", c.SegmentBytes, math.MaxInt32)
	} else if c.SegmentBytes != 0 && c.SegmentBytes < 61 {
		bad("segment.bytes %d is smaller than one batch header", c.SegmentBytes)
	}
	if c.SegmentAge < 0 {
		bad("segment.ms %v is negative", c.SegmentAge)
	}
	if c.IndexIntervalBytes < 0 {
		bad("index.interval.bytes %d is negative", c.IndexIntervalBytes)
	}
	if c.MaxMessageBytes < 0 {
		bad("max.message.bytes %d is negative", c.MaxMessageBytes)
	}
	if c.FlushMessages < 0 {
		bad("flush.messages %d is negative", c.FlushMessages)
	}
	if c.FlushInterval < 0 {
		bad("flush.ms %v is negative", c.FlushInterval)
	}
	if c.DeleteRetention < 0 {
		bad("delete.retention.ms %v is negative", c.DeleteRetention)
	}
	if c.MinCompactionLag < 0 {
		bad("min.compaction.lag.ms %v is negative", c.MinCompactionLag)
	}
	if c.TimestampBeforeMax < 0 || c.TimestampAfterMax < 0 {
		bad("message.timestamp.before/after.max.ms must not be negative")
	}
	switch strings.ReplaceAll(c.CleanupPolicy, " ", "") {
	case "", PolicyDelete, PolicyCompact, PolicyCompactDelete, "delete,compact":
	default:
		bad("cleanup.policy %q is not delete, compact or compact,delete", c.CleanupPolicy)
	}
	return errors.Join(errs...)
}

func (c Config) deletes() bool { return strings.Contains(c.CleanupPolicy, PolicyDelete) }

func (c Config) compacts() bool { return strings.Contains(c.CleanupPolicy, PolicyCompact) }
