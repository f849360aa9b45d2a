// Package bulk writes documents to Elasticsearch with the bulk API, and
// never gives one up while Elasticsearch may still take it.
//
// Items are gathered into bulk requests and sent by Workers goroutines. A
// request goes once it holds about FlushBytes; before that, it goes as soon
// as no further item is waiting and no request is in flight, so a lone
// document is not held back, and in any case FlushInterval after its first
// item. While a request is in flight the next one gathers, so requests grow
// with the load and under load fill up to FlushBytes.
// Each item is a `create` with its own _id:
//
//   - 2xx: indexed. 409 (version conflict): a document with that _id is
//     there already, from an earlier delivery of the same record; that is
//     success, and the stored document is left as it was.
//   - 400 and 404 (a mapping conflict, a malformed value, an index that
//     cannot be created): the document can never be indexed as it is. Its
//     owner supplies a dead-letter document (the original event, the index
//     it was meant for, Elasticsearch's reason), which takes its place. A
//     dead letter that is refused too is logged and counted as Failed.
//   - Anything else (429, 5xx, 401/403 while credentials are fixed) and a
//     request that fails as a whole (connection refused, timeout, a non-200
//     answer) is retried with exponential backoff between BackoffInit and
//     BackoffMax, without limit: only the items that need it are sent again.
//
// Why create and not index: both make a redelivered record one document,
// as the _id is the same. create leaves the first copy untouched (no
// rewrite, no new version, event.ingested stays the time it was first
// indexed), costs Elasticsearch a lookup rather than a reindex, and makes a
// duplicate visible (the Duplicate result is counted), where index would
// silently overwrite; an _id clash between two different events upstream
// shows up rather than one replacing the other.
//
// Why the plain bulk API and not esutil.BulkIndexer: the indexer needs its
// own answer per item (retry some, dead-letter others, settle the rest)
// and retries without limit; BulkIndexer retries a whole request a bounded
// number of times through the transport, reports per-item failures to a
// callback running on its own worker (re-adding from there can deadlock
// against its full queue), and offers no way to give up the items of a
// revoked partition. The client's own retries are switched off so that one
// policy, this one, applies.
//
// Back-pressure: Add waits while the documents held (gathered, in flight,
// waiting for a retry) reach MaxInFlightBytes, so a slow or absent
// Elasticsearch stops the caller instead of growing memory.
package bulk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"logpipe/indexer/document"
	"logpipe/pipeline/event"
)

// Result is how an item settled.
type Result uint8

// The results.
const (
	// Indexed: Elasticsearch created the document.
	Indexed Result = iota + 1
	// Duplicate: a document with the item's _id was there already (409).
	Duplicate
	// DeadLettered: Elasticsearch refused the document; its dead letter is
	// indexed (or was there already).
	DeadLettered
	// Failed: the document and its dead letter were both refused. The error
	// is logged; the item is not retried.
	Failed
	// Abandoned: the sink gave the item up before Elasticsearch
	// acknowledged it (its owner asked, or the sink closed). It must not
	// count as written.
	Abandoned
)

// String names the result.
func (r Result) String() string {
	switch r {
	case Indexed:
		return "indexed"
	case Duplicate:
		return "duplicate"
	case DeadLettered:
		return "dead_lettered"
	case Failed:
		return "failed"
	case Abandoned:
		return "abandoned"
	}
	return "unknown"
}

// Acknowledged reports whether the result means Elasticsearch holds the
// document or its dead letter, or the item is settled for good (Failed), so
// that the record it came from need not be read again.
func (r Result) Acknowledged() bool { return r != Abandoned }

// Owner is told what becomes of its items.
type Owner interface {
	// DeadLetter returns the dead-letter document that replaces it, which
	// Elasticsearch refused as r says.
	DeadLetter(it *Item, r document.Refusal) (index, id string, body []byte)
	// Settled is called exactly once per item added, from a sink goroutine.
	Settled(it *Item, res Result)
	// Abandoned reports whether the owner has given its items up (its
	// partition was revoked); they are then settled as Abandoned instead of
	// being sent again.
	Abandoned() bool
}

