package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"logpipe/e2e/bench/benchkit"
)

// tenkHeading and connsHeading are the document sections the scale modes
// own.
const (
	tenkHeading  = "## 10,000 partitions: brokerd vs Apache Kafka"
	connsHeading = "## 10,000 idle connections: brokerd vs Apache Kafka"
)

// The goals for the scale modes.
const (
	// tenkRSSGoalMiB bounds brokerd's resident memory with every
	// partition written and read.
	tenkRSSGoalMiB = 100
	// restartGoal bounds brokerd's restart after kill -9 until every
	// partition served its records; restartShareGoal bounds it against
	// Kafka's.
	restartGoal      = 5 * time.Second
	restartShareGoal = 0.25
	// connsRSSGoalMiB bounds brokerd's memory growth for the idle
	// connections; newClientGoal is how "at once" a new client is
	// answered meanwhile (the slowest of five).
	connsRSSGoalMiB = 100
	newClientGoal   = 100 * time.Millisecond
)

// scaleRow is one table row: a label, the decimals shown, and the figure
// of a result (false: not measured).
type scaleRow[R any] struct {
	label    string
	decimals int
	value    func(R) (float64, bool)
}

// scaleTable renders rows for the brokers' results side by side with the
// brokerd / Kafka ratio.
func scaleTable[R any](names []string, results []R, rows []scaleRow[R]) string {
	var b strings.Builder
	bi, ki := slices.Index(names, "brokerd"), slices.Index(names, "kafka")
	value := func(i int, row scaleRow[R]) (float64, bool) {
		if i < 0 {
			return 0, false
		}
		return row.value(results[i])
	}
	b.WriteString("| Measure | brokerd | Kafka | brokerd / Kafka |\n|---|---:|---:|---:|\n")
	for _, row := range rows {
		bv, bok := value(bi, row)
		kv, kok := value(ki, row)
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", row.label, benchkit.Cell(bv, bok, row.decimals),
			benchkit.Cell(kv, kok, row.decimals), benchkit.Ratio(bv, bok, kv, kok))
	}
	b.WriteString("\n")
	return b.String()
}

// seconds and mib are a figure if it was measured (is not zero).
func seconds(d time.Duration) (float64, bool) { return d.Seconds(), d > 0 }
func mib(kb int64) (float64, bool)            { return float64(kb) / 1024, kb > 0 }

// verdict says "met" or "not met".
func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

// scaleFailures lists each broker's failure, if any.
func scaleFailures(names []string, errs []error) string {
	var items []string
	for i, err := range errs {
		if err != nil {
			items = append(items, fmt.Sprintf("%s: %s", displayName(names[i]), firstLine(err.Error())))
		}
	}
	return benchkit.ListSection("Failed steps", items)
}

