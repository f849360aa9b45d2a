package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"logpipe/e2e/bench/benchkit"
)

// sectionHeading is the level-2 heading this command owns in the
// benchmarks document.
const sectionHeading = "## indexer vs direct bulk load"

// The goal of the issue and the published figure quoted for scale.
const (
	goalRatio        = 0.90
	anchorDocsPerSec = 52000
	anchorCores      = 16
	anchorDocKB      = 2.5
)

// phase is what one timed phase measured. Fields that do not apply to a
// phase stay zero.
type phase struct {
	round     int
	kept      bool   // its round counts in the totals
	load      string // load averages when it started
	mapping   string // the mappings of the index it wrote, canonical JSON
	docs      int
	elapsed   time.Duration
	bodyBytes int64 // bulk request bodies sent
	requests  int
	retried   int // pipeline: documents sent again; ceiling: requests sent again
	esCPU     float64
	esPeakKB  int64

	// This command's CPU time: the ceiling's client, or the pipeline's
	// poller of the indexer's metrics.
	clientCPU float64
	// machine is the whole machine's CPU time over the phase.
	machine cpuTimes

	// The pipeline's processes.
	indexerCPU    float64
	indexerPeakKB int64
	halfRSSKB     int64 // indexer's RSS when half the documents were in
	brokerCPU     float64
	startup       time.Duration // indexer start to /readyz
	// duplicates counts documents answered 409: on a resend for the
	// ceiling, at all for the pipeline (none on a clean run).
	duplicates int
}

// otherCPU returns the CPU seconds that processes other than those the
// phase runs (Elasticsearch, brokerd, the indexer, this command) used on
// the machine during it.
func (p *phase) otherCPU() float64 {
	return max(0, p.machine.busy-p.ownCPU())
}

// ownCPU returns the CPU seconds of the phase's own processes.
func (p *phase) ownCPU() float64 { return p.esCPU + p.indexerCPU + p.brokerCPU + p.clientCPU }

// docsPerOwnCPU returns the documents per CPU second of the phase's own
// processes: what bounds the rate on a machine with nothing else to do.
func (p *phase) docsPerOwnCPU() float64 {
	if p.ownCPU() <= 0 {
		return 0
	}
	return float64(p.docs) / p.ownCPU()
}

// total adds phases up: counts, times and CPU seconds are summed, memory
// is the largest seen, start-up the mean.
func total(phases []*phase) *phase {
	t := &phase{}
	for _, p := range phases {
		if !p.kept {
			continue
		}
		t.docs += p.docs
		t.elapsed += p.elapsed
		t.bodyBytes += p.bodyBytes
		t.requests += p.requests
		t.retried += p.retried
		t.duplicates += p.duplicates
		t.esCPU += p.esCPU
		t.clientCPU += p.clientCPU
		t.machine.busy += p.machine.busy
		t.machine.intr += p.machine.intr
		t.machine.idle += p.machine.idle
		t.machine.iowait += p.machine.iowait
		t.machine.steal += p.machine.steal
		t.indexerCPU += p.indexerCPU
		t.brokerCPU += p.brokerCPU
		t.startup += p.startup
		t.esPeakKB = max(t.esPeakKB, p.esPeakKB)
		t.indexerPeakKB = max(t.indexerPeakKB, p.indexerPeakKB)
		t.halfRSSKB = max(t.halfRSSKB, p.halfRSSKB)
	}
	if n := keptCount(phases); n > 0 {
		t.startup /= time.Duration(n)
	}
	return t
}

func keptCount(phases []*phase) int {
	n := 0
	for _, p := range phases {
		if p.kept {
			n++
		}
	}
	return n
}

func (p *phase) docsPerSec() float64 { return perSec(float64(p.docs), p.elapsed) }
func (p *phase) mibPerSec() float64  { return perSec(float64(p.bodyBytes)/(1<<20), p.elapsed) }

func perSec(v float64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return v / d.Seconds()
}

