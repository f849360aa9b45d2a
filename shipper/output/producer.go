package output

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// The producer: sarama's client finds the partitions and their leaders and
// keeps the connections (TLS, SASL); the batching, the requests and the
// idempotent producer's sequence numbers are done here. With the
// idempotent producer on, up to maxIdempotentInFlight requests are in
// flight to each broker, which a broker keeps in order and de-duplicates;
// sarama's own asynchronous producer allows only one, and passes every
// event through four goroutines.
//
// One goroutine (the engine, run by Kafka.Run) owns all the state below.
// Each broker has a sender goroutine that encodes and writes its requests
// in order; sarama calls back with the answers, which come to the engine
// as events, as do the answers to metadata look-ups, which run on
// goroutines of their own because they may block.

// maxIdempotentInFlight is the most produce requests in flight to one
// broker with the idempotent producer: a broker remembers the last five
// batches of each producer and partition, so a batch sent again within
// them is recognised as a duplicate.
const maxIdempotentInFlight = 5

// batchRecordOverhead is about the most a record adds to its key and value
// in a record batch (its length, attributes, timestamp and offset deltas,
// key and value lengths, header count), for sizing batches.
const batchRecordOverhead = 32

// maxRequestBytes bounds the batches put into one produce request (a
// request takes at least one batch, however big).
const maxRequestBytes = 8 << 20

// batch is a record batch for one partition: messages in the order they
// were published, and once closed its sequence numbers and sarama's
// encoding of it, which a resend uses again.
type batch struct {
	part *partState
	msgs *[]*message
	// bytes estimates the batch's size in a request.
	bytes int
	// deadline is when an open batch is closed however full it is.
	deadline time.Time
	// order is the batch's place among its partition's batches.
	order uint64
	rb    *sarama.RecordBatch
	recs  *[]sarama.Record
	ptrs  *[]*sarama.Record
	sent  int // times sent
}

var (
	msgPtrPool = sizePool[*message]{minShift: 4, maxShift: 12}
	recordPool = sizePool[sarama.Record]{minShift: 4, maxShift: 12}
	recPtrPool = sizePool[*sarama.Record]{minShift: 4, maxShift: 12}
)

// release gives the batch's slices back to their pools.
func (b *batch) release() {
	clear(*b.msgs)
	msgPtrPool.put(b.msgs)
	if b.recs != nil {
		clear(*b.recs)
		recordPool.put(b.recs)
		clear(*b.ptrs)
		recPtrPool.put(b.ptrs)
	}
	*b = batch{}
}

// topicState is what the engine knows of a topic.
type topicState struct {
	name  string
	parts []*partState // by partition id
	// writable are the partitions with a leader, for the partitioners
	// that may pick any partition.
	writable []int32
	// lookingUp says a metadata look-up for the topic is running, or
	// waits for lookAgain.
	lookingUp bool
	// lookAgain, when set, is when a look-up that found no partitions is
	// tried again.
	lookAgain time.Time
	// rr and count are the round-robin and random partitioners' place:
	// the partition (index) and how many events it has had in a row.
	rr, count int
}

// partState is one partition's producer state.
type partState struct {
	topic  *topicState
	id     int32
	leader *brokerState // nil while not known
	open   *batch       // the batch being filled
	ready  []*batch     // closed and not in flight, by order
	// inflight counts the partition's batches in flight.
	inflight int
	// known says a batch numbered under the current producer id has been
	// acknowledged, so the partition's leader holds the producer's state.
	// Until then one batch is in flight at a time: a broker writes a
	// batch of a producer it has no state for whatever its sequence
	// number, so a later batch could be written before an earlier one
	// that failed (a new leader not ready yet), and a file's lines would
	// be out of order. It is forgotten once the partition has had nothing
	// acknowledged for producerStateIdle.
	known bool
	// ackedAt is when a batch numbered under the current producer id was
	// last acknowledged.
	ackedAt time.Time
	nextSeq int32
	order   uint64
	// failed says a batch failed: nothing more is sent until the batches
	// in flight have answered, the backoff has passed and the leader has
	// been looked up again.
	failed bool
	// awaiting says a look-up is running for the failed partition's retry.
	awaiting bool
	retryAt  time.Time
	backoff  time.Duration
}

