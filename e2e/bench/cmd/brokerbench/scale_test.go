package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"logpipe/e2e/bench/benchkit"
	"logpipe/e2e/bench/loadgen"
)

// TestScaleMarkdown renders known scale figures and checks the rows, the
// goal lines and the failure list.
func TestScaleMarkdown(t *testing.T) {
	o, err := parseFlags([]string{"-parts", "scale", "-scale-duration", "10s", "-scale-rate", "2000"})
	if err != nil {
		t.Fatal(err)
	}
	msd := func(v ...float64) loadgen.Latencies {
		l := make(loadgen.Latencies, len(v))
		for i, f := range v {
			l[i] = time.Duration(f * float64(time.Millisecond))
		}
		return l
	}
	bd := &scaleRun{
		name: "brokerd", load: "1.0", window: 10 * time.Second,
		produced: 20000, latencies: msd(1, 2, 3, 4),
		consumed: 100000, ages: msd(5, 6, 7, 8),
		lags: []int64{100, 300}, javaLags: []int64{10, 20},
		cpuSeconds: 5, rssKB: []int64{40 << 10, 60 << 10}, fds: []int64{1900, 1950},
	}
	kf := &scaleRun{
		name: "kafka", load: "1.2", window: 10 * time.Second,
		produced: 19990, failed: 10, latencies: msd(2, 4, 6, 8),
		cpuSeconds: 10, rssKB: []int64{800 << 10, 1000 << 10}, fds: []int64{3100},
		errs: []string{"Java consumer: exited\nstack"},
	}
	sr := &scaleReport{base: &report{opts: o, machine: benchkit.Machine{CPUs: 2}}, runs: []*scaleRun{bd, kf}}
	containsAll(t, "report", sr.markdown(), []string{
		scaleHeading + "\n",
		"together 2,000 records/s of 200 bytes",
		"| produce rate reached (records/s) | 2,000 | 1,999 | 1.00 |",
		"| records the producers gave up on | 0 | 10 | 0.000 |",
		"| produce latency p99 (ms) | 4.00 | 8.00 | 0.50 |",
		"| record age at consume p50 (ms) | 6.00 | – | – |",
		"| uncommitted records, 100 franz-go groups, mean | 200 | – | – |",
		"| uncommitted records, Java group, max | 20 | – | – |",
		"| broker CPU time in the window (s) | 5.0 | 10.0 | 0.50 |",
		"| broker RSS, mean (MiB) | 50 | 900 | 0.056 |",
		"| broker open file descriptors, peak | 1,950 | 3,100 | 0.63 |",
		"- Kafka's run had failures (see below)",
		"- Produce p99 (brokerd < Kafka): met, 4.00 against 8.00 ms (0.50).",
		"- CPU (brokerd ≤ Kafka): met, 5.0 against 10.0 s (0.50).",
		"- Peak RSS (brokerd ≤ ¼ of Kafka): met, 60 against 1000 MiB, 6%.",
		"- Kafka, Java consumer: exited\n",
		"go run ./e2e/bench/cmd/brokerbench -parts scale -scale-duration 10s -scale-rate 2000",
	})
}

// TestScaleGoalsMissed checks the goal lines when brokerd falls short, and
// when a figure is missing.
func TestScaleGoalsMissed(t *testing.T) {
	bd := &scaleRun{name: "brokerd", latencies: loadgen.Latencies{9e6}, cpuSeconds: 11, rssKB: []int64{300 << 10}}
	kf := &scaleRun{name: "kafka", latencies: loadgen.Latencies{9e6}, cpuSeconds: 10, rssKB: []int64{1000 << 10}}
	containsAll(t, "goals", strings.Join(scaleGoals(bd, kf), "\n"), []string{
		"Produce p99 (brokerd < Kafka): not met, 9.00 against 9.00 ms (1.00).",
		"CPU (brokerd ≤ Kafka): not met, 11.0 against 10.0 s (1.10).",
		"Peak RSS (brokerd ≤ ¼ of Kafka): not met, 300 against 1000 MiB, 30%.",
	})
	got := strings.Join(scaleGoals(&scaleRun{name: "brokerd"}, kf), "\n")
	containsAll(t, "goals without brokerd figures", got, []string{
		"Produce p99 (brokerd < Kafka): not measured",
		"CPU (brokerd ≤ Kafka): not measured.",
		"Peak RSS (brokerd ≤ ¼ of Kafka): not measured.",
	})
	if strings.Contains(got, "failures") {
		t.Errorf("got a failure line for runs without failures:\n%s", got)
	}
}

// TestLogstashMarkdown renders known Logstash figures and checks the
// consumer settings, the rows and the goal line.
func TestLogstashMarkdown(t *testing.T) {
	o, err := parseFlags([]string{"-parts", "logstash", "-logstash-records", "1000"})
	if err != nil {
		t.Fatal(err)
	}
	bd := &logstashRun{name: "brokerd", load: "0.3",
		prefill: &perfProduce{throughput: throughput{recordsPerSec: 50000}, records: 1000},
		consume: &perfConsume{throughput: throughput{recordsPerSec: 90000, mibPerSec: 17.2}, records: 1000, rebalanceMs: 40}}
	kf := &logstashRun{name: "kafka", load: "0.4",
		prefill: &perfProduce{throughput: throughput{recordsPerSec: 60000}, records: 1000},
		consume: &perfConsume{throughput: throughput{recordsPerSec: 100000, mibPerSec: 19.1}, records: 1000, rebalanceMs: 3000}}
	lr := &logstashReport{base: &report{opts: o, machine: benchkit.Machine{CPUs: 2}}, runs: []*logstashRun{bd, kf}}
	containsAll(t, "report", lr.markdown(), []string{
		logstashHeading + "\n",
		"with 1,000 records of 200 bytes",
		"`auto.commit.interval.ms=5000` `auto.offset.reset=earliest` `enable.auto.commit=true` `fetch.max.wait.ms=500` `fetch.min.bytes=1` `max.poll.records=500`",
		"| consume, Logstash settings (records/s) | 90,000 | 100,000 | 0.90 |",
		"| consume, Logstash settings (MiB/s) | 17.2 | 19.1 | 0.90 |",
		"| group join (ms) | 40 | 3,000 | 0.013 |",
		"- Logstash-style consumer (brokerd ≥ Kafka): not met, 90,000 against 100,000 records/s (0.90).",
	})
	kf.consume = nil
	if got, want := logstashGoal(bd, kf), "not measured"; !strings.Contains(got, want) {
		t.Errorf("goal without Kafka's figure: got %q, want it to say %q", got, want)
	}
}

// TestParseFlagsScaleParts checks that -parts selects the scale and
// Logstash parts and that their flags are validated.
func TestParseFlagsScaleParts(t *testing.T) {
	o, err := parseFlags([]string{"-parts", "logstash,scale"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.scale || !o.logstash || o.single || o.clusters {
		t.Errorf("-parts logstash,scale: got scale %v, logstash %v, single %v, clusters %v; want true, true, false, false", o.scale, o.logstash, o.single, o.clusters)
	}
	for _, args := range [][]string{
		{"-scale-rate", "19"},
		{"-scale-duration", "0s"},
		{"-scale-warmup", "-1s"},
		{"-logstash-records", "0"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// TestWriteConsumerConfig writes a Java consumer properties file and reads
// it back.
func TestWriteConsumerConfig(t *testing.T) {
	path, err := writeConsumerConfig("g1", map[string]string{"max.poll.records": "500", "fetch.min.bytes": "1"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(filepath.Dir(path)) })
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "group.id=g1\nfetch.min.bytes=1\nmax.poll.records=500\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
