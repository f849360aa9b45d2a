package main

import (
	"cmp"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"logpipe/e2e/bench/benchkit"
	"logpipe/e2e/bench/loadgen"
	"logpipe/internal/devstack"
)

// sectionHeading is the level-2 heading this command owns in the
// benchmarks document; faultsHeading is its own with -faults, so that a
// run under faults and one without keep their sections side by side.
const (
	sectionHeading = "## End-to-end latency: a line appended until it is searchable"
	faultsHeading  = "## End-to-end latency under faults: brokerd, the shipper, the indexer and Elasticsearch stopped in turn"
)

// heading is the section heading of a run with options o.
func heading(o *options) string {
	if o.faults {
		return faultsHeading
	}
	return sectionHeading
}

// brokerRun is one broker's pipeline, measured. err is set when the run
// failed; its figures are then incomplete.
type brokerRun struct {
	broker    string
	nodes     int
	load      string // 1-minute load average when its pipeline started
	loadAfter string // and when it had been measured
	esVersion string
	warmup    time.Duration // the first line's latency, not counted
	refresh   refresh
	latencies loadgen.Latencies // of the measured lines, sorted
	steady    *steadyResult     // steady mode only
	err       error
}

// stats summarises latencies.
type stats struct {
	n                             int
	min, p50, p90, p99, max, mean time.Duration
}

// summarize returns the count, minimum, nearest-rank percentiles, maximum
// and mean of sorted latencies; all zero when there are none.
func summarize(l loadgen.Latencies) stats {
	s := stats{n: len(l)}
	if s.n == 0 {
		return s
	}
	var sum time.Duration
	for _, d := range l {
		sum += d
	}
	s.min, s.max = l[0], l[len(l)-1]
	s.p50, s.p90, s.p99 = l.Percentile(50), l.Percentile(90), l.Percentile(99)
	s.mean = sum / time.Duration(s.n)
	return s
}

func (r *brokerRun) summary() stats { return summarize(r.latencies) }

// report is one run of the benchmark, ready to render.
type report struct {
	opts          *options
	started       time.Time
	finished      time.Time
	machine       benchkit.Machine
	logpipe       string // brokerd --version
	commit        string
	elasticsearch string
	kafka         string
	flush         flushSettings
	runs          []*brokerRun
}

func brokerTitle(name string) string {
	if name == brokerKafka {
		return "Apache Kafka"
	}
	return name
}

// pair formats the p50 and p99 of sorted latencies l in milliseconds.
func pair(l loadgen.Latencies) string {
	if len(l) == 0 {
		return "–"
	}
	return ms(l.Percentile(50)) + " / " + ms(l.Percentile(99))
}

// ms formats d in milliseconds, without decimals.
func ms(d time.Duration) string { return benchkit.Thousands(float64(d) / float64(time.Millisecond)) }