// producerStateIdle is how long after its last acknowledgement a
// partition's leader is no longer trusted to hold the producer's state
// (partState.known). Kafka drops an idle producer's state after
// producer.id.expiration.ms (a day by default) and then takes any sequence
// number from it, as from a new producer. Forgetting much sooner costs one
// round trip after each pause, when the first batch goes alone.
const producerStateIdle = time.Minute

// brokerState is a broker connection the engine sends requests to.
type brokerState struct {
	b        *sarama.Broker
	parts    []*partState // partitions it leads
	inflight int
	next     int // partition to start the next request from, for fairness
	queue    chan sendItem
	closing  bool // a close is queued after a network error
}

// sendItem is a request for a broker's sender, or an order to close the
// connection (req nil).
type sendItem struct {
	req     *sarama.ProduceRequest
	batches []*batch
}

// answer is the broker's answer to a request, or the error that kept it
// from coming.
type answer struct {
	broker  *brokerState
	batches []*batch
	resp    *sarama.ProduceResponse
	err     error
}

// metaAnswer is the answer to a topic's metadata look-up.
type metaAnswer struct {
	topic    *topicState
	parts    []int32
	writable []int32
	leaders  map[int32]*sarama.Broker
	err      error
}

// producerID is the answer to an InitProducerID request.
type producerID struct {
	id    int64
	epoch int16
	err   error
}

// engine produces the messages Publish hands over.
type engine struct {
	k       *Kafka
	client  sarama.Client
	conf    *sarama.Config
	version int16 // of produce requests

	idempotent  bool
	maxInFlight int
	linger      time.Duration
	flushBytes  int
	maxEvents   int

	pid   int64
	epoch int16
	// resetting says a new producer id is wanted: nothing is sent until
	// every request in flight has answered and the id has come.
	resetting bool
	askingPID bool
	pidWait   time.Duration

	topics   map[string]*topicState
	brokers  map[*sarama.Broker]*brokerState
	unplaced []*message // waiting for their topic's partitions, in order
	inflight int        // requests in flight

	answers chan answer
	lookups chan metaAnswer
	pids    chan producerID
	senders sync.WaitGroup
	// done is closed when run returns: the goroutines that answer on
	// lookups and pids stop waiting then.
	done chan struct{}

	timer   *time.Timer
	timerAt time.Time
	// unhealthy says the health hook was last told of an error.
	unhealthy bool
}

// problem tells the health hook of err.
func (e *engine) problem(err error) {
	e.unhealthy = true
	e.k.health(err)
}

func newEngine(k *Kafka, client sarama.Client, conf *sarama.Config) *engine {
	e := &engine{
		k: k, client: client, conf: conf,
		version:     produceVersion(conf.Version),
		idempotent:  k.s.RequiredAcks == sarama.WaitForAll,
		maxInFlight: 1,
		linger:      k.s.BulkFlushFrequency,
		flushBytes:  max(k.s.MaxMessageBytes-flushSlack, k.s.MaxMessageBytes/2),
		maxEvents:   max(k.s.BulkMaxSize, 1),
		pid:         -1,
		epoch:       -1,
		topics:      map[string]*topicState{},
		brokers:     map[*sarama.Broker]*brokerState{},
		answers:     make(chan answer, 256),
		lookups:     make(chan metaAnswer, 16),
		pids:        make(chan producerID, 1),
		done:        make(chan struct{}),
		timer:       time.NewTimer(time.Hour),
	}
	e.timer.Stop()
	if e.idempotent {
		// Without sequence numbers, a request sent again after a later one
		// went through would reorder a file's lines: one at a time then.
		e.maxInFlight = maxIdempotentInFlight
	}
	return e
}

