package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"logpipe/e2e/bench/benchkit"
	"logpipe/e2e/bench/loadgen"
	"logpipe/internal/devstack"
)

// sectionHeading is the level-2 heading this command owns in the
// benchmarks document.
const sectionHeading = "## End-to-end latency: a line appended until it is searchable"

// brokerRun is one broker's pipeline, measured. err is set when the run
// failed; its figures are then incomplete.
type brokerRun struct {
	broker    string
	load      string // 1-minute load average when its pipeline started
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

// ms formats d in milliseconds, without decimals.
func ms(d time.Duration) string { return benchkit.Thousands(float64(d) / float64(time.Millisecond)) }

// markdown renders the report as the document section, heading included.
func (r *report) markdown() string {
	o := r.opts
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := r.machine

	w("%s\n\n", sectionHeading)
	b.WriteString(benchkit.Opening("e2e/bench/cmd/latencybench", r.started, r.finished, o.commandLine))

	w("### Machine and versions\n\n")
	w("- Machine: %d CPUs (%s), %s of memory, %s.\n", m.CPUs, m.CPUModel, m.MemTotal, m.Kernel)
	w("- logpipe `%s` at commit %s: brokerd, the shipper and the indexer built by the benchmark with `go build` (no race detector).\n", r.logpipe, r.commit)
	if r.elasticsearch != "" {
		w("- Elasticsearch %s, one node, JVM heap %d MiB (as `make run` starts it).\n", r.elasticsearch, o.esHeapMB)
	}
	if r.kafka != "" {
		w("- Apache Kafka %s, one node in KRaft combined mode with `internal/devstack`'s server.properties, JVM heap %d MiB.\n", r.kafka, o.kafkaHeapMB)
	}
	w("- 1-minute load average when each pipeline was started:")
	for _, run := range r.runs {
		w(" %s %s;", brokerTitle(run.broker), run.load)
	}
	w(" everything shares the machine's %d CPUs with whatever else runs on it, and that shows in the figures.\n\n", m.CPUs)

	w("### What runs\n\n")
	var names []string
	for _, name := range o.brokers {
		names = append(names, brokerTitle(name))
	}
	w("For each broker in turn (%s), a fresh pipeline in a work folder of its own: an Elasticsearch node, the broker, `indexer setup`, the indexer, and the shipper tailing an access log and an error log in that folder; it is stopped and removed before the next broker's starts. The shipper and the indexer are the same binaries with the same settings for both brokers.\n\n", strings.Join(names, ", then "))
	w("- Configuration: the shipped `configs/*.yml`, with `-E` only for addresses and folders: brokerd `-c configs/brokerd.yml` with its listener and `log.dirs`; the indexer with `kafka.hosts`, `elasticsearch.hosts` and `kafka.auto_offset_reset=earliest` (as `make run` does, so a new group skips nothing); the shipper with `output.kafka.hosts` and `path.data`, on a copy of `configs/shipper.yml` whose two log paths are moved from `%s` into the work folder. Both programs also get `http.enabled=true` on a loopback port, whose `/readyz` the benchmark waits on before the first line.", shippedLogs)
	if len(o.shipperSet) > 0 || len(o.indexerSet) > 0 {
		w(" This run also set: shipper `%s`; indexer `%s`.", strings.Join(o.shipperSet, " "), strings.Join(o.indexerSet, " "))
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
	w("- The lines: Apache httpd combined-format access lines with the current time, each with a marker unique to the run in its URL (`...&lb=<run>-<n>`), appended to the access log with one `write`. The clock starts when the write returns and stops when a search of `%s` returns the line's document. Searches never force a refresh, so the refresh interval is part of what is measured; the figures include up to one poll interval (%v) and a search's round trip beyond the moment the document became searchable.\n", accessIndices, o.poll)
	w("- A warm-up line goes first and is not counted: it is the topic's first record and creates the day's index. Its latency is shown apart.\n")
	switch o.mode {
	case modeSingle:
		w("- One line at a time (`-mode single`): %d lines per broker; each line is searched for (a `term` query on `url.original`, size 0) every %v until it is found, then the benchmark waits %v plus a random 0 to %v before appending the next, so that lines land at random points of the refresh and flush cycles (a line is found just after a refresh; with a fixed pause every line would start at the same point of the cycle). Percentiles are nearest-rank over the %d lines", o.lines, o.poll, o.gap, o.jitter, o.lines)
		if o.lines < 100 {
			w(" (with fewer than 100 lines, p99 is the largest)")
		}
		w(".\n\n")
	case modeSteady:
		w("- Steady load (`-mode steady`): a writer appends %s lines a second for %v (every %v, the lines due by then in one write). Every %v a search fetches the access documents not yet seen (sorted by `log.offset`, the line's place in the file, which the benchmark maps back to its line; the URL's marker is checked), and each line's latency is from its write to the first search response that held it. The run waits up to %v after the last append for the rest. \"searchable lines/s\" is the lines found over the time from the search that found the first ones to the one that found the last (each about one latency after its lines were appended), so it is the rate the pipeline sustained end to end.\n\n",
			benchkit.Thousands(float64(o.rate)), o.duration, writeTick, o.poll, o.drain)
	}

	w("### Results\n\n")
	w("| Broker | lines |")
	if o.mode == modeSteady {
		w(" lines appended/s | searchable lines/s | never searchable |")
	}
	w(" min (ms) | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | mean (ms) | warm-up line (ms) |\n|---|---:|")
	if o.mode == modeSteady {
		w("---:|---:|---:|")
	}
	w("---:|---:|---:|---:|---:|---:|---:|\n")
	for _, run := range r.runs {
		s := run.summary()
		if s.n == 0 {
			continue
		}
		w("| %s | %s |", brokerTitle(run.broker), benchkit.Thousands(float64(s.n)))
		if st := run.steady; st != nil {
			w(" %s | %s | %s |", benchkit.Thousands(st.appendRate()), benchkit.Thousands(st.throughput()), benchkit.Thousands(float64(st.lines-st.found)))
		}
		w(" %s | %s | %s | %s | %s | %s | %s |\n", ms(s.min), ms(s.p50), ms(s.p90), ms(s.p99), ms(s.max), ms(s.mean), ms(run.warmup))
	}
	w("\n")
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
