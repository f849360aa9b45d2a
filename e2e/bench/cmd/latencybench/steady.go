package main

import (
	"context"
	"fmt"
	"log"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"logpipe/e2e/bench/loadgen"
)

// writeTick is how often the steady writer appends what is due: at 2,000
// lines/s about ten lines a write.
const writeTick = 5 * time.Millisecond

// burstChunk is the most lines the unthrottled writer appends to a log in
// one write.
const burstChunk = 2000

// burstPoll is how often the as-fast-as-it-goes phase counts the
// searchable documents.
const burstPoll = 100 * time.Millisecond

// maxRuns is the most ranges of lines not yet found that one search names
// per log; past it the last range reaches to the log's last line.
const maxRuns = 64

// ledger records, for each line of a phase, its log, where it starts and
// when it was appended and found. The writer fills offsets and appended
// below written, then publishes written; the poller reads only below it.
// Lines 0..measured-1 are measured; a closing error line may follow them
// (see newLedger).
type ledger struct {
	run      string
	measured int
	kinds    []logKind
	pos      []int32          // by line: its place among its log's lines
	lines    [numLogs][]int32 // by log: its lines, in order
	offsets  [numLogs][]int64 // by log: where each of its lines starts
	appended []time.Duration  // by line, since the phase's start
	found    []time.Duration  // by line, since the phase's start; 0 while not found
	ingested []time.Duration  // by line, its document's event.ingested, since the phase's start
	written  atomic.Int64
}

// newLedger lays out measured lines of run, every errorEvery-th of them
// an error line (none when errorEvery is 0), the rest access lines. When
// there are error lines, an unmeasured closing error line follows: the
// shipper's multiline reader holds each error line until the next one
// starts (or for its 5 s timeout), and the closing line is the next one
// of the last measured line.
func newLedger(run string, measured, errorEvery int) *ledger {
	total := measured
	if errorEvery > 0 && measured >= errorEvery {
		total++
	}
	l := &ledger{run: run, measured: measured, kinds: make([]logKind, total), pos: make([]int32, total),
		appended: make([]time.Duration, total), found: make([]time.Duration, total), ingested: make([]time.Duration, total)}
	for i := range total {
		k := accessLog
		if i == measured || errorEvery > 0 && i%errorEvery == errorEvery-1 {
			k = errorLog
		}
		l.kinds[i] = k
		l.pos[i] = int32(len(l.lines[k]))
		l.lines[k] = append(l.lines[k], int32(i))
	}
	for k := range numLogs {
		l.offsets[k] = make([]int64, len(l.lines[k]))
	}
	return l
}

// total is the number of lines, the closing one included.
func (l *ledger) total() int { return len(l.kinds) }

// writtenIn returns how many of log k's lines are among the first n.
func (l *ledger) writtenIn(k logKind, n int) int {
	i, _ := slices.BinarySearch(l.lines[k], int32(n))
	return i
}

// write appends the ledger's lines to the logs from start on: with rate
// > 0, rate lines a second, every writeTick the lines due by then; with
// rate 0, as fast as it can, burstChunk lines at a time. The lines of each
// log go in one write per round, and are stamped with the time the
// round's writes returned. It returns the largest delay of a line behind
// its due time (0 when unthrottled).
func (st *stack) write(ctx context.Context, l *ledger, start time.Time, rate int) (time.Duration, error) {
	var tick *time.Ticker
	if rate > 0 {
		tick = time.NewTicker(writeTick)
		defer tick.Stop()
	}
	var bufs [numLogs][]byte
	var lag time.Duration
	total := l.total()
	for i := 0; i < total; {
		due := min(total, i+burstChunk)
		if rate > 0 {
			select {
			case <-ctx.Done():
				return 0, fmt.Errorf("latencybench: %w", ctx.Err())
			case <-tick.C:
			}
			due = min(total, int(float64(rate)*time.Since(start).Seconds()))
			if due <= i {
				continue
			}
		} else if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("latencybench: %w", err)
		}
		for k := range numLogs {
			bufs[k] = bufs[k][:0]
		}
		now := time.Now()
		for j := i; j < due; j++ {
			k := l.kinds[j]
			l.offsets[k][l.pos[j]] = st.logs[k].size + int64(len(bufs[k]))
			bufs[k] = appendSteadyLine(bufs[k], l.run, k, j, now)
		}
		for k := range numLogs {
			if len(bufs[k]) > 0 {
				if err := st.logs[k].append(bufs[k]); err != nil {
					return 0, err
				}
			}
		}
		at := time.Since(start)
		for j := i; j < due; j++ {
			l.appended[j] = at
		}
		if rate > 0 {
			// Line i was due when the rate had reached i+1 lines.
			lag = max(lag, at-time.Duration(float64(i+1)/float64(rate)*float64(time.Second)))
		}
		l.written.Store(int64(due))
		i = due
	}
	return lag, nil
}

