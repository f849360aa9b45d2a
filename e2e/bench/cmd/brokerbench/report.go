package main

import (
	"context"
	"fmt"
	"log"
	"strconv"
	"strings"
	"time"

	"logpipe/e2e/bench/benchkit"
)

// sectionHeading is the level-2 heading this command owns in the
// benchmarks document.
const sectionHeading = "## brokerd vs Apache Kafka"

// report is one run of the benchmark, ready to render.
type report struct {
	opts     *options
	started  time.Time
	finished time.Time
	machine  benchkit.Machine
	brokerd  string // brokerd --version
	kafka    string // Apache Kafka version
	java     string // java -version
	runs     []*brokerRun

	// The three-node clusters, measured from clusterStarted to
	// clusterFinished.
	clusters        []*clusterRun
	clusterStarted  time.Time
	clusterFinished time.Time

	// memory says how the machine's memory was put in the same state
	// before each broker started (benchkit.SettleMemory), or why not.
	memory string
}

// settleMemory runs benchkit.SettleMemory before a broker starts and
// keeps the first failure, or else what was done, for the report.
func (r *report) settleMemory(ctx context.Context) {
	did, err := benchkit.SettleMemory(ctx)
	switch {
	case err != nil:
		log.Printf("memory not settled: %v", err)
		if !strings.HasPrefix(r.memory, "not settled") {
			r.memory = "not settled: " + err.Error()
		}
	case r.memory == "":
		log.Print(did)
		r.memory = did
	default:
		log.Print(did)
	}
}

// memoryLine is the report's line on the memory's state at each start.
func (r *report) memoryLine() string {
	if strings.HasPrefix(r.memory, "not settled") {
		return fmt.Sprintf("- Memory: the page cache could not be dropped before each start (%s), so a broker may have written into memory the one before had just freed, which is cheaper on this virtual machine; the produce figures carry that noise.\n", r.memory)
	}
	return "- Memory: before each broker starts, dirty pages are written back, the page cache is dropped, and the benchmark waits until the guest has returned the freed memory to the host (free page reporting). On this virtual machine the first write into such memory faults it in on the host, which makes page cache writes several times dearer than writes into memory freed moments before (1 GB written with dd: 0.23 s of kernel CPU into memory just freed, 2.65 s once it had been returned). Without this step the brokers' kernel CPU per MiB produced ranged from 0.6 to 5.7 ms from one run to the next; with it, from 3.6 to 6.6 ms, for either broker. Every broker now starts in the same, dear, state.\n"
}

// run returns the named broker's results, or nil if it was not run.
func (r *report) run(name string) *brokerRun {
	for _, b := range r.runs {
		if b.name == name {
			return b
		}
	}
	return nil
}

// namedLoads are the 1-minute load averages seen when a broker was
// started.
type namedLoads struct {
	name  string
	loads []string
}

// opening renders the start of a section: its heading, when it ran and
// how to reproduce it, then the machine, the versions and the load
// averages at each broker's start. kafkaLayout says how Kafka's nodes run,
// and kafkaTools whether Kafka's own load generators ran too.
func (r *report) opening(heading string, started, finished time.Time, kafkaLayout string, kafkaTools bool, loads []namedLoads) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("%s\n\n", heading)
	b.WriteString(benchkit.Opening("e2e/bench/cmd/brokerbench", started, finished, commandLine))
	m := r.machine
	w("### Machine and versions\n\n")
	w("- Machine: %d CPUs (%s), %s of memory, %s.\n", m.CPUs, m.CPUModel, m.MemTotal, m.Kernel)
	w("- brokerd: `%s`.\n", r.brokerd)
	w("- Apache Kafka %s from Maven Central, %s, on `%s`.\n", r.kafka, kafkaLayout, r.java)
	if kafkaTools {
		w("- Load generators: franz-go %s built with %s (`e2e/bench/loadgen`), and Kafka %s's own `org.apache.kafka.tools.ProducerPerformance` and `ConsumerPerformance` (Java client %s).\n", m.FranzGo, m.GoVer, r.kafka, r.kafka)
	} else {
		w("- Load generator: franz-go %s built with %s (`e2e/bench/loadgen`).\n", m.FranzGo, m.GoVer)
	}
	w("- 1-minute load average when each broker was started:")
	peak := 0.0
	for _, l := range loads {
		w(" %s %s;", displayName(l.name), strings.Join(l.loads, ", "))
		for _, s := range l.loads {
			if v, err := strconv.ParseFloat(s, 64); err == nil {
				peak = max(peak, v)
			}
		}
	}
	w(" other work on the machine at the same time shows up there and in the figures.")
	if peak > float64(m.CPUs) {
		w(" **It reached %.1f on %d CPUs during this run**: other processes were competing for the CPUs, so the figures (the p99 latencies most of all) carry that noise, and differences of a few tens of per cent between the brokers may not repeat.", peak, m.CPUs)
	}
	w("\n\n")
	return b.String()
}

