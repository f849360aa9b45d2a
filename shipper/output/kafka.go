// Package output sends the shipper's events on: to Kafka (the output), or
// to standard output for looking at them (Console).
//
// The Kafka output uses sarama's asynchronous producer with the idempotent
// producer on (acks=all), so a retried batch is never written twice and a
// file's events keep their order within their partition. Events are never
// dropped: an event the producer gives up on is sent again, after a
// backoff, for as long as it takes. A bounded Queue makes harvesters wait
// while the broker is slow or away, so memory stays flat.
package output

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"logpipe/pipeline/scram"
	"logpipe/shipper/publish"
)

// Hooks are told what the Kafka output does, for metrics and health. Nil
// fields are skipped.
type Hooks struct {
	// Published counts events handed to the producer, resends included.
	Published func(n int)
	// Acked counts events the broker acknowledged.
	Acked func(n int)
	// Retried counts events sent again after the producer gave up on them.
	Retried func(n int)
	// Dropped counts events that could not be sent at all: only those
	// whose topic format names a field they lack, with no default.
	Dropped func(reason string)
	// Health is called with nil when the broker accepts events and with
	// the error when it does not.
	Health func(err error)
}

// Kafka is the Kafka output. Create it with NewKafka, start Run, send with
// Publish; Drain waits for what was sent.
type Kafka struct {
	s     *Settings
	log   *slog.Logger
	hooks Hooks
	queue *Queue
	// OnAck gets the acknowledgements of events the broker has
	// acknowledged, several at a time; calls may come from several
	// goroutines at once.
	OnAck func(acks []publish.Ack)

	// static is the topic when its format names no field; fast says
	// that events need no field lookups (static topic, no key, no hashed
	// fields), so they are encoded straight from their batch.
	static string
	fast   bool

	in       chan *sentBatch
	failures chan *sarama.ProducerError
	// resentDone wakes the feeder when the last resent event is
	// acknowledged, so new events flow again at once.
	resentDone chan struct{}
	seq        atomic.Uint64
	resent     atomic.Int64 // resent events not yet acknowledged
	okSince    atomic.Bool  // an ack arrived since the last failure

	warnMu   sync.Mutex
	lastWarn time.Time
}

// message is one event handed to the producer. A batch's messages are
// allocated together, and the message is its own record value
// (sarama.Encoder) and metadata, so an event costs no allocation of its
// own.
type message struct {
	msg    sarama.ProducerMessage
	value  []byte
	batch  *sentBatch
	index  int // the event's index in its publish.Batch
	end    int // where value ends in the batch's buffer
	size   int64
	hash   uint32
	seq    uint64
	resent bool
}

// Encode implements sarama.Encoder: the event's JSON.
func (m *message) Encode() ([]byte, error) { return m.value, nil }

// Length implements sarama.Encoder.
func (m *message) Length() int { return len(m.value) }

// sentBatch is what the output keeps of a published batch until all its
// events are acknowledged. Its messages and values live in slices taken
// from size-class pools and given back once every event is acknowledged
// (recycle), which keeps the garbage collector's work down at hundreds of
// thousands of events a second.
type sentBatch struct {
	receipt any
	msgs    *[]message
	buf     *[]byte // the values, end to end
	// left counts the messages not yet acknowledged; only the goroutine
	// that takes the producer's acknowledgements changes it once the
	// batch is handed over.
	left int
}

var (
	messagePool = sizePool[message]{minShift: 4, maxShift: 12}
	valuePool   = sizePool[byte]{minShift: 12, maxShift: 21}
)

// newSentBatch returns an empty sentBatch with room for n messages and
// size bytes of values.
func newSentBatch(n, size int) *sentBatch {
	return &sentBatch{msgs: messagePool.get(n), buf: valuePool.get(size)}
}

// recycle gives sb's slices back to their pools, dropping what they refer
// to. sb must not be used afterwards.
func (sb *sentBatch) recycle() {
	msgs := *sb.msgs
	clear(msgs)
	messagePool.put(sb.msgs)
	valuePool.put(sb.buf)
	sb.msgs, sb.buf, sb.receipt = nil, nil, nil
}

