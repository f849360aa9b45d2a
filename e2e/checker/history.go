// Package checker judges what happened to the records of a Kafka fault test:
// from what producers were told about their sends and what consumers read, it
// finds lost writes, duplicates, records out of order, offsets that disagree,
// skipped offsets, values nobody sent and definitely failed sends that were
// read anyway. Every fault test of brokerd's cluster (leader kill, network
// partition, rolling restart, min-ISR) records into one History and fails on
// any finding:
//
//	h := checker.New()
//	// producers: h.Send before handing a value to the client, then one of
//	// h.Acked, h.Failed or h.Indeterminate when the client answers;
//	// consumers: h.Read for every record, h.Seek when a position jumps;
//	// at the end, a reader reads each partition from its start to its high
//	// watermark, then h.ReadToEnd(topic, partition).
//	checker.Check(h).FailOn(t)
//
// The model is the Kafka workload of Jepsen: a partition is a log in which
// every offset holds at most one record, forever, and every record is a value
// that was sent exactly once. History is client-agnostic; SendRecord, Promise
// and ReadRecord adapt franz-go, and other clients need a line or two each.
//
// # Values
//
// Every value a test sends must be unique across the whole history (for
// example "p3-000123": producer 3, its 123rd send). The checker tells records
// apart by value alone, so a value sent twice is reported as an invalid
// history rather than guessed at.
//
// # Rules
//
// An acknowledged value has the (partition, offset) its producer was told. A
// value is read at a position when a reader recorded it there.
//
//   - Lost write: a value was acknowledged, no reader read it anywhere, and
//     either some reader read its partition at or past its acknowledged
//     offset, or ReadToEnd was recorded for its partition after the
//     acknowledgement. An acknowledged value that nobody read and that no
//     read covers is only counted (Summary.Unseen): the readers may simply
//     not have got there.
//   - Duplicate: a value was read at two or more distinct positions. Not
//     reported for producers marked NotIdempotent, whose retries may write a
//     value twice.
//   - Out of order: two values of one producer acknowledged in the same
//     partition, where the one sent later has the lower or equal
//     acknowledged offset. Send order is the order of the producer's Send calls; offsets
//     are the acknowledged ones. Only acknowledged values count, and
//     producers marked NotIdempotent are left out.
//   - Disagreeing offsets: readers read two or more different values at one
//     position; or an acknowledged value was read, but never at its
//     acknowledged position.
//   - Skipped offsets: a reader, reading a partition, went from one offset to
//     a higher one past offsets at which some reader (itself included, at
//     another time) read a value. A reader's first read of a partition and a
//     read after Seek with UnknownOffset start a new run and are not checked;
//     after Seek to a known offset the run starts there. A read at or below
//     the previous one (a rewind, a redelivery) starts a new run as well.
//     Offsets at which nobody read a value (control batches, compacted or
//     aborted records) are gaps, not skips.
//   - Phantom: a value was read that no producer sent.
//   - Failed write read: a value whose send failed definitely (the client
//     said it was not written) was read. Kafka must not expose such a record.
//   - Invalid history: the recording broke the rules above (a value sent
//     twice, an outcome for a value never sent, two outcomes for one value);
//     such values are not judged further.
//
// A send with no outcome by the time of Check counts as indeterminate.
// Indeterminate values may be read or not, at any position: nothing is
// reported about them except duplicates and disagreeing offsets among reads.
//
// Check sorts the history a few times and is O(n log n) in the number of
// events.
package checker

import (
	"maps"
	"sync"
	"time"
)

// UnknownOffset, passed to Seek, says the reader's next position in the
// partition is not known (for example a consumer group assigned it the
// partition at its committed offset).
const UnknownOffset int64 = -1

// outcomeKind is what a producer was told about a send.
type outcomeKind uint8

const (
	acked outcomeKind = iota + 1
	failed
	indeterminate
)

// Events are kept in one slice per kind. seq is the order in which events
// were recorded (one counter for all kinds) and at their time since New.
// Names of producers, readers and topics are interned into History.names.
type sendEvent struct {
	seq      int64
	at       time.Duration
	producer int32
	topic    int32
	key      string
	value    string
}

type outcomeEvent struct {
	seq       int64
	at        time.Duration
	kind      outcomeKind
	partition int32
	offset    int64
	value     string
	err       string
}

// readEvent is a read, or with seek set, a Seek of the reader.
type readEvent struct {
	seq       int64
	at        time.Duration
	reader    int32
	topic     int32
	partition int32
	seek      bool
	offset    int64
	value     string
}

type endEvent struct {
	seq       int64
	at        time.Duration
	topic     int32
	partition int32
}

// History records what the producers and consumers of a test did. It is
// safe for concurrent use by any number of goroutines. Create it with New.
type History struct {
	start time.Time

	mu       sync.Mutex
	seq      int64
	names    []string
	ids      map[string]int32
	sends    []sendEvent
	outcomes []outcomeEvent
	reads    []readEvent
	ends     []endEvent
	loose    map[int32]bool // producers marked NotIdempotent
}