// report is one run, ready to render.
type report struct {
	opts          *options
	started       time.Time
	finished      time.Time
	machine       benchkit.Machine
	indexer       string
	brokerd       string
	elasticsearch string
	java          string

	produceTime  time.Duration
	valueBytes   int64 // record values produced
	docs         int
	docBytes     int64 // document bodies
	bulkBytes    int64 // spooled request bodies
	bulkRequests int
	warmupDocs   int

	ceilings  []*phase
	pipelines []*phase
	// disturbed reports that fewer than -rounds rounds ran undisturbed, so
	// that the totals add up every round run.
	disturbed bool
}

// loads returns the first load average of each phase, in the order they
// ran, and the highest.
func (r *report) loads() (string, float64) {
	type entry struct {
		round   int
		ceiling bool
		p       *phase
	}
	var es []entry
	for _, p := range r.ceilings {
		es = append(es, entry{p.round, true, p})
	}
	for _, p := range r.pipelines {
		es = append(es, entry{p.round, false, p})
	}
	// Rounds alternate which phase runs first.
	var parts []string
	peak := 0.0
	for round := 1; round <= len(r.ceilings); round++ {
		first := round%2 == 1
		for _, wantCeiling := range []bool{first, !first} {
			for _, e := range es {
				if e.round == round && e.ceiling == wantCeiling {
					name := "pipeline"
					if e.ceiling {
						name = "ceiling"
					}
					parts = append(parts, fmt.Sprintf("round %d %s %s", round, name, firstField(e.p.load)))
					peak = max(peak, loadOf(e.p.load))
				}
			}
		}
	}
	if len(parts) == 0 {
		return "none", 0
	}
	return strings.Join(parts, ", "), peak
}