// pollStats describe the polls of a steady phase: each asks whether any
// line not found yet is searchable, and if so fetches those lines.
type pollStats struct {
	searches int // polls
	fetches  int // of them, those that fetched documents
	hits     int // documents fetched, each a line found
	total    time.Duration
	longest  time.Duration
}

// steadyResult is what a steady run measured.
type steadyResult struct {
	lines      int // measured lines appended
	errorLines int // of them, error-log lines
	found      int // of them, searchable by the end
	// writing is from the writer's start to its last write returning;
	// maxLag is the longest a line was appended after it was due.
	writing time.Duration
	maxLag  time.Duration
	// latencies are those of the measured lines found, sorted; byLog
	// splits them by log. upstream is, for each, the part until the
	// indexer built its document (event.ingested), downstream the rest.
	latencies            loadgen.Latencies
	byLog                [numLogs]loadgen.Latencies
	upstream, downstream loadgen.Latencies
	// seconds are the latencies of the lines appended in each second of
	// the run, for the chart.
	seconds []second
	polls   pollStats
	// es is what Elasticsearch spent on searches and indexing meanwhile.
	es     esStats
	faults []faultEvent
	// warm are the latencies of the warm-up phase's lines, sorted.
	warm  loadgen.Latencies
	burst *burstResult
	audit *audit
}

// appendRate is the lines per second the writer reached.
func (r *steadyResult) appendRate() float64 { return float64(r.lines) / r.writing.Seconds() }

// second is what the lines appended in one second of a run took.
type second struct {
	at            time.Duration // the second's start, since the run's start
	n             int
	p50, p99, max time.Duration
}

// steadyMode runs the phases of a steady run: o.warmup of lines at
// o.rate, unmeasured; o.duration of them, measured (with o.faults, the
// faults injected into brokerd's pipeline meanwhile); o.burst lines as
// fast as they go; then the documents of all of them are counted.
func (st *stack) steadyMode(ctx context.Context, o *options) (*steadyResult, error) {
	from := [numLogs]int64{st.logs[accessLog].size, st.logs[errorLog].size}
	lines := 0 // appended, closing lines included
	var warm loadgen.Latencies
	if o.warmup > 0 {
		log.Printf("%s: warming up", st.name)
		w, l, err := st.steadyPhase(ctx, o, "w", o.warmup, false)
		if err != nil {
			return nil, fmt.Errorf("latencybench: the warm-up phase: %w", err)
		}
		warm, lines = w.latencies, l.total()
	}
	before, err := st.search.stats(ctx)
	if err != nil {
		return nil, err
	}
	res, l, err := st.steadyPhase(ctx, o, "s", o.duration, o.faults && st.name == brokerBrokerd)
	if res != nil {
		res.warm = warm
	}
	if err != nil {
		return res, err
	}
	lines += l.total()
	after, err := st.search.stats(ctx)
	if err != nil {
		return res, err
	}
	res.es = after.minus(before)
	if o.burst > 0 {
		if res.burst, err = st.burstMode(ctx, o); err != nil {
			return res, err
		}
		lines += res.burst.appended
	}
	if res.audit, err = st.countDocs(ctx, from, lines); err != nil {
		return res, err
	}
	return res, nil
}

// steadyPhase appends o.rate lines a second for d, every one marked with
// the run's id and phase, and polls Elasticsearch every o.poll for the
// lines that became searchable, until every line is found or o.drain has
// passed after the last append. With faults, it injects the faults
// meanwhile.
func (st *stack) steadyPhase(ctx context.Context, o *options, phase string, d time.Duration, faults bool) (*steadyResult, *ledger, error) {
	measured := int(float64(o.rate) * d.Seconds())
	if measured == 0 {
		return nil, nil, fmt.Errorf("latencybench: -rate %d for %v is no line", o.rate, d)
	}
	l := newLedger(st.run+phase, measured, o.errorEvery)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	res := &steadyResult{lines: measured}
	// The writer and the faults run beside the poller; once it is done
	// (or has failed, which cancels them) they are waited for.
	var wg sync.WaitGroup
	wrote := make(chan error, 1)
	log.Printf("%s: appending %d lines a second for %v", st.name, o.rate, d)
	wg.Go(func() {
		lag, err := st.write(ctx, l, start, o.rate)
		res.maxLag = lag
		wrote <- err
	})
	var faultErr error
	if faults {
		wg.Go(func() { res.faults, faultErr = st.injectFaults(ctx, start, d) })
	}
	err := st.poll(ctx, o, l, start, res, wrote)
	if err != nil {
		cancel()
	}
	wg.Wait()
	if err == nil {
		err = faultErr
	}
	res.writing = l.appended[measured-1]
	for i := range measured {
		if at := l.found[i]; at != 0 {
			d := at - l.appended[i]
			res.latencies = append(res.latencies, d)
			res.byLog[l.kinds[i]] = append(res.byLog[l.kinds[i]], d)
			res.upstream = append(res.upstream, l.ingested[i]-l.appended[i])
			res.downstream = append(res.downstream, at-l.ingested[i])
		}
		if l.kinds[i] == errorLog {
			res.errorLines++
		}
	}
	res.found = len(res.latencies)
	res.seconds = perSecond(l)
	for _, s := range slices.Concat([]loadgen.Latencies{res.latencies, res.upstream, res.downstream}, res.byLog[:]) {
		slices.Sort(s)
	}
	return res, l, err
}