// sizePool keeps slices of T in size classes, one sync.Pool each: powers
// of two from 1<<minShift to 1<<maxShift and the sizes halfway (3<<k), so
// a slice taken for n elements is at most a third bigger than needed.
// Larger slices are made to measure and not kept.
type sizePool[T any] struct {
	minShift, maxShift int
	pools              [64]sync.Pool
}

// class returns the size class for n elements: its capacity and index,
// or ok false for sizes above the largest class.
func (p *sizePool[T]) class(n int) (size, index int, ok bool) {
	shift := max(bits.Len(uint(max(n, 1)-1)), p.minShift)
	if shift > p.maxShift {
		return 0, 0, false
	}
	size, index = 1<<shift, 2*(shift-p.minShift)
	if shift > p.minShift && n <= 3<<(shift-2) {
		size, index = 3<<(shift-2), index-1
	}
	return size, index, true
}

// get returns an empty slice with room for at least n elements.
func (p *sizePool[T]) get(n int) *[]T {
	size, index, ok := p.class(n)
	if !ok {
		s := make([]T, 0, n)
		return &s
	}
	if v, ok := p.pools[index].Get().(*[]T); ok {
		*v = (*v)[:0]
		return v
	}
	s := make([]T, 0, size)
	return &s
}

// put gives back a slice from get. One that was made to measure or has
// grown by append is left to the garbage collector.
func (p *sizePool[T]) put(s *[]T) {
	c := cap(*s)
	if size, index, ok := p.class(c); ok && size == c {
		p.pools[index].Put(s)
	}
}

// NewKafka returns an output for settings s whose queue holds at most
// maxEvents events and maxBytes bytes not yet acknowledged.
func NewKafka(s *Settings, maxEvents int, maxBytes int64, log *slog.Logger, hooks Hooks, onAck func(acks []publish.Ack)) *Kafka {
	if log.Enabled(context.Background(), slog.LevelDebug) {
		// sarama's logger is global: set it once, before any producer runs.
		saramaLogOnce.Do(func() { sarama.Logger = saramaLog{log} })
	}
	k := &Kafka{
		s: s, log: log, hooks: hooks, OnAck: onAck,
		queue: NewQueue(maxEvents, maxBytes),
		// Every batch in it holds queue room for at least one event, so
		// sends to it never block.
		in:         make(chan *sentBatch, max(maxEvents, 1)),
		failures:   make(chan *sarama.ProducerError, 64),
		resentDone: make(chan struct{}, 1),
	}
	k.static, k.fast = s.Topic.Static()
	k.fast = k.fast && s.Key == nil && len(s.HashFields) == 0
	return k
}

var saramaLogOnce sync.Once

// saramaLog sends sarama's own log lines to slog at debug level.
type saramaLog struct{ log *slog.Logger }

// Print implements sarama.StdLogger.
func (l saramaLog) Print(v ...any) {
	l.log.Debug(strings.TrimSpace(fmt.Sprint(v...)), "from", "sarama")
}

// Printf implements sarama.StdLogger.
func (l saramaLog) Printf(format string, v ...any) {
	l.log.Debug(strings.TrimSpace(fmt.Sprintf(format, v...)), "from", "sarama")
}

// Println implements sarama.StdLogger.
func (l saramaLog) Println(v ...any) {
	l.log.Debug(strings.TrimSpace(fmt.Sprintln(v...)), "from", "sarama")
}

// Queue returns the output's queue, to watch its fill.
func (k *Kafka) Queue() *Queue { return k.queue }

