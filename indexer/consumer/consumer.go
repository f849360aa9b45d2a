// Package consumer is the indexer's Kafka side: a sarama consumer group
// whose claimed partitions flow through decode, parse, route and the bulk
// sink, and whose offsets are committed only as far as Elasticsearch has
// acknowledged every record below them.
//
// Per claimed partition one goroutine reads records in order. Each record
// becomes one document (document.Builder), routed to zero or more indices
// (route.Router); each (document, index) pair is a bulk.Item. The record is
// acknowledged in its partition's offsets.Tracker when all its items have
// settled (indexed, duplicate, dead-lettered). A committer marks and commits
// each partition's Committable offset every CommitInterval; sarama's auto
// commit is off, so nothing else ever commits.
//
// Back-pressure: bulk.Sink.Add blocks while the sink's budget is spent; the
// partition goroutine then stops reading, sarama's per-partition buffers
// fill and its fetches pause. Heartbeats run on sarama's own goroutine, so
// the member stays in its group however long Elasticsearch is away.
//
// Letting go (a rebalance, or shutdown): when a claim ends the partition's
// goroutine stops reading, flushes the sink, waits up to DrainTimeout for its
// records to be acknowledged, abandons what is still in flight (the sink
// drops it; it stays uncommitted and the next owner reads it again, which
// the stable _id makes harmless), and commits before returning, which is
// before sarama lets the partition go.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"logpipe/indexer/bulk"
	"logpipe/indexer/console"
	"logpipe/indexer/document"
	"logpipe/indexer/offsets"
	"logpipe/indexer/route"
)

// Hooks receive what the consumer does, for metrics. Any may be nil.
type Hooks struct {
	// Consumed is called for each record read.
	Consumed func(topic string, partition int32)
	// Parsed is called for each document built with what its message was
	// parsed as (document.Doc.Kind), and whether parsing was tried.
	Parsed func(d *document.Doc)
	// Unrouted is called for each document that matched no route and is
	// dropped.
	Unrouted func(topic string, partition int32)
	// Lag is called every commit interval with each claimed partition's
	// lag: its high watermark less its committable offset, that is the
	// records not yet read plus those read but not yet acknowledged by
	// Elasticsearch (what kafka-consumer-groups shows as LAG once committed).
	Lag func(topic string, partition int32, lag int64)
	// Released is called when a partition is let go.
	Released func(topic string, partition int32)
	// Committed is called with each offset marked for commit.
	Committed func(topic string, partition int32, offset int64)
	// Joined is called when the member has joined the group and received
	// its partitions (each session).
	Joined func()
}

// Config configures a Consumer.
type Config struct {
	Brokers []string
	Topics  []string
	GroupID string
	Sarama  *sarama.Config

	Codec  document.Codec
	Build  document.Options
	Router *route.Router
	// DeadLetter is the dead-letter index format; it may use dates only.
	DeadLetter *route.Format
	Sink       *bulk.Sink
	// Console, when set, also gets every document.
	Console *console.Writer

	CommitInterval time.Duration
	DrainTimeout   time.Duration
	Hooks          Hooks
	Log            *slog.Logger
	// Now is the clock for event.ingested and dead letters; nil means
	// time.Now.
	Now func() time.Time
}

// Consumer is a member of the consumer group.
type Consumer struct {
	cfg    Config
	client sarama.Client
	group  sarama.ConsumerGroup
	h      *handler
}

// lagRefresh is how often the high watermarks of claimed partitions are
// asked for, so that the lag stays true while consumption is paused (a
// paused partition is not fetched, so its fetched high watermark stands
// still).
const lagRefresh = 5 * time.Second

