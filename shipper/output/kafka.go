// Package output sends the shipper's events on: to Kafka (the output), or
// to standard output for looking at them (Console).
//
// The Kafka output batches events per partition and sends the batches to
// the partitions' leaders through sarama's client and broker connections,
// with the idempotent producer on (acks=all): a batch sent again is never
// written twice, and a file's events keep their order within their
// partition, with several requests in flight. Events are never dropped: a
// batch the broker refuses is sent again, after a backoff, for as long as
// it takes. A bounded Queue makes harvesters wait while the broker is slow
// or away, so memory stays flat.
package output

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"strings"
	"sync"
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

	in chan *sentBatch

	warnMu   sync.Mutex
	lastWarn time.Time
}

// message is one event handed to the producer. A batch's messages are
// allocated together, so an event costs no allocation of its own.
type message struct {
	value []byte
	key   []byte
	topic string
	batch *sentBatch
	index int   // the event's index in its publish.Batch
	end   int   // where value ends in the batch's buffer
	size  int64 // of key and value
	ts    int64 // the record's timestamp, Unix milliseconds
	hash  uint32
	// anyPart says the hash could not be made: any partition will do.
	anyPart bool
}

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
		in: make(chan *sentBatch, max(maxEvents, 1)),
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
	ts := b.Time.UnixMilli()
	for i := range b.Events {
		if b.Events[i].Skip {
			continue
		}
		m := message{index: i, hash: fileHash, topic: k.static, ts: ts}
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
			m.topic = topic
			var key []byte
			if k.s.Key != nil {
				if s, err := k.s.Key.Eval(look); err == nil && s != "" {
					key = []byte(s)
					m.key = key
				}
			}
			switch {
			case k.s.Partitioner != "hash":
			case len(k.s.HashFields) > 0:
				vals := make([]string, len(k.s.HashFields))
				found := true
				for i, f := range k.s.HashFields {
					var ok bool
					vals[i], ok = look(f)
					found = found && ok
				}
				m.hash = hash32(vals...)
				// partition.hash.random: an event without the fields
				// goes to a partition picked at random.
				m.anyPart = !found && k.s.HashRandom
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
	start := 0
	for j := range msgs {
		m := &msgs[j]
		m.value = buf[start:m.end:m.end]
		start = m.end
		m.batch = sb
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

// saramaConfig builds the configuration of the client the producer
// sends through.
func (k *Kafka) saramaConfig() (*sarama.Config, error) {
	s := k.s
	c := sarama.NewConfig()
	c.ClientID = s.ClientID
	c.Version = s.Version
	c.Net.DialTimeout = s.Timeout
	c.Net.ReadTimeout = s.Timeout
	c.Net.WriteTimeout = s.Timeout
	c.Net.KeepAlive = s.KeepAlive
	// Requests in flight per broker connection: several with the
	// idempotent producer, whose sequence numbers keep them in order.
	c.Net.MaxOpenRequests = 1
	if s.RequiredAcks == sarama.WaitForAll {
		c.Net.MaxOpenRequests = maxIdempotentInFlight
	}
	c.Metadata.RefreshFrequency = s.MetadataRefresh
	c.Metadata.Full = s.MetadataFull
	c.Metadata.Retry.Max = s.MetadataRetryMax
	c.Metadata.Retry.Backoff = s.MetadataRetryWait
	c.Producer.RequiredAcks = s.RequiredAcks
	c.Producer.Timeout = s.BrokerTimeout
	c.Producer.Compression = s.Compression
	c.Producer.CompressionLevel = s.CompressionLevel
	c.Producer.MaxMessageBytes = s.MaxMessageBytes
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

// connect makes the client and checks that a broker can be reached and
// that it accepts the producer (TLS, SASL), trying again with backoff
// until ctx ends. With the idempotent producer it returns the producer id
// it got; pid is -1 without.
func (k *Kafka) connect(ctx context.Context, cfg *sarama.Config) (client sarama.Client, pid int64, epoch int16, err error) {
	wait := k.s.BackoffInit
	for {
		pid, epoch = -1, -1
		client, err = sarama.NewClient(k.s.Hosts, cfg)
		if err == nil {
			if k.s.RequiredAcks == sarama.WaitForAll {
				pid, epoch, err = initProducerID(client, cfg)
			} else if b := client.LeastLoadedBroker(); b == nil {
				err = errors.New("no broker known")
			} else {
				_, err = b.Connected()
			}
			if err == nil {
				return client, pid, epoch, nil
			}
			client.Close()
		}
		k.health(fmt.Errorf("output: cannot reach Kafka at %v: %w", k.s.Hosts, err))
		k.warn("cannot reach Kafka; events wait until it can be reached", "hosts", k.s.Hosts, "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, 0, 0, ctx.Err()
		case <-t.C:
		}
		wait = min(wait*2, k.s.BackoffMax)
	}
}

// Run produces what Publish hands over until ctx ends; it then stops the
// producer, waiting up to closeWait for requests in flight. Call Drain
// before ending ctx to let acknowledgements arrive.
func (k *Kafka) Run(ctx context.Context, closeWait time.Duration) error {
	cfg, err := k.saramaConfig()
	if err != nil {
		return err
	}
	client, pid, epoch, err := k.connect(ctx, cfg)
	if err != nil {
		return nil // ctx ended before Kafka could be reached
	}
	k.health(nil)
	k.log.Info("connected to Kafka", "hosts", k.s.Hosts, "version", k.s.Version.String(), "acks", int(k.s.RequiredAcks), "idempotent", k.s.RequiredAcks == sarama.WaitForAll)
	e := newEngine(k, client, cfg)
	e.pid, e.epoch = pid, epoch
	e.run(ctx, closeWait)
	// Closing the client ends the connections, so that a sender waiting
	// on one returns at once.
	client.Close()
	e.stopSenders()
	return nil
}

// acked handles the acknowledgements of msgs.
func (k *Kafka) acked(msgs []*message) {
	var size int64
	acks := make([]publish.Ack, 0, len(msgs))
	for _, m := range msgs {
		acks = append(acks, publish.Ack{Receipt: m.batch.receipt, Index: m.index})
		size += m.size
		sb := m.batch
		if sb.left--; sb.left == 0 {
			sb.recycle() // m and its batch's other messages are done with
		}
	}
	k.OnAck(acks)
	k.queue.Release(len(msgs), size)
	if k.hooks.Acked != nil {
		k.hooks.Acked(len(msgs))
	}
}
