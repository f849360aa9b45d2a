package main

import (
	"context"
	"fmt"
	"log"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"logpipe/e2e/bench/loadgen"
)

// writeTick is how often the steady writer appends what is due: at 2,000
// lines/s about ten lines a write.
const writeTick = 5 * time.Millisecond

// steadyResult is what a steady run measured.
type steadyResult struct {
	lines int // appended
	found int // searchable by the end
	// writing is from the writer's start to its last write returning.
	writing time.Duration
	// span is from the search response that found the first lines to the
	// one that found the last.
	span      time.Duration
	latencies loadgen.Latencies // of the lines found, sorted
}

// appendRate is the lines per second the writer reached.
func (r *steadyResult) appendRate() float64 { return float64(r.lines) / r.writing.Seconds() }

// throughput is the lines per second that became searchable: those found
// over span, or 0 when they were all found at once.
func (r *steadyResult) throughput() float64 {
	if r.span <= 0 {
		return 0
	}
	return float64(r.found) / r.span.Seconds()
}

// ledger records, for each line of a steady run, where it starts in the
// access log and when it was appended and found. The writer fills offsets
// and appended below written, then publishes written; the poller reads
// only below it.
type ledger struct {
	offsets  []int64
	appended []time.Duration // since the run's start
	found    []time.Duration // since the run's start; 0 while not found
	written  atomic.Int64
}

// steadyMode appends o.rate lines a second for o.duration and polls
// Elasticsearch every o.poll for the lines that became searchable, until
// every line is found or o.drain has passed after the last append.
func (st *stack) steadyMode(ctx context.Context, o *options) (*steadyResult, error) {
	total := int(float64(o.rate) * o.duration.Seconds())
	if total == 0 {
		return nil, fmt.Errorf("latencybench: -rate %d for -duration %v is no line", o.rate, o.duration)
	}
	l := &ledger{offsets: make([]int64, total), appended: make([]time.Duration, total), found: make([]time.Duration, total)}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	wrote := make(chan error, 1)
	log.Printf("appending %d lines a second for %v", o.rate, o.duration)
	go func() { wrote <- st.write(ctx, o.rate, start, l) }()

	tick := time.NewTicker(o.poll)
	defer tick.Stop()
	low, found := 0, 0 // low: the first line not found yet
	writing := true
	lastReport := start
	for found < total {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("latencybench: %w", ctx.Err())
		case err := <-wrote:
			if err != nil {
				return nil, err
			}
			writing = false
			log.Printf("appended %d lines in %v", total, l.appended[total-1].Round(time.Millisecond))
			continue
		case <-tick.C:
		}
		if err := st.alive(); err != nil {
			return nil, err
		}
		n := int(l.written.Load())
		if !writing && time.Since(start) > l.appended[total-1]+o.drain {
			break
		}
		if low == n {
			continue
		}
		hits, err := st.search.visible(ctx, st.accessPath, l.offsets[low])
		if err != nil {
			return nil, err
		}
		at := time.Since(start)
		for _, h := range hits {
			i, ok := slices.BinarySearch(l.offsets[:n], h.offset)
			if !ok {
				if h.offset > l.offsets[n-1] {
					// Appended, but not yet published by the writer: it
					// is counted at the next poll.
					continue
				}
				return nil, fmt.Errorf("latencybench: a document at offset %d of %s starts no line the benchmark appended", h.offset, st.accessPath)
			}
			if want := steadyTarget(st.run, i); h.target != want {
				return nil, fmt.Errorf("latencybench: the document at offset %d has url.original %q, want %q", h.offset, h.target, want)
			}
			if l.found[i] == 0 {
				l.found[i] = at
				found++
			}
		}
		for low < n && l.found[low] != 0 {
			low++
		}
		if time.Since(lastReport) >= 10*time.Second {
			lastReport = time.Now()
			log.Printf("  %d lines appended, %d searchable", n, found)
		}
	}
	if writing {
		// Every line was found, so every line was written.
		<-wrote
	}
	res := &steadyResult{lines: total, found: found, writing: l.appended[total-1]}
	var first, last time.Duration
	for i := range total {
		if at := l.found[i]; at != 0 {
			res.latencies = append(res.latencies, at-l.appended[i])
			if first == 0 || at < first {
				first = at
			}
			last = max(last, at)
		}
	}
	res.span = last - first
	slices.Sort(res.latencies)
	if found < total {
		return res, fmt.Errorf("latencybench: %d of %d lines were not searchable %v after the last append (-drain)", total-found, total, o.drain)
	}
	return res, nil
}

// steadyTarget is the request target of line i of a steady run.
func steadyTarget(run string, i int) string { return requestTarget(run, "s"+strconv.Itoa(i), i) }

// write appends the ledger's lines to the access log at rate lines a
// second from start on: every writeTick, the lines due by then in one
// write.
func (st *stack) write(ctx context.Context, rate int, start time.Time, l *ledger) error {
	tick := time.NewTicker(writeTick)
	defer tick.Stop()
	total := len(l.offsets)
	var buf []byte
	for i := 0; i < total; {
		select {
		case <-ctx.Done():
			return fmt.Errorf("latencybench: %w", ctx.Err())
		case <-tick.C:
		}
		due := min(total, int(float64(rate)*time.Since(start).Seconds()))
		if due <= i {
			continue
		}
		buf = buf[:0]
		now := time.Now()
		for j := i; j < due; j++ {
			l.offsets[j] = st.offset + int64(len(buf))
			buf = accessLine(buf, now, j, steadyTarget(st.run, j))
		}
		if err := st.appendLines(buf); err != nil {
			return err
		}
		at := time.Since(start)
		for j := i; j < due; j++ {
			l.appended[j] = at
		}
		l.written.Store(int64(due))
		i = due
	}
	return nil
}
