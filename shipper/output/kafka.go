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
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"logpipe/pipeline/event"
	"logpipe/pipeline/scram"
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
	// OnAck gets what Publish's register returned, once the broker has
	// acknowledged the event.
	OnAck func(meta any)

	in       chan *sarama.ProducerMessage
	failures chan *sarama.ProducerError
	seq      atomic.Uint64
	resent   atomic.Int64 // resent events not yet acknowledged
	okSince  atomic.Bool  // an ack arrived since the last failure

	warnMu   sync.Mutex
	lastWarn time.Time
}

// pending rides in ProducerMessage.Metadata.
type pending struct {
	meta   any
	size   int64
	hash   uint32
	seq    uint64
	resent bool
}

// NewKafka returns an output for settings s whose queue holds at most
// maxEvents events and maxBytes bytes not yet acknowledged.
func NewKafka(s *Settings, maxEvents int, maxBytes int64, log *slog.Logger, hooks Hooks, onAck func(meta any)) *Kafka {
	if log.Enabled(context.Background(), slog.LevelDebug) {
		// sarama's logger is global: set it once, before any producer runs.
		saramaLogOnce.Do(func() { sarama.Logger = saramaLog{log} })
	}
	return &Kafka{
		s: s, log: log, hooks: hooks, OnAck: onAck,
		queue:    NewQueue(maxEvents, maxBytes),
		in:       make(chan *sarama.ProducerMessage, max(maxEvents, 1)),
		failures: make(chan *sarama.ProducerError, 64),
	}
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

// Publish encodes ev, waits for room in the queue, registers it and hands
// it to the producer. See input.Sink.
func (k *Kafka) Publish(ctx context.Context, ev *event.Event, fileKey string, register func() any) error {
	look := lookup(ev)
	topic, err := k.s.Topic.Eval(look)
	if err != nil {
		// Nothing can be done with this event: count it, and let the
		// registry move past it.
		if err := k.queue.Acquire(ctx, 0); err != nil {
			return err
		}
		meta := register()
		k.warn("event dropped: its topic cannot be made", "topic", k.s.Topic.String(), "err", err, "path", ev.Log.File.Path, "offset", ev.Log.Offset)
		if k.hooks.Dropped != nil {
			k.hooks.Dropped("topic")
		}
		k.OnAck(meta)
		k.queue.Release(0)
		return nil
	}
	var key []byte
	if k.s.Key != nil {
		if s, err := k.s.Key.Eval(look); err == nil && s != "" {
			key = []byte(s)
		}
	}
	p := &pending{}
	switch {
	case k.s.Partitioner != "hash":
	case len(k.s.HashFields) > 0:
		vals := make([]string, len(k.s.HashFields))
		for i, f := range k.s.HashFields {
			vals[i], _ = look(f)
		}
		p.hash = hash32(vals...)
	case key != nil:
		p.hash = hash32(string(key))
	default:
		p.hash = hash32(fileKey)
	}
	value := encodeLimited(ev, k.s.MaxMessageBytes-len(key)-recordOverhead)
	p.size = int64(len(value) + len(key))
	if err := k.queue.Acquire(ctx, p.size); err != nil {
		return err
	}
	p.meta = register()
	p.seq = k.seq.Add(1)
	msg := &sarama.ProducerMessage{Topic: topic, Value: sarama.ByteEncoder(value), Timestamp: ev.Timestamp, Metadata: p}
	if key != nil {
		msg.Key = sarama.ByteEncoder(key)
	}
	k.in <- msg // never blocks: every message in it holds a queue slot
	return nil
}

// Drain waits until every event handed over has been acknowledged, or ctx
// ends.
func (k *Kafka) Drain(ctx context.Context) error { return k.queue.WaitEmpty(ctx) }

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
	c.Producer.Flush.Frequency = s.BulkFlushFrequency
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
		for m := range producer.Successes() {
			k.acked(m)
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

func (k *Kafka) acked(m *sarama.ProducerMessage) {
	p := m.Metadata.(*pending)
	if p.resent {
		k.resent.Add(-1)
	}
	k.okSince.Store(true)
	k.OnAck(p.meta)
	k.queue.Release(p.size)
	if k.hooks.Acked != nil {
		k.hooks.Acked(1)
	}
}

// feed moves messages into the producer until ctx ends. After a failure
// it holds new messages back and, after a backoff, sends the failed ones
// again in their original order, then lets new ones through once those
// are acknowledged.
func (k *Kafka) feed(ctx context.Context, producer sarama.AsyncProducer) {
	var (
		ready   []*sarama.ProducerMessage // to hand to the producer, in order
		failed  []*sarama.ProducerMessage // to send again after the backoff
		wait    = k.s.BackoffInit
		retry   = time.NewTimer(time.Hour)
		waiting bool // retry is armed
	)
	retry.Stop()
	defer retry.Stop()
	status := time.NewTicker(5 * time.Second)
	defer status.Stop()
	for {
		var out chan<- *sarama.ProducerMessage
		var next *sarama.ProducerMessage
		if len(ready) > 0 {
			out, next = producer.Input(), ready[0]
		}
		in := k.in
		if len(ready) > 0 || len(failed) > 0 || k.resent.Load() > 0 {
			in = nil // hold new events back behind the retries
		}
		select {
		case <-ctx.Done():
			return
		case <-status.C:
			n, b := k.queue.Len()
			k.log.Debug("kafka output", "queued", n, "queued_bytes", b, "ready", len(ready), "failed", len(failed), "resent_in_flight", k.resent.Load(), "retry_armed", waiting)
		case out <- next:
			ready[0] = nil
			ready = ready[1:]
			if k.hooks.Published != nil {
				k.hooks.Published(1)
			}
		case m := <-in:
			ready = append(ready, m)
		case e := <-k.failures:
			if k.okSince.Swap(false) {
				wait = k.s.BackoffInit
			}
			failed = append(failed, e.Msg)
			k.health(fmt.Errorf("output: Kafka refuses events: %w", e.Err))
			k.warn("events not acknowledged by Kafka; sending them again", "err", e.Err, "topic", e.Msg.Topic, "retry_in", wait)
			if !waiting {
				retry.Reset(wait)
				waiting = true
				wait = min(wait*2, k.s.BackoffMax)
			}
		case <-retry.C:
			waiting = false
			slices.SortFunc(failed, func(a, b *sarama.ProducerMessage) int {
				return cmpSeq(a.Metadata.(*pending).seq, b.Metadata.(*pending).seq)
			})
			for _, m := range failed {
				p := m.Metadata.(*pending)
				if !p.resent {
					p.resent = true
					k.resent.Add(1)
				}
			}
			if k.hooks.Retried != nil {
				k.hooks.Retried(len(failed))
			}
			// Failed messages go first: they are older than any held back.
			ready = append(failed, ready...)
			failed = nil
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
		return int32(m.Metadata.(*pending).hash % uint32(partitions)), nil
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