// Item is one document to create. The sink owns it from Add until Settled.
type Item struct {
	Index string
	ID    string
	Body  []byte
	Owner Owner
	// Dead marks an item that is a dead letter already: a refusal settles
	// it as Failed.
	Dead bool
	// Refusal says why the document was refused, once Dead (set by the sink
	// when it turns an item into its dead letter, or by the caller for an
	// item that is a dead letter from the start).
	Refusal document.Refusal

	held int64 // budget bytes held
}

// Hooks receive what the sink does, for metrics and readiness. Any may be
// nil.
type Hooks struct {
	// Request is called after each bulk request: its body size, item count,
	// duration, and the error of a request that failed as a whole (nil when
	// Elasticsearch answered 200).
	Request func(bytes, items int, d time.Duration, err error)
	// Retry is called with the number of items about to be sent again.
	Retry func(items int)
	// Settled is called for each item settled; dead tells whether it was
	// carrying its dead letter.
	Settled func(res Result, dead bool)
	// Reachable is called after each request with nil when Elasticsearch
	// answered and could take writes, or the error when it could not be
	// reached, or answered a whole request with 5xx, 401 or 403.
	Reachable func(err error)
}

// Config configures a Sink.
type Config struct {
	// Client is the Elasticsearch client; its own retries should be off.
	Client *elasticsearch.Client
	// Workers is how many bulk requests may be in flight at once (default 2).
	Workers int
	// FlushBytes is the size at which a bulk request is sent (default 5 MiB).
	FlushBytes int
	// FlushInterval is the longest a partial bulk request waits while items
	// keep coming or requests are in flight (default 1s). A partial request
	// does not wait for it when no item is waiting and none is in flight.
	FlushInterval time.Duration
	// MaxInFlightBytes bounds the documents held; default (Workers+2)*FlushBytes.
	MaxInFlightBytes int64
	// BackoffInit and BackoffMax bound the wait between retries (defaults
	// 1s and 60s); each failed attempt doubles it, with a little jitter.
	BackoffInit, BackoffMax time.Duration
	// Timeout bounds one bulk request (default 90s).
	Timeout time.Duration
	Hooks   Hooks
	Log     *slog.Logger
}