// Publish encodes b's events, waits for room in the queue, registers the
// batch and hands its events to the producer. See publish.Sink.
func (k *Kafka) Publish(ctx context.Context, b *publish.Batch) error {
	// Room is taken before anything is encoded, so harvesters waiting for
	// it hold no encoded events: memory stays within the queue's bounds
	// however many files are read. The bytes are estimated, and settled
	// once the values are made.
	n := b.Sent()
	estimate := int64(b.TextBytes() + n*(eventOverhead+len(b.Path)))
	if err := k.queue.Acquire(ctx, n, estimate); err != nil {
		return err
	}
	// The values go into one buffer, end to end; each message records
	// where its value ends while the buffer may still move as it grows.
	sb := newSentBatch(n, int(estimate))
	buf, msgs := *sb.buf, *sb.msgs
	limit := k.s.MaxMessageBytes - recordOverhead
	var dropped []publish.Ack
	var fileHash uint32
	if k.s.Partitioner == "hash" {
		fileHash = hash32(b.Source.FileID)
	}
	var size int64
	for i := range b.Events {
		if b.Events[i].Skip {
			continue
		}
		m := message{index: i, hash: fileHash}
		m.msg.Topic = k.static
		m.msg.Timestamp = b.Time
		start := len(buf)
		if k.fast {
			buf = b.Source.AppendJSON(buf, b, i)
			if len(buf)-start > limit {
				// Too big for a record: cut the message to fit.
				buf = append(buf[:start], encodeLimited(b.Event(i), limit)...)
			}
		} else {
			ev := b.Event(i)
			look := lookup(ev)
			topic, err := k.s.Topic.Eval(look)
			if err != nil {
				// Nothing can be done with this event: count it, and let
				// the registry move past it.
				k.warn("event dropped: its topic cannot be made", "topic", k.s.Topic.String(), "err", err, "path", ev.Log.File.Path, "offset", ev.Log.Offset)
				dropped = append(dropped, publish.Ack{Index: i})
				continue
			}
			m.msg.Topic = topic
			var key []byte
			if k.s.Key != nil {
				if s, err := k.s.Key.Eval(look); err == nil && s != "" {
					key = []byte(s)
					m.msg.Key = sarama.ByteEncoder(key)
				}
			}
			switch {
			case k.s.Partitioner != "hash":
			case len(k.s.HashFields) > 0:
				vals := make([]string, len(k.s.HashFields))
				for i, f := range k.s.HashFields {
					vals[i], _ = look(f)
				}
				m.hash = hash32(vals...)
			case key != nil:
				m.hash = hash32(string(key))
			}
			buf = append(buf, encodeLimited(ev, limit-len(key))...)
			m.size = int64(len(key))
		}
		m.size += int64(len(buf) - start)
		size += m.size
		m.end = len(buf)
		msgs = append(msgs, m)
	}
	*sb.buf, *sb.msgs = buf, msgs
	k.queue.Release(n-len(msgs), estimate-size)

	sb.receipt = b.Register(b)
	if len(dropped) > 0 {
		for i := range dropped {
			dropped[i].Receipt = sb.receipt
			if k.hooks.Dropped != nil {
				k.hooks.Dropped("topic")
			}
		}
		k.OnAck(dropped)
	}
	if len(msgs) == 0 {
		sb.recycle()
		return nil
	}
	sb.left = len(msgs)
	last := k.seq.Add(uint64(len(msgs)))
	start := 0
	for j := range msgs {
		m := &msgs[j]
		m.value = buf[start:m.end:m.end]
		start = m.end
		m.batch = sb
		m.seq = last - uint64(len(msgs)-1-j)
		m.msg.Value = m
		m.msg.Metadata = m
	}
	k.in <- sb // never blocks: every batch in it holds queue room
	return nil
}

// Drain waits until every event handed over has been acknowledged, or ctx
// ends.
func (k *Kafka) Drain(ctx context.Context) error { return k.queue.WaitEmpty(ctx) }

// eventOverhead is about how much an event's JSON adds to its line,
// besides the path: the queue's estimate of a batch before it is encoded.
const eventOverhead = 320

// flushSlack is how far below max_message_bytes a batch counts as full:
// room for a few more events of ordinary size.
const flushSlack = 16 << 10

