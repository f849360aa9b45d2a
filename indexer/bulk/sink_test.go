package bulk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"logpipe/e2e/harness"
	"logpipe/indexer/document"
	"logpipe/internal/await"
)

func TestMain(m *testing.M) { harness.Main(m) }

const waitTime = 2 * time.Minute

// owner records what became of its items.
type owner struct {
	mu        sync.Mutex
	orig      map[*Item]string // item -> its original id
	results   map[string]Result
	reasons   map[string]document.Refusal
	abandoned atomic.Bool
	dlq       string
}

func newOwner(dlq string) *owner {
	return &owner{orig: map[*Item]string{}, results: map[string]Result{}, reasons: map[string]document.Refusal{}, dlq: dlq}
}

func (o *owner) item(index, id, body string) *Item {
	it := &Item{Index: index, ID: id, Body: []byte(body), Owner: o}
	o.mu.Lock()
	o.orig[it] = id
	o.mu.Unlock()
	return it
}

func (o *owner) DeadLetter(it *Item, r document.Refusal) (string, string, []byte) {
	body := fmt.Sprintf(`{"dead_letter":{"index":%q,"status":%d,"type":%q,"reason":%q},"original_id":%q}`, r.Index, r.Status, r.Type, r.Reason, it.ID)
	return o.dlq, document.DeadLetterID(it.ID, r.Index), []byte(body)
}

func (o *owner) Settled(it *Item, res Result) {
	o.mu.Lock()
	defer o.mu.Unlock()
	id := o.orig[it]
	if _, dup := o.results[id]; dup {
		panic("settled twice: " + id)
	}
	o.results[id] = res
	if it.Dead {
		o.reasons[id] = it.Refusal
	}
}

func (o *owner) Abandoned() bool { return o.abandoned.Load() }

func (o *owner) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.results)
}

func (o *owner) waitSettled(t *testing.T, n int) map[string]Result {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for o.count() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d items settled after %v", o.count(), n, waitTime)
		}
		time.Sleep(20 * time.Millisecond)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]Result{}
	for k, v := range o.results {
		out[k] = v
	}
	return out
}

// env is a sink writing through a fault proxy to the shared node.
type env struct {
	es     *elasticsearch.Client // direct, for checks
	proxy  *faultProxy
	sink   *Sink
	hooks  *hookLog
	prefix string
}

type hookLog struct {
	mu          sync.Mutex
	unreachable int
	reachable   int
	retries     int
	requests    int
	lastErr     error
}

func newEnv(t *testing.T, cfg Config) *env {
	t.Helper()
	node := harness.SharedElasticsearch(t)
	direct, err := node.Client()
	if err != nil {
		t.Fatal(err)
	}
	p := newFaultProxy(t, node.URL)
	client, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{p.URL()}, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	h := &hookLog{}
	cfg.Client = client
	cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cfg.Hooks = Hooks{
		Request: func(_, _ int, _ time.Duration, err error) {
			h.mu.Lock()
			h.requests++
			h.mu.Unlock()
		},
		Retry: func(n int) {
			h.mu.Lock()
			h.retries += n
			h.mu.Unlock()
		},
		Reachable: func(err error) {
			h.mu.Lock()
			if err != nil {
				h.unreachable++
				h.lastErr = err
			} else {
				h.reachable++
			}
			h.mu.Unlock()
		},
	}
	if cfg.BackoffInit == 0 {
		cfg.BackoffInit, cfg.BackoffMax = 20*time.Millisecond, 200*time.Millisecond
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = 50 * time.Millisecond
	}
	s := New(cfg)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	prefix := "bulk-" + strings.ToLower(strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()))
	return &env{es: direct, proxy: p, sink: s, hooks: h, prefix: prefix}
}

func (e *env) add(t *testing.T, it *Item) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	if err := e.sink.Add(ctx, it); err != nil {
		t.Fatal(err)
	}
}

// count returns the number of documents in index, after a refresh.
func (e *env) count(t *testing.T, index string) int {
	t.Helper()
	if _, err := e.es.Indices.Refresh(e.es.Indices.Refresh.WithIndex(index)); err != nil {
		t.Fatal(err)
	}
	res, err := e.es.Count(e.es.Count.WithIndex(index))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var c struct {
		Count int `json:"count"`
	}
	body, _ := io.ReadAll(res.Body)
	if err := json.Unmarshal(body, &c); err != nil || res.StatusCode != 200 {
		t.Fatalf("count %s: %s %s", index, res.Status(), body)
	}
	return c.Count
}

