package main

import (
	"strings"
	"testing"
	"time"

	"logpipe/e2e/bench/benchkit"
	"logpipe/e2e/bench/loadgen"
)

// TestClusterMarkdown renders known cluster figures and checks the rows,
// the failover table, the goal lines and the failure list.
func TestClusterMarkdown(t *testing.T) {
	o, err := parseFlags([]string{"-parts", "cluster", "-duration", "2s", "-failovers", "2"})
	if err != nil {
		t.Fatal(err)
	}
	sec := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
	bd := &clusterRun{
		name: "brokerd", load: "0.5",
		timing:       map[string]string{"broker.session.timeout.ms": "2000"},
		timingSource: "from the test",
		produce:      &loadgen.ProduceResult{Records: 300000, Bytes: 300000 << 10, Elapsed: sec(1)},
		latency:      &loadgen.ProduceResult{Records: 4, Elapsed: sec(1), Latencies: loadgen.Latencies{1e6, 1e6, 2e6, 3e6}},
		peakRSSKB:    []int64{40 << 10, 50 << 10, 45 << 10},
		cpuSeconds:   12,
		failovers: []failover{
			{killed: 1, led: []int32{0, 4}, successor: 2, partition: 4, took: sec(2.1)},
			{killed: 2, led: []int32{0, 3}, controller: true, successor: 1, partition: 3, took: sec(3.5)},
		},
	}
	kf := &clusterRun{
		name: "kafka", load: "0.7",
		produce:   &loadgen.ProduceResult{Records: 200000, Bytes: 200000 << 10, Elapsed: sec(1)},
		peakRSSKB: []int64{800 << 10, 700 << 10, 900 << 10},
		failovers: []failover{
			{killed: 3, led: []int32{0}, successor: 1, partition: 0, took: sec(9)},
			{killed: 1, led: []int32{0, 1}, successor: 2, partition: 1, took: sec(12)},
		},
		errs: []string{"latency (franz-go): broken\nsecond line"},
	}
	rep := &report{opts: o, machine: benchkit.Machine{CPUs: 2}, clusters: []*clusterRun{bd, kf}}
	containsAll(t, "report", rep.clusterMarkdown(), []string{
		clusterHeading + "\n",
		"| produce, acks=all (records/s) | 300,000 | 200,000 | 1.50 |",
		"| produce, acks=all (MiB/s) | 293.0 | 195.3 | 1.50 |",
		"| latency p99 at fixed rate (ms) | 3.00 | – | – |",
		"| peak RSS, node 2 (MiB) | 50 | 700 | 0.071 |",
		"| peak RSS, largest node (MiB) | 50 | 900 | 0.056 |",
		"| failover 2 (s) | 3.50 | 12.00 | 0.29 |",
		"| failover, median (s) | 2.80 | 10.50 | 0.27 |",
		"| brokerd | 2 | 2 | yes | 0, 3 | 1 | 3 | 3.50 |",
		"| Kafka | 1 | 3 | no | 0 | 1 | 0 | 9.00 |",
		"from the test: `broker.heartbeat.interval.ms=unknown` `broker.session.timeout.ms=2000`",
		"- Throughput (brokerd ≥ Kafka): met, 300,000 against 200,000 records/s (1.50).",
		"- p99 latency (brokerd < Kafka): not measured, a latency step failed.",
		"- Memory per node (brokerd's largest ≤ ¼ of Kafka's smallest): met, 50 against 700 MiB, 7%.",
		"- Failover under 3s with brokerd's defaults: not met, 1 of 2 repetitions under it, the longest 3.50 s.",
		"- Failover faster than Kafka's (medians): met, 2.80 against 10.50 s.",
		"- Kafka cluster, latency (franz-go): broken\n",
		"go run ./e2e/bench/cmd/brokerbench -duration 2s -failovers 2 -parts cluster",
	})
}

// containsAll fails t for each of wants that text, named what, lacks.
func containsAll(t *testing.T, what, text string, wants []string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(text, want) {
			t.Errorf("%s lacks %q:\n%s", what, want, text)
		}
	}
}

// TestClusterGoalsMissed checks the goal lines when brokerd falls short.
func TestClusterGoalsMissed(t *testing.T) {
	sec := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
	bd := &clusterRun{
		produce:   &loadgen.ProduceResult{Records: 100, Elapsed: sec(1)},
		latency:   &loadgen.ProduceResult{Records: 2, Elapsed: sec(1), Latencies: loadgen.Latencies{5e6, 9e6}},
		peakRSSKB: []int64{300 << 10},
		failovers: []failover{{took: sec(1)}, {took: sec(2)}, {took: sec(12)}},
	}
	kf := &clusterRun{
		produce:   &loadgen.ProduceResult{Records: 200, Elapsed: sec(1)},
		latency:   &loadgen.ProduceResult{Records: 2, Elapsed: sec(1), Latencies: loadgen.Latencies{5e6, 9e6}},
		peakRSSKB: []int64{1000 << 10, 1100 << 10},
		failovers: []failover{{took: sec(1.5)}},
	}
	containsAll(t, "goals", strings.Join(clusterGoals(bd, kf), "\n"), []string{
		"Throughput (brokerd ≥ Kafka): not met, 100 against 200 records/s (0.50).",
		"p99 latency (brokerd < Kafka): not met, 9.00 against 9.00 ms (1.00).",
		"Memory per node (brokerd's largest ≤ ¼ of Kafka's smallest): not met, 300 against 1000 MiB, 30%.",
		"Failover under 3s with brokerd's defaults: not met, 2 of 3 repetitions under it, the longest 12.00 s.",
		"Failover faster than Kafka's (medians): not met, 2.00 against 1.50 s.",
	})
}