// saramaConfig builds the producer's configuration.
func (k *Kafka) saramaConfig() (*sarama.Config, error) {
	s := k.s
	c := sarama.NewConfig()
	c.ClientID = s.ClientID
	c.Version = s.Version
	c.ChannelBufferSize = s.ChannelBufferSize
	c.Net.DialTimeout = s.Timeout
	c.Net.ReadTimeout = s.Timeout
	c.Net.WriteTimeout = s.Timeout
	c.Net.KeepAlive = s.KeepAlive
	c.Net.MaxOpenRequests = 1 // one request in flight per broker: order, and idempotence
	c.Metadata.RefreshFrequency = s.MetadataRefresh
	c.Metadata.Full = s.MetadataFull
	c.Metadata.Retry.Max = s.MetadataRetryMax
	c.Metadata.Retry.Backoff = s.MetadataRetryWait
	c.Producer.RequiredAcks = s.RequiredAcks
	c.Producer.Idempotent = s.RequiredAcks == sarama.WaitForAll
	c.Producer.Timeout = s.BrokerTimeout
	c.Producer.Compression = s.Compression
	c.Producer.CompressionLevel = s.CompressionLevel
	c.Producer.MaxMessageBytes = s.MaxMessageBytes
	c.Producer.Flush.MaxMessages = s.BulkMaxSize
	if s.BulkFlushFrequency > 0 {
		// A batch goes when it is (nearly) as big as a request may be, or
		// when it has waited BulkFlushFrequency. Left at zero, sarama
		// sends whatever it holds as soon as it can, and while a request
		// is in flight it tries again at every event that arrives.
		c.Producer.Flush.Frequency = s.BulkFlushFrequency
		c.Producer.Flush.Messages = s.BulkMaxSize
		c.Producer.Flush.Bytes = max(s.MaxMessageBytes-flushSlack, s.MaxMessageBytes/2)
	}
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	// sarama retries inside a partition keep order; what it gives up on
	// comes back on Errors and is sent again by Run.
	c.Producer.Retry.Max = 10
	// retries is 0 when sarama fails a fresh message at once (no leader,
	// circuit breaker open): no wait then, or every message of a long queue
	// would sleep in turn; Run's backoff paces the resending instead.
	most := min(s.BackoffMax, 2*time.Second)
	c.Producer.Retry.BackoffFunc = func(retries, _ int) time.Duration {
		if retries == 0 {
			return 0
		}
		return min(50*time.Millisecond<<min(retries, 10), most)
	}
	c.Producer.Partitioner = newPartitioner(s.Partitioner, s.GroupEvents)
	if s.TLS != nil {
		tc, err := s.TLS.Config()
		if err != nil {
			return nil, err
		}
		c.Net.TLS.Enable = true
		c.Net.TLS.Config = tc
	}
	if s.Username != "" {
		c.Net.SASL.Enable = true
		c.Net.SASL.Handshake = true
		c.Net.SASL.User = s.Username
		c.Net.SASL.Password = s.Password
		c.Net.SASL.Mechanism = sarama.SASLMechanism(s.SASLMechanism)
		if s.SASLMechanism != sarama.SASLTypePlaintext {
			mech := s.SASLMechanism
			c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return scram.ForMechanism(mech) }
		}
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("output: kafka settings: %w", err)
	}
	return c, nil
}

// warn logs a delivery problem, at most every 10 seconds.
func (k *Kafka) warn(msg string, args ...any) {
	k.warnMu.Lock()
	now := time.Now()
	if now.Sub(k.lastWarn) < 10*time.Second {
		k.warnMu.Unlock()
		k.log.Debug(msg, args...)
		return
	}
	k.lastWarn = now
	k.warnMu.Unlock()
	k.log.Warn(msg, args...)
}

func (k *Kafka) health(err error) {
	if k.hooks.Health != nil {
		k.hooks.Health(err)
	}
}