// New joins nothing yet: it connects the group client. Run consumes.
func New(cfg Config) (*Consumer, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CommitInterval <= 0 {
		cfg.CommitInterval = time.Second
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	cfg.Build.Now = cfg.Now
	cfg.Build.Group = cfg.GroupID
	client, err := sarama.NewClient(cfg.Brokers, cfg.Sarama)
	if err != nil {
		return nil, fmt.Errorf("consumer: %w", err)
	}
	g, err := sarama.NewConsumerGroupFromClient(cfg.GroupID, client)
	if err != nil {
		client.Close()
		return nil, fmt.Errorf("consumer: %w", err)
	}
	return &Consumer{cfg: cfg, client: client, group: g, h: &handler{cfg: &cfg, client: client, parts: map[partKey]*partition{}}}, nil
}

// Run consumes until ctx ends or the group fails for good, then leaves the
// group. Partitions are drained and committed before it returns.
func (c *Consumer) Run(ctx context.Context) error {
	errsDone := make(chan struct{})
	go func() {
		defer close(errsDone)
		for err := range c.group.Errors() {
			c.cfg.Log.Warn("Kafka consumer group", "err", err)
		}
	}()
	var err error
	for ctx.Err() == nil {
		err = c.group.Consume(ctx, c.cfg.Topics, c.h)
		if err == nil || ctx.Err() != nil {
			err = nil
			continue
		}
		if errors.Is(err, sarama.ErrClosedConsumerGroup) {
			break
		}
		c.cfg.Log.Warn("Kafka consumer group session failed; joining again", "err", err)
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	cerr := c.group.Close()
	<-errsDone
	if err == nil && cerr != nil {
		err = fmt.Errorf("consumer: leaving the group: %w", cerr)
	}
	c.client.Close()
	return err
}

type partKey struct {
	topic     string
	partition int32
}

// handler implements sarama.ConsumerGroupHandler.
type handler struct {
	cfg    *Config
	client sarama.Client

	mu    sync.Mutex
	parts map[partKey]*partition

	// The committer of the current session.
	stopCommitter chan struct{}
	committerDone chan struct{}
}

// partition is the state of one claimed partition. Its tracker and marked
// offset are guarded by mu; records settle from sink goroutines.
type partition struct {
	topic     string
	partition int32

	mu      sync.Mutex
	tracker *offsets.Tracker
	marked  int64
	// idle gets a token whenever the tracker has nothing pending.
	idle chan struct{}
	// hwm is the latest high watermark known, from fetches or asked for.
	hwm atomic.Int64
	// incomplete counts records (0 or 1, the last one read) whose items
	// could not all be handed to the sink because the claim was ending:
	// they can never be acknowledged, so a drain does not wait for them.
	// Owned by the partition's reader.
	incomplete int

	abandoned atomic.Bool
}

func (p *partition) add(offset int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tracker.Add(offset)
}

func (p *partition) ack(offset int64) {
	p.mu.Lock()
	_, err := p.tracker.Ack(offset)
	empty := p.tracker.Pending() == 0
	p.mu.Unlock()
	if err != nil {
		// A record acknowledged twice would be a bug in this package.
		panic(fmt.Sprintf("consumer: %s/%d: %v", p.topic, p.partition, err))
	}
	if empty {
		select {
		case p.idle <- struct{}{}:
		default:
		}
	}
}

func (p *partition) pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tracker.Pending()
}

// record is one record in flight: the owner of its items.
type record struct {
	p         *partition
	rec       document.Record
	doc       *document.Doc
	cfg       *Config
	remaining atomic.Int32
}

// DeadLetter implements bulk.Owner.
func (r *record) DeadLetter(_ *bulk.Item, ref document.Refusal) (string, string, []byte) {
	return r.deadLetter(ref)
}

func (r *record) deadLetter(ref document.Refusal) (string, string, []byte) {
	now := r.cfg.Now()
	index, _ := r.cfg.DeadLetter.Apply(document.DeadLetterTime(r.doc, &r.rec, now), nil)
	return index, document.DeadLetterID(r.doc.ID, ref.Index), document.DeadLetter(r.doc, &r.rec, ref, now)
}

// Settled implements bulk.Owner.
func (r *record) Settled(_ *bulk.Item, res bulk.Result) {
	if !res.Acknowledged() {
		return
	}
	if r.remaining.Add(-1) == 0 {
		r.p.ack(r.rec.Offset)
	}
}

// Abandoned implements bulk.Owner.
func (r *record) Abandoned() bool { return r.p.abandoned.Load() }

// Setup starts the session's committer.
func (h *handler) Setup(sess sarama.ConsumerGroupSession) error {
	h.cfg.Log.Info("joined the consumer group", "group", h.cfg.GroupID, "member", sess.MemberID(), "generation", sess.GenerationID(), "claims", sess.Claims())
	if h.cfg.Hooks.Joined != nil {
		h.cfg.Hooks.Joined()
	}
	h.stopCommitter = make(chan struct{})
	h.committerDone = make(chan struct{}, 2)
	go h.commitLoop(sess, h.stopCommitter, h.committerDone)
	go h.lagLoop(h.stopCommitter, h.committerDone)
	return nil
}

// Cleanup stops the committer; every claim has committed already.
func (h *handler) Cleanup(sess sarama.ConsumerGroupSession) error {
	close(h.stopCommitter)
	<-h.committerDone
	<-h.committerDone
	h.commit(sess)
	return nil
}

// claimed returns the partitions claimed now.
func (h *handler) claimed() []*partition {
	h.mu.Lock()
	defer h.mu.Unlock()
	parts := make([]*partition, 0, len(h.parts))
	for _, p := range h.parts {
		parts = append(parts, p)
	}
	return parts
}

// lagLoop asks for the high watermarks of the claimed partitions every
// lagRefresh. It runs apart from the committer because the request may wait
// on an unreachable broker.
func (h *handler) lagLoop(stop chan struct{}, done chan struct{}) {
	defer func() { done <- struct{}{} }()
	t := time.NewTicker(lagRefresh)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		for _, p := range h.claimed() {
			if off, err := h.client.GetOffset(p.topic, p.partition, sarama.OffsetNewest); err == nil {
				p.raiseHWM(off)
			}
		}
	}
}