// produceVersion is the produce request version sarama would use for v.
func produceVersion(v sarama.KafkaVersion) int16 {
	switch {
	case v.IsAtLeast(sarama.V3_7_0_0):
		return 10
	case v.IsAtLeast(sarama.V2_8_0_0):
		return 9
	case v.IsAtLeast(sarama.V2_4_0_0):
		return 8
	case v.IsAtLeast(sarama.V2_1_0_0):
		return 7
	case v.IsAtLeast(sarama.V2_0_0_0):
		return 6
	case v.IsAtLeast(sarama.V1_0_0_0):
		return 5
	}
	return 3
}

// run is the engine's loop: it takes batches from Publish and answers
// from the brokers until ctx ends, then waits up to closeWait for the
// requests in flight.
func (e *engine) run(ctx context.Context, closeWait time.Duration) {
	defer close(e.done)
	if e.idempotent && e.pid < 0 {
		e.resetting = true // a producer id is still wanted
	}
	status := time.NewTicker(5 * time.Second)
	defer status.Stop()
	refresh := time.NewTicker(e.k.s.MetadataRefresh)
	defer refresh.Stop()
	for {
		e.pump(time.Now())
		select {
		case <-ctx.Done():
			e.finish(closeWait)
			return
		case sb := <-e.k.in:
			e.place(sb)
			// Take what else has come without waiting, so batches fill.
			for more := true; more; {
				select {
				case sb := <-e.k.in:
					e.place(sb)
				default:
					more = false
				}
			}
		case a := <-e.answers:
			e.answered(a)
		case l := <-e.lookups:
			e.looked(l)
		case p := <-e.pids:
			e.gotPID(p)
		case <-e.timer.C:
			e.timerAt = time.Time{}
		case <-refresh.C:
			for _, t := range e.topics {
				e.lookUp(t)
			}
		case <-status.C:
			n, b := e.k.queue.Len()
			e.k.log.Debug("kafka output", "queued", n, "queued_bytes", b, "in_flight", e.inflight, "unplaced", len(e.unplaced), "resetting", e.resetting)
		}
	}
}

// finish waits up to closeWait for the answers to the requests in flight.
func (e *engine) finish(closeWait time.Duration) {
	t := time.NewTimer(closeWait)
	defer t.Stop()
	for e.inflight > 0 {
		select {
		case a := <-e.answers:
			e.inflight--
			a.broker.inflight--
			for _, b := range a.batches {
				if a.err == nil && e.batchErr(a, b) == nil {
					e.acked(b)
				}
			}
		case <-t.C:
			e.k.log.Warn("the Kafka producer did not stop in time; leaving it", "in_flight", e.inflight)
			return
		}
	}
}

// place assigns sb's messages to partitions and adds them to the
// partitions' open batches.
func (e *engine) place(sb *sentBatch) {
	msgs := *sb.msgs
	for i := range msgs {
		m := &msgs[i]
		if len(e.unplaced) > 0 {
			// Events stay in order behind those still waiting for
			// their topic.
			e.unplaced = append(e.unplaced, m)
			continue
		}
		if !e.placeOne(m) {
			e.unplaced = append(e.unplaced, m)
		}
	}
}

// placeOne adds m to its partition's open batch, or reports false when
// its topic's partitions are not known yet (a look-up is then running).
func (e *engine) placeOne(m *message) bool {
	t := e.topics[m.topic]
	if t == nil {
		t = &topicState{name: m.topic}
		e.topics[m.topic] = t
		e.lookUp(t)
		return false
	}
	if len(t.parts) == 0 {
		e.lookUp(t)
		return false
	}
	// The partitions to pick from: by default all of them (an event for
	// a partition without a leader waits), with reachable_only those that
	// have a leader, if any do.
	n := len(t.parts)
	pick := func(i int) int { return i }
	if e.k.s.ReachableOnly && len(t.writable) > 0 {
		n = len(t.writable)
		pick = func(i int) int { return int(t.writable[i]) }
	}
	var p int
	switch {
	case e.k.s.Partitioner == "hash" && !m.anyPart:
		p = pick(int(m.hash % uint32(n)))
	case e.k.s.Partitioner == "round_robin":
		if t.count >= max(e.k.s.GroupEvents, 1) {
			t.count = 0
			t.rr++
		}
		t.count++
		p = pick(t.rr % n)
	default: // random, and hash.random for an event without a hash
		if t.count >= max(e.k.s.GroupEvents, 1) || t.rr >= n {
			t.count = 0
			t.rr = rand.IntN(n)
		}
		t.count++
		p = pick(t.rr)
	}
	e.add(t.parts[p], m)
	return true
}

