package main

import (
	"fmt"
	"slices"
	"strings"

	"logpipe/e2e/bench/benchkit"
	"logpipe/e2e/bench/loadgen"
)

// tlsHeading is the level-2 heading of the TLS comparison in the
// benchmarks document.
const tlsHeading = "## brokerd vs Apache Kafka: the cost of SASL_SSL"

// tlsMetric is one row of the TLS comparison, read from one listener's
// figures.
type tlsMetric struct {
	label    string
	decimals int
	value    func(*caseResult, *stepCPU) (float64, bool)
	// higherBetter says which way the figure improves; goal says whether
	// the row counts against the goal.
	higherBetter bool
	goal         bool
}

var tlsMetrics = []tlsMetric{
	{"produce (records/s)", 0, func(c *caseResult, _ *stepCPU) (float64, bool) {
		return figure(c.produce != nil, func() float64 { return c.produce.RecordsPerSec() })
	}, true, true},
	{"produce (MiB/s)", 1, func(c *caseResult, _ *stepCPU) (float64, bool) {
		return figure(c.produce != nil, func() float64 { return c.produce.MiBPerSec() })
	}, true, false},
	{"consume (records/s)", 0, func(c *caseResult, _ *stepCPU) (float64, bool) {
		return figure(c.consume != nil, func() float64 { return c.consume.RecordsPerSec() })
	}, true, true},
	{"consume (MiB/s)", 1, func(c *caseResult, _ *stepCPU) (float64, bool) {
		return figure(c.consume != nil, func() float64 { return c.consume.MiBPerSec() })
	}, true, false},
	{"produce p50 at fixed rate (ms)", 2, func(c *caseResult, _ *stepCPU) (float64, bool) {
		return figure(c.latency != nil, func() float64 { return toMs(c.latency.Latencies.Percentile(50)) })
	}, false, false},
	{"produce p99 at fixed rate (ms)", 2, func(c *caseResult, _ *stepCPU) (float64, bool) {
		return figure(c.latency != nil, func() float64 { return toMs(c.latency.Latencies.Percentile(99)) })
	}, false, true},
	{"produce round trip p50, one record at a time (ms)", 3, func(c *caseResult, _ *stepCPU) (float64, bool) {
		return figure(c.roundTrip != nil, func() float64 { return toMs(c.roundTrip.Latencies.Percentile(50)) })
	}, false, false},
	{"produce round trip p99, one record at a time (ms)", 3, func(c *caseResult, _ *stepCPU) (float64, bool) {
		return figure(c.roundTrip != nil, func() float64 { return toMs(c.roundTrip.Latencies.Percentile(99)) })
	}, false, false},
	{"latency run: rate reached (records/s)", 0, func(c *caseResult, _ *stepCPU) (float64, bool) {
		return figure(c.latency != nil, func() float64 { return c.latency.RecordsPerSec() })
	}, true, false},
	{"broker CPU per MiB produced (ms)", 2, func(c *caseResult, u *stepCPU) (float64, bool) {
		return figure(c.produce != nil && u.produceOK && c.produce.Bytes > 0, func() float64 {
			return 1000 * u.produce / (float64(c.produce.Bytes) / loadgen.MiB)
		})
	}, false, false},
	{"broker CPU per 1,000 records at fixed rate (ms)", 1, func(c *caseResult, u *stepCPU) (float64, bool) {
		return figure(c.latency != nil && u.latencyOK && c.latency.Records > 0, func() float64 {
			return 1e6 * u.latency / float64(c.latency.Records)
		})
	}, false, false},
	{"broker CPU per MiB consumed (ms)", 2, func(c *caseResult, u *stepCPU) (float64, bool) {
		return figure(c.consume != nil && u.consumeOK && c.consume.Bytes > 0, func() float64 {
			return 1000 * u.consume / (float64(c.consume.Bytes) / loadgen.MiB)
		})
	}, false, false},
}