// poll searches Elasticsearch every o.poll for the lines of l not found
// yet, until all are found or o.drain has passed after the writer ended.
func (st *stack) poll(ctx context.Context, o *options, l *ledger, start time.Time, res *steadyResult, wrote <-chan error) error {
	total := l.total()
	tick := time.NewTicker(o.poll)
	defer tick.Stop()
	var low [numLogs]int // per log, the first line not found yet
	found := 0
	writing := true
	lastReport := start
	for found < total {
		select {
		case <-ctx.Done():
			return fmt.Errorf("latencybench: %w", ctx.Err())
		case err := <-wrote:
			if err != nil {
				return err
			}
			writing = false
			log.Printf("%s: appended %d lines in %v", st.name, total, l.appended[total-1].Round(time.Millisecond))
			continue
		case <-tick.C:
		}
		if err := st.alive(); err != nil {
			return err
		}
		n := int(l.written.Load())
		if !writing && time.Since(start) > l.appended[total-1]+o.drain {
			return fmt.Errorf("latencybench: %d of %d lines were not searchable %v after the last append (-drain)", total-found, total, o.drain)
		}
		var ranges [numLogs][][2]int64
		var written [numLogs]int
		some := false
		for k := range numLogs {
			written[k] = l.writtenIn(k, n)
			for low[k] < written[k] && l.found[l.lines[k][low[k]]] != 0 {
				low[k]++
			}
			ranges[k] = unfound(l, k, low[k], written[k])
			if n := len(ranges[k]); n > 0 && ranges[k][n-1][1] == l.offsets[k][written[k]-1] {
				// Open-ended, so that the question stays the same (and
				// cached) while lines are appended, until lines are found.
				ranges[k][n-1][1] = math.MaxInt64
			}
			some = some || len(ranges[k]) > 0
		}
		if !some {
			continue
		}
		sent := time.Now()
		some, err := st.search.anyVisible(ctx, st.logPaths(), ranges)
		var hits []hit
		if err == nil && some {
			hits, err = st.search.visible(ctx, st.logPaths(), ranges)
			res.polls.fetches++
		}
		took := time.Since(sent)
		if err != nil {
			return err
		}
		at := time.Since(start)
		res.polls.searches++
		res.polls.total += took
		res.polls.longest = max(res.polls.longest, took)
		for _, h := range hits {
			k := h.log
			if h.offset > l.offsets[k][written[k]-1] {
				// Appended, but not yet published by the writer: it is
				// found at the next poll.
				continue
			}
			p, ok := slices.BinarySearch(l.offsets[k][:written[k]], h.offset)
			if !ok {
				return fmt.Errorf("latencybench: a document at offset %d of %s starts no line the benchmark appended", h.offset, st.logs[k].path)
			}
			i := int(l.lines[k][p])
			if want := steadyMarked(l.run, k, i); h.marked != want {
				return fmt.Errorf("latencybench: the document at offset %d of %s holds %q, want %q", h.offset, st.logs[k].path, h.marked, want)
			}
			if l.found[i] == 0 {
				l.found[i] = at
				l.ingested[i] = h.ingested.Sub(start)
				found++
				res.polls.hits++
			}
		}
		if time.Since(lastReport) >= 10*time.Second {
			lastReport = time.Now()
			log.Printf("%s:   %d lines appended, %d searchable", st.name, n, found)
		}
	}
	if writing {
		// Every line was found, so every line was written.
		if err := <-wrote; err != nil {
			return err
		}
	}
	return nil
}

// unfound returns the offset ranges (first and last line start, both
// included) of log k's lines from low up to written that are not found
// yet, at most maxRuns of them.
func unfound(l *ledger, k logKind, low, written int) [][2]int64 {
	var runs [][2]int64
	for p := low; p < written; p++ {
		if l.found[l.lines[k][p]] != 0 {
			continue
		}
		off := l.offsets[k][p]
		if n := len(runs); n > 0 && (runs[n-1][1] == l.offsets[k][p-1] || n == maxRuns) {
			runs[n-1][1] = off
		} else {
			runs = append(runs, [2]int64{off, off})
		}
	}
	return runs
}