// add appends m to part's open batch, closing the batch first when m
// would make it too big.
func (e *engine) add(part *partState, m *message) {
	b := part.open
	if b != nil && (b.bytes+int(m.size)+batchRecordOverhead > e.flushBytes || len(*b.msgs) >= e.maxEvents) {
		e.close(part)
		b = nil
	}
	if b == nil {
		b = &batch{part: part, msgs: msgPtrPool.get(min(e.maxEvents, 1024)), deadline: time.Now().Add(e.linger)}
		part.open = b
	}
	*b.msgs = append(*b.msgs, m)
	b.bytes += int(m.size) + batchRecordOverhead
}

// close ends part's open batch: it gets its sequence numbers and records
// and joins the batches ready to send.
func (e *engine) close(part *partState) {
	b := part.open
	part.open = nil
	msgs := *b.msgs
	b.order = part.order
	part.order++
	b.recs = recordPool.get(len(msgs))
	b.ptrs = recPtrPool.get(len(msgs))
	recs, ptrs := (*b.recs)[:len(msgs)], (*b.ptrs)[:len(msgs)]
	first := msgs[0].ts
	last := first
	for i, m := range msgs {
		last = max(last, m.ts)
		recs[i] = sarama.Record{
			TimestampDelta: time.Duration(m.ts-first) * time.Millisecond,
			OffsetDelta:    int64(i),
			Key:            m.key,
			Value:          m.value,
		}
		ptrs[i] = &recs[i]
	}
	*b.recs, *b.ptrs = recs, ptrs
	b.rb = &sarama.RecordBatch{
		Version:          2,
		Codec:            e.k.s.Compression,
		CompressionLevel: e.k.s.CompressionLevel,
		FirstTimestamp:   time.UnixMilli(first),
		MaxTimestamp:     time.UnixMilli(last),
		LastOffsetDelta:  int32(len(msgs) - 1),
		ProducerID:       -1,
		ProducerEpoch:    -1,
		FirstSequence:    -1,
		Records:          ptrs,
	}
	if e.idempotent && !e.resetting {
		e.number(part, b)
	}
	part.ready = append(part.ready, b)
}

// number gives b the next sequence numbers of its partition under the
// current producer id.
func (e *engine) number(part *partState, b *batch) {
	b.rb.ProducerID, b.rb.ProducerEpoch, b.rb.FirstSequence = e.pid, e.epoch, part.nextSeq
	// Sequence numbers wrap around to 0 after the largest int32.
	part.nextSeq = int32((int64(part.nextSeq) + int64(len(*b.msgs))) % (math.MaxInt32 + 1))
}