func (p *partition) raiseHWM(off int64) {
	for {
		cur := p.hwm.Load()
		if off <= cur || p.hwm.CompareAndSwap(cur, off) {
			return
		}
	}
}

func (h *handler) commitLoop(sess sarama.ConsumerGroupSession, stop chan struct{}, done chan struct{}) {
	defer func() { done <- struct{}{} }()
	t := time.NewTicker(h.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			h.commit(sess)
		}
	}
}

// commit marks every claimed partition's committable offset, commits, and
// reports the lags.
func (h *handler) commit(sess sarama.ConsumerGroupSession) {
	parts := h.claimed()
	marked := false
	for _, p := range parts {
		if h.mark(sess, p) {
			marked = true
		}
	}
	if marked {
		sess.Commit()
	}
	if h.cfg.Hooks.Lag == nil {
		return
	}
	for _, p := range parts {
		p.mu.Lock()
		off := p.tracker.Committable()
		p.mu.Unlock()
		if hwm := p.hwm.Load(); off >= 0 && hwm > 0 {
			h.cfg.Hooks.Lag(p.topic, p.partition, max(0, hwm-off))
		}
	}
}

// mark marks p's committable offset if it moved, and reports whether it did.
func (h *handler) mark(sess sarama.ConsumerGroupSession, p *partition) bool {
	p.mu.Lock()
	off := p.tracker.Committable()
	moved := off >= 0 && off > p.marked
	if moved {
		p.marked = off
	}
	p.mu.Unlock()
	if !moved {
		return false
	}
	sess.MarkOffset(p.topic, p.partition, off, "")
	if h.cfg.Hooks.Committed != nil {
		h.cfg.Hooks.Committed(p.topic, p.partition, off)
	}
	return true
}

// ConsumeClaim reads one partition until the claim ends, then drains and
// commits it.
func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	start := claim.InitialOffset()
	if start < 0 {
		// No committed offset: the claim starts at the oldest or newest
		// offset. Resolve it, so that it is committed even if no record
		// arrives; otherwise a restart with auto_offset_reset latest would
		// skip what was produced meanwhile.
		if off, err := h.client.GetOffset(claim.Topic(), claim.Partition(), h.cfg.Sarama.Consumer.Offsets.Initial); err == nil {
			start = off
		}
	}
	p := &partition{
		topic:     claim.Topic(),
		partition: claim.Partition(),
		tracker:   offsets.New(start),
		marked:    claim.InitialOffset(),
		idle:      make(chan struct{}, 1),
	}
	key := partKey{p.topic, p.partition}
	h.mu.Lock()
	h.parts[key] = p
	h.mu.Unlock()
	h.cfg.Log.Debug("partition claimed", "topic", p.topic, "partition", p.partition, "offset", claim.InitialOffset())

	ctx := sess.Context()
	b := document.NewBuilder(h.cfg.Build)
	var targets []route.Target
