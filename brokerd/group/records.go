package group

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/recordbatch"
)

// The record schemas of __consumer_offsets, as Kafka writes them, so that
// Kafka's tools (kafka-console-consumer with the offsets formatters,
// kafka-dump-log --offsets-decoder) read brokerd's groups:
//
//	key version 0 or 1: OffsetCommitKey (group, topic, partition);
//	    value OffsetCommitValue v3 (v1 when the commit has an expiry)
//	key version 2:      GroupMetadataKey (group);
//	    value GroupMetadataValue v3
//
// A null value is a tombstone: the offset, or the whole group, is gone.
// Keys of other versions (KIP-848 consumer groups, share groups, written
// by newer Kafka) are skipped when loading.
const (
	offsetKeyVersion     = 1
	offsetValueVersion   = 3
	offsetValueExpiring  = 1
	groupKeyVersion      = 2
	groupValueVersion    = 3
	readChunk            = 1 << 20
	compressionCodecMask = 0x07
)

// Record is one key/value record of __consumer_offsets. A nil Value is a
// tombstone.
type Record struct {
	Key, Value []byte
}

// TopicPartition names a partition of a topic.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// Offset is a committed offset.
type Offset struct {
	Offset      int64
	LeaderEpoch int32 // -1 when unknown
	Metadata    string
	// CommitTime is when the commit was stored; ExpireTime, when not
	// zero, when it expires (a commit that asked for its own retention,
	// OffsetCommit v2–v4).
	CommitTime time.Time
	ExpireTime time.Time
}

func offsetKey(group string, tp TopicPartition) []byte {
	k := kmsg.OffsetCommitKey{Version: offsetKeyVersion, Group: group, Topic: tp.Topic, Partition: tp.Partition}
	return k.AppendTo(nil)
}

func offsetValue(o Offset) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = offsetValueVersion
	v.Offset = o.Offset
	v.LeaderEpoch = o.LeaderEpoch
	v.Metadata = o.Metadata
	v.CommitTimestamp = o.CommitTime.UnixMilli()
	if !o.ExpireTime.IsZero() {
		v.Version = offsetValueExpiring
		v.ExpireTimestamp = o.ExpireTime.UnixMilli()
	}
	return v.AppendTo(nil)
}

func groupKey(group string) []byte {
	k := kmsg.GroupMetadataKey{Version: groupKeyVersion, Group: group}
	return k.AppendTo(nil)
}

// BuildBatch returns recs as one uncompressed v2 record batch with base
// offset 0, ready for the leader's append (which assigns the offsets).
func BuildBatch(recs []Record, now time.Time) []byte {
	ts := now.UnixMilli()
	var payload []byte
	for i, r := range recs {
		payload = recordbatch.AppendRecord(payload, kmsg.Record{OffsetDelta: int32(i), Key: r.Key, Value: r.Value})
	}
	return recordbatch.Build(recordbatch.Header{
		LastOffsetDelta: int32(len(recs) - 1),
		BaseTimestamp:   ts,
		MaxTimestamp:    ts,
		ProducerID:      -1,
		ProducerEpoch:   -1,
		BaseSequence:    -1,
		RecordCount:     int32(len(recs)),
	}, payload)
}

// loadedGroup is what the log says of one group so far.
type loadedGroup struct {
	meta    *kmsg.GroupMetadataValue
	offsets map[TopicPartition]Offset
}

// Loader rebuilds the groups of one __consumer_offsets partition from its
// records, read from the log start in order. The zero value is not
// usable; call NewLoader.
type Loader struct {
	groups map[string]*loadedGroup
	// Skipped counts records whose key was of an unknown kind.
	Skipped int
	decomp  kgo.Decompressor
}

// NewLoader returns an empty Loader.
func NewLoader() *Loader {
	return &Loader{groups: map[string]*loadedGroup{}, decomp: kgo.DefaultDecompressor()}
}

func (l *Loader) group(id string) *loadedGroup {
	g := l.groups[id]
	if g == nil {
		g = &loadedGroup{offsets: map[TopicPartition]Offset{}}
		l.groups[id] = g
	}
	return g
}

