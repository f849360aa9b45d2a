package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"logpipe/internal/devstack"
)

// throughput is a records/s and MiB/s pair.
type throughput struct {
	recordsPerSec float64
	mibPerSec     float64
}

// perfProduce is the summary ProducerPerformance prints at its end.
type perfProduce struct {
	throughput
	records      int64
	avgLatencyMs float64
	p50Ms, p99Ms float64
}

// perfSummary matches ProducerPerformance's final line, e.g.
// "1000 records sent, 9.9 records/sec (0.01 MB/sec), 2.50 ms avg latency,
// 40.00 ms max latency, 2 ms 50th, 3 ms 95th, 40 ms 99th, 40 ms 99.9th."
// Its MB are 2^20 bytes.
var perfSummary = regexp.MustCompile(`(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th`)

// parsePerfProduce finds the summary line in ProducerPerformance's output.
func parsePerfProduce(out string) (perfProduce, error) {
	m := perfSummary.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		return perfProduce{}, fmt.Errorf("brokerbench: no summary line in ProducerPerformance output:\n%s", tail(out, 2000))
	}
	last := m[len(m)-1]
	var r perfProduce
	r.records, _ = strconv.ParseInt(last[1], 10, 64)
	r.recordsPerSec, _ = strconv.ParseFloat(last[2], 64)
	r.mibPerSec, _ = strconv.ParseFloat(last[3], 64)
	r.avgLatencyMs, _ = strconv.ParseFloat(last[4], 64)
	r.p50Ms, _ = strconv.ParseFloat(last[6], 64)
	r.p99Ms, _ = strconv.ParseFloat(last[8], 64)
	return r, nil
}

// runProducerPerformance runs org.apache.kafka.tools.ProducerPerformance
// from the Kafka jars: records of size bytes, unthrottled, with the given
// acks ("1" or "all") and otherwise the Java producer's defaults.
func runProducerPerformance(ctx context.Context, bootstrap, topic string, records int64, size int, acks string) (perfProduce, error) {
	out, err := runTool(ctx, "org.apache.kafka.tools.ProducerPerformance",
		"--topic", topic,
		"--num-records", strconv.FormatInt(records, 10),
		"--record-size", strconv.Itoa(size),
		"--throughput", "-1",
		"--producer-props", "acks="+acks, "bootstrap.servers="+bootstrap)
	if err != nil {
		return perfProduce{}, err
	}
	return parsePerfProduce(out)
}

// perfConsume is the summary ConsumerPerformance prints.
type perfConsume struct {
	// throughput is over the fetch phase only (fetch.nMsg.sec and
	// fetch.MB.sec), which leaves out joining the group.
	throughput
	records     int64
	rebalanceMs int64
	fetchMs     int64
}

// parsePerfConsume reads ConsumerPerformance's result line (run with
// --hide-header): start.time, end.time, data.consumed.in.MB, MB.sec,
// data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms,
// fetch.MB.sec, fetch.nMsg.sec.
func parsePerfConsume(out string) (perfConsume, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		f := strings.Split(lines[i], ",")
		if len(f) != 10 {
			continue
		}
		for j := range f {
			f[j] = strings.TrimSpace(f[j])
		}
		var r perfConsume
		var errs [5]error
		r.records, errs[0] = strconv.ParseInt(f[4], 10, 64)
		r.rebalanceMs, errs[1] = strconv.ParseInt(f[6], 10, 64)
		r.fetchMs, errs[2] = strconv.ParseInt(f[7], 10, 64)
		r.mibPerSec, errs[3] = strconv.ParseFloat(f[8], 64)
		r.recordsPerSec, errs[4] = strconv.ParseFloat(f[9], 64)
		ok := true
		for _, e := range errs {
			ok = ok && e == nil
		}
		if ok {
			return r, nil
		}
	}
	return perfConsume{}, fmt.Errorf("brokerbench: no result line in ConsumerPerformance output:\n%s", tail(out, 2000))
}