// markdown renders the report as the document section, heading included.
func (r *report) markdown() string {
	o := r.opts
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := r.machine

	w("%s\n\n", heading(o))
	b.WriteString(benchkit.Opening("e2e/bench/cmd/latencybench", r.started, r.finished, o.commandLine))

	w("### Machine and versions\n\n")
	w("- Machine: %d CPUs (%s), %s of memory, %s.\n", m.CPUs, m.CPUModel, m.MemTotal, m.Kernel)
	w("- logpipe `%s` at commit %s: brokerd, the shipper and the indexer built by the benchmark with `go build` (no race detector).\n", r.logpipe, r.commit)
	if r.elasticsearch != "" {
		w("- Elasticsearch %s, one node, JVM heap %d MiB (as `make run` starts it).\n", r.elasticsearch, o.esHeapMB)
	}
	if slices.Contains(o.brokers, brokerBrokerd) {
		w("- brokerd: %s, each in KRaft combined mode (broker and controller), started by `internal/devstack` (`StartBrokerdCluster`) with the cluster's keys only; every other key has brokerd's default, which `configs/brokerd.yml` lists.\n", nodeCount(o.nodes))
	}
	if r.kafka != "" {
		w("- Apache Kafka %s: %s in KRaft combined mode with `internal/devstack`'s server.properties, JVM heap %d MiB each.\n", r.kafka, nodeCount(o.nodes), o.kafkaHeapMB)
	}
	w("- 1-minute load average when each pipeline was started and when it had been measured:")
	for _, run := range r.runs {
		w(" %s %s → %s;", brokerTitle(run.broker), run.load, cmp.Or(run.loadAfter, "–"))
	}
	w(" everything shares the machine's %d CPUs with whatever else runs on it, other engineers' builds and tests included, and that shows in the figures.\n\n", m.CPUs)

	w("### What runs\n\n")
	var names []string
	for _, name := range o.brokers {
		names = append(names, brokerTitle(name))
	}
	w("For each broker in turn (%s), a fresh pipeline in a work folder of its own: an Elasticsearch node, the broker's %s, the topic, `indexer setup`, the indexer, and the shipper tailing an access log and an error log in that folder; it is stopped and removed before the next broker's starts. The shipper and the indexer are the same binaries with the same settings for both brokers.\n\n", strings.Join(names, ", then "), nodeCount(o.nodes))
	w("- Topic: the one `configs/shipper.yml` names, created by the benchmark before the programs start with %d partitions, replication factor %d and `min.insync.replicas=%d`, all replicas in sync. The shipper hashes each file to one partition, so each log's lines stay in order in one partition.\n", o.partitions, o.replicas(), o.minISR())
	w("- Configuration: the shipped `configs/shipper.yml` and `configs/indexer.yml`, with `-E` only for addresses and folders: the indexer with `kafka.hosts`, `elasticsearch.hosts` and `kafka.auto_offset_reset=earliest` (a new group, so that it skips nothing even if it joins after the warm-up line is written; `make run` needs no such setting: its indexer has committed a place in every partition before the shipper starts); the shipper with `output.kafka.hosts` and `path.data`, on a copy of `configs/shipper.yml` whose two log paths are moved from `%s` into the work folder. Both programs also get `http.enabled=true` on a loopback port, whose `/readyz` the benchmark waits on before the first line.", shippedLogs)
	var also []string
	for _, set := range []struct {
		program string
		kvs     []string
	}{{"shipper", o.shipperSet}, {"indexer", o.indexerSet}} {
		if len(set.kvs) > 0 {
			also = append(also, fmt.Sprintf("%s `%s`", set.program, strings.Join(set.kvs, " ")))
		}
	}
	if len(also) > 0 {
		w(" This run also set: %s.", strings.Join(also, "; "))
	}
	w("\n")
	w("- Settings in effect on a line's way: shipper %s; indexer %s", settingList(r.flush.shipper), settingList(r.flush.indexer))
	if rf := r.refresh(); rf != nil {
		how := "Elasticsearch's default, which the index templates leave alone"
		if rf.explicit {
			how = "set by the index template"
		}
		w("; Elasticsearch `index.refresh_interval` %s (read from %s: %s), `index.search.idle.after` %s (the benchmark searches far more often, so the shard never goes search-idle)", rf.interval, rf.index, how, rf.idleAfter)
	}
	w(".\n")
	w("- A warm-up line goes first and is not counted: it is the topic's first record and creates the day's index. Its latency is shown apart.\n")
	switch o.mode {
	case modeSingle:
		w("- The lines: Apache httpd combined-format access lines with the current time, each with a marker unique to the run in its URL (`...&lb=<run>-<n>`), appended to the access log with one `write`. The clock starts when the write returns and stops when a search of `%s` returns the line's document. Searches never force a refresh, so the refresh interval is part of what is measured; the figures include up to one poll interval (%v) and a search's round trip beyond the moment the document became searchable.\n", accessIndices, o.poll)
		w("- One line at a time (`-mode single`): %d lines per broker; each line is searched for (a `term` query on `url.original`, size 0) every %v until it is found, then the benchmark waits %v plus a random 0 to %v before appending the next, so that lines land at random points of the refresh and flush cycles (a line is found just after a refresh; with a fixed pause every line would start at the same point of the cycle). Percentiles are nearest-rank over the %d lines", o.lines, o.poll, o.gap, o.jitter, o.lines)
		if o.lines < 100 {
			w(" (with fewer than 100 lines, p99 is the largest)")
		}
		w(".\n\n")
	case modeSteady:
		r.steadyWhat(&b)
	}

	w("### Results\n\n")
	switch o.mode {
	case modeSingle:
		w("| Broker | lines | min (ms) | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | mean (ms) | warm-up line (ms) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, run := range r.runs {
			if s := run.summary(); s.n > 0 {
				w("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", brokerTitle(run.broker), benchkit.Thousands(float64(s.n)), ms(s.min), ms(s.p50), ms(s.p90), ms(s.p99), ms(s.max), ms(s.mean), ms(run.warmup))
			}
		}
		w("\n")
	case modeSteady:
		r.steadyResults(&b)
	}
	var failed []string
	for _, run := range r.runs {
		if run.err != nil {
			msg, _, _ := strings.Cut(run.err.Error(), "\n")
			failed = append(failed, fmt.Sprintf("%s: %s", brokerTitle(run.broker), msg))
		}
	}
	b.WriteString(benchkit.ListSection("Failed runs", failed))
	return b.String()
}