// pump closes the open batches whose time has come and sends what the
// brokers can take; it arms the timer for the next deadline. A batch's
// time has come at its deadline, or as soon as no event is waiting to be
// placed while its partition has nothing in flight or ready to go (see
// idleSend): a quiet file's lines do not wait for bulk_flush_frequency,
// while under load, with requests in flight, batches fill up.
func (e *engine) pump(now time.Time) {
	idle := len(e.k.in) == 0
	next := time.Time{}
	soon := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for _, t := range e.topics {
		if !t.lookAgain.IsZero() {
			if !now.Before(t.lookAgain) {
				t.lookAgain, t.lookingUp = time.Time{}, false
				e.lookUp(t)
			} else {
				soon(t.lookAgain)
			}
		}
		for _, p := range t.parts {
			if p.open != nil {
				if !now.Before(p.open.deadline) || idle && e.idleSend(p) {
					e.close(p)
				} else {
					soon(p.open.deadline)
				}
			}
			if p.leader == nil && !p.failed && len(p.ready) > 0 {
				// No leader known: look for one, after a backoff.
				e.retryLater(p, now, nil)
			}
			if p.failed && p.inflight == 0 && !p.awaiting {
				if !now.Before(p.retryAt) {
					// Look the leader up again, then send the batches again.
					p.awaiting = true
					e.lookUp(t)
				} else {
					soon(p.retryAt)
				}
			}
		}
	}
	if !e.resetting {
		for _, bs := range e.brokers {
			e.send(bs)
		}
	} else if e.inflight == 0 && !e.askingPID {
		e.askPID()
	}
	if !next.IsZero() && (e.timerAt.IsZero() || next.Before(e.timerAt)) {
		e.timer.Reset(max(next.Sub(now), 0))
		e.timerAt = next
	}
}

// idleSend reports whether part's open batch may go before its deadline
// when no event is waiting: nothing of the partition is in flight or
// ready to go, and its leader can take a request now. So at most one batch
// per partition and round trip goes out before it is full or due.
func (e *engine) idleSend(part *partState) bool {
	bs := part.leader
	return bs != nil && !e.resetting && !part.failed && part.inflight == 0 && len(part.ready) == 0 &&
		bs.inflight < e.maxInFlight && !bs.closing
}

// send hands bs requests made of its partitions' ready batches, as many
// as it may have in flight.
func (e *engine) send(bs *brokerState) {
	for bs.inflight < e.maxInFlight && !bs.closing {
		var batches []*batch
		size := 0
		n := len(bs.parts)
		for i := 0; i < n && size < maxRequestBytes; i++ {
			p := bs.parts[(bs.next+i)%n]
			if p.known && p.inflight == 0 && len(p.ready) > 0 && time.Since(p.ackedAt) > producerStateIdle {
				p.known = false
			}
			if len(p.ready) == 0 || p.failed || p.inflight >= e.maxInFlight || e.idempotent && !p.known && p.inflight > 0 {
				continue
			}
			b := p.ready[0]
			if size > 0 && size+b.bytes > maxRequestBytes {
				continue
			}
			p.ready[0] = nil
			p.ready = p.ready[1:]
			p.inflight++
			batches = append(batches, b)
			size += b.bytes
		}
		if len(batches) == 0 {
			return
		}
		bs.next++
		req := &sarama.ProduceRequest{
			RequiredAcks: e.k.s.RequiredAcks,
			Timeout:      int32(e.k.s.BrokerTimeout / time.Millisecond),
			Version:      e.version,
		}
		events, retried := 0, 0
		for _, b := range batches {
			req.AddBatch(b.part.topic.name, b.part.id, b.rb)
			events += len(*b.msgs)
			if b.sent > 0 {
				retried += len(*b.msgs)
			}
			b.sent++
		}
		if retried > 0 && e.k.hooks.Retried != nil {
			e.k.hooks.Retried(retried)
		}
		if e.k.hooks.Published != nil {
			e.k.hooks.Published(events)
		}
		bs.inflight++
		e.inflight++
		bs.queue <- sendItem{req: req, batches: batches} // never blocks: room for maxInFlight and a close
	}
}

// broker returns the engine's state for broker b, starting its sender.
func (e *engine) broker(b *sarama.Broker) *brokerState {
	if bs := e.brokers[b]; bs != nil {
		return bs
	}
	bs := &brokerState{b: b, queue: make(chan sendItem, e.maxInFlight+1)}
	e.brokers[b] = bs
	e.senders.Add(1)
	go e.sender(bs)
	return bs
}

