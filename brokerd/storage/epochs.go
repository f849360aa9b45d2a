package storage

import (
	"fmt"
	"strconv"
)

// EpochEntry says that leader epoch Epoch wrote its first record at
// StartOffset.
type EpochEntry struct {
	Epoch       int32
	StartOffset int64
}

// UndefinedEpoch and UndefinedEpochOffset are Kafka's answers of
// OffsetForLeaderEpoch when nothing is known (-1 and -1).
const (
	UndefinedEpoch       = -1
	UndefinedEpochOffset = -1
)

// epochCache is Kafka's leader epoch cache: a list of (epoch, start offset)
// with both fields strictly increasing. It does no I/O; the Log persists it.
//
// Invariant: entries[i].Epoch < entries[i+1].Epoch and
// entries[i].StartOffset < entries[i+1].StartOffset.
type epochCache struct {
	entries []EpochEntry
}

// assign records that epoch starts at start. Entries that would break the
// invariant (an epoch at or above epoch, or a start at or above start) are
// dropped first, as Kafka does. Assigning the latest epoch again with the
// same or a later start is a no-op. It reports whether anything changed.
func (c *epochCache) assign(epoch int32, start int64) bool {
	if n := len(c.entries); n > 0 {
		last := c.entries[n-1]
		if last.Epoch == epoch && start >= last.StartOffset {
			return false
		}
	}
	i := len(c.entries)
	for i > 0 && (c.entries[i-1].Epoch >= epoch || c.entries[i-1].StartOffset >= start) {
		i--
	}
	c.entries = append(c.entries[:i:i], EpochEntry{epoch, start})
	return true
}

// latest returns the newest entry.
func (c *epochCache) latest() (EpochEntry, bool) {
	if len(c.entries) == 0 {
		return EpochEntry{}, false
	}
	return c.entries[len(c.entries)-1], true
}

// endOffsetFor answers OffsetForLeaderEpoch: the largest known epoch at or
// below the requested one, and where it ended (the start of the next
// epoch, or logEnd for the latest). See Kafka's
// LeaderEpochFileCache.endOffsetFor for the cases.
func (c *epochCache) endOffsetFor(epoch int32, logEnd int64) (int32, int64) {
	if epoch == UndefinedEpoch || len(c.entries) == 0 {
		return UndefinedEpoch, UndefinedEpochOffset
	}
	last := c.entries[len(c.entries)-1]
	if epoch == last.Epoch {
		return epoch, logEnd
	}
	// The first entry with an epoch above the requested one.
	hi := len(c.entries)
	for i, e := range c.entries {
		if e.Epoch > epoch {
			hi = i
			break
		}
	}
	if hi == len(c.entries) {
		return UndefinedEpoch, UndefinedEpochOffset
	}
	if hi == 0 {
		return epoch, c.entries[0].StartOffset
	}
	return c.entries[hi-1].Epoch, c.entries[hi].StartOffset
}

// truncateFromEnd drops entries starting at or after end (follower
// truncation to end).
func (c *epochCache) truncateFromEnd(end int64) bool {
	n := len(c.entries)
	for n > 0 && c.entries[n-1].StartOffset >= end {
		n--
	}
	changed := n != len(c.entries)
	c.entries = c.entries[:n:n]
	return changed
}

// truncateFromStart drops entries wholly below start: the newest entry
// starting at or before start is kept with its start moved up to start.
func (c *epochCache) truncateFromStart(start int64) bool {
	i := 0
	for i < len(c.entries) && c.entries[i].StartOffset <= start {
		i++
	}
	if i == 0 {
		return false
	}
	keep := c.entries[i-1]
	if i == 1 && keep.StartOffset == start {
		return false
	}
	rest := append([]EpochEntry{{keep.Epoch, start}}, c.entries[i:]...)
	c.entries = rest
	return true
}

func (c *epochCache) clear() bool {
	changed := len(c.entries) > 0
	c.entries = nil
	return changed
}

func (c *epochCache) snapshot() []EpochEntry {
	return append([]EpochEntry(nil), c.entries...)
}

// encode renders the cache as leader-epoch-checkpoint.
func (c *epochCache) encode() []byte {
	lines := make([][]string, len(c.entries))
	for i, e := range c.entries {
		lines[i] = []string{strconv.FormatInt(int64(e.Epoch), 10), strconv.FormatInt(e.StartOffset, 10)}
	}
	return encodeCheckpoint(lines)
}

// loadEpochCache reads dir's leader-epoch-checkpoint; a missing file gives
// an empty cache.
func loadEpochCache(files *FileCache, dir string) (epochCache, error) {
	lines, _, err := readCheckpoint(files, dir, epochCheckpointName, 2)
	if err != nil {
		return epochCache{}, err
	}
	var c epochCache
	for _, l := range lines {
		e, err1 := strconv.ParseInt(l[0], 10, 32)
		o, err2 := strconv.ParseInt(l[1], 10, 64)
		if err1 != nil || err2 != nil || e < 0 || o < 0 {
			return epochCache{}, fmt.Errorf("%w: %s: bad entry %q", ErrCorruptLog, epochCheckpointName, l)
		}
		c.assign(int32(e), o)
	}
	return c, nil
}