// connect makes the producer, trying again with backoff until ctx ends.
func (k *Kafka) connect(ctx context.Context, cfg *sarama.Config) (sarama.AsyncProducer, error) {
	wait := k.s.BackoffInit
	for {
		client, err := sarama.NewClient(k.s.Hosts, cfg)
		if err == nil {
			var p sarama.AsyncProducer
			if p, err = sarama.NewAsyncProducerFromClient(client); err == nil {
				return &ownedProducer{p, client}, nil
			}
			client.Close()
		}
		k.health(fmt.Errorf("output: cannot reach Kafka at %v: %w", k.s.Hosts, err))
		k.warn("cannot reach Kafka; events wait until it can be reached", "hosts", k.s.Hosts, "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, k.s.BackoffMax)
	}
}

// ownedProducer closes the client it was made from.
type ownedProducer struct {
	sarama.AsyncProducer
	client sarama.Client
}

// Close closes the producer, then its client.
func (p *ownedProducer) Close() error {
	err := p.AsyncProducer.Close()
	return errors.Join(err, p.client.Close())
}

// Run produces what Publish hands over until ctx ends; it then stops the
// producer, waiting up to closeWait for requests in flight. Call Drain
// before ending ctx to let acknowledgements arrive.
func (k *Kafka) Run(ctx context.Context, closeWait time.Duration) error {
	cfg, err := k.saramaConfig()
	if err != nil {
		return err
	}
	producer, err := k.connect(ctx, cfg)
	if err != nil {
		return nil // ctx ended before Kafka could be reached
	}
	k.health(nil)
	k.log.Info("connected to Kafka", "hosts", k.s.Hosts, "version", k.s.Version.String(), "acks", int(k.s.RequiredAcks), "idempotent", cfg.Producer.Idempotent)

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		// Acknowledgements are taken as many at a time as have arrived:
		// one registry lock and one queue release for all of them.
		successes := producer.Successes()
		var got []*sarama.ProducerMessage
		var acks []publish.Ack
		for m := range successes {
			got = append(got[:0], m)
		more:
			for len(got) < maxAckGroup {
				select {
				case m, ok := <-successes:
					if !ok {
						break more
					}
					got = append(got, m)
				default:
					break more
				}
			}
			acks = k.acked(got, acks[:0])
		}
	}()
	go func() {
		defer wg.Done()
		for e := range producer.Errors() {
			k.failures <- e
		}
	}()

	k.feed(ctx, producer)

	producer.AsyncClose()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(closeWait)
	defer t.Stop()
	for {
		select {
		case <-done:
			return nil
		case <-k.failures: // still in flight at the end: the registry keeps them unacknowledged
		case <-t.C:
			k.log.Warn("the Kafka producer did not stop in time; leaving it")
			return nil
		}
	}
}

// maxAckGroup is the most acknowledgements handled together.
const maxAckGroup = 4096

// acked handles the acknowledgements of msgs, using acks as scratch space,
// which it returns.
func (k *Kafka) acked(msgs []*sarama.ProducerMessage, acks []publish.Ack) []publish.Ack {
	var size int64
	var done []*sentBatch // batches whose events are all acknowledged
	for _, msg := range msgs {
		m := msg.Metadata.(*message)
		if m.resent && k.resent.Add(-1) == 0 {
			select {
			case k.resentDone <- struct{}{}:
			default:
			}
		}
		acks = append(acks, publish.Ack{Receipt: m.batch.receipt, Index: m.index})
		size += m.size
		if m.batch.left--; m.batch.left == 0 {
			done = append(done, m.batch)
		}
	}
	k.okSince.Store(true)
	k.OnAck(acks)
	k.queue.Release(len(msgs), size)
	if k.hooks.Acked != nil {
		k.hooks.Acked(len(msgs))
	}
	for _, sb := range done {
		sb.recycle()
	}
	clear(acks)
	return acks
}

