package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
	"logpipe/e2e/bench/benchkit"
)

// connsResult is what the conns mode measured on one broker; err says why
// a step failed.
type connsResult struct {
	name string
	load string
	// held is how many connections were set up and held.
	held int
	// setup is the time to set them all up (16 at a time).
	setup time.Duration
	// beforeKB is the resident memory with one client, heldKB the largest
	// of two readings with every connection held: right after the last
	// was set up and after holdFor idle.
	beforeKB, heldKB int64
	// idleCPU is the CPU time the broker used while they were held idle.
	idleCPU float64
	// newClient are the times a new client took to connect and be
	// answered ApiVersions and Metadata while they were held.
	newClient []time.Duration
	// goBefore and goHeld are brokerd's Go memory with one client and
	// with every connection held (hasGo: they were read).
	goBefore, goHeld goMemory
	hasGo            bool
	err              error
}

// holdFor is how long the conns mode holds the connections idle between
// its two memory readings.
const holdFor = 10 * time.Second

// hello connects to addr and sends ApiVersions and Metadata (every
// topic), as a client setting up a connection does.
func hello(addr string) (*wire.Client, error) {
	c, err := wire.Dial(addr, "brokerbench", 30*time.Second)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(time.Minute)
	av := kmsg.NewPtrApiVersionsRequest()
	av.SetVersion(3)
	av.ClientSoftwareName, av.ClientSoftwareVersion = "brokerbench", "1"
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	for _, req := range []kmsg.Request{av, md} {
		resp, err := c.Request(req, deadline)
		if err == nil {
			if r, ok := resp.(*kmsg.ApiVersionsResponse); ok && r.ErrorCode != 0 {
				err = fmt.Errorf("brokerbench: ApiVersions answered error %d", r.ErrorCode)
			}
		}
		if err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// runConns measures one broker holding n idle connections: its memory
// growth, its CPU use while they are idle, and how fast a new client is
// answered meanwhile.
func runConns(ctx context.Context, n int, name string, start func(context.Context) (restartable, error)) (*connsResult, error) {
	r := &connsResult{name: name, load: benchkit.LoadAverage()}
	log.Printf("%s: starting for %d connections (load average %s)", name, n, r.load)
	b, err := start(ctx)
	if err != nil {
		return nil, err
	}
	defer b.Stop()
	addr, pid := b.Bootstrap(), b.Pid()
	held := make([]*wire.Client, n)
	defer func() {
		for _, c := range held {
			if c != nil {
				c.Close()
			}
		}
	}()
	r.err = func() error {
		first, err := hello(addr)
		if err != nil {
			return err
		}
		defer first.Close()
		r.goBefore, r.hasGo = brokerdMemory(b)
		r.beforeKB, _ = benchkit.ProcStatusKB(pid, "VmRSS")

		const workers = 16
		errs := make([]error, workers)
		began := time.Now()
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; i < n && errs[w] == nil && ctx.Err() == nil; i += workers {
					held[i], errs[w] = hello(addr)
				}
			})
		}
		wg.Wait()
		r.setup = time.Since(began)
		r.held = len(slices.DeleteFunc(slices.Clone(held), func(c *wire.Client) bool { return c == nil }))
		if r.held < n {
			return fmt.Errorf("brokerbench: %d of %d connections set up: %w", r.held, n, errors.Join(append(errs, ctx.Err())...))
		}
		rss, _ := benchkit.ProcStatusKB(pid, "VmRSS")
		cpu0, _ := benchkit.CPUSeconds(pid)
		log.Printf("%s: %d connections set up in %v; RSS %.0f MiB, was %.0f MiB; holding them %v",
			name, n, r.setup.Round(time.Millisecond), float64(rss)/1024, float64(r.beforeKB)/1024, holdFor)
		select {
		case <-time.After(holdFor):
		case <-ctx.Done():
			return ctx.Err()
		}
		cpu1, _ := benchkit.CPUSeconds(pid)
		r.idleCPU = cpu1 - cpu0
		later, _ := benchkit.ProcStatusKB(pid, "VmRSS")
		r.heldKB = max(rss, later)
		if r.hasGo {
			r.goHeld, r.hasGo = brokerdMemory(b)
		}
		for range 5 {
			began := time.Now()
			c, err := hello(addr)
			if err != nil {
				return fmt.Errorf("brokerbench: a new client with %d connections held: %w", n, err)
			}
			r.newClient = append(r.newClient, time.Since(began))
			c.Close()
		}
		log.Printf("%s: RSS %.0f MiB held; %.2f CPU seconds in %v idle; a new client answered in %v",
			name, float64(r.heldKB)/1024, r.idleCPU, holdFor, r.newClient)
		return nil
	}()
	if err := endRun(ctx, name, r.err); err != nil {
		return nil, err
	}
	return r, nil
}
