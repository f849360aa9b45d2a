package main

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"logpipe/e2e/bench/benchkit"
)

// sectionHeading is the level-2 heading this command owns in the
// benchmarks document.
const sectionHeading = "## shipper vs rsyslog"

// The goals.
const (
	goalMiBPerSec = 100 // from one file
	goalRSSMiB    = 64  // with 100 files
	goalFiles     = 100
)

// caseKey is one broker and input, on which each peer runs once.
type caseKey struct {
	broker string // "brokerd" or "kafka"
	input  string // inputFile or inputTail
}

// result is one peer's run. err is set when it failed; the figures are
// then not valid.
type result struct {
	peer    string
	lines   int64 // lines shipped
	bytes   int64 // log bytes read (the lines with their "\n")
	records int64 // records in the topic after the run
	// elapsed is from the peer's start (one file) or the writer's start
	// (tailed files) to the moment the topic held every line.
	elapsed time.Duration
	// writer is how long the tail writer took to write every line.
	writer time.Duration
	// cpu is the peer's user+system time over elapsed; brokerCPU the
	// broker's.
	cpu       float64
	brokerCPU float64
	peakKB    int64
	load      string // 1-minute load average when the run started
	err       string
}

func (r *result) linesPerSec() float64 { return float64(r.lines) / r.elapsed.Seconds() }
func (r *result) mibPerSec() float64   { return float64(r.bytes) / (1 << 20) / r.elapsed.Seconds() }
func (r *result) cpuPerMillion() float64 {
	return r.cpu / (float64(r.lines) / 1e6)
}
func (r *result) peakMiB() float64 { return float64(r.peakKB) / 1024 }

// report is one run of the benchmark, ready to render.
type report struct {
	opts        *options
	started     time.Time
	finished    time.Time
	machine     benchkit.Machine
	shipper     string // shipper --version
	brokerd     string // brokerd --version
	kafka       string // Apache Kafka's version
	rsyslog     string // rsyslogd -v, first line
	rsyskafk    string // the rsyslog-kafka package's version
	rdkafka     string // the librdkafka1 package's version
	singleBytes int64  // size of the one file
	// results holds every run of each peer on each broker and input.
	results map[caseKey]map[string][]*result
}

func (r *report) add(k caseKey, res *result) {
	if r.results == nil {
		r.results = map[caseKey]map[string][]*result{}
	}
	if r.results[k] == nil {
		r.results[k] = map[string][]*result{}
	}
	r.results[k][res.peer] = append(r.results[k][res.peer], res)
}

// ok returns a peer's successful runs on k, slowest first.
func (r *report) ok(k caseKey, peer string) []*result {
	var out []*result
	for _, res := range r.results[k][peer] {
		if res.err == "" {
			out = append(out, res)
		}
	}
	slices.SortStableFunc(out, func(a, b *result) int { return cmp.Compare(a.linesPerSec(), b.linesPerSec()) })
	return out
}

// get returns a peer's median run on k by lines/s (of an even number, the
// slower of the middle two), or nil if none succeeded. The report's
// figures are that run's, so each column is one real run.
func (r *report) get(k caseKey, peer string) *result {
	runs := r.ok(k, peer)
	if len(runs) == 0 {
		return nil
	}
	return runs[(len(runs)-1)/2]
}

// peakRSS returns the highest peak RSS of a peer's runs on k, in MiB.
func (r *report) peakRSS(k caseKey, peer string) (float64, bool) {
	runs := r.ok(k, peer)
	peak := 0.0
	for _, res := range runs {
		peak = max(peak, res.peakMiB())
	}
	return peak, len(runs) > 0
}

// peers returns the peers measured, shipper first.
func (r *report) peers() []string {
	var out []string
	for _, p := range []string{peerShipper, peerRsyslog, peerRsyslogRaw} {
		if slices.Contains(r.opts.peers, p) {
			out = append(out, p)
		}
	}
	return out
}

// cases returns the broker and input pairs in the order they ran.
func (r *report) cases() []caseKey {
	var ks []caseKey
	for _, b := range r.opts.brokers {
		for _, in := range r.opts.inputs {
			ks = append(ks, caseKey{b, in})
		}
	}
	return ks
}

// row is one row of the results table: a figure of the median run, or of
// all runs when all is set.
type row struct {
	label    string
	decimals int
	value    func(*result) float64
	// only limits the row to one input ("" for both).
	only string
	all  func(r *report, k caseKey, peer string) (float64, bool)
}