// runConsumerPerformance runs org.apache.kafka.tools.ConsumerPerformance
// from the Kafka jars: it joins a new group and reads records records of
// topic from the earliest offset with the Java consumer's defaults, or
// with more tool arguments extra.
func runConsumerPerformance(ctx context.Context, bootstrap, topic, group string, records int64, extra ...string) (perfConsume, error) {
	out, err := runTool(ctx, "org.apache.kafka.tools.ConsumerPerformance", append([]string{
		"--bootstrap-server", bootstrap,
		"--topic", topic,
		"--group", group,
		"--messages", strconv.FormatInt(records, 10),
		"--timeout", "60000",
		"--hide-header"}, extra...)...)
	if err != nil {
		return perfConsume{}, err
	}
	r, err := parsePerfConsume(out)
	if err != nil {
		return r, err
	}
	if r.records < records {
		return r, fmt.Errorf("brokerbench: ConsumerPerformance read %d of %d records", r.records, records)
	}
	return r, nil
}

// medianConsumerPerformance runs ConsumerPerformance perfConsumeRuns
// times over records of topic, each run in a new group (group-0,
// group-1, ...) with the extra arguments args gives for that group (nil:
// none), and returns the median run by records/s. Its fetch phase lasts a
// few seconds of a JVM that is still compiling, so single runs differ
// widely on this machine.
func medianConsumerPerformance(ctx context.Context, bootstrap, topic, group string, records int64, prefix string, args func(group string) ([]string, error)) (perfConsume, error) {
	var runs []perfConsume
	for i := range perfConsumeRuns {
		g := fmt.Sprintf("%s-%d", group, i)
		var extra []string
		if args != nil {
			var err error
			if extra, err = args(g); err != nil {
				return perfConsume{}, err
			}
		}
		pc, err := runConsumerPerformance(ctx, bootstrap, topic, g, records, extra...)
		if err != nil {
			return perfConsume{}, err
		}
		log.Printf("%s: consume (ConsumerPerformance) run %d: %.0f records/s", prefix, i+1, pc.recordsPerSec)
		runs = append(runs, pc)
	}
	slices.SortFunc(runs, func(a, b perfConsume) int { return cmp.Compare(a.recordsPerSec, b.recordsPerSec) })
	return runs[len(runs)/2], nil
}

// toolJVMOptions are the JVM options runTool adds to devstack's.
var toolJVMOptions = []string{"-Xms512m", "-XX:+AlwaysPreTouch"}

// runTool runs a Java main class from the Kafka jars and returns its stdout;
// stderr goes to a log file named in the error if the tool fails.
func runTool(ctx context.Context, class string, args ...string) (string, error) {
	cmd, err := devstack.KafkaToolCommand(ctx, class, args...)
	if err != nil {
		return "", err
	}
	// The tool's whole heap is touched before it starts timing: on this
	// virtual machine a first touch of memory is slow and its cost varies
	// with the machine's memory state, which otherwise fell in the few
	// seconds ConsumerPerformance measures (two topics of brokerd, each
	// read three times in a row: 305,000 to 597,000 records/s; pre-touched,
	// four times each: 494,000 to 713,000).
	cmd.Args = slices.Insert(cmd.Args, 1, toolJVMOptions...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	name := class[strings.LastIndex(class, ".")+1:]
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("brokerbench: %s: %w\nstderr:\n%s\nstdout:\n%s", name, err, tail(stderr.String(), 3000), tail(stdout.String(), 1000))
	}
	return stdout.String(), nil
}

// kafkaVersion returns the version in the name of the Kafka broker jar.
func kafkaVersion(ctx context.Context) string {
	dir, err := devstack.KafkaJars(ctx)
	if err != nil {
		return "unknown"
	}
	m, _ := filepath.Glob(filepath.Join(dir, "kafka_2.13-*.jar"))
	if len(m) == 0 {
		return "unknown"
	}
	return strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m[0]), "kafka_2.13-"), ".jar")
}

// javaVersion returns the first line of `java -version`.
func javaVersion() string {
	java, err := devstack.JavaPath()
	if err != nil {
		return "unknown"
	}
	out, err := exec.Command(java, "-version").CombinedOutput()
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