// sender writes bs's requests in order. The answers come back through
// sarama's callback, on its goroutine that reads them.
func (e *engine) sender(bs *brokerState) {
	defer e.senders.Done()
	noAcks := e.k.s.RequiredAcks == sarama.NoResponse
	for it := range bs.queue {
		if it.req == nil {
			bs.b.Close() // after a network error; the next look-up opens it again
			continue
		}
		batches := it.batches
		err := bs.b.AsyncProduce(it.req, func(resp *sarama.ProduceResponse, err error) {
			e.answers <- answer{broker: bs, batches: batches, resp: resp, err: err}
		})
		if err != nil || noAcks {
			// No callback comes: not sent, or nothing to wait for.
			e.answers <- answer{broker: bs, batches: batches, err: err}
		}
	}
}

// stopSenders ends the sender goroutines.
func (e *engine) stopSenders() {
	for _, bs := range e.brokers {
		close(bs.queue)
	}
	e.senders.Wait()
}

// setLeader makes bs (nil: none known) part's leader.
func (e *engine) setLeader(part *partState, bs *brokerState) {
	if part.leader == bs {
		return
	}
	if old := part.leader; old != nil {
		if i := slices.Index(old.parts, part); i >= 0 {
			old.parts = slices.Delete(old.parts, i, i+1)
		}
	}
	part.leader = bs
	if bs != nil {
		bs.parts = append(bs.parts, part)
	}
}

// answered handles a broker's answer to a request.
func (e *engine) answered(a answer) {
	e.inflight--
	a.broker.inflight--
	if a.err != nil && !a.broker.closing {
		// The connection is broken: close it, so that it is opened
		// afresh once the partitions' leaders are looked up again.
		a.broker.closing = true
		a.broker.queue <- sendItem{}
	}
	if a.broker.inflight == 0 {
		// Whatever was sent before the close has answered: requests sent
		// now go after it, on a connection opened afresh.
		a.broker.closing = false
	}
	for _, b := range a.batches {
		b.part.inflight--
		if err := e.batchErr(a, b); err != nil {
			e.failed(b, err)
		} else {
			e.acked(b)
		}
	}
}

// batchErr is the outcome of b in answer a: nil when the broker has it.
func (e *engine) batchErr(a answer, b *batch) error {
	if a.err != nil {
		return a.err
	}
	if a.resp == nil {
		return nil // acks=0: sent is all there is
	}
	blk := a.resp.GetBlock(b.part.topic.name, b.part.id)
	switch {
	case blk == nil:
		return fmt.Errorf("the broker did not answer for partition %d", b.part.id)
	case blk.Err == sarama.ErrNoError, blk.Err == sarama.ErrDuplicateSequenceNumber:
		// A duplicate is a batch the broker already has: one that was
		// written although its answer was lost.
		return nil
	}
	return blk.Err
}

// acked tells Kafka that b's messages are acknowledged and recycles b.
func (e *engine) acked(b *batch) {
	if p := b.part; !p.failed {
		p.backoff = 0
	}
	if b.rb.ProducerID == e.pid {
		b.part.known, b.part.ackedAt = true, time.Now()
	}
	if e.unhealthy {
		e.unhealthy = false
		e.k.health(nil)
	}
	e.k.acked(*b.msgs)
	b.release()
}

// failed puts b back among its partition's ready batches, to be sent again
// once the batches in flight have answered and a backoff has passed.
func (e *engine) failed(b *batch, err error) {
	p := b.part
	i, _ := slices.BinarySearchFunc(p.ready, b.order, func(x *batch, o uint64) int { return cmp.Compare(x.order, o) })
	p.ready = slices.Insert(p.ready, i, b)
	if e.needsNewPID(p, b, err) {
		e.resetting = true
	}
	if p.failed {
		return // the round's first failure said what went wrong
	}
	if isLeaderErr(err) {
		e.setLeader(p, nil)
	}
	e.retryLater(p, time.Now(), err)
}