// value returns metric mt over listener on r; r may be nil.
func (r *tlsRun) value(listener string, mt tlsMetric) (float64, bool) {
	if r == nil || r.results[listener] == nil {
		return 0, false
	}
	cpu := r.cpu[listener]
	if cpu == nil {
		cpu = &stepCPU{}
	}
	return mt.value(r.results[listener], cpu)
}

// cost returns mt's SASL_SSL figure over its PLAINTEXT figure on r.
func (r *tlsRun) cost(mt tlsMetric) (float64, bool) {
	s, sok := r.value(saslSSLListener, mt)
	p, pok := r.value(plaintextListener, mt)
	if !sok || !pok || p == 0 {
		return 0, false
	}
	return s / p, true
}

// run returns the named broker's results, or nil if it was not run.
func (t *tlsReport) run(name string) *tlsRun {
	for _, r := range t.runs {
		if r.name == name {
			return r
		}
	}
	return nil
}

// tlsGoals checks the goal, that SASL_SSL costs brokerd no more than it
// costs Kafka in relative terms, on each goal row: for throughput
// brokerd's SASL_SSL / PLAINTEXT ratio must be at least Kafka's, for p99
// at most Kafka's. It returns one line per row and how many rows met it
// out of how many could be compared.
func tlsGoals(bd, kf *tlsRun) (lines []string, met, compared int) {
	for _, mt := range tlsMetrics {
		if !mt.goal {
			continue
		}
		bc, bok := bd.cost(mt)
		kc, kok := kf.cost(mt)
		if !bok || !kok {
			lines = append(lines, fmt.Sprintf("%s: not compared, a figure is missing.", mt.label))
			continue
		}
		compared++
		ok := bc <= kc
		if mt.higherBetter {
			ok = bc >= kc
		}
		verdict := "not met"
		if ok {
			verdict = "met"
			met++
		}
		lines = append(lines, fmt.Sprintf("%s: SASL_SSL / PLAINTEXT is %.2f on brokerd and %.2f on Kafka: %s.", mt.label, bc, kc, verdict))
	}
	return lines, met, compared
}

