package main

import (
	"logpipe/e2e/bench/benchkit"
	"strings"
	"testing"
	"time"

	"logpipe/e2e/bench/loadgen"
)

// TestParsePerfProduce reads a ProducerPerformance output in the format
// its Java code prints (interim lines, then the summary).
func TestParsePerfProduce(t *testing.T) {
	out := "122021 records sent, 24404.2 records/sec (23.83 MB/sec), 1041.3 ms avg latency, 1618.0 ms max latency.\n" +
		"250000 records sent, 32355.418770 records/sec (31.60 MB/sec), 788.47 ms avg latency, 1618.00 ms max latency, 752 ms 50th, 1423 ms 95th, 1586 ms 99th, 1610 ms 99.9th.\n"
	r, err := parsePerfProduce(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.records != 250000 || r.recordsPerSec != 32355.418770 || r.mibPerSec != 31.60 || r.p50Ms != 752 || r.p99Ms != 1586 || r.avgLatencyMs != 788.47 {
		t.Fatalf("parsed %+v", r)
	}
	if _, err := parsePerfProduce("122021 records sent, 24404.2 records/sec (23.83 MB/sec), 1041.3 ms avg latency, 1618.0 ms max latency.\n"); err == nil {
		t.Fatal("an interim line alone was taken for a summary")
	}
}

// TestParsePerfConsume reads ConsumerPerformance's --hide-header result.
func TestParsePerfConsume(t *testing.T) {
	out := "WARNING: something on stdout\n2025-11-21 23:59:01:123, 2025-11-21 23:59:05:456, 244.1406, 56.3411, 250000, 57693.2841, 3012, 1321, 184.8150, 189250.5677\n"
	r, err := parsePerfConsume(out)
	if err != nil {
		t.Fatal(err)
	}
	if r.records != 250000 || r.rebalanceMs != 3012 || r.fetchMs != 1321 || r.mibPerSec != 184.8150 || r.recordsPerSec != 189250.5677 {
		t.Fatalf("parsed %+v", r)
	}
	if _, err := parsePerfConsume("start.time, end.time\n"); err == nil {
		t.Fatal("no result line, yet parsed")
	}
}

// checks the rows, the goal lines and the failure list.
func TestMarkdownRatiosAndGoals(t *testing.T) {
	o, err := parseFlags([]string{"-partitions", "6", "-acks", "all", "-duration", "2s"})
	if err != nil {
		t.Fatal(err)
	}
	k := caseKey{6, "all"}
	sec := func(n int64) time.Duration { return time.Duration(n) * time.Second }
	bd := &brokerRun{name: "brokerd", peakRSSKB: 100 << 10, loads: []string{"0.5"}, cases: map[caseKey]*caseResult{k: {
		produce: &loadgen.ProduceResult{Records: 300000, Bytes: 300000 << 10, Elapsed: sec(1)},
		latency: &loadgen.ProduceResult{Records: 4, Elapsed: sec(1), Latencies: loadgen.Latencies{1e6, 1e6, 2e6, 3e6}},
		errs:    []string{"consume (franz-go): broken\nsecond line"},
	}}}
	kf := &brokerRun{name: "kafka", peakRSSKB: 1000 << 10, loads: []string{"3.5"}, cases: map[caseKey]*caseResult{k: {
		produce: &loadgen.ProduceResult{Records: 200000, Bytes: 200000 << 10, Elapsed: sec(1)},
		consume: &loadgen.ConsumeResult{Records: 200000, Bytes: 200000 << 10, Elapsed: sec(1)},
		latency: &loadgen.ProduceResult{Records: 4, Elapsed: sec(1), Latencies: loadgen.Latencies{2e6, 2e6, 4e6, 60e6}},
	}}}
	rep := &report{opts: o, started: time.Now(), finished: time.Now(), machine: benchkit.Machine{CPUs: 2}, runs: []*brokerRun{bd, kf}}
	md := rep.markdown()
	for _, want := range []string{
		"| 6 | all | produce, franz-go (records/s) | 300,000 | 200,000 | 1.50 |",
		"| 6 | all | produce, franz-go (MiB/s) | 293.0 | 195.3 | 1.50 |",
		"| 6 | all | consume, franz-go (records/s) | – | 200,000 | – |",
		"| 6 | all | latency p99 at fixed rate (ms) | 3.00 | 60.00 | 0.050 |",
		"| peak RSS (MiB) | 100 | 1,000 | 0.10 |",
		"met in 1 of 1 figures.",
		"met in 1 of 1 configurations.",
		"met, brokerd's peak RSS is 10% of Kafka's.",
		"It reached 3.5 on 2 CPUs",
		"- brokerd, 6 partition(s), acks=all, consume (franz-go): broken\n",
		"go run ./e2e/bench/cmd/brokerbench -acks all -duration 2s -partitions 6",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