// retryLater holds part's batches back for a backoff, after which its
// leader is looked up again and they are sent again. err is what went
// wrong (nil: no leader was known).
func (e *engine) retryLater(part *partState, now time.Time, err error) {
	part.failed = true
	part.backoff = min(max(part.backoff*2, e.k.s.BackoffInit), e.k.s.BackoffMax)
	part.retryAt = now.Add(part.backoff)
	if err == nil {
		err = errors.New("the partition has no leader")
	}
	e.problem(fmt.Errorf("output: Kafka refuses events: %w", err))
	e.k.warn("events not acknowledged by Kafka; sending them again", "err", err, "topic", part.topic.name, "partition", part.id, "retry_in", part.backoff)
}

// needsNewPID reports whether err says the broker no longer knows the
// producer id or its sequence numbers, so that they must start afresh. An
// out-of-order answer to a batch behind one that failed is only the
// consequence of that failure.
func (e *engine) needsNewPID(p *partState, b *batch, err error) bool {
	if !e.idempotent {
		return false
	}
	switch {
	case errors.Is(err, sarama.ErrUnknownProducerID), errors.Is(err, sarama.ErrInvalidProducerEpoch), errors.Is(err, sarama.ErrProducerFenced):
		return true
	case errors.Is(err, sarama.ErrOutOfOrderSequenceNumber):
		// Answers come in order, and older batches that failed are back
		// among the ready ones: b is the oldest not acknowledged when it
		// is first there.
		return p.ready[0] == b
	}
	return false
}

// isLeaderErr reports whether err means the partition's leader must be
// looked up again.
func isLeaderErr(err error) bool {
	var kerr sarama.KError
	if !errors.As(err, &kerr) {
		return true // a network error
	}
	switch kerr {
	case sarama.ErrNotLeaderForPartition, sarama.ErrLeaderNotAvailable, sarama.ErrUnknownTopicOrPartition,
		sarama.ErrNotController, sarama.ErrFencedLeaderEpoch, sarama.ErrUnknownLeaderEpoch,
		sarama.ErrKafkaStorageError, sarama.ErrRequestTimedOut, sarama.ErrNetworkException:
		return true
	}
	return false
}

// lookUp starts a metadata look-up for t unless one is running.
func (e *engine) lookUp(t *topicState) {
	if t.lookingUp {
		return
	}
	t.lookingUp = true
	client := e.client
	go func() {
		l := metaAnswer{topic: t}
		l.err = client.RefreshMetadata(t.name)
		if l.err == nil {
			l.parts, l.err = client.Partitions(t.name)
		}
		if l.err == nil {
			l.writable, _ = client.WritablePartitions(t.name)
			l.leaders = make(map[int32]*sarama.Broker, len(l.writable))
			for _, id := range l.writable {
				if b, err := client.Leader(t.name, id); err == nil {
					l.leaders[id] = b
				}
			}
		}
		select {
		case e.lookups <- l:
		case <-e.done:
		}
	}()
}

// looked takes in the answer to a look-up: the topic's partitions and
// their leaders. Failed partitions waiting for it are sent again, and
// events waiting for the topic are placed.
func (e *engine) looked(l metaAnswer) {
	t := l.topic
	t.lookingUp = false
	now := time.Now()
	if l.err != nil {
		e.problem(fmt.Errorf("output: cannot look up topic %q: %w", t.name, l.err))
		e.k.warn("cannot look up the topic's partitions; events wait", "topic", t.name, "err", l.err)
		for _, p := range t.parts {
			if p.awaiting {
				p.awaiting = false
				p.backoff = min(max(p.backoff*2, e.k.s.BackoffInit), e.k.s.BackoffMax)
				p.retryAt = now.Add(p.backoff)
			}
		}
		if len(t.parts) == 0 {
			// Events wait for the topic: pump looks again after a
			// backoff.
			t.lookingUp = true
			t.lookAgain = now.Add(e.k.s.BackoffInit)
		}
		return
	}
	slices.Sort(l.parts)
	for _, id := range l.parts {
		// Partition ids are 0..n-1; a topic only gains partitions.
		for int(id) >= len(t.parts) {
			t.parts = append(t.parts, &partState{topic: t, id: int32(len(t.parts))})
		}
	}
	t.writable = l.writable
	for _, p := range t.parts {
		if p.inflight > 0 {
			// Batches in flight keep their order only on one connection:
			// a new leader is taken once they have answered.
			continue
		}
		var bs *brokerState
		if b := l.leaders[p.id]; b != nil {
			bs = e.broker(b)
		}
		e.setLeader(p, bs)
		if p.awaiting {
			p.awaiting = false
			if bs != nil {
				p.failed = false // send again now
			} else {
				p.backoff = min(max(p.backoff*2, e.k.s.BackoffInit), e.k.s.BackoffMax)
				p.retryAt = now.Add(p.backoff)
			}
		}
	}
	if len(e.unplaced) > 0 && e.unplaced[0].topic == t.name {
		e.placeWaiting()
	}
}