// tenkMarkdown renders the tenk mode's section.
func (r *report) tenkMarkdown(o *tenkOptions, started, finished time.Time, results []*tenkResult) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	var names []string
	var loads []namedLoads
	var errs []error
	for _, t := range results {
		names = append(names, t.name)
		loads = append(loads, namedLoads{t.name, strings.Fields(t.load)[:1]})
		errs = append(errs, t.err)
	}
	parts := o.topics * o.perTopic
	records := parts * o.recordsPer
	b.WriteString(r.opening(tenkHeading, started, finished, "one node in KRaft combined mode", false, loads))
	w("### What runs\n\n")
	w("Each broker in turn, alone, on a fresh data folder: %s partitions are created as %d topics of %s (one CreateTopics each; Kafka refuses more than 10,000 partitions in one request), then %s records of 100 bytes are written, %d to each partition, by one franz-go client (acks=1, not idempotent) and read back from the start by a new client. Then the broker is killed with SIGKILL and started again on the same folder and port, and a new client reads every partition from the start until each has served its %d records: that is the restart time, from the start of the new process. The client retries every 20 ms and refreshes metadata at most every 50 ms while the broker is not ready.\n\n",
		benchkit.Thousands(float64(parts)), o.topics, benchkit.Thousands(float64(o.perTopic)), benchkit.Thousands(float64(records)), o.recordsPer, o.recordsPer)
	w("- Apache Kafka: JVM heap `-Xms%dm -Xmx%dm`, devstack's server.properties with the shipped `num.network.threads`, `num.io.threads` and `offsets.topic.num.partitions` (as in the section above); `num.recovery.threads.per.data.dir` is its default, 1. \"Listening\" for Kafka is when it answers Metadata listing itself and admits SASL clients (devstack's readiness), for brokerd when its listener accepts a connection.\n", r.opts.kafkaHeapMB, r.opts.kafkaHeapMB)
	w("- brokerd: the defaults of `configs/brokerd.yml` except the listener, `log.dirs` and `group.initial.rebalance.delay.ms=0`; `log.max.open.files` is its default, half of the open-file limit.\n")
	w("- Memory: `VmRSS` from `/proc/<pid>/status` once every record was written and read back, and again after the restart's read; the peak is the largest `VmHWM`/`VmRSS` sampled every 250 ms from the start to the kill. For brokerd also its Go heap and goroutine stacks in use (`go_memstats_heap_inuse_bytes` + `go_memstats_stack_inuse_bytes` from its `/metrics`, right after a garbage collection forced through `/debug/pprof/heap?gc=1`) before the first topic and with every partition written and read.\n\n")
	w("### Results\n\n")
	b.WriteString(scaleTable(names, results, []scaleRow[*tenkResult]{
		{fmt.Sprintf("create %s partitions (s)", benchkit.Thousands(float64(parts))), 1, func(t *tenkResult) (float64, bool) { return seconds(t.create) }},
		{fmt.Sprintf("write %s records (s)", benchkit.Thousands(float64(records))), 1, func(t *tenkResult) (float64, bool) { return seconds(t.write) }},
		{"read every record back, new client (s)", 1, func(t *tenkResult) (float64, bool) { return seconds(t.firstRead) }},
		{"RSS with every partition written and read (MiB)", 0, func(t *tenkResult) (float64, bool) { return mib(t.rssKB) }},
		{"peak RSS before the kill (MiB)", 0, func(t *tenkResult) (float64, bool) { return mib(t.peakKB) }},
		{"open descriptors", 0, func(t *tenkResult) (float64, bool) { return float64(t.fds), t.fds > 0 }},
		{"after kill -9: listening (s)", 2, func(t *tenkResult) (float64, bool) { return seconds(t.listening) }},
		{"after kill -9: every partition read (s)", 2, func(t *tenkResult) (float64, bool) { return seconds(t.readable) }},
		{"RSS after the restart's read (MiB)", 0, func(t *tenkResult) (float64, bool) { return mib(t.restartRSSKB) }},
		{"Go heap and stacks in use, no partition (MiB)", 1, func(t *tenkResult) (float64, bool) { return t.goEmpty.inUse / (1 << 20), t.hasGo }},
		{"Go heap and stacks in use, every partition written and read (MiB)", 1, func(t *tenkResult) (float64, bool) { return t.goFull.inUse / (1 << 20), t.hasGo }},
		{"Go heap and stacks per partition (bytes)", 0, func(t *tenkResult) (float64, bool) {
			return (t.goFull.inUse - t.goEmpty.inUse) / float64(parts), t.hasGo
		}},
		{"goroutines, every partition written and read", 0, func(t *tenkResult) (float64, bool) { return t.goFull.goroutines, t.hasGo }},
	}))
	bi, ki := slices.Index(names, "brokerd"), slices.Index(names, "kafka")
	if bi >= 0 && results[bi].err == nil {
		bd := results[bi]
		rss := max(bd.rssKB, bd.restartRSSKB)
		w("### Against the goals\n\n")
		w("- RSS with %s partitions under %d MiB: %s, %.0f MiB (the larger of the two readings).\n", benchkit.Thousands(float64(parts)), tenkRSSGoalMiB, verdict(rss < tenkRSSGoalMiB*1024), float64(rss)/1024)
		w("- Restart after kill -9 until every partition serves reads under %v: %s, %.2f s.", restartGoal, verdict(bd.readable < restartGoal), bd.readable.Seconds())
		if bd.openedLogs != "" {
			w(" brokerd's log of the restart: `%s`.", bd.openedLogs)
		}
		w("\n")
		if ki >= 0 && results[ki].err == nil {
			share := bd.readable.Seconds() / results[ki].readable.Seconds()
			w("- … and at most a quarter of Kafka's time for the same data: %s, %.0f%% of Kafka's %.2f s.\n", verdict(share <= restartShareGoal), 100*share, results[ki].readable.Seconds())
		}
		w("\n")
	}
	var slow []string
	for _, t := range results {
		if t.slowStart != "" {
			slow = append(slow, fmt.Sprintf("%s was not ready after the restart in the time devstack allows, and the reading client went on until every record was read: %s", displayName(t.name), t.slowStart))
		}
	}
	b.WriteString(benchkit.ListSection("Notes", slow))
	b.WriteString(scaleFailures(names, errs))
	return b.String()
}