// New returns an empty History whose clock starts now; findings give times
// relative to it.
func New() *History {
	return &History{start: time.Now(), ids: map[string]int32{}, loose: map[int32]bool{}}
}

// next returns the sequence number and time of a new event; h.mu is held.
func (h *History) next() (int64, time.Duration) {
	h.seq++
	return h.seq, time.Since(h.start)
}

// id interns a producer, reader or topic name; h.mu is held.
func (h *History) id(name string) int32 {
	if id, ok := h.ids[name]; ok {
		return id
	}
	id := int32(len(h.names))
	h.names = append(h.names, name)
	h.ids[name] = id
	return id
}

// Send records that producer is about to send value to topic, with key (""
// for none). Call it before handing the value to the client, from the
// goroutine that hands the producer's values over, so that the order of one
// producer's Send calls is the order its client got the values in. The
// value must be unique in the history.
func (h *History) Send(producer, topic, key, value string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	seq, at := h.next()
	h.sends = append(h.sends, sendEvent{seq: seq, at: at, producer: h.id(producer), topic: h.id(topic), key: key, value: value})
}

// NotIdempotent marks producer as one whose client may write a value twice
// or reorder values on retries (a producer without idempotence and with
// more than one request in flight): its values are not checked for
// duplicates or order.
func (h *History) NotIdempotent(producer string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.loose[h.id(producer)] = true
}

// Acked records that the client acknowledged value as written at offset in
// partition of the topic it was sent to.
func (h *History) Acked(value string, partition int32, offset int64) {
	h.outcome(outcomeEvent{kind: acked, partition: partition, offset: offset, value: value})
}

// Failed records that the client reported the send of value as definitely
// not written (the broker rejected it before appending, for example with
// NOT_ENOUGH_REPLICAS). err is kept for the report and may be nil.
func (h *History) Failed(value string, err error) {
	h.outcome(outcomeEvent{kind: failed, value: value, err: errText(err)})
}

// Indeterminate records that the send of value ended without telling
// whether it was written (a timeout, a lost connection, a client closed
// with the value in flight). err is kept for the report and may be nil.
func (h *History) Indeterminate(value string, err error) {
	h.outcome(outcomeEvent{kind: indeterminate, value: value, err: errText(err)})
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func (h *History) outcome(e outcomeEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e.seq, e.at = h.next()
	h.outcomes = append(h.outcomes, e)
}

// Read records that reader read value at offset in partition of topic. A
// reader is one sequential stream of records from the client (one consumer
// client, or one goroutine per partition): it must record its reads in the
// order the client delivered them.
func (h *History) Read(reader, topic string, partition int32, offset int64, value string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	seq, at := h.next()
	h.reads = append(h.reads, readEvent{seq: seq, at: at, reader: h.id(reader), topic: h.id(topic), partition: partition, offset: offset, value: value})
}

// Seek records that reader's next read of partition of topic does not
// continue from its previous one: the partition was (re)assigned to it, it
// seeked, or its client restarted. offset is where the next read should
// start (0 for a reader starting at the beginning of a log that was never
// truncated at the front), or UnknownOffset. A consumer group member
// records a Seek for each partition it is assigned; with franz-go it uses
// kgo.BlockRebalanceOnPoll and allows rebalances between polls, so that no
// record fetched before an assignment is recorded after its Seek.
func (h *History) Seek(reader, topic string, partition int32, offset int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	seq, at := h.next()
	h.reads = append(h.reads, readEvent{seq: seq, at: at, reader: h.id(reader), topic: h.id(topic), partition: partition, seek: true, offset: offset})
}

// ReadToEnd records that the reads recorded so far cover the whole log of
// partition of topic as it now stands: typically a final reader, after the
// faults healed and the producers stopped, read it from its beginning up to
// its high watermark. From then on, every value acknowledged in the
// partition before this call and read by nobody is a lost write; so are
// records removed from the front of the log (retention, DeleteRecords)
// before anyone read them.
func (h *History) ReadToEnd(topic string, partition int32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	seq, at := h.next()
	h.ends = append(h.ends, endEvent{seq: seq, at: at, topic: h.id(topic), partition: partition})
}

// snapshot is a consistent copy of a History for Check. The event slices
// share their arrays with the History: recording only appends past their
// lengths, so reading them needs no lock.
type snapshot struct {
	names    []string
	sends    []sendEvent
	outcomes []outcomeEvent
	reads    []readEvent
	ends     []endEvent
	loose    map[int32]bool
}

func (h *History) snapshot() snapshot {
	h.mu.Lock()
	defer h.mu.Unlock()
	return snapshot{
		names:    h.names[:len(h.names):len(h.names)],
		sends:    h.sends[:len(h.sends):len(h.sends)],
		outcomes: h.outcomes[:len(h.outcomes):len(h.outcomes)],
		reads:    h.reads[:len(h.reads):len(h.reads)],
		ends:     h.ends[:len(h.ends):len(h.ends)],
		loose:    maps.Clone(h.loose),
	}
}