// metric is one row of the results table, read from a caseResult.
type metric struct {
	label    string
	decimals int
	value    func(*caseResult) (float64, bool)
	// goal says how the row counts against the goals: "throughput"
	// (brokerd at least as high), "p99" (brokerd lower), or "".
	goal string
}

var metrics = []metric{
	{"produce, franz-go (records/s)", 0, func(c *caseResult) (float64, bool) {
		return figure(c.produce != nil, func() float64 { return c.produce.RecordsPerSec() })
	}, "throughput"},
	{"produce, franz-go (MiB/s)", 1, func(c *caseResult) (float64, bool) {
		return figure(c.produce != nil, func() float64 { return c.produce.MiBPerSec() })
	}, ""},
	{"produce, ProducerPerformance (records/s)", 0, func(c *caseResult) (float64, bool) {
		return figure(c.perfProduce != nil, func() float64 { return c.perfProduce.recordsPerSec })
	}, "throughput"},
	{"produce, ProducerPerformance (MiB/s)", 1, func(c *caseResult) (float64, bool) {
		return figure(c.perfProduce != nil, func() float64 { return c.perfProduce.mibPerSec })
	}, ""},
	{"consume, franz-go (records/s)", 0, func(c *caseResult) (float64, bool) {
		return figure(c.consume != nil, func() float64 { return c.consume.RecordsPerSec() })
	}, "throughput"},
	{"consume, franz-go (MiB/s)", 1, func(c *caseResult) (float64, bool) {
		return figure(c.consume != nil, func() float64 { return c.consume.MiBPerSec() })
	}, ""},
	{"consume, ConsumerPerformance (records/s)", 0, func(c *caseResult) (float64, bool) {
		return figure(c.perfConsume != nil, func() float64 { return c.perfConsume.recordsPerSec })
	}, "throughput"},
	{"consume, ConsumerPerformance (MiB/s)", 1, func(c *caseResult) (float64, bool) {
		return figure(c.perfConsume != nil, func() float64 { return c.perfConsume.mibPerSec })
	}, ""},
	{"latency p50 at fixed rate (ms)", 2, func(c *caseResult) (float64, bool) {
		return figure(c.latency != nil, func() float64 { return toMs(c.latency.Latencies.Percentile(50)) })
	}, ""},
	{"latency p99 at fixed rate (ms)", 2, func(c *caseResult) (float64, bool) {
		return figure(c.latency != nil, func() float64 { return toMs(c.latency.Latencies.Percentile(99)) })
	}, "p99"},
	{"latency run: rate reached (records/s)", 0, func(c *caseResult) (float64, bool) {
		return figure(c.latency != nil, func() float64 { return c.latency.RecordsPerSec() })
	}, ""},
}

func figure(ok bool, f func() float64) (float64, bool) {
	if !ok {
		return 0, false
	}
	return f(), true
}

func toMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// markdown renders the report as the document section, heading included.
func (r *report) markdown() string {
	o := r.opts
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	bd, kf := r.run("brokerd"), r.run("kafka")

	var loads []namedLoads
	for _, br := range r.runs {
		loads = append(loads, namedLoads{br.name, br.loads})
	}
	b.WriteString(r.opening(sectionHeading, r.started, r.finished, "one node in KRaft combined mode (broker and controller in one JVM)", true, loads))
	m := r.machine

	w("### What runs\n\n")
	w("The brokers never run together. For each configuration, each broker is started on a fresh data folder, measured and stopped, and its folder removed, before the other one starts; which broker goes first alternates from one configuration to the next. Everything runs on 127.0.0.1, and the load generators share the same %d CPUs with the broker, with the same settings for both brokers.\n\n", m.CPUs)
	b.WriteString(r.memoryLine())
	w("- Durability: neither broker forces writes to disk. Kafka keeps its default flush policy (`log.flush.interval.messages` and `log.flush.interval.ms` unset: never), brokerd its default `log.flush.interval.messages: 0`, `log.flush.interval.ms: 0` (never); both leave writing back to the kernel's page cache. Topics have one replica and `min.insync.replicas` is 1, so `acks=all` is answered once the leader has the batch, as `acks=1` is; what differs is that the clients use the idempotent producer with `acks=all` and not with `acks=1`.\n")
	w("- Apache Kafka: JVM heap `-Xms%dm -Xmx%dm` (what `kafka-server-start.sh` gives by default is 1 GiB), G1 collector; `num.network.threads=3`, `num.io.threads=8`, `offsets.topic.num.partitions=50` (the shipped defaults); `group.initial.rebalance.delay.ms=0`.\n", o.kafkaHeapMB, o.kafkaHeapMB)
	w("- brokerd: the defaults of `configs/brokerd.yml` except the listener, `log.dirs` and `group.initial.rebalance.delay.ms=0`.\n")
	w("- Each start is followed by ")
	if o.warmup > 0 {
		w("%s of full-speed franz-go produce to a 6-partition scratch topic (a warm-up, not measured), then ", o.warmup)
	}
	w("these steps, each after a sync(2) so that it does not pay for the writeback of what the step before it wrote, on new topics with the configuration's partitions and records of %d bytes (value only, no key, no compression):\n", o.recordSize)
	limit := ""
	if o.produceRecords > 0 {
		limit = fmt.Sprintf(", or until %s records (%.1f GiB) were handed to the client if that comes first (`-produce-records`), so that the consume step reads as many records from each broker when both reach it, and a topic smaller than the machine's memory", benchkit.Thousands(float64(o.produceRecords)), float64(o.produceRecords)*float64(o.recordSize)/(1<<30))
	}
	w("  1. **produce, franz-go**: %s at full speed with franz-go's defaults (linger 10 ms, batches up to 1 MB, sticky partitioner, one produce request in flight per broker)%s; throughput counts acknowledged records from the first send to the last acknowledgement.\n", o.duration, limit)
	w("  2. **consume, franz-go**: that topic read back from its start to its end offsets, without a consumer group, with franz-go's default fetch sizes (50 MiB per request, 1 MiB per partition); from the first fetch to the last record.\n")
	w("  3. **produce, ProducerPerformance**: `--num-records %d --record-size %d --throughput -1 --producer-props acks=<1|all> bootstrap.servers=…`, otherwise the Java producer's defaults (linger.ms 0, batch.size 16384, 5 requests in flight); its summary line.\n", o.perfRecords, o.recordSize)
	w("  4. **consume, ConsumerPerformance**: the first nine tenths of those records read back by a new consumer group with the Java consumer's defaults, %d times (a new group each time): the producer fills the partitions unevenly, and once one partition alone has records left, the Java consumer leaves it out of its next fetch, which waits the whole `fetch.max.wait.ms` (500 ms) on the exhausted partitions, so the last few MiB of a run cost one to three such waits, as the partitions happened to be filled; the figure is the median run's `fetch.nMsg.sec` / `fetch.MB.sec`, which leave out joining the group (one run's fetch phase lasts a few seconds, in which the JVM is still compiling, and two runs one after the other against the same Kafka node read 225,000 and 360,000 records/s). Kafka's tools run with `-Xmx512m` and their heap touched before they start (`-Xms512m -XX:+AlwaysPreTouch`), so that the first touch of new memory, slow on this virtual machine and with a cost that varies with the machine's memory state, does not fall in what they time.\n", perfConsumeRuns)
	w("  5. **latency**: franz-go at a fixed %s records/s for %s with linger 0; each record is timed from the call that hands it to the client to its acknowledgement, and p50/p99 are over every record of the run but those sent in its first %s (which Apache Kafka held for about 300 ms at a new topic's first produce: a start-up cost, not the steady latency measured here). The rate reached is shown, so a generator that fell behind is visible.\n", benchkit.Thousands(float64(o.rate)), o.duration, latencyWarmup)
	w("- Memory: the broker process's peak resident set (for Kafka the JVM's), the larger of the kernel's high-water mark `VmHWM` and `VmRSS` sampled every 250 ms from `/proc/<pid>/status`, the largest over all of the broker's starts. CPU and wall time add up the broker's starts, from ready to stop; CPU time is the process's user + system time from `/proc/<pid>/stat`.\n")
	w("- MiB are 2^20 bytes (ProducerPerformance and ConsumerPerformance print them as \"MB\").\n\n")

	w("### Results\n\n")
	w("Ratios are brokerd / Kafka: above 1 means brokerd is faster for throughput; below 1 means brokerd is faster for latency.\n\n")
	w("| Partitions | acks | Measure | brokerd | Kafka | brokerd / Kafka |\n")
	w("|---:|---|---|---:|---:|---:|\n")
	for _, k := range o.cases() {
		for _, mt := range metrics {
			bv, bok := caseValue(bd, k, mt)
			kv, kok := caseValue(kf, k, mt)
			w("| %d | %s | %s | %s | %s | %s |\n", k.partitions, k.acks, mt.label,
				benchkit.Cell(bv, bok, mt.decimals), benchkit.Cell(kv, kok, mt.decimals), benchkit.Ratio(bv, bok, kv, kok))
		}
	}
	w("\n")

	w("### Memory and CPU\n\n")
	w("| Measure | brokerd | Kafka | brokerd / Kafka |\n")
	w("|---|---:|---:|---:|\n")
	row := func(label string, decimals int, f func(*brokerRun) float64) {
		bv, bok := runValue(bd, f)
		kv, kok := runValue(kf, f)
		w("| %s | %s | %s | %s |\n", label, benchkit.Cell(bv, bok, decimals), benchkit.Cell(kv, kok, decimals), benchkit.Ratio(bv, bok, kv, kok))
	}
	row("RSS right after start, largest (MiB)", 0, func(br *brokerRun) float64 { return float64(br.idleRSSKB) / 1024 })
	row("peak RSS (MiB)", 0, func(br *brokerRun) float64 { return float64(br.peakRSSKB) / 1024 })
	row("CPU time used by the broker (s)", 0, func(br *brokerRun) float64 { return br.cpuSeconds })
	row("wall time, ready to stop (s)", 0, func(br *brokerRun) float64 { return br.elapsed.Seconds() })
	w("\n")

	if bd != nil && kf != nil {
		w("### Against the goals\n\n")
		w("The issue's goals on this machine: brokerd at least matches Kafka's throughput, beats its p99 latency, and uses a quarter of its memory or less.\n\n")
		var tpMet, tpAll, latMet, latAll int
		var tpMiss, latMiss []string
		for _, k := range o.cases() {
			for _, mt := range metrics {
				bv, bok := caseValue(bd, k, mt)
				kv, kok := caseValue(kf, k, mt)
				if !bok || !kok || mt.goal == "" {
					continue
				}
				where := fmt.Sprintf("%d partition(s), acks=%s, %s: %.3f", k.partitions, k.acks, mt.label, bv/kv)
				switch mt.goal {
				case "throughput":
					tpAll++
					if bv >= kv {
						tpMet++
					} else {
						tpMiss = append(tpMiss, where)
					}
				case "p99":
					latAll++
					if bv < kv {
						latMet++
					} else {
						latMiss = append(latMiss, where)
					}
				}
			}
		}
		w("- Throughput (records/s, brokerd ≥ Kafka): met in %d of %d figures.", tpMet, tpAll)
		if len(tpMiss) > 0 {
			w(" Below Kafka: %s.", strings.Join(tpMiss, "; "))
		}
		w("\n- p99 latency at %s records/s (brokerd < Kafka): met in %d of %d configurations.", benchkit.Thousands(float64(o.rate)), latMet, latAll)
		if len(latMiss) > 0 {
			w(" Not below Kafka: %s.", strings.Join(latMiss, "; "))
		}
		w("\n")
		if bd.peakRSSKB > 0 && kf.peakRSSKB > 0 {
			share := float64(bd.peakRSSKB) / float64(kf.peakRSSKB)
			verdict := "met"
			if share > 0.25 {
				verdict = "not met"
			}
			w("- Peak memory (brokerd ≤ ¼ of Kafka): %s, brokerd's peak RSS is %.0f%% of Kafka's.\n", verdict, 100*share)
		}
		w("\n")
	}

	var failures []string
	for _, br := range r.runs {
		for _, k := range o.cases() {
			if c := br.cases[k]; c != nil {
				for _, e := range c.errs {
					failures = append(failures, fmt.Sprintf("%s, %d partition(s), acks=%s, %s", displayName(br.name), k.partitions, k.acks, firstLine(e)))
				}
			}
		}
	}
	b.WriteString(benchkit.ListSection("Failed steps", failures))
	return b.String()
}

func caseValue(br *brokerRun, k caseKey, mt metric) (float64, bool) {
	if br == nil || br.cases[k] == nil {
		return 0, false
	}
	return mt.value(br.cases[k])
}

func runValue(br *brokerRun, f func(*brokerRun) float64) (float64, bool) {
	if br == nil {
		return 0, false
	}
	return f(br), true
}

func displayName(name string) string {
	if name == "kafka" {
		return "Kafka"
	}
	return name
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
