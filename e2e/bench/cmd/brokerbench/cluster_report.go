package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"logpipe/e2e/bench/benchkit"
)

// clusterHeading is the level-2 heading of the cluster comparison in the
// benchmarks document.
const clusterHeading = "## brokerd cluster vs Apache Kafka cluster"

// failoverGoal is the bound on brokerd's failover time.
const failoverGoal = 3 * time.Second

// cluster returns the named broker's cluster results, or nil.
func (r *report) cluster(name string) *clusterRun {
	for _, c := range r.clusters {
		if c.name == name {
			return c
		}
	}
	return nil
}

// largestRSS returns the highest peak RSS of the nodes, in KiB.
func (c *clusterRun) largestRSS() (int64, bool) {
	if len(c.peakRSSKB) == 0 {
		return 0, false
	}
	return slices.Max(c.peakRSSKB), true
}

// smallestRSS returns the lowest peak RSS of the nodes, in KiB.
func (c *clusterRun) smallestRSS() (int64, bool) {
	if len(c.peakRSSKB) == 0 {
		return 0, false
	}
	return slices.Min(c.peakRSSKB), true
}

// medianFailover returns the median of the failover times (the mean of the
// middle two for an even count).
func (c *clusterRun) medianFailover() (time.Duration, bool) {
	n := len(c.failovers)
	if n == 0 {
		return 0, false
	}
	ts := make([]time.Duration, n)
	for i, f := range c.failovers {
		ts[i] = f.took
	}
	slices.Sort(ts)
	if n%2 == 1 {
		return ts[n/2], true
	}
	return (ts[n/2-1] + ts[n/2]) / 2, true
}

// clusterRow is one line of the cluster results table.
type clusterRow struct {
	label    string
	decimals int
	value    func(*clusterRun) (float64, bool)
}

// clusterRows lists the table's rows for a run with at most nodes nodes
// and failovers failovers per cluster.
func clusterRows(nodes, failovers int) []clusterRow {
	rows := []clusterRow{
		{"produce, acks=all (records/s)", 0, func(c *clusterRun) (float64, bool) {
			return figure(c.produce != nil, func() float64 { return c.produce.RecordsPerSec() })
		}},
		{"produce, acks=all (MiB/s)", 1, func(c *clusterRun) (float64, bool) {
			return figure(c.produce != nil, func() float64 { return c.produce.MiBPerSec() })
		}},
		{"latency p50 at fixed rate (ms)", 2, func(c *clusterRun) (float64, bool) {
			return figure(c.latency != nil, func() float64 { return toMs(c.latency.Latencies.Percentile(50)) })
		}},
		{"latency p99 at fixed rate (ms)", 2, func(c *clusterRun) (float64, bool) {
			return figure(c.latency != nil, func() float64 { return toMs(c.latency.Latencies.Percentile(99)) })
		}},
		{"latency run: rate reached (records/s)", 0, func(c *clusterRun) (float64, bool) {
			return figure(c.latency != nil, func() float64 { return c.latency.RecordsPerSec() })
		}},
	}
	for i := range nodes {
		rows = append(rows, clusterRow{fmt.Sprintf("peak RSS, node %d (MiB)", i+1), 0, func(c *clusterRun) (float64, bool) {
			return figure(i < len(c.peakRSSKB), func() float64 { return float64(c.peakRSSKB[i]) / 1024 })
		}})
	}
	rows = append(rows,
		clusterRow{"peak RSS, largest node (MiB)", 0, func(c *clusterRun) (float64, bool) {
			kb, ok := c.largestRSS()
			return float64(kb) / 1024, ok
		}},
		clusterRow{"CPU time of all nodes (s)", 0, func(c *clusterRun) (float64, bool) {
			return figure(len(c.peakRSSKB) > 0, func() float64 { return c.cpuSeconds })
		}})
	for i := range failovers {
		rows = append(rows, clusterRow{fmt.Sprintf("failover %d (s)", i+1), 2, func(c *clusterRun) (float64, bool) {
			return figure(i < len(c.failovers), func() float64 { return c.failovers[i].took.Seconds() })
		}})
	}
	return append(rows, clusterRow{"failover, median (s)", 2, func(c *clusterRun) (float64, bool) {
		d, ok := c.medianFailover()
		return d.Seconds(), ok
	}})
}

// clusterValue reads a row's figure from c, which may be nil.
func clusterValue(c *clusterRun, row clusterRow) (float64, bool) {
	if c == nil {
		return 0, false
	}
	return row.value(c)
}