// steadyWhat describes a steady run's load and measuring.
func (r *report) steadyWhat(b *strings.Builder) {
	o := r.opts
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("- Steady load (`-mode steady`): a writer appends %s lines a second for %v: every %v the lines due by then, one `write` per log. ", benchkit.Thousands(float64(o.rate)), o.duration, writeTick)
	if o.warmup > 0 {
		w("Before that, the same load for %v warms the programs and JVMs up; its lines are not measured (their p50 and p99 are shown apart) but must be found before the measured phase starts. ", o.warmup)
	}
	if o.errorEvery > 0 {
		w("Every %s line goes to the error log (an httpd 2.4 error line, \"File does not exist\", with a marker unique to the run in its `referer: ...`, which the indexer stores as `http.request.referrer`), the others to the access log (combined format, the marker in the URL, `url.original`). The shipper's multiline setting for the error log (a line not starting with `[` continues the one before) holds each error line until the next one starts, so an unmeasured closing error line follows the last measured one. ", ordinal(o.errorEvery))
	} else {
		w("All lines go to the access log (combined format, a marker unique to the run in the URL, `url.original`). ")
	}
	w("Each line's latency is from the end of its write to the response of the first search that returned its document.\n")
	w("- The poller: every %v a search of `%s` with no hits asks whether any line not found yet is searchable, the lines named by log (`log.file.path`) and ranges of `log.offset` (a line's place in its file, which the benchmark maps back to the line); Elasticsearch's shard request cache answers it until a refresh changes the index. When the answer is yes, a second search fetches those documents, as doc values without `_source`, and each document's marker is checked against its line. Searches never force a refresh, so the refresh interval is part of every figure, as are up to one poll interval and a poll's round trips. The poller's own figures, and what Elasticsearch spent on it, are in the results.\n", o.poll, logIndices)
	if o.burst > 0 {
		w("- Sustained rate: after every steady line is found, %s lines (the same mix) are appended as fast as the writer goes, up to %s lines a write, and every %v a `_count` query counts those searchable. \"Sustained lines/s\" is the lines that became searchable between the first count at or above 10%% of them and the first at or above 90%%, divided by the time between those counts; \"all searchable after\" runs from the first write to the count that found every one.\n", benchkit.Thousands(float64(o.burst)), benchkit.Thousands(burstChunk), burstPoll)
	}
	w("- Exactly once: at the end the indices are refreshed and the documents of every line appended from the steady phase on are counted: every line must have exactly one (each was found by its offset, so more documents are duplicates). A run waits up to %v after its last append for the rest to become searchable, and fails if any line does not.\n", o.drain)
	if o.faults {
		w("- Faults (`-faults`), in brokerd's run only, spread over the steady phase: %s, started again %v later; the shipper killed with SIGKILL and started again %v later; the indexer likewise; Elasticsearch stopped with SIGSTOP for %v, then SIGCONT. The chart marks each.\n", "the brokerd node leading the busiest partition killed with SIGKILL", brokerDown, processDown, esOutage)
	}
	w("- Percentiles are nearest-rank over every measured line of the steady phase.\n\n")
}

// completed returns the steady runs that did not fail: a failed run is
// only listed, its figures being incomplete.
func (r *report) completed() []*brokerRun {
	var out []*brokerRun
	for _, run := range r.runs {
		if run.err == nil && run.steady != nil && run.summary().n > 0 {
			out = append(out, run)
		}
	}
	return out
}