// placeWaiting places the events that waited for their topic, in order,
// until one must wait again.
func (e *engine) placeWaiting() {
	waiting := e.unplaced
	e.unplaced = nil
	for i, m := range waiting {
		if !e.placeOne(m) {
			e.unplaced = append(e.unplaced, waiting[i:]...)
			return
		}
	}
}

// askPID asks for a new producer id, on a goroutine of its own.
func (e *engine) askPID() {
	e.askingPID = true
	client, conf := e.client, e.conf
	wait := e.pidWait
	go func() {
		if wait > 0 {
			t := time.NewTimer(wait)
			defer t.Stop()
			select {
			case <-t.C:
			case <-e.done:
				return
			}
		}
		id, epoch, err := initProducerID(client, conf)
		select {
		case e.pids <- producerID{id: id, epoch: epoch, err: err}:
		case <-e.done:
		}
	}()
}

// gotPID takes a new producer id: every partition's batches not yet
// acknowledged are numbered afresh under it.
func (e *engine) gotPID(p producerID) {
	e.askingPID = false
	if p.err != nil {
		e.pidWait = min(max(e.pidWait*2, e.k.s.BackoffInit), e.k.s.BackoffMax)
		e.problem(fmt.Errorf("output: cannot get a producer id: %w", p.err))
		e.k.warn("cannot get a producer id from Kafka; events wait", "err", p.err, "retry_in", e.pidWait)
		return
	}
	e.pidWait = 0
	e.pid, e.epoch = p.id, p.epoch
	e.resetting = false
	e.k.log.Debug("idempotent producer id", "id", p.id, "epoch", p.epoch)
	for _, t := range e.topics {
		for _, part := range t.parts {
			part.nextSeq, part.known = 0, false
			for _, b := range part.ready {
				e.number(part, b)
			}
		}
	}
}

// initProducerID asks a broker for a producer id for the idempotent
// producer.
func initProducerID(client sarama.Client, conf *sarama.Config) (int64, int16, error) {
	req := &sarama.InitProducerIDRequest{ProducerID: -1, ProducerEpoch: -1, TransactionTimeout: time.Minute}
	switch v := conf.Version; {
	case v.IsAtLeast(sarama.V2_7_0_0):
		req.Version = 4
	case v.IsAtLeast(sarama.V2_5_0_0):
		req.Version = 3
	case v.IsAtLeast(sarama.V2_4_0_0):
		req.Version = 2
	case v.IsAtLeast(sarama.V2_0_0_0):
		req.Version = 1
	}
	// The least loaded broker, or a bootstrap broker before the cluster's
	// brokers are known.
	b := client.LeastLoadedBroker()
	if b == nil {
		return 0, 0, errors.New("no broker known")
	}
	resp, err := b.InitProducerID(req)
	if err == nil && resp.Err != sarama.ErrNoError {
		err = resp.Err
	}
	if err != nil {
		return 0, 0, fmt.Errorf("broker %s: %w", b.Addr(), err)
	}
	return resp.ProducerID, resp.ProducerEpoch, nil
}