func (c *Config) defaults() {
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if c.FlushBytes <= 0 {
		c.FlushBytes = 5 << 20
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = time.Second
	}
	if c.MaxInFlightBytes <= 0 {
		c.MaxInFlightBytes = int64(c.Workers+2) * int64(c.FlushBytes)
	}
	if c.BackoffInit <= 0 {
		c.BackoffInit = time.Second
	}
	if c.BackoffMax < c.BackoffInit {
		c.BackoffMax = max(60*time.Second, c.BackoffInit)
	}
	if c.Timeout <= 0 {
		c.Timeout = 90 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// ErrClosed is returned by Add after Close.
var ErrClosed = errors.New("bulk: sink is closed")

// Sink writes items to Elasticsearch. Its methods are safe for concurrent
// use.
type Sink struct {
	cfg    Config
	budget *budget

	in      chan *Item
	flush   chan struct{}
	batches chan []*Item

	inFlight atomic.Int64 // items held
	// busy counts the batches handed to workers and not yet done; a
	// worker that is done with one says so on freed.
	busy  atomic.Int64
	freed chan struct{}

	closeOnce sync.Once
	closing   chan struct{} // closed by Close: no more Add, send what is gathered
	quit      chan struct{} // closed when Close's deadline passes: abandon everything
	quitOnce  sync.Once
	baseCtx   context.Context // cancelled with quit, for requests in flight
	cancel    context.CancelFunc
	batcherWG sync.WaitGroup
	workerWG  sync.WaitGroup
}

// New starts a sink: one goroutine gathering items, Workers sending them.
// Close stops them.
func New(cfg Config) *Sink {
	cfg.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sink{
		cfg:     cfg,
		budget:  newBudget(cfg.MaxInFlightBytes),
		in:      make(chan *Item),
		flush:   make(chan struct{}, 1),
		freed:   make(chan struct{}, 1),
		batches: make(chan []*Item),
		closing: make(chan struct{}),
		quit:    make(chan struct{}),
		baseCtx: ctx,
		cancel:  cancel,
	}
	s.batcherWG.Add(1)
	go s.gather()
	for i := 0; i < cfg.Workers; i++ {
		s.workerWG.Add(1)
		go s.work()
	}
	return s
}

// Add hands it to the sink, waiting while the in-flight budget is spent.
// It returns ctx's error if ctx ends first, or ErrClosed after Close; the
// item is then not the sink's and will not be settled.
func (s *Sink) Add(ctx context.Context, it *Item) error {
	select {
	case <-s.closing:
		return ErrClosed
	default:
	}
	size := int64(len(it.Body) + len(it.Index) + len(it.ID) + 64)
	held, err := s.budget.acquire(ctx, size)
	if err != nil {
		return err
	}
	it.held = held
	s.inFlight.Add(1)
	select {
	case s.in <- it:
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-s.closing:
		err = ErrClosed
	}
	s.inFlight.Add(-1)
	s.budget.release(held)
	return err
}

// Flush asks for the items gathered so far to be sent now rather than at
// the end of FlushInterval. It does not wait.
func (s *Sink) Flush() {
	select {
	case s.flush <- struct{}{}:
	default:
	}
}

// InFlight returns how many items the sink holds and their size in bytes.
func (s *Sink) InFlight() (items, bytes int64) {
	return s.inFlight.Load(), s.budget.inUse()
}

// Close stops accepting items, sends those gathered, and waits for every
// item to settle until ctx ends; then it abandons what is left (settled as
// Abandoned) and waits for the workers to stop. It returns ctx's error when
// items had to be abandoned. Calling it again does nothing.
func (s *Sink) Close(ctx context.Context) error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closing)
		done := make(chan struct{})
		go func() {
			s.batcherWG.Wait()
			s.workerWG.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			err = ctx.Err()
			s.abandon()
			<-done
		}
		s.cancel()
	})
	return err
}

func (s *Sink) abandon() {
	s.quitOnce.Do(func() {
		close(s.quit)
		s.cancel()
	})
}

// gather collects items into batches and hands them to the workers. A
// partial batch goes as soon as no item is waiting to be added and no
// batch is being sent: a quiet input does not keep it back, while under
// load, with requests in flight, items gather, so at most one partial
// request is in flight at a time and batches grow with the load. A batch
// of FlushBytes takes no more items and goes to the next free worker; so
// does one that has waited FlushInterval, or was asked for by Flush,
// before any further item is added. While a batch waits for a worker, its
// items whose owners gave them up are settled every FlushInterval.
func (s *Sink) gather() {
	defer s.batcherWG.Done()
	defer close(s.batches)
	var batch []*Item
	size := 0
	due := false // the batch goes before any further item is added
	timer := time.NewTimer(s.cfg.FlushInterval)
	timer.Stop()
	add := func(it *Item) {
		if len(batch) == 0 {
			timer.Reset(s.cfg.FlushInterval)
		}
		batch = append(batch, it)
		size += len(it.Body) + len(it.Index) + len(it.ID) + 48
	}
	reset := func() {
		timer.Stop()
		batch, size, due = nil, 0, false
	}
	handed := func() {
		s.busy.Add(1)
		reset()
	}
	for {
		// A nil channel is never ready: no item is taken into a full
		// batch, and no batch is offered that may not go yet.
		full := size >= s.cfg.FlushBytes
		in := s.in
		if full {
			in = nil
		}
		var out chan<- []*Item
		if len(batch) > 0 && (full || due || s.busy.Load() == 0) {
			out = s.batches
		}
		// First what must go, then an item already waiting, before the
		// batch may count as idle.
		if due {
			select {
			case out <- batch:
				handed()
				continue
			default:
			}
		}
		select {
		case it := <-in:
			add(it)
			continue
		default:
		}
		select {
		case it := <-in:
			add(it)
		case out <- batch:
			handed()
		case <-s.freed:
			// A worker is done: the batch may go now.
		case <-timer.C:
			due = true
			batch = s.dropAbandoned(batch)
			if len(batch) == 0 {
				reset()
			} else {
				timer.Reset(s.cfg.FlushInterval)
			}
		case <-s.flush:
			due = len(batch) > 0
		case <-s.closing:
			// Take what Add calls already handed over, then stop.
			for {
				select {
				case it := <-s.in:
					batch = append(batch, it)
					continue
				default:
				}
				break
			}
			if len(batch) > 0 {
				select {
				case s.batches <- batch:
					s.busy.Add(1)
				case <-s.quit:
					for _, it := range batch {
						s.settle(it, Abandoned)
					}
				}
			}
			return
		}
	}
}