// markdown renders the TLS comparison as its document section.
func (t *tlsReport) markdown() string {
	o := t.rep.opts
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	var loads []namedLoads
	for _, r := range t.runs {
		loads = append(loads, namedLoads{r.name, []string{r.load}})
	}
	b.WriteString(t.rep.opening(tlsHeading, t.started, t.finished, "one node in KRaft combined mode", false, loads))

	w("### What runs\n\n")
	w("Each broker is started once, alone, on a fresh data folder, with two client listeners: PLAINTEXT, and SASL_SSL with SCRAM-SHA-512 and a server certificate (ECDSA P-256) from a CA made for the run, which the load generator trusts. The account is created through the PLAINTEXT listener with AlterUserScramCredentials (%d iterations) on both brokers, and the benchmark waits until SASL_SSL admits it.", tlsIterations)
	for _, r := range t.runs {
		if r.negotiated != "" {
			w(" %s negotiated %s.", displayName(r.name), r.negotiated)
		}
	}
	w("\n\n")
	w("- brokerd: the defaults of `configs/brokerd.yml` except `listeners` (PLAINTEXT and SASL_SSL), `ssl.keystore.location` (one PEM file, certificate and key), `sasl.enabled.mechanisms: SCRAM-SHA-512`, `log.dirs` and `group.initial.rebalance.delay.ms=0`. Under TLS brokerd copies fetched records through the encrypted connection instead of sendfile(2).\n")
	w("- Apache Kafka: JVM heap `-Xms%dm -Xmx%dm`, the same server settings as in \"brokerd vs Apache Kafka\", plus a `SASL_SSL` listener with `ssl.keystore.type=PEM`, the certificate and key inline (`ssl.keystore.certificate.chain`, `ssl.keystore.key`), `ssl.enabled.protocols=TLSv1.2,TLSv1.3` and the SCRAM login module for SCRAM-SHA-512 and -256.\n", o.kafkaHeapMB, o.kafkaHeapMB)
	if o.warmup > 0 {
		w("- After the start, a rehearsal: one block (the two steps below) over PLAINTEXT and one over SASL_SSL, and one round of the latency phase, run exactly like the measured ones and thrown away, so that nothing measured pays for a cold broker (a JVM still compiling its hot paths).\n")
	}
	b.WriteString(t.rep.memoryLine())
	if !strings.HasPrefix(t.rep.memory, "not settled") {
		w("- The same is done before every block and before the latency phase, the rehearsal's included: once earlier blocks have filled the page cache, writes reuse memory the host already backs, and a late block's produce ran up to twice as fast as an early one's over the same listener.\n")
	}
	w("- Then four blocks, over PLAINTEXT, SASL_SSL, SASL_SSL and PLAINTEXT in that order (so that a drift in the machine's load weighs on both listeners alike), each on a new %d-partition topic created through the PLAINTEXT listener and deleted after the block, records of %d bytes, acks=all with the idempotent producer. Each step starts after a sync(2), so that it does not pay for the writeback of what the step before it wrote. A listener's figures add up its two blocks (records, bytes, time and CPU summed):\n", tlsPartitions, o.recordSize)
	w("  1. **produce**: franz-go at full speed for %s with its defaults (linger 10 ms, batches up to 1 MB); acknowledged records from the first send to the last acknowledgement.\n", o.duration/2)
	w("  2. **consume**: that topic read back from start to end without a group, franz-go's default fetch sizes.\n")
	w("- Then the **latency** phase: %d rounds, each a turn over PLAINTEXT and a turn over SASL_SSL, the order swapped from one round to the next; each turn a new franz-go client producing %s records/s with linger 0 (the same records and acks) for %s to the listener's own %d-partition topic, after a %s warm-up whose records are not timed (Apache Kafka held a new topic's first produce for about 300 ms, and a new client's first records wait for its producer id). Latency is from the hand-over to the client to the acknowledgement; a listener's p50/p99 pool its %d turns. The listeners take turns seconds apart, so that the machine's drift, which moved a listener's p99 by up to a factor of two between blocks minutes apart, weighs on both alike.\n", tlsLatencyRounds, benchkit.Thousands(float64(o.rate)), o.duration/tlsLatencyRounds, tlsPartitions, latencyWarmup, tlsLatencyRounds)
	w("- After each turn of the latency phase, a **round trip** turn on the same listener and topic: a new client producing one record at a time, each sent once the one before is acknowledged, for %s after the same warm-up. Its latency is one produce request's round trip with nothing queued before it, where the fixed-rate turn's also holds the wait behind requests already in flight. Not counted against the goal.\n", o.duration/tlsLatencyRounds/2)
	w("- Broker CPU is the process's user + system time (`/proc/<pid>/stat`) over the produce and consume steps, per MiB of record values, and over the fixed-rate turns (warm-up included), per 1,000 records acknowledged in them; the load generator runs on the same CPUs and its TLS work is not in it.\n\n")

	w("### Results\n\n")
	w("The cost columns are SASL_SSL / PLAINTEXT on the same broker: below 1 for throughput and above 1 for latency and CPU mean SASL_SSL is dearer.\n\n")
	w("| Measure | brokerd PLAINTEXT | brokerd SASL_SSL | brokerd cost | Kafka PLAINTEXT | Kafka SASL_SSL | Kafka cost |\n")
	w("|---|---:|---:|---:|---:|---:|---:|\n")
	bd, kf := t.run("brokerd"), t.run("kafka")
	for _, mt := range tlsMetrics {
		w("| %s", mt.label)
		for _, r := range []*tlsRun{bd, kf} {
			pv, pok := r.value(plaintextListener, mt)
			sv, sok := r.value(saslSSLListener, mt)
			w(" | %s | %s | %s", benchkit.Cell(pv, pok, mt.decimals), benchkit.Cell(sv, sok, mt.decimals), benchkit.Ratio(sv, sok, pv, pok))
		}
		w(" |\n")
	}
	w("\n")
	writeTLSBlocks(w, t.runs)
	writeLatencyRounds(w, t.runs)

	if bd != nil && kf != nil {
		w("### Against the goal\n\n")
		w("The issue's goal: TLS costs brokerd no more than it costs Kafka, in relative terms (brokerd's SASL_SSL / PLAINTEXT ratio at least Kafka's for throughput, at most Kafka's for p99).\n\n")
		lines, met, compared := tlsGoals(bd, kf)
		for _, l := range lines {
			w("- %s\n", l)
		}
		w("\nMet in %d of %d compared figures.\n\n", met, compared)
	}

	var failures []string
	for _, r := range t.runs {
		for _, l := range tlsListeners {
			if c := r.results[l]; c != nil {
				for _, e := range c.errs {
					failures = append(failures, fmt.Sprintf("%s, %s, %s", displayName(r.name), l, firstLine(e)))
				}
			}
		}
	}
	b.WriteString(benchkit.ListSection("Failed steps", failures))
	return b.String()
}