func tally(results map[string]Result) map[Result]int {
	out := map[Result]int{}
	for _, r := range results {
		out[r]++
	}
	return out
}

func TestIndexAndRedeliver(t *testing.T) {
	e := newEnv(t, Config{FlushBytes: 4 << 10})
	o := newOwner(e.prefix + "-dlq")
	const n = 500
	for i := 0; i < n; i++ {
		e.add(t, o.item(e.prefix, fmt.Sprintf("id-%d", i), fmt.Sprintf(`{"n":%d,"message":"line %d"}`, i, i)))
	}
	if got := tally(o.waitSettled(t, n)); got[Indexed] != n {
		t.Fatalf("results %v", got)
	}
	if c := e.count(t, e.prefix); c != n {
		t.Fatalf("%d documents, want %d", c, n)
	}
	// The same records again: Elasticsearch has them, so they are duplicates
	// and the count stays.
	o2 := newOwner(e.prefix + "-dlq")
	for i := 0; i < n; i++ {
		e.add(t, o2.item(e.prefix, fmt.Sprintf("id-%d", i), `{"n":-1}`))
	}
	if got := tally(o2.waitSettled(t, n)); got[Duplicate] != n {
		t.Fatalf("redelivery results %v", got)
	}
	if c := e.count(t, e.prefix); c != n {
		t.Fatalf("%d documents after redelivery, want %d", c, n)
	}
	if items, bytes := e.sink.InFlight(); items != 0 || bytes != 0 {
		t.Fatalf("in flight after settling: %d items, %d bytes", items, bytes)
	}
}

func TestMappingConflictIsDeadLettered(t *testing.T) {
	e := newEnv(t, Config{})
	res, err := e.es.Indices.Create(e.prefix, e.es.Indices.Create.WithBody(strings.NewReader(
		`{"mappings":{"properties":{"source":{"properties":{"address":{"type":"keyword"}}},"status":{"type":"short"}}}}`)))
	if err != nil || res.IsError() {
		t.Fatalf("create index: %v %v", err, res)
	}
	res.Body.Close()
	o := newOwner(e.prefix + "-dlq")
	e.add(t, o.item(e.prefix, "before", `{"source":{"address":"1.2.3.4"}}`))
	e.add(t, o.item(e.prefix, "object", `{"source":{"address":{"nested":"object"}}}`))
	e.add(t, o.item(e.prefix, "toobig", `{"status":99999}`))
	e.add(t, o.item(e.prefix, "after", `{"source":{"address":"5.6.7.8"}}`))
	// An index name Elasticsearch refuses, sent anyway: 400 too.
	e.add(t, o.item("Bad-Name", "badname", `{}`))
	results := o.waitSettled(t, 5)
	want := map[string]Result{"before": Indexed, "object": DeadLettered, "toobig": DeadLettered, "after": Indexed, "badname": DeadLettered}
	for id, r := range want {
		if results[id] != r {
			t.Errorf("%s: %v, want %v", id, results[id], r)
		}
	}
	o.mu.Lock()
	ref := o.reasons["object"]
	o.mu.Unlock()
	if ref.Status != 400 || ref.Type != "document_parsing_exception" && ref.Type != "mapper_parsing_exception" || !strings.Contains(ref.Reason, "source.address") {
		t.Errorf("refusal %+v", ref)
	}
	if c := e.count(t, e.prefix); c != 2 {
		t.Errorf("%d documents in the index, want 2", c)
	}
	if c := e.count(t, e.prefix+"-dlq"); c != 3 {
		t.Errorf("%d dead letters, want 3", c)
	}
}

func TestDeadLetterRefusedFails(t *testing.T) {
	e := newEnv(t, Config{})
	o := newOwner("Also-Bad")
	e.add(t, o.item("Bad", "x", `{}`))
	if r := o.waitSettled(t, 1)["x"]; r != Failed {
		t.Fatalf("result %v, want Failed", r)
	}
}

