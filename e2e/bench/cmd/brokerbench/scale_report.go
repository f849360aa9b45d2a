package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"logpipe/e2e/bench/benchkit"
)

// The level-2 headings the scale and Logstash parts own in the document.
const (
	scaleHeading    = "## brokerd vs Apache Kafka at scale"
	logstashHeading = "## Logstash-style Java consumer, brokerd vs Apache Kafka"
)

// scaleReport is one run of the scale part, ready to render.
type scaleReport struct {
	base              *report
	started, finished time.Time
	runs              []*scaleRun
}

// partRuns sorts out a part's runs for its report: brokerd's and Kafka's
// (nil if one did not run), the load average at each broker's start and
// the failed steps; id reads a run's broker name, load and failures.
func partRuns[R any](runs []*R, id func(*R) (name, load string, errs []string)) (bd, kf *R, loads []namedLoads, failures []string) {
	for _, r := range runs {
		name, load, errs := id(r)
		switch name {
		case "brokerd":
			bd = r
		case "kafka":
			kf = r
		}
		loads = append(loads, namedLoads{name, []string{load}})
		for _, e := range errs {
			failures = append(failures, fmt.Sprintf("%s, %s", displayName(name), firstLine(e)))
		}
	}
	return bd, kf, loads, failures
}

// partMean returns the average of vs and whether there are any.
func partMean(vs []int64) (float64, bool) {
	if len(vs) == 0 {
		return 0, false
	}
	var sum float64
	for _, v := range vs {
		sum += float64(v)
	}
	return sum / float64(len(vs)), true
}

// partPeak returns the largest of vs and whether there are any.
func partPeak(vs []int64) (float64, bool) {
	if len(vs) == 0 {
		return 0, false
	}
	return float64(slices.Max(vs)), true
}

// partRow is one row of a brokerd-against-Kafka table, read from a run
// of type R.
type partRow[R any] struct {
	label    string
	decimals int
	value    func(*R) (float64, bool)
}