var rows = []row{
	{label: "lines/s", value: (*result).linesPerSec},
	{label: "MiB/s of log read", decimals: 1, value: (*result).mibPerSec},
	{label: "CPU-s per million lines", decimals: 2, value: (*result).cpuPerMillion},
	{label: "peak RSS, highest of the runs (MiB)", decimals: 1, all: (*report).peakRSS},
	{label: "wall time (s)", decimals: 2, value: func(r *result) float64 { return r.elapsed.Seconds() }},
	{label: "writer's time to append every line (s)", decimals: 2, value: func(r *result) float64 { return r.writer.Seconds() }, only: inputTail},
	{label: "broker CPU-s in the run", decimals: 1, value: func(r *result) float64 { return r.brokerCPU }},
	{label: "records in the topic", value: func(r *result) float64 { return float64(r.records) }},
}

// figure returns a row's figure for a peer on k.
func (r *report) figure(mt row, k caseKey, peer string) (float64, bool) {
	if mt.all != nil {
		return mt.all(r, k, peer)
	}
	res := r.get(k, peer)
	if res == nil {
		return 0, false
	}
	return mt.value(res), true
}

// spread returns the slowest and fastest run's lines/s, formatted.
func (r *report) spread(k caseKey, peer string) string {
	runs := r.ok(k, peer)
	if len(runs) == 0 {
		return "–"
	}
	return benchkit.Thousands(runs[0].linesPerSec()) + " – " + benchkit.Thousands(runs[len(runs)-1].linesPerSec())
}

func brokerName(name string) string {
	if name == "kafka" {
		return "Apache Kafka"
	}
	return name
}

func (r *report) inputName(input string) string {
	if input == inputFile {
		return "1 file"
	}
	return fmt.Sprintf("%d files, tailed", r.opts.files)
}

