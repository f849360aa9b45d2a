package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"logpipe/internal/await"
)

// single appends line n, marked id, to the access log and searches
// Elasticsearch for it every o.poll until it is found. It returns the time
// from the end of the write to the search response that found it.
func (st *stack) single(ctx context.Context, o *options, id string, n int) (time.Duration, error) {
	target := requestTarget(st.run, id, n)
	if err := st.logs[accessLog].append(accessLine(nil, time.Now(), n, target)); err != nil {
		return 0, err
	}
	appended := time.Now()
	pctx, cancel := context.WithTimeout(ctx, o.lineTimeout)
	defer cancel()
	// Each search runs on ctx, not pctx, so that the last one before the
	// deadline finishes and says what it found.
	err := await.Poll(pctx, o.poll, func(context.Context) error {
		docs, err := st.search.countTarget(ctx, target)
		switch {
		case err == nil && docs == 1:
			return nil
		case err == nil && docs > 1:
			return await.Stop(fmt.Errorf("latencybench: %d documents hold %s, want 1", docs, target))
		}
		if gone := st.alive(); gone != nil {
			return await.Stop(gone)
		}
		if err != nil {
			return err
		}
		return await.NotYet("no document", "the line's document")
	})
	took := time.Since(appended)
	if _, timedOut := errors.AsType[*await.TimeoutError](err); timedOut && ctx.Err() == nil {
		return 0, fmt.Errorf("latencybench: the line with %s was not searchable after %v (-line-timeout): %w", target, o.lineTimeout, err)
	}
	if err != nil {
		return 0, err
	}
	return took, nil
}

// singleMode measures o.lines lines one at a time into res.latencies
// (sorted). After each it pauses o.gap plus a random part of o.jitter: a
// line is found just after a refresh, so a fixed pause would append every
// line at the same point of the refresh cycle and measure only that point.
func (st *stack) singleMode(ctx context.Context, o *options, res *brokerRun) error {
	for i := 1; i <= o.lines; i++ {
		d, err := st.single(ctx, o, strconv.Itoa(i), i)
		if err != nil {
			return fmt.Errorf("line %d of %d: %w", i, o.lines, err)
		}
		res.latencies = append(res.latencies, d)
		if i%10 == 0 {
			log.Printf("%s: %d of %d lines", res.broker, i, o.lines)
		}
		if i < o.lines {
			select {
			case <-ctx.Done():
				return fmt.Errorf("latencybench: %w", ctx.Err())
			case <-time.After(o.gap + jitter(o.jitter)):
			}
		}
	}
	slices.Sort(res.latencies)
	return nil
}

// jitter returns a random duration in [0, d), or 0 when d is 0.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}