// clusterMarkdown renders the cluster comparison as its document section,
// heading included.
func (r *report) clusterMarkdown() string {
	o := r.opts
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	bd, kf := r.cluster("brokerd"), r.cluster("kafka")

	var loads []namedLoads
	for _, c := range r.clusters {
		loads = append(loads, namedLoads{c.name, []string{c.load}})
	}
	b.WriteString(r.opening(clusterHeading, r.clusterStarted, r.clusterFinished,
		fmt.Sprintf("%d nodes, each in KRaft combined mode (broker and controller in one JVM)", clusterNodes), false, loads))

	w("### What runs\n\n")
	w("Each broker runs as a cluster of %d nodes on 127.0.0.1, each node a combined broker and controller and all of them voters of the metadata quorum; one cluster is started on fresh folders, measured, stopped and removed before the other one starts, so they never run together. The load generator shares the machine's %d CPUs with the nodes.\n\n", clusterNodes, r.machine.CPUs)
	w("- Topics: %d partitions, replication factor %d, `min.insync.replicas=%d`; each step creates its topic, waits until every partition has all %d replicas in sync, and deletes it afterwards. The client is given every node's address. Neither broker forces writes to disk.\n", clusterPartitions, clusterReplicas, clusterMinISR, clusterReplicas)
	b.WriteString(r.memoryLine())
	w("- Apache Kafka: JVM heap `-Xms%dm -Xmx%dm` per node; the same server.properties as the single node (devstack's, with the shipped `num.network.threads=3`, `num.io.threads=8`, `offsets.topic.num.partitions=50`, and `group.initial.rebalance.delay.ms=0`).\n", o.kafkaHeapMB, o.kafkaHeapMB)
	w("- brokerd: its defaults except the listeners, `log.dirs`, the cluster keys (`node.id`, `process.roles`, `controller.quorum.voters`, `controller.listener.names`) and `group.initial.rebalance.delay.ms=0`.\n")
	w("- Each cluster start is followed by ")
	if o.warmup > 0 {
		w("%s of full-speed acks=all produce to a scratch topic (a warm-up, not measured), then ", o.warmup)
	}
	w("these steps, with records of %d bytes (value only, no key, no compression) and the idempotent producer with `acks=all`:\n", o.recordSize)
	w("  1. **produce**: %s at full speed with franz-go's defaults (linger 10 ms, batches up to 1 MB, sticky partitioner, one produce request in flight per broker); throughput counts acknowledged records from the first send to the last acknowledgement.\n", o.duration)
	w("  2. **latency**: a fixed %s records/s for %s with linger 0; each record is timed from the call that hands it to the client to its acknowledgement, and p50/p99 are over every record of the run.\n", benchkit.Thousands(float64(o.clusterRate)), o.duration)
	w("  3. **failover**, %d times: a steady stream of %s records/s of %d bytes, spread round-robin over the %d partitions (franz-go, idempotent, acks=all, unlimited retries, linger 0, retry backoff and least time between metadata requests %s, so that the client learns of a new leader within that long of a node telling it). Once a second's worth has been acknowledged on every partition, a node that leads partitions is killed with SIGKILL: in every second repetition the active controller (as DescribeQuorum names it, for both brokers), in the others the leader of the first partition not led by the controller. **The failover time runs from the kill to the first acknowledgement, by another node, of a batch for a partition the killed node led** (seen in franz-go's `OnProduceBatchWritten` hook, which names the acknowledging node). Then the stream stops and every record sent must have been acknowledged. Between repetitions the killed node is started again and the topic waits until it is fully in sync. Killing the controller adds a controller election to that repetition.\n",
		o.failovers, benchkit.Thousands(float64(o.failoverRate)), failoverRecordSize, clusterPartitions, failoverClientRetry)
	for _, c := range r.clusters {
		w("- %s's settings that decide how soon a dead node is noticed, %s:", displayName(c.name), c.timingSource)
		for _, k := range timingKeys {
			v, ok := c.timing[k]
			if !ok {
				v = "unknown"
			}
			w(" `%s=%s`", k, v)
		}
		w(".\n")
	}
	w("- Memory: each node's peak resident set (for Kafka the JVM's) from the start to the end of the latency step, the larger of `VmHWM` and `VmRSS` sampled every 250 ms from `/proc/<pid>/status`; CPU time is all nodes' user + system time over the same span. Node numbers are node ids.\n")
	w("- MiB are 2^20 bytes.\n\n")

	w("### Results\n\n")
	w("Ratios are brokerd / Kafka: above 1 means brokerd is faster for throughput; below 1 means brokerd is faster for latency and failover, and smaller for memory.\n\n")
	w("| Measure | brokerd | Kafka | brokerd / Kafka |\n")
	w("|---|---:|---:|---:|\n")
	nodes, fails := 0, 0
	for _, c := range r.clusters {
		nodes, fails = max(nodes, len(c.peakRSSKB)), max(fails, len(c.failovers))
	}
	for _, row := range clusterRows(nodes, fails) {
		bv, bok := clusterValue(bd, row)
		kv, kok := clusterValue(kf, row)
		w("| %s | %s | %s | %s |\n", row.label, benchkit.Cell(bv, bok, row.decimals), benchkit.Cell(kv, kok, row.decimals), benchkit.Ratio(bv, bok, kv, kok))
	}
	w("\n")

	if fails > 0 {
		w("### Failovers\n\n")
		w("| Broker | Run | Killed node | Active controller | Partitions it led | Acknowledged by node | Partition | Failover (s) |\n")
		w("|---|---:|---:|---|---|---:|---:|---:|\n")
		for _, c := range r.clusters {
			for i, f := range c.failovers {
				led := make([]string, len(f.led))
				for j, p := range f.led {
					led[j] = fmt.Sprint(p)
				}
				ctl := "no"
				if f.controller {
					ctl = "yes"
				}
				w("| %s | %d | %d | %s | %s | %d | %d | %.2f |\n", displayName(c.name), i+1, f.killed, ctl, strings.Join(led, ", "), f.successor, f.partition, f.took.Seconds())
			}
		}
		w("\n")
	}

	if bd != nil && kf != nil {
		w("### Against the goals\n\n")
		w("The issue's goals for the clusters on this machine: brokerd's throughput at least Kafka's, its p99 latency lower, every node's peak RSS at most a quarter of any Kafka node's, and failover under %s with brokerd's defaults and faster than Kafka's with Kafka's defaults.\n\n", failoverGoal)
		for _, line := range clusterGoals(bd, kf) {
			w("- %s\n", line)
		}
		w("\n")
	}

	var failures []string
	for _, c := range r.clusters {
		for _, e := range c.errs {
			failures = append(failures, fmt.Sprintf("%s cluster, %s", displayName(c.name), firstLine(e)))
		}
	}
	b.WriteString(benchkit.ListSection("Failed steps", failures))
	return b.String()
}