// AddBatches applies every record of data, one or more whole batches back
// to back as the log stores them. It returns the offset that follows the
// last batch. Control batches are skipped.
func (l *Loader) AddBatches(data []byte) (next int64, err error) {
	next = -1
	for len(data) > 0 {
		batch, rest, err := recordbatch.Next(data)
		if err != nil {
			return next, fmt.Errorf("group: reading __consumer_offsets: %w", err)
		}
		data = rest
		h, err := recordbatch.Verify(batch)
		if err != nil {
			return next, fmt.Errorf("group: reading __consumer_offsets: %w", err)
		}
		next = h.NextOffset()
		if h.Control() {
			continue
		}
		payload := recordbatch.Payload(batch)
		if codec := h.Codec(); codec != recordbatch.CodecNone {
			payload, err = l.decomp.Decompress(payload, kgo.CompressionCodecType(codec&compressionCodecMask))
			if err != nil {
				return next, fmt.Errorf("group: decompressing __consumer_offsets batch at %d: %w", h.BaseOffset, err)
			}
		}
		for len(payload) > 0 {
			raw, rest, err := recordbatch.NextRecord(payload)
			if err != nil {
				return next, fmt.Errorf("group: record in batch at %d: %w", h.BaseOffset, err)
			}
			payload = rest
			var r kmsg.Record
			if err := r.ReadFrom(raw); err != nil {
				return next, fmt.Errorf("group: record in batch at %d: %w", h.BaseOffset, err)
			}
			if err := l.AddRecord(r.Key, r.Value); err != nil {
				return next, fmt.Errorf("group: record at %d: %w", h.BaseOffset+int64(r.OffsetDelta), err)
			}
		}
	}
	return next, nil
}

// AddRecord applies one record. A nil value is a tombstone.
func (l *Loader) AddRecord(key, value []byte) error {
	if len(key) < 2 {
		return fmt.Errorf("group: key of %d bytes", len(key))
	}
	switch binary.BigEndian.Uint16(key) {
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			return fmt.Errorf("group: offset commit key: %w", err)
		}
		tp := TopicPartition{k.Topic, k.Partition}
		if value == nil {
			if g := l.groups[k.Group]; g != nil {
				delete(g.offsets, tp)
			}
			return nil
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(value); err != nil {
			return fmt.Errorf("group: offset commit value: %w", err)
		}
		o := Offset{Offset: v.Offset, LeaderEpoch: -1, Metadata: v.Metadata, CommitTime: time.UnixMilli(v.CommitTimestamp)}
		if v.Version >= 3 {
			o.LeaderEpoch = v.LeaderEpoch
		}
		if v.Version == 1 && v.ExpireTimestamp >= 0 {
			o.ExpireTime = time.UnixMilli(v.ExpireTimestamp)
		}
		l.group(k.Group).offsets[tp] = o
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return fmt.Errorf("group: group metadata key: %w", err)
		}
		if value == nil {
			// Offsets have tombstones of their own; as in Kafka, a
			// group tombstone removes only the group's metadata.
			if g := l.groups[k.Group]; g != nil {
				g.meta = nil
			}
			return nil
		}
		v := new(kmsg.GroupMetadataValue)
		if err := v.ReadFrom(value); err != nil {
			return fmt.Errorf("group: group metadata value: %w", err)
		}
		l.group(k.Group).meta = v
	default:
		l.Skipped++
	}
	return nil
}

// Groups returns the groups loaded, as Groups that report to out. Groups
// with members come back Stable with their generation and assignments,
// and their members' sessions restart at now, as Kafka does on loading:
// members that are still alive carry on heartbeating without a rebalance,
// the others expire.
func (l *Loader) Groups(now time.Time, cfg *Config, out *Outbox) map[string]*Group {
	gs := make(map[string]*Group, len(l.groups))
	for id, lg := range l.groups {
		if lg.meta == nil && len(lg.offsets) == 0 {
			continue
		}
		gs[id] = restore(id, cfg, out, now, lg.meta, lg.offsets)
	}
	return gs
}