// TestOutagesAreRetried runs the faults one after another: connections
// refused, connections cut, whole requests answered 429 and 503, single
// items answered 429. Every document ends up indexed exactly once.
func TestOutagesAreRetried(t *testing.T) {
	// A worker takes the first document of each step on its own (no other
	// is waiting yet) and retries it; the rest of the step's 50 must fit in
	// one gathered request, or Add would wait for the fault to heal.
	e := newEnv(t, Config{FlushBytes: 8 << 10})
	o := newOwner(e.prefix + "-dlq")
	n := 0
	addSome := func(k int) {
		for i := 0; i < k; i++ {
			e.add(t, o.item(e.prefix, fmt.Sprintf("id-%d", n), fmt.Sprintf(`{"n":%d}`, n)))
			n++
		}
	}
	step := func(name string, fault func(), heal func()) {
		t.Logf("fault: %s", name)
		fault()
		addSome(50)
		// Wait until the sink has met the fault, then heal it.
		deadline := time.Now().Add(waitTime)
		e.hooks.mu.Lock()
		before := e.hooks.retries
		e.hooks.mu.Unlock()
		for {
			e.hooks.mu.Lock()
			r := e.hooks.retries
			e.hooks.mu.Unlock()
			if r > before || o.count() == n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no retry seen", name)
			}
			time.Sleep(10 * time.Millisecond)
		}
		heal()
		o.waitSettled(t, n)
	}
	step("refused", e.proxy.down, e.proxy.up)
	e.hooks.mu.Lock()
	if e.hooks.unreachable == 0 {
		t.Error("refused connections were not reported as unreachable")
	}
	e.hooks.mu.Unlock()
	step("cut", func() { e.proxy.set("cut", 3) }, func() {})
	step("429", func() { e.proxy.set("429", 3) }, func() {})
	step("503", func() { e.proxy.set("503", 3) }, func() {})
	step("502 until healed", func() { e.proxy.set("502", -1) }, func() { e.proxy.set("", 0) })
	step("item 429", func() { e.proxy.setItemFault(429, 3) }, func() {})

	results := o.waitSettled(t, n)
	got := tally(results)
	// An item answered 429 after Elasticsearch really created it comes back
	// as a duplicate: still one document.
	if got[Indexed]+got[Duplicate] != n || got[Duplicate] > 3 {
		t.Fatalf("results %v", got)
	}
	if c := e.count(t, e.prefix); c != n {
		t.Fatalf("%d documents, want %d", c, n)
	}
}

func TestTooLargeIsSplit(t *testing.T) {
	// One worker, held at the proxy with the first document, so that the
	// others gather into one request too large for the proxy.
	e := newEnv(t, Config{FlushBytes: 64 << 10, Workers: 1})
	gate := e.proxy.hold()
	e.proxy.mu.Lock()
	e.proxy.maxBody = 3000
	e.proxy.mu.Unlock()
	o := newOwner(e.prefix + "-dlq")
	pad := fmt.Sprintf(`{"pad":%q}`, strings.Repeat("x", 500))
	e.add(t, o.item(e.prefix, "id-0", pad))
	first := e.proxy.next(t, gate)
	for i := 1; i < 20; i++ {
		e.add(t, o.item(e.prefix, fmt.Sprintf("id-%d", i), pad))
	}
	huge := fmt.Sprintf(`{"pad":%q}`, strings.Repeat("y", 4000))
	e.add(t, o.item(e.prefix, "huge", huge))
	e.proxy.release()
	close(first.pass)
	results := o.waitSettled(t, 21)
	o.mu.Lock()
	ref := o.reasons["huge"]
	o.mu.Unlock()
	if results["huge"] != DeadLettered || ref.Status != 413 {
		t.Errorf("huge document: %v %+v", results["huge"], ref)
	}
	if got := tally(results); got[Indexed] != 20 {
		t.Errorf("results %v", got)
	}
}