// dropAbandoned settles the items of batch whose owners gave them up and
// returns the others, in batch's backing array.
func (s *Sink) dropAbandoned(batch []*Item) []*Item {
	kept := batch[:0]
	for _, it := range batch {
		if it.Owner.Abandoned() {
			s.settle(it, Abandoned)
		} else {
			kept = append(kept, it)
		}
	}
	clear(batch[len(kept):])
	return kept
}

func (s *Sink) settle(it *Item, res Result) {
	s.budget.release(s.settleHeld(it, res))
}

// settleHeld settles it but leaves its budget bytes held, returning them,
// so that a whole answer's items give their bytes back at once: each
// release wakes the partition readers waiting for room.
func (s *Sink) settleHeld(it *Item, res Result) int64 {
	if s.cfg.Hooks.Settled != nil {
		s.cfg.Hooks.Settled(res, it.Dead)
	}
	s.inFlight.Add(-1)
	it.Owner.Settled(it, res)
	return it.held
}

func (s *Sink) work() {
	defer s.workerWG.Done()
	w := &worker{s: s}
	for batch := range s.batches {
		w.process(batch)
		s.busy.Add(-1)
		select {
		case s.freed <- struct{}{}:
		default:
		}
	}
}

// worker sends batches, one at a time, until each item settles.
type worker struct {
	s   *Sink
	buf []byte
}

func (w *worker) process(pending []*Item) {
	s := w.s
	failures := 0
	for {
		pending = s.dropAbandoned(pending)
		if len(pending) == 0 {
			return
		}
		select {
		case <-s.quit:
			for _, it := range pending {
				s.settle(it, Abandoned)
			}
			return
		default:
		}
		retry, failed := w.attempt(pending)
		if len(retry) == 0 {
			return
		}
		if s.cfg.Hooks.Retry != nil {
			s.cfg.Hooks.Retry(len(retry))
		}
		// Keep the slice's own backing array: retry aliases pending.
		pending = retry
		if !failed {
			failures = 0
			continue
		}
		failures++
		wait := s.backoff(failures)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.quit:
			t.Stop()
		}
	}
}

// backoff returns the wait after the n-th consecutive failed attempt:
// BackoffInit doubled n-1 times, at most BackoffMax, less up to a fifth at
// random so that workers do not retry in step.
func (s *Sink) backoff(n int) time.Duration {
	d := s.cfg.BackoffInit
	for i := 1; i < n && d < s.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, s.cfg.BackoffMax)
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