// connsMarkdown renders the conns mode's section.
func (r *report) connsMarkdown(o *tenkOptions, started, finished time.Time, results []*connsResult) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	var names []string
	var loads []namedLoads
	var errs []error
	for _, c := range results {
		names = append(names, c.name)
		loads = append(loads, namedLoads{c.name, strings.Fields(c.load)[:1]})
		errs = append(errs, c.err)
	}
	n := benchkit.Thousands(float64(o.connections))
	b.WriteString(r.opening(connsHeading, started, finished, "one node in KRaft combined mode", false, loads))
	w("### What runs\n\n")
	w("Each broker in turn, alone, freshly started with no topic of its own: one client connects, then %s TCP connections are opened from this process, 16 at a time, each sending ApiVersions v3 and Metadata v12 (every topic) and reading the answers, as a client setting up does; then they are held idle for %v. Memory is `VmRSS` with the one client, and the larger of two readings with all held: right after the last was set up and after the idle %v. Then five new clients in turn connect and are answered ApiVersions and Metadata while the others are held; the table gives the slowest. The open-file limit of this process and the brokers is raised to its hard limit. Kafka has a `-Xms%dm -Xmx%dm` heap and `num.network.threads=3`; brokerd its defaults. For brokerd the Go heap and goroutine stacks in use and its goroutines are read from its `/metrics` with one client and with all held, each right after a garbage collection forced through `/debug/pprof/heap?gc=1`.\n\n",
		n, holdFor, holdFor, r.opts.kafkaHeapMB, r.opts.kafkaHeapMB)
	w("### Results\n\n")
	slowest := func(c *connsResult) (float64, bool) {
		if len(c.newClient) == 0 {
			return 0, false
		}
		return toMs(slices.Max(c.newClient)), true
	}
	b.WriteString(scaleTable(names, results, []scaleRow[*connsResult]{
		{"connections held", 0, func(c *connsResult) (float64, bool) { return float64(c.held), true }},
		{"setting them up (s)", 1, func(c *connsResult) (float64, bool) { return seconds(c.setup) }},
		{"RSS with one client (MiB)", 0, func(c *connsResult) (float64, bool) { return mib(c.beforeKB) }},
		{fmt.Sprintf("RSS with %s held (MiB)", n), 0, func(c *connsResult) (float64, bool) { return mib(c.heldKB) }},
		{"RSS growth (MiB)", 1, func(c *connsResult) (float64, bool) {
			return float64(c.heldKB-c.beforeKB) / 1024, c.heldKB > 0 && c.beforeKB > 0
		}},
		{"RSS growth per connection (KiB)", 1, func(c *connsResult) (float64, bool) {
			return float64(c.heldKB-c.beforeKB) / float64(c.held), c.heldKB > 0 && c.beforeKB > 0 && c.held > 0
		}},
		{fmt.Sprintf("CPU time while held idle %v (s)", holdFor), 2, func(c *connsResult) (float64, bool) { return c.idleCPU, c.heldKB > 0 }},
		{"new client answered ApiVersions + Metadata, slowest of 5 (ms)", 2, slowest},
		{"Go heap and stacks per connection (bytes)", 0, func(c *connsResult) (float64, bool) {
			return (c.goHeld.inUse - c.goBefore.inUse) / float64(c.held), c.hasGo && c.held > 0
		}},
		{"goroutines per connection", 2, func(c *connsResult) (float64, bool) {
			return (c.goHeld.goroutines - c.goBefore.goroutines) / float64(c.held), c.hasGo && c.held > 0
		}},
	}))
	if bi := slices.Index(names, "brokerd"); bi >= 0 && results[bi].err == nil {
		bd := results[bi]
		growth := float64(bd.heldKB-bd.beforeKB) / 1024
		w("### Against the goals\n\n")
		w("- %s idle connections with RSS growth under %d MiB: %s, %.1f MiB.\n", n, connsRSSGoalMiB, verdict(growth < connsRSSGoalMiB), growth)
		ms, _ := slowest(bd)
		w("- A new client answered at once meanwhile (here: the slowest of five under %v): %s, %.2f ms.\n\n", newClientGoal, verdict(ms < toMs(newClientGoal)), ms)
	}
	b.WriteString(scaleFailures(names, errs))
	return b.String()
}
