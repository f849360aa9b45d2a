package main

import (
	"context"
	"fmt"
	"log"
	"syscall"
	"time"

	"logpipe/e2e/bench/benchkit"
	"logpipe/internal/devstack"
)

// How long each fault lasts: a killed broker node is started again after
// brokerDown, a killed shipper or indexer after processDown (about what a
// service manager waits), and Elasticsearch is stopped for esOutage.
const (
	brokerDown  = 5 * time.Second
	processDown = time.Second
	esOutage    = 20 * time.Second
)

// faultEvent is one fault injected during a steady run.
type faultEvent struct {
	// at is when it began and end when it was over (the process started
	// again and ready, Elasticsearch resumed), since the run's start.
	at, end time.Duration
	// short labels the chart; what says it in full.
	short, what string
}

// fault is one of the faults injectFaults runs, in order.
type fault struct {
	short string
	// do injects the fault, waits, undoes it and returns what it did.
	do func(st *stack, ctx context.Context) (string, error)
}

// faults are the faults of the pipeline's fault test, in the order they
// are injected.
var faults = []fault{
	{"kill -9 broker", (*stack).killBroker},
	{"kill -9 shipper", func(st *stack, ctx context.Context) (string, error) {
		return st.killProcess(ctx, &st.shipper, st.startShipper)
	}},
	{"kill -9 indexer", func(st *stack, ctx context.Context) (string, error) {
		return st.killProcess(ctx, &st.indexer, st.startIndexer)
	}},
	{"Elasticsearch stopped", (*stack).pauseElasticsearch},
}

// injectFaults runs the faults one after another, spread evenly over d
// from start: fault i of n begins at d*(i+1)/(n+1).
func (st *stack) injectFaults(ctx context.Context, start time.Time, d time.Duration) ([]faultEvent, error) {
	var events []faultEvent
	for i, f := range faults {
		at := d * time.Duration(i+1) / time.Duration(len(faults)+1)
		if err := sleep(ctx, time.Until(start.Add(at))); err != nil {
			return events, err
		}
		ev := faultEvent{at: time.Since(start), short: f.short}
		log.Printf("%s: fault: %s", st.name, f.short)
		what, err := f.do(st, ctx)
		if err != nil {
			return events, fmt.Errorf("latencybench: fault %q: %w", f.short, err)
		}
		ev.end, ev.what = time.Since(start), what
		log.Printf("%s: fault over after %v: %s", st.name, (ev.end - ev.at).Round(time.Millisecond), what)
		events = append(events, ev)
	}
	return events, nil
}

// killBroker kills the brokerd node that leads the partition with the
// most records with SIGKILL and starts it again after brokerDown.
func (st *stack) killBroker(ctx context.Context) (string, error) {
	part, leader, err := benchkit.BusiestLeader(ctx, st.adm, st.topic)
	if err != nil {
		return "", err
	}
	node := -1
	for i := range st.brokerd.Nodes() {
		if st.brokerd.NodeID(i) == leader {
			node = i
		}
	}
	if node < 0 {
		return "", fmt.Errorf("latencybench: partition %d's leader %d is no node of the cluster", part, leader)
	}
	st.brokerd.KillNode(node)
	if err := sleep(ctx, brokerDown); err != nil {
		return "", err
	}
	sctx, cancel := context.WithTimeout(ctx, brokerTimeout)
	defer cancel()
	if err := st.brokerd.StartNode(sctx, node); err != nil {
		return "", err
	}
	return fmt.Sprintf("kill -9 of brokerd node %d, the leader of partition %d (the busiest), started again %v later", leader, part, brokerDown), nil
}

// killProcess kills the process *p with SIGKILL (it is nil while down)
// and starts it again with start after processDown.
func (st *stack) killProcess(ctx context.Context, p **devstack.Process, start func(context.Context) error) (string, error) {
	st.mu.Lock()
	proc := *p
	*p = nil
	st.mu.Unlock()
	if proc == nil {
		return "", fmt.Errorf("latencybench: the process is not running")
	}
	proc.Kill()
	if err := sleep(ctx, processDown); err != nil {
		return "", err
	}
	if err := start(ctx); err != nil {
		return "", err
	}
	return fmt.Sprintf("kill -9 of the %s, started again %v later (and ready)", proc.Name, processDown), nil
}

// pauseElasticsearch stops Elasticsearch's JVM with SIGSTOP for esOutage,
// then lets it go on with SIGCONT.
func (st *stack) pauseElasticsearch(ctx context.Context) (string, error) {
	pid := st.es.Pid()
	if pid == 0 {
		return "", fmt.Errorf("latencybench: Elasticsearch is not running")
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return "", fmt.Errorf("latencybench: SIGSTOP Elasticsearch: %w", err)
	}
	err := sleep(ctx, esOutage)
	if cerr := syscall.Kill(pid, syscall.SIGCONT); cerr != nil {
		return "", fmt.Errorf("latencybench: SIGCONT Elasticsearch: %w", cerr)
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("Elasticsearch stopped with SIGSTOP for %v, then SIGCONT", esOutage), nil
}

// sleep waits d, or less when ctx ends first (then it returns its error).
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("latencybench: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}