// clusterGoals judges the goals from the two clusters' figures,
// one line each, saying "met", "not met" or why it cannot say.
func clusterGoals(bd, kf *clusterRun) []string {
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "not met"
	}
	var lines []string
	if bd.produce != nil && kf.produce != nil {
		bv, kv := bd.produce.RecordsPerSec(), kf.produce.RecordsPerSec()
		lines = append(lines, fmt.Sprintf("Throughput (brokerd ≥ Kafka): %s, %s against %s records/s (%s).",
			verdict(bv >= kv), benchkit.Thousands(bv), benchkit.Thousands(kv), benchkit.Ratio(bv, true, kv, true)))
	} else {
		lines = append(lines, "Throughput (brokerd ≥ Kafka): not measured, a produce step failed.")
	}
	if bd.latency != nil && kf.latency != nil {
		bv, kv := toMs(bd.latency.Latencies.Percentile(99)), toMs(kf.latency.Latencies.Percentile(99))
		lines = append(lines, fmt.Sprintf("p99 latency (brokerd < Kafka): %s, %.2f against %.2f ms (%s).",
			verdict(bv < kv), bv, kv, benchkit.Ratio(bv, true, kv, true)))
	} else {
		lines = append(lines, "p99 latency (brokerd < Kafka): not measured, a latency step failed.")
	}
	bmax, bok := bd.largestRSS()
	kmin, kok := kf.smallestRSS()
	if bok && kok && kmin > 0 {
		lines = append(lines, fmt.Sprintf("Memory per node (brokerd's largest ≤ ¼ of Kafka's smallest): %s, %.0f against %.0f MiB, %.0f%%.",
			verdict(4*bmax <= kmin), float64(bmax)/1024, float64(kmin)/1024, 100*float64(bmax)/float64(kmin)))
	} else {
		lines = append(lines, "Memory per node: not measured.")
	}
	if len(bd.failovers) > 0 {
		var under int
		for _, f := range bd.failovers {
			if f.took < failoverGoal {
				under++
			}
		}
		lines = append(lines, fmt.Sprintf("Failover under %s with brokerd's defaults: %s, %d of %d repetitions under it, the longest %.2f s.",
			failoverGoal, verdict(under == len(bd.failovers)), under, len(bd.failovers), slowest(bd.failovers).Seconds()))
	} else {
		lines = append(lines, fmt.Sprintf("Failover under %s: not measured on brokerd.", failoverGoal))
	}
	bm, bok := bd.medianFailover()
	km, kok := kf.medianFailover()
	if bok && kok {
		lines = append(lines, fmt.Sprintf("Failover faster than Kafka's (medians): %s, %.2f against %.2f s.", verdict(bm < km), bm.Seconds(), km.Seconds()))
	} else {
		lines = append(lines, "Failover faster than Kafka's: not measured on both.")
	}
	return lines
}

// slowest returns the longest failover time.
func slowest(fs []failover) time.Duration {
	var d time.Duration
	for _, f := range fs {
		d = max(d, f.took)
	}
	return d
}