// TestBackPressure: with Elasticsearch away, Add stops returning once the
// budget is spent, and everything is written when it comes back.
func TestBackPressure(t *testing.T) {
	// A worker takes the first document and retries it; the rest gathers
	// behind that request in flight, and could reach FlushBytes only if
	// the worker held nothing: the budget is what stops Add.
	const budget = 4 << 10
	e := newEnv(t, Config{FlushBytes: budget, MaxInFlightBytes: budget, Workers: 4})
	o := newOwner(e.prefix + "-dlq")
	e.proxy.down()
	body := fmt.Sprintf(`{"pad":%q}`, strings.Repeat("z", 200))
	added, held := 0, 0
	size := func(id string) int { return len(body) + len(e.prefix) + len(id) + 64 }
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		id := fmt.Sprintf("id-%d", added)
		err := e.sink.Add(ctx, o.item(e.prefix, id, body))
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		added++
		held += size(id)
		if added > 1000 {
			t.Fatal("Add never blocked with Elasticsearch away")
		}
	}
	if _, inUse := e.sink.InFlight(); inUse > budget || inUse != int64(held) {
		t.Errorf("%d bytes held for %d items of %d bytes, budget %d", inUse, added, held, budget)
	}
	// The next item would not have fitted.
	if next := held + size(fmt.Sprintf("id-%d", added)); next <= budget {
		t.Errorf("Add blocked at %d bytes held, with room for %d more", held, budget-held)
	}
	e.proxy.up()
	if got := tally(o.waitSettled(t, added)); got[Indexed] != added {
		t.Fatalf("results %v", got)
	}
	// The item whose Add timed out was not the sink's: it never settles.
	if c := e.count(t, e.prefix); c != added {
		t.Fatalf("%d documents, want %d", c, added)
	}
}

func TestAbandonAndClose(t *testing.T) {
	e := newEnv(t, Config{})
	e.proxy.down()
	revoked, kept := newOwner(e.prefix+"-dlq"), newOwner(e.prefix+"-dlq")
	for i := 0; i < 10; i++ {
		e.add(t, revoked.item(e.prefix, fmt.Sprintf("r-%d", i), `{}`))
		e.add(t, kept.item(e.prefix, fmt.Sprintf("k-%d", i), `{}`))
	}
	revoked.abandoned.Store(true)
	if got := tally(revoked.waitSettled(t, 10)); got[Abandoned] != 10 {
		t.Fatalf("revoked owner: %v", got)
	}
	if kept.count() != 0 {
		t.Fatalf("kept owner's items settled with Elasticsearch away: %d", kept.count())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := e.sink.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v, want the deadline", err)
	}
	if got := tally(kept.waitSettled(t, 10)); got[Abandoned] != 10 {
		t.Fatalf("after Close: %v", got)
	}
	if err := e.sink.Add(context.Background(), kept.item(e.prefix, "late", `{}`)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close = %v", err)
	}
	e.proxy.up()
}