// feed moves messages into the producer until ctx ends. After a failure
// it holds new batches back and, after a backoff, sends the failed
// messages again in their original order, then lets new ones through once
// those are acknowledged.
func (k *Kafka) feed(ctx context.Context, producer sarama.AsyncProducer) {
	var (
		cur     *sentBatch                // the batch being handed over
		pos     int                       // its next message
		resend  []*sarama.ProducerMessage // failed messages to hand over first, in order
		failed  []*sarama.ProducerMessage // to send again after the backoff
		wait    = k.s.BackoffInit
		retry   = time.NewTimer(time.Hour)
		waiting bool // retry is armed
	)
	retry.Stop()
	defer retry.Stop()
	status := time.NewTicker(5 * time.Second)
	defer status.Stop()
	input := producer.Input()
	next := func() *sarama.ProducerMessage {
		switch {
		case len(resend) > 0:
			return resend[0]
		case cur != nil:
			return &(*cur.msgs)[pos].msg
		}
		return nil
	}
	// last reports whether next's message is the last of cur. It must be
	// asked before the message is handed over: once the last one is, the
	// batch may be acknowledged and reused at any moment, so advance then
	// does not look at it.
	last := func() bool { return len(resend) == 0 && pos+1 == len(*cur.msgs) }
	advance := func(wasLast bool) {
		switch {
		case len(resend) > 0:
			resend[0] = nil
			resend = resend[1:]
		case wasLast:
			cur, pos = nil, 0
		default:
			pos++
		}
	}
	// failure holds a message the producer gave up on, to send again after
	// the backoff.
	failure := func(e *sarama.ProducerError) {
		if k.okSince.Swap(false) {
			wait = k.s.BackoffInit
		}
		failed = append(failed, e.Msg)
		if !waiting {
			// The first failure of a round says what went wrong; the
			// others usually say the same, and are not logged.
			k.health(fmt.Errorf("output: Kafka refuses events: %w", e.Err))
			k.warn("events not acknowledged by Kafka; sending them again", "err", e.Err, "topic", e.Msg.Topic, "retry_in", wait)
			retry.Reset(wait)
			waiting = true
			wait = min(wait*2, k.s.BackoffMax)
		}
	}
	for {
		// Hand over what the producer takes without waiting.
		n := 0
		m := next()
	fast:
		for m != nil {
			wasLast := last()
			select {
			case input <- m:
				advance(wasLast)
				n++
				m = next()
			default:
				break fast
			}
		}
		if n > 0 && k.hooks.Published != nil {
			k.hooks.Published(n)
		}

		if m != nil && len(failed) == 0 && !waiting {
			// The usual wait: the producer is busy. Watch only what can
			// happen meanwhile, which costs less at every wake-up.
			wasLast := last()
			select {
			case <-ctx.Done():
				return
			case input <- m:
				advance(wasLast)
				if k.hooks.Published != nil {
					k.hooks.Published(1)
				}
			case e := <-k.failures:
				failure(e)
			}
			continue
		}

		var out chan<- *sarama.ProducerMessage
		wasLast := false
		if m != nil {
			out = input
			wasLast = last()
		}
		var in <-chan *sentBatch
		if m == nil && len(failed) == 0 && k.resent.Load() == 0 {
			in = k.in // new events wait behind the retries
		}
		select {
		case <-ctx.Done():
			return
		case <-status.C:
			n, b := k.queue.Len()
			k.log.Debug("kafka output", "queued", n, "queued_bytes", b, "resend", len(resend), "failed", len(failed), "resent_in_flight", k.resent.Load(), "retry_armed", waiting)
		case <-k.resentDone:
		case out <- m:
			advance(wasLast)
			if k.hooks.Published != nil {
				k.hooks.Published(1)
			}
		case b := <-in:
			cur, pos = b, 0
		case e := <-k.failures:
			failure(e)
		case <-retry.C:
			waiting = false
			for _, m := range failed {
				p := m.Metadata.(*message)
				if !p.resent {
					p.resent = true
					k.resent.Add(1)
				}
			}
			if k.hooks.Retried != nil {
				k.hooks.Retried(len(failed))
			}
			// Failed messages go first, in their original order: they are
			// older than any held back.
			resend = append(resend, failed...)
			failed = nil
			slices.SortFunc(resend, func(a, b *sarama.ProducerMessage) int {
				return cmpSeq(a.Metadata.(*message).seq, b.Metadata.(*message).seq)
			})
			k.health(nil)
		}
	}
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// partitioner places messages: by the hash Publish computed, in turn, or at
// random.
type partitioner struct {
	kind  string
	group int

	mu    sync.Mutex
	n     int
	count int
}

func newPartitioner(kind string, group int) sarama.PartitionerConstructor {
	return func(string) sarama.Partitioner { return &partitioner{kind: kind, group: max(group, 1)} }
}

// Partition implements sarama.Partitioner.
func (p *partitioner) Partition(m *sarama.ProducerMessage, partitions int32) (int32, error) {
	switch p.kind {
	case "hash":
		return int32(m.Metadata.(*message).hash % uint32(partitions)), nil
	case "random":
		return rand.Int32N(partitions), nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count >= p.group {
		p.count = 0
		p.n++
	}
	p.count++
	return int32(p.n % int(partitions)), nil
}

// RequiresConsistency implements sarama.Partitioner: a hashed message
// must go to its partition even while that partition has no leader.
func (p *partitioner) RequiresConsistency() bool { return p.kind == "hash" }