// steadyResults writes a steady run's tables.
func (r *report) steadyResults(b *strings.Builder) {
	o := r.opts
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	runs := r.completed()
	if len(runs) == 0 {
		return
	}
	w("| Broker | lines found | min (ms) | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | mean (ms) | warm-up line (ms) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, run := range runs {
		s := run.summary()
		w("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", brokerTitle(run.broker), benchkit.Thousands(float64(s.n)), ms(s.min), ms(s.p50), ms(s.p90), ms(s.p99), ms(s.max), ms(s.mean), ms(run.warmup))
	}
	w("\n| Broker | lines appended | appended/s | writer's longest lag (ms) | access lines p50 / p99 (ms) | error lines p50 / p99 (ms) | warm-up phase p50 / p99 (ms) | never searchable | sustained lines/s | all searchable after (s) | documents / lines appended |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, run := range runs {
		st := run.steady
		sustained, all := "–", "–"
		if bu := st.burst; bu != nil {
			sustained, all = benchkit.Thousands(bu.sustained()), fmt.Sprintf("%.1f", bu.all.Seconds())
		}
		docs := "–"
		if a := st.audit; a != nil {
			docs = benchkit.Thousands(float64(a.docs)) + " / " + benchkit.Thousands(float64(a.lines))
		}
		w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", brokerTitle(run.broker), benchkit.Thousands(float64(st.lines)), benchkit.Thousands(st.appendRate()), ms(st.maxLag),
			pair(st.byLog[accessLog]), pair(st.byLog[errorLog]), pair(st.warm), benchkit.Thousands(float64(st.lines-st.found)), sustained, all, docs)
	}
	w("\nWhere the time goes: each line's latency split at the time its document was built, which the indexer writes as `event.ingested` (same machine, same clock, to the millisecond): before it, the shipper, the broker and the indexer's consumer; after it, the bulk request, the refresh and the poll.\n\n| Broker | append → built p50 / p99 (ms) | built → found p50 / p99 (ms) |\n|---|---:|---:|\n")
	for _, run := range runs {
		w("| %s | %s | %s |\n", brokerTitle(run.broker), pair(run.steady.upstream), pair(run.steady.downstream))
	}
	w("\nThe poller in the measured phase, per broker: ")
	var polls []string
	for _, run := range runs {
		if st := run.steady; st.polls.searches > 0 {
			p, es := st.polls, st.es
			polls = append(polls, fmt.Sprintf("%s: %s polls, %s of which fetched documents (%.1f on average), %.1f ms on average and %s ms at most from the poll's first request to its last response; Elasticsearch ran %s shard queries in %.1f s (query and fetch phases) and answered %s from its request cache, and spent %.1f s indexing %s documents in %s shard bulk operations",
				brokerTitle(run.broker), benchkit.Thousands(float64(p.searches)), benchkit.Thousands(float64(p.fetches)), float64(p.hits)/float64(max(p.fetches, 1)),
				float64(p.total)/float64(p.searches)/float64(time.Millisecond), ms(p.longest),
				benchkit.Thousands(float64(es.searches)), es.search.Seconds(), benchkit.Thousands(float64(es.cached)),
				es.indexing.Seconds(), benchkit.Thousands(float64(es.indexed)), benchkit.Thousands(float64(es.bulks))))
		}
	}
	w("%s (Elasticsearch's own index and node stats; its times are summed over shards and threads). A poll that outlasts the poll interval delays the next one.\n\n", strings.Join(polls, "; "))

	r.goals(b)
	for _, run := range runs {
		if st := run.steady; len(st.faults) > 0 {
			w("### Faults in %s's run\n\n| began (s) | over (s) | what |\n|---:|---:|---|\n", brokerTitle(run.broker))
			for _, f := range st.faults {
				w("| %.1f | %.1f | %s |\n", f.at.Seconds(), f.end.Seconds(), f.what)
			}
			if a := st.audit; a != nil {
				w("\nAfter the faults: %s lines never searchable, %s duplicate documents (%s documents for %s lines appended).\n\n", benchkit.Thousands(float64(st.lines-st.found)), benchkit.Thousands(float64(a.duplicates())), benchkit.Thousands(float64(a.docs)), benchkit.Thousands(float64(a.lines)))
			} else {
				w("\n")
			}
		}
	}
	if o.chart != "" {
		link := o.chart
		if o.doc != "" {
			if rel, err := filepath.Rel(filepath.Dir(o.doc), o.chart); err == nil {
				link = rel
			}
		}
		marks := ""
		if o.faults {
			marks = "; vertical lines mark the faults, solid where each began and dashed where it was over"
		}
		w("### Latency over time\n\nEach point is the lines appended in one second of the steady phase: their p50, p99 and largest latency (on a log scale when the largest is far above the rest)%s.\n\n![Latency of the lines appended in each second, per broker](%s)\n\n", marks, link)
	}
}