// perSecond groups the measured lines found by the second they were
// appended in.
func perSecond(l *ledger) []second {
	var out []second
	var cur loadgen.Latencies
	flush := func(s time.Duration) {
		if len(cur) == 0 {
			return
		}
		slices.Sort(cur)
		out = append(out, second{at: s, n: len(cur), p50: cur.Percentile(50), p99: cur.Percentile(99), max: cur[len(cur)-1]})
		cur = cur[:0]
	}
	sec := time.Duration(-1)
	for i := range l.measured {
		if l.found[i] == 0 {
			continue
		}
		s := l.appended[i].Truncate(time.Second)
		if s != sec {
			flush(sec)
			sec = s
		}
		cur = append(cur, l.found[i]-l.appended[i])
	}
	flush(sec)
	return out
}

// logPaths are the two logs' paths, by kind.
func (st *stack) logPaths() [numLogs]string {
	return [numLogs]string{st.logs[accessLog].path, st.logs[errorLog].path}
}

// burstResult is what the as-fast-as-it-goes phase measured.
type burstResult struct {
	lines    int // measured lines appended
	appended int // lines appended, the closing line included
	// writing is from the writer's start to its last write returning.
	writing time.Duration
	// all is from the start to the first count that found every measured
	// line.
	all time.Duration
	// t10 and t90 are when counts first found 10% and 90% of the lines.
	t10, t90 time.Duration
	n10, n90 int // the counts then
}

// sustained is the lines per second that became searchable between the
// counts that found 10% and 90% of the lines.
func (b *burstResult) sustained() float64 {
	if b.t90 <= b.t10 {
		return 0
	}
	return float64(b.n90-b.n10) / (b.t90 - b.t10).Seconds()
}

// burstMode appends o.burst lines as fast as the writer can and counts,
// every burstPoll, the documents of those lines that are searchable, until
// all of them are (the closing line included) or o.drain has passed after
// the last append.
func (st *stack) burstMode(ctx context.Context, o *options) (*burstResult, error) {
	l := newLedger(st.run+"b", o.burst, o.errorEvery)
	from := [numLogs]int64{st.logs[accessLog].size, st.logs[errorLog].size}
	total := l.total()
	log.Printf("%s: appending %d lines as fast as they go", st.name, o.burst)
	start := time.Now()
	if _, err := st.write(ctx, l, start, 0); err != nil {
		return nil, err
	}
	res := &burstResult{lines: o.burst, appended: total, writing: l.appended[total-1]}
	log.Printf("%s: appended %d lines in %v", st.name, total, res.writing.Round(time.Millisecond))
	tick := time.NewTicker(burstPoll)
	defer tick.Stop()
	lastReport := start
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("latencybench: %w", ctx.Err())
		case <-tick.C:
		}
		if err := st.alive(); err != nil {
			return nil, err
		}
		n, err := st.search.count(ctx, st.logPaths(), from)
		if err != nil {
			return nil, err
		}
		at := time.Since(start)
		if res.t10 == 0 && n*10 >= o.burst {
			res.t10, res.n10 = at, n
		}
		if res.t90 == 0 && n*10 >= o.burst*9 {
			res.t90, res.n90 = at, n
		}
		if res.all == 0 && n >= o.burst {
			res.all = at
		}
		if n >= total {
			return res, nil
		}
		if at > res.writing+o.drain {
			return nil, fmt.Errorf("latencybench: %d of %d lines of the as-fast-as-it-goes phase were not searchable %v after the last append (-drain)", total-n, total, o.drain)
		}
		if time.Since(lastReport) >= 10*time.Second {
			lastReport = time.Now()
			log.Printf("%s:   %d of %d lines searchable", st.name, n, total)
		}
	}
}

// audit is the final count of the documents of the lines appended from
// the steady phase on.
type audit struct {
	lines int // appended, closing lines included
	docs  int // documents of them
}

// duplicates are the documents beyond the lines: every line's document
// was found by its offset before, so any more are second copies.
func (a *audit) duplicates() int { return max(a.docs-a.lines, 0) }

// countDocs refreshes the indices (the measuring is over) and counts the
// documents of the logs from the offsets in from on, where lines lines
// were appended.
func (st *stack) countDocs(ctx context.Context, from [numLogs]int64, lines int) (*audit, error) {
	if err := st.search.refresh(ctx); err != nil {
		return nil, err
	}
	n, err := st.search.count(ctx, st.logPaths(), from)
	if err != nil {
		return nil, err
	}
	return &audit{lines: lines, docs: n}, nil
}