// The response members the sink reads; filter_path keeps the rest out.
var filterPath = []string{"errors", "items.*.status", "items.*.error.type", "items.*.error.reason", "items.*.error.caused_by.type", "items.*.error.caused_by.reason"}

type bulkResponse struct {
	Errors bool       `json:"errors"`
	Items  []itemWrap `json:"items"`
}

type itemWrap struct {
	Create *itemResult `json:"create"`
	Index  *itemResult `json:"index"`
}

type itemResult struct {
	Status int        `json:"status"`
	Error  *itemError `json:"error"`
}

type itemError struct {
	Type     string     `json:"type"`
	Reason   string     `json:"reason"`
	CausedBy *itemError `json:"caused_by"`
}

func (e *itemError) text() (typ, reason string) {
	if e == nil {
		return "", ""
	}
	typ, reason = e.Type, e.Reason
	if e.CausedBy != nil && e.CausedBy.Reason != "" {
		reason += ": " + e.CausedBy.Reason
	}
	return typ, reason
}

// attempt sends items once. It returns the items to send again (in the
// backing array of items) and whether the attempt failed in a way that
// calls for a backoff before the next; items not returned have settled.
func (w *worker) attempt(items []*Item) (retry []*Item, failed bool) {
	s := w.s
	w.buf = w.buf[:0]
	for _, it := range items {
		w.buf = AppendCreate(w.buf, it.Index, it.ID, it.Body)
	}
	size := len(w.buf)
	ctx, cancel := context.WithTimeout(s.baseCtx, s.cfg.Timeout)
	defer cancel()
	start := time.Now()
	res, err := s.cfg.Client.Bulk(bytes.NewReader(w.buf),
		s.cfg.Client.Bulk.WithContext(ctx),
		s.cfg.Client.Bulk.WithFilterPath(filterPath...))
	var body []byte
	if err == nil {
		body, err = io.ReadAll(res.Body)
		res.Body.Close()
		if err == nil && res.StatusCode != http.StatusOK {
			err = &statusError{code: res.StatusCode, body: body}
		}
	}
	if s.cfg.Hooks.Request != nil {
		s.cfg.Hooks.Request(size, len(items), time.Since(start), err)
	}
	var se *statusError
	if errors.As(err, &se) && se.code == http.StatusRequestEntityTooLarge {
		s.reachable(nil)
		return w.tooLarge(items)
	}
	if err != nil {
		// Unreachable, failing (5xx) or refusing the credentials: not able to
		// take writes. A 429 is a busy node that still works.
		if se == nil || se.code >= 500 || se.code == http.StatusUnauthorized || se.code == http.StatusForbidden {
			s.reachable(err)
		} else {
			s.reachable(nil)
		}
		s.cfg.Log.Warn("bulk request failed; retrying", "items", len(items), "bytes", size, "err", err)
		return items, true
	}
	s.reachable(nil)

	var held int64
	defer func() { s.budget.release(held) }()
	if allSucceeded(body, len(items)) {
		for _, it := range items {
			held += s.settleHeld(it, resultFor(it, Indexed))
		}
		return nil, false
	}
	var br bulkResponse
	if err := json.Unmarshal(body, &br); err != nil || len(br.Items) != len(items) {
		if err == nil {
			err = fmt.Errorf("bulk: %d results for %d items", len(br.Items), len(items))
		}
		s.cfg.Log.Warn("unreadable bulk response; retrying", "items", len(items), "err", err)
		return items, true
	}
	retry = items[:0]
	for i, it := range items {
		r := br.Items[i].Create
		if r == nil {
			r = br.Items[i].Index
		}
		if r == nil {
			retry = append(retry, it)
			failed = true
			continue
		}
		switch st := r.Status; {
		case st >= 200 && st < 300:
			held += s.settleHeld(it, resultFor(it, Indexed))
		case st == http.StatusConflict:
			held += s.settleHeld(it, resultFor(it, Duplicate))
		case st == http.StatusBadRequest || st == http.StatusNotFound:
			typ, reason := r.Error.text()
			if w.refuse(it, document.Refusal{Index: it.Index, Status: st, Type: typ, Reason: reason}) {
				retry = append(retry, it)
			}
		default:
			retry = append(retry, it)
			failed = true
		}
	}
	if failed {
		s.cfg.Log.Warn("bulk items refused for now; retrying", "items", len(retry))
	}
	return retry, failed
}