// markdown renders the report as the document section, heading included.
func (r *report) markdown() string {
	o := r.opts
	m := r.machine
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	c, p := total(r.ceilings), total(r.pipelines)

	w("%s\n\n", sectionHeading)
	b.WriteString(benchkit.Opening("e2e/bench/cmd/indexerbench", r.started, r.finished, commandLine))

	w("### Machine and versions\n\n")
	w("- Machine: %d CPUs (%s), %s of memory, %s. Elasticsearch, brokerd, the indexer and this command all share them.\n", m.CPUs, m.CPUModel, m.MemTotal, m.Kernel)
	w("- indexer: `%s`; brokerd: `%s`.\n", r.indexer, r.brokerd)
	w("- Elasticsearch %s from Maven Central, one node started by `e2e/harness` (JVM heap `-Xms%dm -Xmx%dm`, G1), on `%s`.\n", r.elasticsearch, o.esHeapMB, o.esHeapMB, r.java)
	w("- This command: franz-go %s and go-elasticsearch, built with %s.\n", m.FranzGo, m.GoVer)
	loads, peak := r.loads()
	w("- 1-minute load average when each phase started: %s; other work on the machine at the same time shows up there and in the figures.", loads)
	if peak > float64(m.CPUs) {
		w(" **It was %.1f on %d CPUs**: other processes were competing for the CPUs, so the figures carry that noise.", peak, m.CPUs)
	}
	w("\n\n")

	w("### What runs\n\n")
	w("One run starts a fresh Elasticsearch node and a fresh brokerd and fills a topic; then, in each round, it times two phases one after the other on the same node, each loading the same %s documents into empty indices that match the same index template. Odd rounds time the ceiling first, even rounds the pipeline first, so that a drift in the machine's load or in the JVM's warmth over the run does not favour one phase. Before each phase the benchmark waits (up to a minute) for Elasticsearch to go idle. The machine is shared, so a round during which other processes took more than %.2f CPUs on average in either phase is not kept and another is run, until %d rounds are kept or %d more have run; the totals add up the kept rounds.\n\n",
		benchkit.Thousands(float64(r.docs)), o.maxOther, o.rounds, o.extra)
	w("- **Events**: %s shipper-shaped httpd access events, the JSON of `pipeline/event` (`@timestamp`, `message` holding a combined-format line, `tags: [\"access\"]`, `event.id` derived from host, file identity and byte offset, so all distinct, `log.file.path`, `log.offset`, `input.type`, `host.name`, `agent`), from %d hosts with one `access_log` each; host *i*'s lines go to partition *i* mod %d of the %d-partition topic `%s`. The lines are made up but realistic: IPv4 and IPv6 (one in ten) clients, a few user names, four time zones, GET-heavy methods, shop-like paths with query strings, HTTP/1.0–2.0, a status mix (200, 304, 404, 30x, 5xx, …), log-normal sizes or `-`, referrers, browser and bot user agents. Their times span %s of one UTC day, so each phase writes one daily index. Mean record value %s bytes (%.1f MiB in all), produced with franz-go (acks=all, idempotent) before anything is timed (%s).\n",
		benchkit.Thousands(float64(o.events)), hostCount, o.partitions, o.partitions, benchTopic, generatorSpan,
		benchkit.Thousands(avg(float64(r.valueBytes), r.docs)), float64(r.valueBytes)/(1<<20), r.produceTime.Round(time.Second))
	w("- **Documents**: what the indexer makes of each event, built with the indexer's own code (`indexer/document`: decode, httpd parse into ECS fields, `event.original`, `event.ingested`) under its defaults; mean %s bytes. The direct load sends these very bodies (its `event.ingested` is the time they were built); %s requests, %.1f MiB of bulk bodies with their action lines.\n",
		benchkit.Thousands(avg(float64(r.docBytes), r.docs)), benchkit.Thousands(float64(r.bulkRequests)), float64(r.bulkBytes)/(1<<20))
	w("- **Index template**: `indexer setup --templates` with the run's configuration, before either phase: the composable template for `httpd_access-*` (explicit ECS mappings), `index.number_of_shards: %d`, `index.number_of_replicas: 0` (one node). Everything else is Elasticsearch's default (refresh every 1 s while searched, idle otherwise; translog fsync on every request).\n", o.shards)
	w("- **Bulk settings, both phases**: %d workers (bulk requests in flight at once, each worker one request at a time), requests cut once the items' bytes reach %s (`elasticsearch.flush_bytes`, counted as the indexer's sink counts them), `create` with `_id` = `event.id`, the sink's `filter_path`.\n", o.workers, sizeText(o.flushBytes))
	if r.warmupDocs > 0 {
		w("- **Warm-up**: %s documents bulk-loaded as in the ceiling, and deleted, before the first timed phase, so that no phase pays for a cold JVM (Elasticsearch's CPU per document still falls over the first millions of documents; the alternating order of the rounds spreads what is left of that).\n", benchkit.Thousands(float64(r.warmupDocs)))
	}
	w("- **Ceiling** (direct bulk load): this command reads the pre-built request bodies from a spool file and sends them to `httpd_access-ceiling-*` with go-elasticsearch, checking every item; no Kafka and no parsing in the timed part, which runs from the first request to the last answer. Then a refresh and `_count` check the documents, and the indices are deleted.\n")
	w("- **Pipeline**: the real `bin/indexer -c <generated config>`, a new process and a new consumer group each round (`group_id: indexerbench-<round>`), with the defaults of `configs/indexer.yml` except `kafka.hosts`, `topics: [%s]`, `auto_offset_reset: earliest`, `elasticsearch.hosts`, the bulk settings above, the template settings and `http.enabled` (for its metrics). brokerd runs its defaults except its listener, data folder and `group.initial.rebalance.delay.ms: 0`. Timed from starting the process to the moment its `/metrics` (read every 200 ms) count every document acknowledged by Elasticsearch; then a refresh and `_count` check that `httpd_access-<date>` holds exactly %s documents, and it is deleted.\n", benchTopic, benchkit.Thousands(float64(r.docs)))
	w("- **CPU and memory**: CPU seconds are user + system time from `/proc/<pid>/stat` over the timed part of a phase; peak RSS is the larger of `VmHWM` and `VmRSS` sampled every 250 ms. The machine's busy (user, nice, system), interrupt, idle, I/O-wait and stolen time come from `/proc/stat` over the same span; what is busy beyond the phase's own processes is other work on the machine.\n\n")

	w("### Results\n\n")
	if r.disturbed {
		w("**Fewer than %d rounds ran undisturbed by other work, so these totals add up every round run, disturbed ones included.**\n\n", o.rounds)
	}
	w("The kept rounds together (documents and seconds summed over them; memory the largest seen):\n\n")
	w("| Measure | pipeline (indexer) | ceiling (direct bulk) | pipeline / ceiling |\n")
	w("|---|---:|---:|---:|\n")
	row := func(label string, pv, cv float64, pok, cok bool, decimals int) {
		w("| %s | %s | %s | %s |\n", label, cell(pv, pok, decimals), cell(cv, cok, decimals), ratio(pv, pok, cv, cok))
	}
	// plain is a row whose ratio says nothing.
	plain := func(label string, pv, cv float64, pok, cok bool, decimals int) {
		w("| %s | %s | %s | – |\n", label, cell(pv, pok, decimals), cell(cv, cok, decimals))
	}
	ran := func(ph *phase) bool { return ph.docs > 0 }
	row("documents/s", p.docsPerSec(), c.docsPerSec(), ran(p), ran(c), 0)
	row("MiB/s of bulk request bodies", p.mibPerSec(), c.mibPerSec(), ran(p), ran(c), 2)
	row("elapsed (s)", p.elapsed.Seconds(), c.elapsed.Seconds(), ran(p), ran(c), 1)
	row("bulk requests", float64(p.requests), float64(c.requests), ran(p), ran(c), 0)
	row("Elasticsearch CPU (s)", p.esCPU, c.esCPU, ran(p), ran(c), 0)
	row("Elasticsearch CPU per 1,000 documents (s)", 1000*p.esCPU/math.Max(1, float64(p.docs)), 1000*c.esCPU/math.Max(1, float64(c.docs)), ran(p), ran(c), 3)
	row("Elasticsearch's average use of the machine (CPUs)", perSec(p.esCPU, p.elapsed), perSec(c.esCPU, c.elapsed), ran(p), ran(c), 2)
	row("indexer CPU (s)", p.indexerCPU, 0, ran(p), false, 1)
	row("brokerd CPU (s)", p.brokerCPU, 0, ran(p), false, 1)
	plain("this command's CPU: the load client, or the metrics poller (s)", p.clientCPU, c.clientCPU, ran(p), ran(c), 1)
	plain("CPU used by other processes on the machine (s)", p.otherCPU(), c.otherCPU(), ran(p), ran(c), 1)
	plain("interrupts, irq and softirq (s)", p.machine.intr, c.machine.intr, ran(p), ran(c), 1)
	plain("machine CPU idle (s)", p.machine.idle, c.machine.idle, ran(p), ran(c), 1)
	plain("machine CPU waiting for I/O (s)", p.machine.iowait, c.machine.iowait, ran(p), ran(c), 1)
	plain("CPU time stolen by the hypervisor (s)", p.machine.steal, c.machine.steal, ran(p), ran(c), 1)
	row("documents per CPU second of the phase's own processes", p.docsPerOwnCPU(), c.docsPerOwnCPU(), ran(p), ran(c), 0)
	row("indexer CPU per 1,000 documents (ms)", 1e6*p.indexerCPU/math.Max(1, float64(p.docs)), 0, ran(p), false, 1)
	row("indexer peak RSS (MiB)", float64(p.indexerPeakKB)/1024, 0, ran(p), false, 0)
	row("indexer RSS at half way (MiB)", float64(p.halfRSSKB)/1024, 0, ran(p) && p.halfRSSKB > 0, false, 0)
	row("Elasticsearch peak RSS (MiB)", float64(p.esPeakKB)/1024, float64(c.esPeakKB)/1024, ran(p), ran(c), 0)
	row("indexer start to /readyz, mean (s)", p.startup.Seconds(), 0, ran(p) && p.startup > 0, false, 1)
	row("documents sent again (pipeline) / requests sent again (ceiling)", float64(p.retried), float64(c.retried), ran(p), ran(c), 0)
	w("\n")
	if len(r.ceilings) > 1 || len(r.pipelines) > 1 {
		w("Each round:\n\n")
		w("| Round | first | kept | pipeline (documents/s) | ceiling (documents/s) | pipeline / ceiling | Elasticsearch CPU per 1,000 documents, pipeline / ceiling (s) | other processes' CPUs on average, pipeline / ceiling |\n")
		w("|---:|---|---|---:|---:|---:|---|---|\n")
		for round := 1; round <= len(r.ceilings); round++ {
			var rp, rc *phase
			for _, x := range r.pipelines {
				if x.round == round {
					rp = x
				}
			}
			for _, x := range r.ceilings {
				if x.round == round {
					rc = x
				}
			}
			if rp == nil || rc == nil {
				continue
			}
			first := "pipeline"
			if round%2 == 1 {
				first = "ceiling"
			}
			kept := "yes"
			if !rp.kept {
				kept = "no"
			}
			w("| %d | %s | %s | %s | %s | %s | %.3f / %.3f | %.2f / %.2f |\n", round, first, kept, benchkit.Thousands(rp.docsPerSec()), benchkit.Thousands(rc.docsPerSec()),
				ratio(rp.docsPerSec(), true, rc.docsPerSec(), true), rp.esCPU/math.Max(1, float64(rp.docs))*1000, rc.esCPU/math.Max(1, float64(rc.docs))*1000,
				perSec(rp.otherCPU(), rp.elapsed), perSec(rc.otherCPU(), rc.elapsed))
		}
		w("\n")
	}

	same := true
	for _, x := range append(append([]*phase(nil), r.ceilings...), r.pipelines...) {
		if x.mapping != r.ceilings[0].mapping {
			same = false
		}
	}
	// (Phases come in pairs, so there is a ceiling whenever there is any.)
	if len(r.ceilings) > 0 && same {
		w("Every phase's index ended with the same mappings (checked), so Elasticsearch did the same work for both.\n\n")
	} else if len(r.ceilings) > 0 {
		w("**The phases' indices ended with different mappings**, so Elasticsearch did not do quite the same work in each; see the run's indices.\n\n")
	}
	w("### Against the goals\n\n")
	if ran(p) && ran(c) {
		rt := p.docsPerSec() / c.docsPerSec()
		verdict := "met"
		if rt < goalRatio {
			verdict = "**not met**"
		}
		w("- Throughput, the indexer at least %.0f%% of the direct bulk load: %s, the pipeline reached %.1f%% of the ceiling (%s against %s documents/s).",
			100*goalRatio, verdict, 100*rt, benchkit.Thousands(p.docsPerSec()), benchkit.Thousands(c.docsPerSec()))
		cpus := float64(max(m.CPUs, 1))
		if op, oc := perSec(p.otherCPU(), p.elapsed), perSec(c.otherCPU(), c.elapsed); op+oc > 0.2*cpus {
			w(" **Other work on the machine took %.2f CPUs on average during the pipeline phases and %.2f during the ceiling phases, so this wall-clock verdict is not reliable.**", op, oc)
		}
		w(" Counting CPU instead of wall time, which other work on the machine does not skew, the pipeline indexed %s documents per CPU second of its own processes (Elasticsearch, the indexer, brokerd, the metrics poller) and the direct load %s (Elasticsearch and its client): %.1f%%, an estimate of the ratio if both phases had the CPUs to themselves and Elasticsearch used them fully (it moves with Elasticsearch's CPU per document, which drifts over a run).\n",
			benchkit.Thousands(p.docsPerOwnCPU()), benchkit.Thousands(c.docsPerOwnCPU()), 100*p.docsPerOwnCPU()/c.docsPerOwnCPU())
		budget := float64((o.workers+2)*o.flushBytes) / (1 << 20)
		w("- Memory bounded: the indexer's peak RSS was %.0f MiB for %s documents a round (%.0f MiB when half of them were in), with `elasticsearch.max_in_flight_bytes` at its default of (workers + 2) × flush_bytes = %.0f MiB; what it holds is bounded by that budget and by sarama's fetch buffers, not by the size of the topic.\n",
			float64(p.indexerPeakKB)/1024, benchkit.Thousands(float64(r.docs)), float64(p.halfRSSKB)/1024, budget)
		esC, esP := perSec(c.esCPU, c.elapsed), perSec(p.esCPU, p.elapsed)
		w("- Who limits the rate: in the ceiling Elasticsearch used %.2f of the %d CPUs on average and this command %.2f; in the pipeline Elasticsearch used %.2f, the indexer %.2f and brokerd %.2f.",
			esC, m.CPUs, perSec(c.clientCPU, c.elapsed), esP, perSec(p.indexerCPU, p.elapsed), perSec(p.brokerCPU, p.elapsed))
		switch {
		case esC >= 0.75*cpus:
			w(" Elasticsearch keeps the CPUs busy on its own: it is the bottleneck, and every CPU second the indexer and brokerd spend is taken from it.")
		case perSec(c.machine.idle, c.elapsed) < 0.1*cpus:
			w(" The machine had hardly a CPU idle in the ceiling, yet Elasticsearch used less than %.1f of them: it was competing for the CPUs with other work on the machine, and the CPU was what it lacked.", 0.75*cpus)
		default:
			w(" Elasticsearch did not keep every CPU busy in the ceiling although some were idle, so it also waits on something else: the %d requests in flight at a time, or its translog fsyncs.", o.workers)
		}
		w(" Elasticsearch spent %.3f CPU seconds per 1,000 documents in the pipeline and %.3f in the ceiling.",
			1000*p.esCPU/math.Max(1, float64(p.docs)), 1000*c.esCPU/math.Max(1, float64(c.docs)))
		w(" Other processes on the machine took %.2f CPUs on average during the pipeline phases and %.2f during the ceiling phases, and the machine was idle %.2f and %.2f CPUs on average.\n",
			perSec(p.otherCPU(), p.elapsed), perSec(c.otherCPU(), c.elapsed), perSec(p.machine.idle, p.elapsed), perSec(c.machine.idle, c.elapsed))
		w("- For scale, the issue's anchor: go-elasticsearch's `BulkIndexer` benchmark reports about %s documents/s for %.1f KB log events on a %d-core server, about %s per core. Here the ceiling is %s documents/s of %.1f KB on %d CPUs shared by everything, %s per CPU, and the indexer %s per CPU. The documents and machines differ, so this is an order of magnitude, not a comparison.\n",
			benchkit.Thousands(anchorDocsPerSec), anchorDocKB, anchorCores, benchkit.Thousands(anchorDocsPerSec/anchorCores),
			benchkit.Thousands(c.docsPerSec()), avg(float64(r.docBytes), r.docs)/1000, m.CPUs, benchkit.Thousands(c.docsPerSec()/cpus), benchkit.Thousands(p.docsPerSec()/cpus))
	} else {
		w("- Not measured: a phase did not run.\n")
	}
	if o.profile > 0 {
		w("- This run took a %d s CPU profile of the indexer during the pipeline phase (its pprof endpoint on), which costs the indexer a little CPU.\n", o.profile)
	}
	w("\n")
	return b.String()
}

func avg(total float64, n int) float64 {
	if n == 0 {
		return 0
	}
	return total / float64(n)
}

// sizeText writes a byte count as MiB or KiB when it is a whole number of
// them.
func sizeText(n int) string {
	switch {
	case n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + " MiB"
	case n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + " KiB"
	}
	return benchkit.Thousands(float64(n)) + " bytes"
}

func firstField(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

func loadOf(s string) float64 {
	v, _ := strconv.ParseFloat(firstField(s), 64)
	return v
}

// cell formats a figure, or says it does not apply.
func cell(v float64, ok bool, decimals int) string {
	if !ok {
		return "–"
	}
	if decimals == 0 {
		return benchkit.Thousands(v)
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

// ratio formats a/b with three decimals, or says it cannot be computed.
func ratio(a float64, aok bool, b float64, bok bool) string {
	if !aok || !bok || b == 0 {
		return "–"
	}
	return strconv.FormatFloat(a/b, 'f', 3, 64)
}