read:
	for {
		select {
		case msg, ok := <-claim.Messages():
			if !ok {
				break read
			}
			if err := h.handle(ctx, p, b, claim, msg, &targets); err != nil {
				p.incomplete = 1
				break read
			}
		case <-ctx.Done():
			break read
		}
	}

	h.drain(sess, p)
	h.mu.Lock()
	delete(h.parts, key)
	h.mu.Unlock()
	if h.cfg.Hooks.Released != nil {
		h.cfg.Hooks.Released(p.topic, p.partition)
	}
	return nil
}

// drain waits for p's records to settle, gives up what has not, and
// commits.
func (h *handler) drain(sess sarama.ConsumerGroupSession, p *partition) {
	h.cfg.Sink.Flush()
	deadline := time.NewTimer(h.cfg.DrainTimeout)
	defer deadline.Stop()
	timedOut := false
	for n := p.pending(); n > p.incomplete && !timedOut; n = p.pending() {
		select {
		case <-p.idle:
		case <-deadline.C:
			h.cfg.Log.Warn("records still unacknowledged when letting the partition go; they will be read again",
				"topic", p.topic, "partition", p.partition, "records", n, "drain_timeout", h.cfg.DrainTimeout)
			timedOut = true
		case <-time.After(100 * time.Millisecond):
			// The idle token comes only when nothing is pending; with an
			// incomplete record the count is checked now and then.
		}
	}
	p.abandoned.Store(true)
	if h.mark(sess, p) {
		sess.Commit()
	}
	p.mu.Lock()
	off := p.marked
	p.mu.Unlock()
	h.cfg.Log.Debug("partition let go", "topic", p.topic, "partition", p.partition, "committed", off)
}

// handle turns one record into items and hands them to the sink. It
// returns an error only when ctx ended while waiting for the sink.
func (h *handler) handle(ctx context.Context, p *partition, b *document.Builder, claim sarama.ConsumerGroupClaim, msg *sarama.ConsumerMessage, targets *[]route.Target) error {
	cfg := h.cfg
	if err := p.add(msg.Offset); err != nil {
		cfg.Log.Warn("record out of order; skipped", "topic", msg.Topic, "partition", msg.Partition, "offset", msg.Offset, "err", err)
		return nil
	}
	if cfg.Hooks.Consumed != nil {
		cfg.Hooks.Consumed(msg.Topic, msg.Partition)
	}
	p.raiseHWM(claim.HighWaterMarkOffset())
	r := &record{p: p, cfg: cfg, rec: document.Record{
		Topic: msg.Topic, Partition: msg.Partition, Offset: msg.Offset,
		Key: msg.Key, Value: msg.Value, Timestamp: msg.Timestamp,
	}}
	if r.rec.Timestamp.IsZero() || r.rec.Timestamp.Unix() <= 0 {
		// Records without a timestamp (old message formats) take the time
		// they were read.
		r.rec.Timestamp = cfg.Now()
	}
	ev := document.Decode(&r.rec, cfg.Codec)
	r.doc = b.Build(ev, &r.rec)
	if cfg.Hooks.Parsed != nil {
		cfg.Hooks.Parsed(r.doc)
	}
	if cfg.Console != nil {
		if err := cfg.Console.Write(r.doc.Body); err != nil {
			cfg.Log.Debug("stdout output", "err", err)
		}
	}
	ts := cfg.Router.Route((*targets)[:0], r.doc)
	*targets = ts
	if len(ts) == 0 {
		if cfg.Hooks.Unrouted != nil {
			cfg.Hooks.Unrouted(msg.Topic, msg.Partition)
		}
		p.ack(msg.Offset)
		return nil
	}
	r.remaining.Store(int32(len(ts)))
	for _, t := range ts {
		it := &bulk.Item{Index: t.Index, ID: r.doc.ID, Body: r.doc.Body, Owner: r}
		if t.Err != nil {
			typ := "invalid_index_name_exception"
			if errors.Is(t.Err, route.ErrMissingField) {
				typ = "index_name_field_missing"
			}
			ref := document.Refusal{Index: t.Index, Type: typ, Reason: t.Err.Error()}
			it.Index, it.ID, it.Body = r.deadLetter(ref)
			it.Dead, it.Refusal = true, ref
		}
		if err := cfg.Sink.Add(ctx, it); err != nil {
			// The claim is ending; this record stays unacknowledged.
			return err
		}
	}
	return nil
}