// allSucceeded reports whether a bulk answer (filtered to filterPath) says
// that every one of n items succeeded: "errors" is false, which
// Elasticsearch sets only when no item failed, and there are n statuses.
// It spares decoding the items of the common answer; anything else is
// decoded item by item.
func allSucceeded(body []byte, n int) bool {
	rest, ok := bytes.CutPrefix(body, []byte(`{"errors":false,"items":[`))
	return ok && bytes.Count(rest, []byte(`"status":`)) == n && !bytes.Contains(rest, []byte(`"error"`))
}

func resultFor(it *Item, r Result) Result {
	if it.Dead {
		return DeadLettered
	}
	return r
}

// refuse turns a refused item into its dead letter, reporting whether it
// is to be sent again; a refused dead letter fails for good.
func (w *worker) refuse(it *Item, r document.Refusal) bool {
	s := w.s
	if it.Dead {
		s.cfg.Log.Error("the dead-letter index refused a document; it is dropped",
			"index", it.Index, "id", it.ID, "status", r.Status, "type", r.Type, "reason", r.Reason,
			"original_index", it.Refusal.Index, "original_reason", it.Refusal.Reason)
		s.settle(it, Failed)
		return false
	}
	s.cfg.Log.Debug("document refused; dead-lettering it", "index", it.Index, "id", it.ID, "status", r.Status, "type", r.Type, "reason", r.Reason)
	it.Index, it.ID, it.Body = it.Owner.DeadLetter(it, r)
	it.Dead = true
	it.Refusal = r
	return true
}

// tooLarge handles a 413 for the whole request: halves are sent on their
// own, and a single document too large for Elasticsearch is dead-lettered.
func (w *worker) tooLarge(items []*Item) ([]*Item, bool) {
	if len(items) == 1 {
		r := document.Refusal{Index: items[0].Index, Status: http.StatusRequestEntityTooLarge, Type: "request_entity_too_large",
			Reason: fmt.Sprintf("the document alone (%d bytes) is larger than Elasticsearch's http.max_content_length", len(items[0].Body))}
		if w.refuse(items[0], r) {
			return items, false
		}
		return nil, false
	}
	h := len(items) / 2
	second := append([]*Item(nil), items[h:]...)
	r1, f1 := w.attempt(items[:h])
	r1 = append([]*Item(nil), r1...)
	r2, f2 := w.attempt(second)
	return append(r1, r2...), f1 || f2
}

func (s *Sink) reachable(err error) {
	if s.cfg.Hooks.Reachable != nil {
		s.cfg.Hooks.Reachable(err)
	}
}

type statusError struct {
	code int
	body []byte
}

func (e *statusError) Error() string {
	b := strings.TrimSpace(string(e.body))
	if len(b) > 300 {
		b = b[:300] + "…"
	}
	return fmt.Sprintf("bulk: Elasticsearch answered %d %s: %s", e.code, http.StatusText(e.code), b)
}

// AppendCreate appends to dst the two lines of a bulk request that create
// a document, as the sink sends them: the action, naming the index and the
// document's id, and the document's JSON body.
func AppendCreate(dst []byte, index, id string, body []byte) []byte {
	dst = append(dst, `{"create":{"_index":`...)
	dst = event.AppendString(dst, index)
	dst = append(dst, `,"_id":`...)
	dst = event.AppendString(dst, id)
	dst = append(dst, "}}\n"...)
	dst = append(dst, body...)
	return append(dst, '\n')
}