// writePartTable writes rows for brokerd's run bd and Kafka's kf, either of
// which may be nil, with their ratio.
func writePartTable[R any](b *strings.Builder, rows []partRow[R], bd, kf *R) {
	b.WriteString("| Measure | brokerd | Kafka | brokerd / Kafka |\n|---|---:|---:|---:|\n")
	for _, row := range rows {
		var bv, kv float64
		var bok, kok bool
		if bd != nil {
			bv, bok = row.value(bd)
		}
		if kf != nil {
			kv, kok = row.value(kf)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", row.label, benchkit.Cell(bv, bok, row.decimals), benchkit.Cell(kv, kok, row.decimals), benchkit.Ratio(bv, bok, kv, kok))
	}
	b.WriteString("\n")
}

var scaleRows = []partRow[scaleRun]{
	{"records produced in the window", 0, func(r *scaleRun) (float64, bool) { return float64(r.produced), true }},
	{"produce rate reached (records/s)", 0, func(r *scaleRun) (float64, bool) {
		return float64(r.produced) / r.window.Seconds(), r.window > 0
	}},
	{"records the producers gave up on", 0, func(r *scaleRun) (float64, bool) { return float64(r.failed), true }},
	{"produce latency p50 (ms)", 2, func(r *scaleRun) (float64, bool) {
		return toMs(r.latencies.Percentile(50)), len(r.latencies) > 0
	}},
	{"produce latency p99 (ms)", 2, func(r *scaleRun) (float64, bool) {
		return toMs(r.latencies.Percentile(99)), len(r.latencies) > 0
	}},
	{"records read by the franz-go groups in the window", 0, func(r *scaleRun) (float64, bool) { return float64(r.consumed), true }},
	{"record age at consume p50 (ms)", 2, func(r *scaleRun) (float64, bool) { return toMs(r.ages.Percentile(50)), len(r.ages) > 0 }},
	{"record age at consume p99 (ms)", 2, func(r *scaleRun) (float64, bool) { return toMs(r.ages.Percentile(99)), len(r.ages) > 0 }},
	{"record age at consume, max (ms)", 2, func(r *scaleRun) (float64, bool) {
		return toMs(r.ages.Percentile(100)), len(r.ages) > 0
	}},
	{"uncommitted records, 100 franz-go groups, mean", 0, func(r *scaleRun) (float64, bool) { return partMean(r.lags) }},
	{"uncommitted records, 100 franz-go groups, max", 0, func(r *scaleRun) (float64, bool) { return partPeak(r.lags) }},
	{"uncommitted records, Java group, mean", 0, func(r *scaleRun) (float64, bool) { return partMean(r.javaLags) }},
	{"uncommitted records, Java group, max", 0, func(r *scaleRun) (float64, bool) { return partPeak(r.javaLags) }},
	{"broker CPU time in the window (s)", 1, func(r *scaleRun) (float64, bool) { return r.cpuSeconds, r.cpuSeconds > 0 }},
	{"broker RSS, mean (MiB)", 0, func(r *scaleRun) (float64, bool) { v, ok := partMean(r.rssKB); return v / 1024, ok }},
	{"broker RSS, peak (MiB)", 0, func(r *scaleRun) (float64, bool) { v, ok := partPeak(r.rssKB); return v / 1024, ok }},
	{"broker open file descriptors, mean", 0, func(r *scaleRun) (float64, bool) { return partMean(r.fds) }},
	{"broker open file descriptors, peak", 0, func(r *scaleRun) (float64, bool) { return partPeak(r.fds) }},
}

// partVerdict words a goal's outcome.
func partVerdict(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

// scaleGoals judges the scale goals, one line each.
func scaleGoals(bd, kf *scaleRun) []string {
	var lines []string
	for _, r := range []*scaleRun{bd, kf} {
		if r.failed > 0 || r.javaErr != nil || len(r.errs) > 0 {
			lines = append(lines, fmt.Sprintf("%s's run had failures (see below); its figures are not a clean comparison.", displayName(r.name)))
		}
	}
	if len(bd.latencies) > 0 && len(kf.latencies) > 0 {
		bv, kv := toMs(bd.latencies.Percentile(99)), toMs(kf.latencies.Percentile(99))
		lines = append(lines, fmt.Sprintf("Produce p99 (brokerd < Kafka): %s, %.2f against %.2f ms (%s).", partVerdict(bv < kv), bv, kv, benchkit.Ratio(bv, true, kv, true)))
	} else {
		lines = append(lines, "Produce p99 (brokerd < Kafka): not measured, nothing was acknowledged on one of them.")
	}
	if bd.cpuSeconds > 0 && kf.cpuSeconds > 0 {
		lines = append(lines, fmt.Sprintf("CPU (brokerd ≤ Kafka): %s, %.1f against %.1f s (%s).", partVerdict(bd.cpuSeconds <= kf.cpuSeconds), bd.cpuSeconds, kf.cpuSeconds, benchkit.Ratio(bd.cpuSeconds, true, kf.cpuSeconds, true)))
	} else {
		lines = append(lines, "CPU (brokerd ≤ Kafka): not measured.")
	}
	bp, bok := partPeak(bd.rssKB)
	kp, kok := partPeak(kf.rssKB)
	if bok && kok && kp > 0 {
		lines = append(lines, fmt.Sprintf("Peak RSS (brokerd ≤ ¼ of Kafka): %s, %.0f against %.0f MiB, %.0f%%.", partVerdict(4*bp <= kp), bp/1024, kp/1024, 100*bp/kp))
	} else {
		lines = append(lines, "Peak RSS (brokerd ≤ ¼ of Kafka): not measured.")
	}
	return lines
}

// markdown renders the scale part as its document section.
func (s *scaleReport) markdown() string {
	o := s.base.opts
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	bd, kf, loads, failures := partRuns(s.runs, func(r *scaleRun) (string, string, []string) { return r.name, r.load, r.errs })
	b.WriteString(s.base.opening(scaleHeading, s.started, s.finished, "one node in KRaft combined mode", false, loads))

	w("### What runs\n\n")
	w("One node of each broker, started on a fresh folder, measured and stopped before the other one starts; the load generators share the machine's %d CPUs with it, and by themselves (%d producers, %d group members, %d JVM consumers) keep the load average well above the CPU count, so the one-minute load average at a broker's start also carries the previous run's.\n\n", s.base.machine.CPUs, scaleProducers, scaleGroups*scaleMembers, scaleJavaConsumers)
	w("- %d topics of %d partitions (%s partitions), one replica.\n", scaleTopics, scalePartitions, benchkit.Thousands(scaleTopics*scalePartitions))
	w("- %d franz-go producers, one per topic, together %s records/s of %d bytes (value only, acks=1, linger 0, round-robin over the topic's partitions). Each record is timed from the call that hands it to the client to its acknowledgement; p50/p99 are over every record of the measured window.\n",
		scaleProducers, benchkit.Thousands(float64(o.scaleRate/scaleProducers*scaleProducers)), o.scaleRecordSize)
	w("- %d franz-go consumer groups of %d members each (cooperative-sticky, auto-commit every 5 s, from the start of the topic); group *g* reads topic *g* mod %d, so every topic has %d groups. **Record age at consume** is the time from a record's hand-over to the producer (its timestamp) to the poll that returns it to a member, for every record read in the window; both ends run on this machine's clock.\n",
		scaleGroups, scaleMembers, scaleTopics, scaleGroups/scaleTopics)
	w("- %d Java consumers (Kafka's `ConsoleConsumer`, output discarded) in group `%s` reading the first topic with the Java consumer's defaults (auto-commit every 5 s, `auto.offset.reset=earliest`).\n", scaleJavaConsumers, scaleJavaGroup)
	w("- **Uncommitted records**: every %s, the log end offsets minus the groups' committed offsets, summed over the partitions (kadm's `Lag`); auto-commit every 5 s alone leaves about 5 s of records uncommitted.\n", scaleLagSampleEvery)
	w("- All of it starts together and runs %s unmeasured (groups join, clients connect), then %s measured. CPU time is the broker's user + system time over the window; RSS (`VmRSS`) and open descriptors (`/proc/<pid>/fd`) are sampled every second over it. For Kafka these are the JVM's (heap `-Xms%dm -Xmx%dm`).\n",
		o.scaleWarmup, o.scaleDuration, o.kafkaHeapMB, o.kafkaHeapMB)
	w("- Settings as in the \"brokerd vs Apache Kafka\" section (brokerd's defaults, Kafka's shipped thread counts and 50 offsets partitions, no initial rebalance delay on either).\n\n")

	w("### Results\n\n")
	w("Ratios are brokerd / Kafka.\n\n")
	writePartTable(&b, scaleRows, bd, kf)
	if bd != nil && kf != nil {
		w("### Against the goals\n\n")
		w("The issue's goals for this configuration: produce p99 below Kafka's, CPU at most Kafka's, RSS at most a quarter of Kafka's.\n\n")
		for _, l := range scaleGoals(bd, kf) {
			w("- %s\n", l)
		}
		w("\n")
	}
	b.WriteString(benchkit.ListSection("Failed steps", failures))
	return b.String()
}

// logstashReport is one run of the Logstash part, ready to render.
type logstashReport struct {
	base              *report
	started, finished time.Time
	runs              []*logstashRun
}

// logstashGoal judges the Logstash goal.
func logstashGoal(bd, kf *logstashRun) string {
	if bd.consume == nil || kf.consume == nil {
		return "Logstash-style consumer (brokerd ≥ Kafka): not measured, a step failed."
	}
	bv, kv := bd.consume.recordsPerSec, kf.consume.recordsPerSec
	return fmt.Sprintf("Logstash-style consumer (brokerd ≥ Kafka): %s, %s against %s records/s (%s).",
		partVerdict(bv >= kv), benchkit.Thousands(bv), benchkit.Thousands(kv), benchkit.Ratio(bv, true, kv, true))
}

// markdown renders the Logstash part as its document section.
func (s *logstashReport) markdown() string {
	o := s.base.opts
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	bd, kf, loads, failures := partRuns(s.runs, func(r *logstashRun) (string, string, []string) { return r.name, r.load, r.errs })
	b.WriteString(s.base.opening(logstashHeading, s.started, s.finished, "one node in KRaft combined mode", true, loads))

	w("### What runs\n\n")
	w("One node of each broker in turn, on a fresh folder. A topic of %d partitions is pre-filled by `ProducerPerformance` with %s records of %d bytes (acks=1, the Java producer's defaults otherwise). Then `ConsumerPerformance` reads the first nine tenths of them (as in \"brokerd vs Apache Kafka\": at the end of a finite topic the Java consumer's last fetches wait out `fetch.max.wait.ms` on exhausted partitions, which measures how unevenly the producer filled them, not the broker) in a new group with the Java consumer configured as Logstash's kafka input configures it, from a `--consumer.config` file:", logstashPartitions, benchkit.Thousands(float64(o.logstashRecords)), o.scaleRecordSize)
	for _, k := range slices.Sorted(maps.Keys(logstashConsumerProps)) {
		w(" `%s=%s`", k, logstashConsumerProps[k])
	}
	w(" (`auto.offset.reset=earliest` so that the new group reads what was written before it joined). It does so %d times, each in a new group; the rate is the median run's fetch-phase figure (`fetch.nMsg.sec`), which leaves out joining the group (a fetch phase of about two seconds, in which the JVM is still compiling: in four runs of this part that ran it once, on 2026-12-06, it read 998,992 to 1,177,419 records/s from brokerd and 745,829 to 1,118,245 from Kafka).\n\n", perfConsumeRuns)
	w("### Results\n\n")
	rows := []partRow[logstashRun]{
		{"pre-fill, ProducerPerformance (records/s)", 0, func(r *logstashRun) (float64, bool) {
			return figure(r.prefill != nil, func() float64 { return r.prefill.recordsPerSec })
		}},
		{"consume, Logstash settings (records/s)", 0, func(r *logstashRun) (float64, bool) {
			return figure(r.consume != nil, func() float64 { return r.consume.recordsPerSec })
		}},
		{"consume, Logstash settings (MiB/s)", 1, func(r *logstashRun) (float64, bool) {
			return figure(r.consume != nil, func() float64 { return r.consume.mibPerSec })
		}},
		{"group join (ms)", 0, func(r *logstashRun) (float64, bool) {
			return figure(r.consume != nil, func() float64 { return float64(r.consume.rebalanceMs) })
		}},
	}
	writePartTable(&b, rows, bd, kf)
	if bd != nil && kf != nil {
		w("### Against the goals\n\n- %s\n\n", logstashGoal(bd, kf))
	}
	b.WriteString(benchkit.ListSection("Failed steps", failures))
	return b.String()
}