// blockMetrics are the rows of tlsMetrics shown for each block.
var blockMetrics = []string{"produce (records/s)", "consume (records/s)"}

// writeTLSBlocks lists each measured block on its own, in the order it
// ran, so that a figure that moved with a block's place in the run (rather
// than with its listener) shows.
func writeTLSBlocks(w func(string, ...any), runs []*tlsRun) {
	w("Each block on its own, in the order run:\n\n")
	w("| Broker | Block | Listener | produce (records/s) | consume (records/s) |\n")
	w("|---|---:|---|---:|---:|\n")
	for _, r := range runs {
		for i, bl := range r.blocks {
			w("| %s | %d | %s", displayName(r.name), i+1, bl.listener)
			for _, mt := range tlsMetrics {
				if slices.Contains(blockMetrics, mt.label) {
					v, ok := mt.value(bl.result, &stepCPU{})
					w(" | %s", benchkit.Cell(v, ok, mt.decimals))
				}
			}
			w(" |\n")
		}
	}
	w("\n")
}

// writeLatencyRounds lists the p99 of each turn of the latency phase, and
// per broker the median of the rounds' SASL_SSL / PLAINTEXT ratios: how
// the pooled figure came about, round by round.
func writeLatencyRounds(w func(string, ...any), runs []*tlsRun) {
	w("The latency phase round by round (p99 of each turn, ms):\n\n")
	w("| Broker | Round | first | PLAINTEXT p99 | SASL_SSL p99 | SASL_SSL / PLAINTEXT |\n")
	w("|---|---:|---|---:|---:|---:|\n")
	var summary []string
	for _, r := range runs {
		var ratios []float64
		for i, rd := range r.rounds {
			p99 := func(l string) (float64, bool) {
				lr := rd.results[l]
				return figure(lr != nil && len(lr.Latencies) > 0, func() float64 { return toMs(lr.Latencies.Percentile(99)) })
			}
			pv, pok := p99(plaintextListener)
			sv, sok := p99(saslSSLListener)
			if pok && sok && pv > 0 {
				ratios = append(ratios, sv/pv)
			}
			w("| %s | %d | %s | %s | %s | %s |\n", displayName(r.name), i+1, rd.order[0], benchkit.Cell(pv, pok, 2), benchkit.Cell(sv, sok, 2), benchkit.Ratio(sv, sok, pv, pok))
		}
		if len(ratios) > 0 {
			slices.Sort(ratios)
			above := 0
			for _, x := range ratios {
				if x > 1 {
					above++
				}
			}
			summary = append(summary, fmt.Sprintf("%s: median ratio %.2f over %d rounds, SASL_SSL's p99 the higher in %d", displayName(r.name), median(ratios), len(ratios), above))
		}
	}
	w("\n")
	if len(summary) > 0 {
		w("%s.\n\n", strings.Join(summary, "; "))
	}
}

// median returns the middle of sorted values, or the mean of the two
// middle ones.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}