func TestCloseSendsWhatIsGathered(t *testing.T) {
	e := newEnv(t, Config{FlushInterval: time.Hour})
	o := newOwner(e.prefix + "-dlq")
	for i := 0; i < 5; i++ {
		e.add(t, o.item(e.prefix, fmt.Sprintf("id-%d", i), `{}`))
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	if err := e.sink.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := tally(o.waitSettled(t, 5)); got[Indexed] != 5 {
		t.Fatalf("results %v", got)
	}
}

func TestFlush(t *testing.T) {
	e := newEnv(t, Config{FlushInterval: time.Hour})
	o := newOwner(e.prefix + "-dlq")
	e.add(t, o.item(e.prefix, "a", `{}`))
	e.sink.Flush()
	if got := o.waitSettled(t, 1); got["a"] != Indexed {
		t.Fatalf("results %v", got)
	}
}

// TestIdleFlush: with an hour's FlushInterval, a lone document is sent at
// once, since no other one is waiting and no request is in flight; so is
// the next one, added after the first has settled.
func TestIdleFlush(t *testing.T) {
	e := newEnv(t, Config{FlushInterval: time.Hour})
	o := newOwner(e.prefix + "-dlq")
	e.add(t, o.item(e.prefix, "first", `{"n":1}`))
	if got := o.waitSettled(t, 1); got["first"] != Indexed {
		t.Fatalf("results %v, want first indexed", got)
	}
	e.add(t, o.item(e.prefix, "second", `{"n":2}`))
	if got := o.waitSettled(t, 2); got["second"] != Indexed {
		t.Fatalf("results %v, want second indexed", got)
	}
	if c := e.count(t, e.prefix); c != 2 {
		t.Fatalf("%d documents, want 2", c)
	}
}

// TestOnePartialRequestInFlight: with two workers, while the first
// request is held at the proxy, documents added meanwhile wait for it and
// then go together, not to the idle second worker one by one.
func TestOnePartialRequestInFlight(t *testing.T) {
	e := newEnv(t, Config{Workers: 2, FlushInterval: time.Hour})
	gate := e.proxy.hold()
	o := newOwner(e.prefix + "-dlq")
	e.add(t, o.item(e.prefix, "first", `{"n":0}`))
	first := e.proxy.next(t, gate)
	for i := 1; i <= 10; i++ {
		e.add(t, o.item(e.prefix, fmt.Sprintf("id-%d", i), fmt.Sprintf(`{"n":%d}`, i)))
	}
	close(first.pass)
	second := e.proxy.next(t, gate)
	e.proxy.release()
	close(second.pass)
	if first.items != 1 || second.items != 10 {
		t.Errorf("requests of %d and %d items, want 1 and 10", first.items, second.items)
	}
	if got := tally(o.waitSettled(t, 11)); got[Indexed] != 11 {
		t.Fatalf("results %v, want 11 indexed", got)
	}
}

// TestBusyWorkerFillsBatches: while the one worker is busy (held at the
// proxy), documents added meanwhile gather into a request of FlushBytes,
// not into small ones, and the last, partial request goes without waiting
// for the hour's FlushInterval.
func TestBusyWorkerFillsBatches(t *testing.T) {
	const flushBytes = 4 << 10
	e := newEnv(t, Config{Workers: 1, FlushBytes: flushBytes, FlushInterval: time.Hour})
	gate := e.proxy.hold()
	o := newOwner(e.prefix + "-dlq")
	body := fmt.Sprintf(`{"pad":%q}`, strings.Repeat("x", 200))
	id := func(i int) string { return fmt.Sprintf("id-%04d", i) }
	// The sink counts an item as its body, index, id and 48 bytes.
	perBatch := (flushBytes + len(body) + len(e.prefix) + len(id(0)) + 48 - 1) / (len(body) + len(e.prefix) + len(id(0)) + 48)
	n := 1 + 4*perBatch + perBatch/2

	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	added := make(chan error, 1)
	go func() {
		for i := range n {
			if err := e.sink.Add(ctx, o.item(e.prefix, id(i), body)); err != nil {
				added <- err
				return
			}
		}
		added <- nil
	}()
	var sizes []int
	for sent := 0; sent < n; {
		g := e.proxy.next(t, gate)
		sizes = append(sizes, g.items)
		sent += g.items
		// Hold the request until the sink has gathered the next one: a
		// full request and an Add waiting behind it, or all that is left.
		want := int64(g.items + min(n-sent, perBatch+1))
		err := await.Poll(ctx, 5*time.Millisecond, func(context.Context) error {
			if items, _ := e.sink.InFlight(); items != want {
				return await.NotYet(fmt.Sprintf("%d items held", items), want)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("after request %d of %d items: %v", len(sizes), g.items, err)
		}
		close(g.pass)
	}
	if err := <-added; err != nil {
		t.Fatal(err)
	}
	if got := tally(o.waitSettled(t, n)); got[Indexed] != n {
		t.Fatalf("results %v, want %d indexed", got, n)
	}
	// The first request goes as soon as a worker is free, whatever it
	// holds; each later one but the last is full.
	if len(sizes) < 3 {
		t.Fatalf("requests of %v items, want at least 3", sizes)
	}
	for i, got := range sizes[1 : len(sizes)-1] {
		if got != perBatch {
			t.Errorf("request %d had %d items, want %d (FlushBytes' worth); all requests: %v", i+2, got, perBatch, sizes)
		}
	}
	if last := sizes[len(sizes)-1]; last > perBatch {
		t.Errorf("the last request had %d items, want at most %d; all requests: %v", last, perBatch, sizes)
	}
}

func TestBackoff(t *testing.T) {
	s := &Sink{cfg: Config{BackoffInit: time.Second, BackoffMax: 10 * time.Second}}
	for _, c := range []struct {
		n   int
		max time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {4, 8 * time.Second}, {5, 10 * time.Second}, {50, 10 * time.Second}} {
		d := s.backoff(c.n)
		if d > c.max || d < c.max*4/5 {
			t.Errorf("backoff(%d) = %v, want within [%v, %v]", c.n, d, c.max*4/5, c.max)
		}
	}
}

// TestAllSucceeded reads bulk answers as filter_path leaves them: only an
// answer without errors whose statuses match the items spares decoding.
func TestAllSucceeded(t *testing.T) {
	two := `{"errors":false,"items":[{"create":{"status":201}},{"create":{"status":201}}]}`
	for _, c := range []struct {
		body string
		n    int
		want bool
	}{
		{two, 2, true},
		{two, 3, false},
		{two, 1, false},
		{`{"errors":true,"items":[{"create":{"status":201}},{"create":{"status":409,"error":{"type":"version_conflict_engine_exception"}}}]}`, 2, false},
		{`{"errors":false,"items":[{"create":{"status":201,"error":{"type":"x"}}}]}`, 1, false},
		{`{"items":[{"create":{"status":201}}],"errors":false}`, 1, false},
		{``, 0, false},
	} {
		if got := allSucceeded([]byte(c.body), c.n); got != c.want {
			t.Errorf("allSucceeded(%s, %d) = %v, want %v", c.body, c.n, got, c.want)
		}
	}
}

// escapedIDs are document ids that JSON must escape, or that a careless
// escaper would mangle.
var escapedIDs = []string{
	`quote"d`, `back\slash`, "tab\tand\nnewline", "ctl\x01\x1f", "é日本", "<&>", "line\u2028sep", "plain-id",
}

func TestAppendCreate(t *testing.T) {
	for _, id := range append(escapedIDs, "bad\xffutf8") {
		buf := AppendCreate([]byte("before\n"), "logs-"+id, id, []byte(`{"n":1}`))
		lines := strings.Split(string(buf), "\n")
		if len(lines) != 4 || lines[0] != "before" || lines[2] != `{"n":1}` || lines[3] != "" {
			t.Fatalf("AppendCreate(%q): got lines %q, want before, the action, the body and nothing after", id, lines)
		}
		var action struct {
			Create struct {
				Index string `json:"_index"`
				ID    string `json:"_id"`
			} `json:"create"`
		}
		if err := json.Unmarshal([]byte(lines[1]), &action); err != nil {
			t.Fatalf("AppendCreate(%q): action %s: %v", id, lines[1], err)
		}
		want := strings.ToValidUTF8(id, "\uFFFD")
		if action.Create.ID != want || action.Create.Index != "logs-"+want {
			t.Errorf("AppendCreate(%q): got index %q id %q, want %q and %q", id, action.Create.Index, action.Create.ID, "logs-"+want, want)
		}
	}
}

// TestIDsThatNeedEscaping indexes documents whose ids JSON must escape and
// finds each in Elasticsearch under its id.
func TestIDsThatNeedEscaping(t *testing.T) {
	e := newEnv(t, Config{})
	o := newOwner(e.prefix + "-dlq")
	want := map[string]int{}
	for i, id := range escapedIDs {
		e.add(t, o.item(e.prefix, id, fmt.Sprintf(`{"n":%d}`, i)))
		want[id] = i
	}
	if got := tally(o.waitSettled(t, len(escapedIDs))); got[Indexed] != len(escapedIDs) {
		t.Fatalf("got results %v, want %d indexed", got, len(escapedIDs))
	}
	if c := e.count(t, e.prefix); c != len(escapedIDs) {
		t.Fatalf("got %d documents, want %d", c, len(escapedIDs))
	}
	res, err := e.es.Search(e.es.Search.WithIndex(e.prefix), e.es.Search.WithSize(100))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var found struct {
		Hits struct {
			Hits []struct {
				ID     string `json:"_id"`
				Source struct {
					N int `json:"n"`
				} `json:"_source"`
			} `json:"hits"`
		} `json:"hits"`
	}
	if err := json.Unmarshal(body, &found); err != nil || res.StatusCode != 200 {
		t.Fatalf("search: %s %s", res.Status(), body)
	}
	got := map[string]int{}
	for _, h := range found.Hits.Hits {
		got[h.ID] = h.Source.N
	}
	if !maps.Equal(got, want) {
		t.Fatalf("got documents (id: n) %#v, want %#v", got, want)
	}
}