// goals compares a steady run with issue 11's goals: p50 at most 1.2 s and
// p99 at most 2.5 s with brokerd, and not worse than with Apache Kafka.
func (r *report) goals(b *strings.Builder) {
	var bd, kf *brokerRun
	for _, run := range r.completed() {
		switch run.broker {
		case brokerBrokerd:
			bd = run
		case brokerKafka:
			kf = run
		}
	}
	if bd == nil {
		return
	}
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	yes := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**no**"
	}
	s := bd.summary()
	w("### Against the goals\n\n| Goal | brokerd | Apache Kafka | met |\n|---|---:|---:|---|\n")
	w("| p50 ≤ 1,200 ms with brokerd | %s | | %s |\n", ms(s.p50), yes(s.p50 <= 1200*time.Millisecond))
	w("| p99 ≤ 2,500 ms with brokerd | %s | | %s |\n", ms(s.p99), yes(s.p99 <= 2500*time.Millisecond))
	if kf != nil {
		k := kf.summary()
		w("| p50 not worse than with Apache Kafka | %s | %s | %s |\n", ms(s.p50), ms(k.p50), yes(s.p50 <= k.p50))
		w("| p99 not worse than with Apache Kafka | %s | %s | %s |\n", ms(s.p99), ms(k.p99), yes(s.p99 <= k.p99))
		if bd.steady.burst != nil && kf.steady.burst != nil {
			bs, ks := bd.steady.burst.sustained(), kf.steady.burst.sustained()
			w("| sustained lines/s not worse than with Apache Kafka | %s | %s | %s |\n", benchkit.Thousands(bs), benchkit.Thousands(ks), yes(bs >= ks))
		}
	}
	if r.opts.faults {
		w("\nThese goals are set for a pipeline without faults (section \"%s\"); here the faults in brokerd's run are in its figures, and what counts is that every line still arrives once (below).\n", strings.TrimPrefix(sectionHeading, "## "))
	}
	w("\n")
}

// nodeCount says how many nodes.
func nodeCount(n int) string {
	if n == 1 {
		return "one node"
	}
	return fmt.Sprintf("%d nodes", n)
}

// ordinal is "n-th" in words for the error share: "10th".
func ordinal(n int) string {
	switch {
	case n%100 >= 11 && n%100 <= 13:
		return fmt.Sprintf("%dth", n)
	case n%10 == 1:
		return fmt.Sprintf("%dst", n)
	case n%10 == 2:
		return fmt.Sprintf("%dnd", n)
	case n%10 == 3:
		return fmt.Sprintf("%drd", n)
	}
	return fmt.Sprintf("%dth", n)
}

// refresh returns the refresh settings the first run read, or nil.
func (r *report) refresh() *refresh {
	for _, run := range r.runs {
		if run.refresh.interval != "" {
			return &run.refresh
		}
	}
	return nil
}

func settingList(s []setting) string {
	var parts []string
	for _, kv := range s {
		parts = append(parts, fmt.Sprintf("`%s` %s", kv.key, kv.value))
	}
	return strings.Join(parts, ", ")
}

// gitCommit names the commit of the repository at root, marked when the
// work tree has changes.
func gitCommit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	commit := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		commit += " with uncommitted changes"
	}
	return commit
}

// kafkaVersion fetches the Apache Kafka jars (once) and reads the version
// from the name of its client jar.
func kafkaVersion(ctx context.Context) (string, error) {
	dir, err := devstack.KafkaJars(ctx)
	if err != nil {
		return "", err
	}
	jars, _ := filepath.Glob(filepath.Join(dir, "kafka-clients-*.jar"))
	if len(jars) != 1 {
		return "unknown", nil
	}
	return strings.TrimSuffix(strings.TrimPrefix(filepath.Base(jars[0]), "kafka-clients-"), ".jar"), nil
}