// markdown renders the report as the document section, heading included.
func (r *report) markdown() string {
	o := r.opts
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := r.machine

	w("%s\n\n", sectionHeading)
	b.WriteString(benchkit.Opening("e2e/bench/cmd/shipperbench", r.started, r.finished, commandLine))

	w("### Machine and versions\n\n")
	w("- Machine: %d CPUs (%s), %s of memory, %s.\n", m.CPUs, m.CPUModel, m.MemTotal, m.Kernel)
	w("- shipper: `%s`.\n", r.shipper)
	w("- rsyslog: `%s` from Debian with `rsyslog-kafka` %s (omkafka) on librdkafka %s.\n", r.rsyslog, r.rsyskafk, r.rdkafka)
	if r.brokerd != "" {
		w("- brokerd: `%s`.\n", r.brokerd)
	}
	if r.kafka != "" {
		w("- Apache Kafka %s from Maven Central, one node in KRaft combined mode, JVM heap %d MiB, its shipped thread and partition defaults.\n", r.kafka, o.kafkaHeapMB)
	}
	w("- 1-minute load average when each run started:")
	for _, k := range r.cases() {
		for _, p := range o.peers {
			var loads []string
			for _, res := range r.results[k][p] {
				loads = append(loads, res.load)
			}
			if len(loads) > 0 {
				w(" %s/%s/%s %s;", brokerName(k.broker), k.input, p, strings.Join(loads, ", "))
			}
		}
	}
	w(" other work on the machine shows up there and in the figures.\n\n")

	w("### What runs\n\n")
	w("The shipper (`%s`) and rsyslog (Debian's `rsyslogd`, `imfile` reading, `omkafka` producing) ship the same access-log lines to the same broker, one program at a time. ", o.shipperName())
	w("The lines are Apache httpd combined-format lines made by `e2e/bench/accesslog` from seed %d: varied client addresses, users, paths, query strings, methods, statuses, sizes, referrers and user agents", o.seed)
	if r.singleBytes > 0 {
		w(", %.0f bytes a line on average", float64(r.singleBytes)/float64(o.lines))
	}
	w(".\n\n")
	w("- Brokers: ")
	var bs []string
	for _, name := range o.brokers {
		bs = append(bs, brokerName(name))
	}
	w("%s, one node each on 127.0.0.1, started fresh one after the other (never together, each with its default settings); each run gets a new topic of %d partition(s), one replica, deleted after the run. Everything, the writer included, shares the same %d CPUs; which program goes first alternates from one input and broker to the next.\n", strings.Join(bs, " and then "), o.partitions, m.CPUs)
	w("- Every program produces with acks=all and the idempotent producer, without compression, one record per line.\n")
	w("- **shipper**: its defaults except `compression: none` (its default is gzip) and `http.enabled` (for its readiness check), so the idempotent producer with up to 5 requests in flight per broker, and the queue and batch sizes `shipper/README.md` lists. Each record is the event of docs/architecture.md: `@timestamp`, `message`, `tags`, `event.id` (the stable SHA-256 id), `log.file.path`, `log.offset`, `input.type`, `host.name`, `agent`.")
	if len(o.shipperSet) > 0 || len(o.shipperEnv) > 0 {
		w(" This run also set `%s`.", strings.Join(append(slices.Clone(o.shipperSet), o.shipperEnv...), " "))
	}
	w("\n")
	w("- **rsyslog**: `rsyslogd -n -f <conf> -i <pid file>` with a configuration, work folder and pid file of its own in a temporary folder; only `imfile` (inotify mode, files read from their start), `omkafka` and, for the event, `fmhash` are loaded (no imuxsock, no imklog, no system log). omkafka gets `compression.codec=none`, `enable.idempotence=true`, `acks=all` and `resubmitOnFailure=\"on\"` (without it, omkafka drops the lines librdkafka refuses when its own queue is full: a trial run lost 25 lines that way, \"Local: Queue full\"), and otherwise librdkafka's and rsyslog's defaults (a main queue of 100,000 messages). It runs twice:\n")
	w("  - **rsyslog** makes the shipper's event: a list template writes the same JSON members, with the file name and offset imfile adds as metadata (`addMetadata=\"on\"`) and `hash64` of name and offset for `event.id`;\n")
	w("  - **rsyslog-raw** sends the bare line (template `%%msg%%`, no metadata): the least rsyslog can do, so its floor.\n")
	if o.partitions > 1 {
		w("- Partitioning: the shipper hashes each file's identity (one file, one partition); omkafka spreads records at random.\n")
	}
	w("- All run as the user `nobody` when the benchmark runs as root (through `setpriv`), otherwise as the user running it.\n")
	w("- **1 file**: %s lines (%.1f MiB) written to one file before the program starts; the clock runs from the program's start until the broker holds every line.\n", benchkit.Thousands(float64(o.lines)), float64(r.singleBytes)/(1<<20))
	w("- **%d files, tailed**: the program starts with %d empty files and the benchmark waits until it is ready (the shipper's `/readyz`, rsyslog's pid file); then one writer goroutine appends %s lines in all, %d lines at a time to each file in turn (one `write` each), as fast as it can; the clock, and the CPU time, run from the writer's first write until the broker holds every line.\n", o.files, o.files, benchkit.Thousands(float64(o.lines)), o.chunk)
	w("- Completion: the sum of the topic's end offsets (ListOffsets, polled every 25 ms) reaches the number of lines: the broker has acknowledged a record for every line. \"records in the topic\" is read again after the program has stopped; more than the lines would be duplicates.\n")
	w("- Figures: lines/s and MiB/s (MiB = 2^20 bytes of log read, newlines included) over that clock; CPU seconds are the program's user + system time from `/proc/<pid>/stat` over the same span, per million lines; peak RSS is the larger of `VmHWM` and `VmRSS` from `/proc/<pid>/status`, sampled every 250 ms; broker CPU-s is the broker's CPU time over the span.\n\n")

	w("### Results\n\n")
	peers := r.peers()
	others := slices.DeleteFunc(slices.Clone(peers), func(p string) bool { return p == peerShipper })
	hasShipper := slices.Contains(peers, peerShipper)
	w("rsyslog makes the shipper's event; rsyslog-raw sends the bare line. ")
	if o.runs > 1 {
		w("Each program ran %d times on each broker and input; the figures are those of its median run by lines/s (peak RSS: the highest of its runs). ", o.runs)
	}
	w("Ratios are shipper / rsyslog: above 1 is more for the shipper (better for lines/s and MiB/s, worse for CPU and memory).\n\n")
	w("| Broker | Input | Measure |")
	for _, p := range peers {
		w(" %s |", p)
	}
	if hasShipper {
		for _, p := range others {
			w(" shipper / %s |", p)
		}
	}
	w("\n|---|---|---|")
	for range peers {
		w("---:|")
	}
	if hasShipper {
		for range others {
			w("---:|")
		}
	}
	w("\n")
	for _, k := range r.cases() {
		if r.results[k] == nil {
			continue
		}
		for _, mt := range rows {
			if mt.only != "" && mt.only != k.input {
				continue
			}
			w("| %s | %s | %s |", brokerName(k.broker), r.inputName(k.input), mt.label)
			for _, p := range peers {
				v, ok := r.figure(mt, k, p)
				w(" %s |", benchkit.Cell(v, ok, mt.decimals))
			}
			if hasShipper {
				sv, sok := r.figure(mt, k, peerShipper)
				for _, p := range others {
					v, ok := r.figure(mt, k, p)
					w(" %s |", benchkit.Ratio(sv, sok, v, ok))
				}
			}
			w("\n")
			if mt.label == "lines/s" && o.runs > 1 {
				w("| %s | %s | lines/s, slowest – fastest run |", brokerName(k.broker), r.inputName(k.input))
				for _, p := range peers {
					w(" %s |", r.spread(k, p))
				}
				if hasShipper {
					for range others {
						w(" |")
					}
				}
				w("\n")
			}
		}
	}
	w("\n")

	w("### Against the goals\n\n")
	w("The issue's goals on this machine: at least %d MiB/s from one file, fewer CPU seconds per million lines than rsyslog, and RSS under %d MiB with %d files. ", goalMiBPerSec, goalRSSMiB, goalFiles)
	w("Published anchors for scale, not measured here: Filebeat about 8 MiB/s, Vector about 77 MiB/s file→TCP.\n\n")
	for _, k := range r.cases() {
		sh := r.get(k, peerShipper)
		if k.input != inputFile || sh == nil {
			continue
		}
		w("- %d MiB/s from one file, to %s: %s, %.1f MiB/s (%s lines/s).\n", goalMiBPerSec, brokerName(k.broker),
			verdict(sh.mibPerSec() >= goalMiBPerSec), sh.mibPerSec(), benchkit.Thousands(sh.linesPerSec()))
	}
	for _, k := range r.cases() {
		sh := r.get(k, peerShipper)
		for _, p := range []string{peerRsyslog, peerRsyslogRaw} {
			rs := r.get(k, p)
			if sh == nil || rs == nil {
				continue
			}
			w("- Fewer CPU-s per million lines than %s, %s, %s: %s, %.2f against %.2f (%s).\n", p, brokerName(k.broker), r.inputName(k.input),
				verdict(sh.cpuPerMillion() < rs.cpuPerMillion()), sh.cpuPerMillion(), rs.cpuPerMillion(), benchkit.Ratio(sh.cpuPerMillion(), true, rs.cpuPerMillion(), true))
		}
	}
	for _, k := range r.cases() {
		sh := r.get(k, peerShipper)
		if k.input != inputTail || sh == nil {
			continue
		}
		note := ""
		if o.files != goalFiles {
			note = fmt.Sprintf(" (this run tailed %d files, not %d)", o.files, goalFiles)
		}
		peak, _ := r.peakRSS(k, peerShipper)
		w("- RSS under %d MiB with %d files, to %s: %s, peak %.1f MiB (the highest of the runs)%s.\n", goalRSSMiB, goalFiles, brokerName(k.broker),
			verdict(peak < goalRSSMiB && o.files >= goalFiles), peak, note)
	}
	var dups []string
	for _, k := range r.cases() {
		for _, p := range o.peers {
			for _, res := range r.ok(k, p) {
				if res.records != res.lines {
					dups = append(dups, fmt.Sprintf("%s, %s, %s: %s records for %s lines", brokerName(k.broker), r.inputName(k.input), p,
						benchkit.Thousands(float64(res.records)), benchkit.Thousands(float64(res.lines))))
				}
			}
		}
	}
	if len(dups) > 0 {
		w("- Not exactly one record per line: %s.\n", strings.Join(dups, "; "))
	}
	w("\n")

	var failures []string
	for _, k := range r.cases() {
		for _, p := range o.peers {
			for i, res := range r.results[k][p] {
				if res.err != "" {
					failures = append(failures, fmt.Sprintf("%s, %s, %s, run %d: %s", brokerName(k.broker), r.inputName(k.input), p, i+1, firstLine(res.err)))
				}
			}
		}
	}
	b.WriteString(benchkit.ListSection("Failed runs", failures))
	return b.String()
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "**not met**"
}
