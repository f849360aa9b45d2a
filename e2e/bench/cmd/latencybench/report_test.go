package main

import (
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"logpipe/e2e/bench/loadgen"
	"logpipe/indexer/httpdlog"
	"logpipe/internal/devstack"
)

// TestSummarize checks the count, the minimum, the nearest-rank
// percentiles, the maximum and the mean on known series.
func TestSummarize(t *testing.T) {
	var hundred loadgen.Latencies
	for i := 1; i <= 100; i++ {
		hundred = append(hundred, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		name string
		l    loadgen.Latencies
		want stats
	}{
		{"1..100 ms", hundred, stats{n: 100, min: time.Millisecond, p50: 50 * time.Millisecond, p90: 90 * time.Millisecond, p99: 99 * time.Millisecond,
			max: 100 * time.Millisecond, mean: 50500 * time.Microsecond}},
		{"three", loadgen.Latencies{time.Second, 2 * time.Second, 4 * time.Second}, stats{n: 3, min: time.Second, p50: 2 * time.Second, p90: 4 * time.Second,
			p99: 4 * time.Second, max: 4 * time.Second, mean: 7 * time.Second / 3}},
		{"one", loadgen.Latencies{1500 * time.Millisecond}, stats{n: 1, min: 1500 * time.Millisecond, p50: 1500 * time.Millisecond, p90: 1500 * time.Millisecond,
			p99: 1500 * time.Millisecond, max: 1500 * time.Millisecond, mean: 1500 * time.Millisecond}},
		{"none", nil, stats{}},
	} {
		if got := summarize(tc.l); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// testReport is a report of two brokers in o's mode: brokerd with three
// lines, Apache Kafka failed before its first line.
func testReport(o *options) *report {
	start := time.Date(2026, 12, 4, 6, 0, 0, 0, time.UTC)
	return &report{
		opts: o, started: start, finished: start.Add(3 * time.Minute),
		logpipe: "brokerd 0.1.0-dev", commit: "abc1234", elasticsearch: "8.14.3", kafka: "3.9.1",
		flush: flushSettings{
			shipper: []setting{{"output.kafka.bulk_flush_frequency", "5ms"}},
			indexer: []setting{{"elasticsearch.flush_interval", "1s"}},
		},
		runs: []*brokerRun{
			{broker: brokerBrokerd, load: "1.50", warmup: 5 * time.Second, refresh: refresh{interval: "1s", idleAfter: "30s", index: "httpd_access-2026.12.04"},
				latencies: loadgen.Latencies{time.Second, 2 * time.Second, 4 * time.Second}},
			{broker: brokerKafka, load: "2.00", err: errors.New("latencybench: the warm-up line: not searchable\nlog tail")},
		},
	}
}

// TestMarkdownSingle renders a single-mode report: the settings, one row
// per broker with figures, the failed run listed by its first line.
func TestMarkdownSingle(t *testing.T) {
	o, err := parseFlags([]string{"-lines", "3"})
	if err != nil {
		t.Fatal(err)
	}
	md := testReport(o).markdown()
	wantAll(t, md,
		sectionHeading+"\n",
		"go run ./e2e/bench/cmd/latencybench -lines 3",
		"- 1-minute load average when each pipeline was started: brokerd 1.50; Apache Kafka 2.00;",
		"shipper `output.kafka.bulk_flush_frequency` 5ms; indexer `elasticsearch.flush_interval` 1s; Elasticsearch `index.refresh_interval` 1s (read from httpd_access-2026.12.04: Elasticsearch's default",
		"| Broker | lines | min (ms) | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | mean (ms) | warm-up line (ms) |\n",
		"| brokerd | 3 | 1,000 | 2,000 | 4,000 | 4,000 | 4,000 | 2,333 | 5,000 |\n",
		"### Failed runs\n\n- Apache Kafka: latencybench: the warm-up line: not searchable\n",
	)
	if strings.Contains(md, "| Apache Kafka |") || strings.Contains(md, "log tail") {
		t.Errorf("the failed run has a row or its whole error; got:\n%s", md)
	}
}

// wantAll fails t for each of wants that the report md lacks.
func wantAll(t *testing.T, md string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q; got:\n%s", want, md)
		}
	}
}

// TestMarkdownSteady renders a steady-mode report row: the rates and the
// lines never found before the percentiles.
func TestMarkdownSteady(t *testing.T) {
	o, err := parseFlags([]string{"-mode", "steady", "-rate", "2000", "-duration", "5m", "-broker", "brokerd"})
	if err != nil {
		t.Fatal(err)
	}
	r := testReport(o)
	r.runs = r.runs[:1]
	run := r.runs[0]
	run.steady = &steadyResult{lines: 600000, found: 599998, writing: 300 * time.Second, span: 299999 * time.Millisecond, latencies: run.latencies}
	md := r.markdown()
	wantAll(t, md,
		"a writer appends 2,000 lines a second for 5m0s",
		"| Broker | lines | lines appended/s | searchable lines/s | never searchable | min (ms) | p50 (ms) |",
		"| brokerd | 3 | 2,000 | 2,000 | 2 | 1,000 | 2,000 | 4,000 | 4,000 | 4,000 | 2,333 | 5,000 |\n",
	)
	if strings.Contains(md, "Failed runs") {
		t.Errorf("a report without failures lists some:\n%s", md)
	}
}

// TestAccessLineParses parses the benchmark's lines with the indexer's
// own parser: combined format, the marker in url.original, the time to the
// second, and unique targets.
func TestAccessLineParses(t *testing.T) {
	at := time.Date(2026, 12, 4, 6, 7, 8, 999, time.FixedZone("CET", 3600))
	seen := map[string]bool{}
	for _, n := range []int{0, 1, 249, 250, 9000, 123456} {
		target := steadyTarget("0badcafe", n)
		line := accessLine(nil, at, n, target)
		if !strings.HasSuffix(string(line), "\"\n") || strings.Count(string(line), "\n") != 1 {
			t.Fatalf("line %d is %q, want one line ending in a newline", n, line)
		}
		var a httpdlog.Access
		if err := httpdlog.ParseAccess(string(line), &a); err != nil {
			t.Fatalf("line %d %q: %v", n, line, err)
		}
		if a.Format != httpdlog.Combined || a.URL != target || a.Method != "GET" || a.StatusCode != 200 || !a.Timestamp.Equal(at.Truncate(time.Second)) {
			t.Errorf("line %d parsed as format %v, url %q, %s %d at %v; want combined, %q, GET 200 at %v", n, a.Format, a.URL, a.Method, a.StatusCode, a.Timestamp, target, at.Truncate(time.Second))
		}
		if !strings.Contains(target, "lb=0badcafe-s"+strconv.Itoa(n)) || seen[target] {
			t.Errorf("target %q of line %d is not unique or lacks its marker", target, n)
		}
		seen[target] = true
	}
	if single := requestTarget("0badcafe", "1", 1); seen[single] || single == steadyTarget("0badcafe", 1) {
		t.Errorf("the single-mode target %q collides with a steady one", single)
	}
}

// TestDottedKeys reads dotted and nested keys alike and applies overrides,
// which replace what was below their key.
func TestDottedKeys(t *testing.T) {
	text := []byte("output.kafka:\n  hosts: [a:1]\n  partition.hash: {}\nelasticsearch:\n  flush_interval: 1s\n  backoff: {init: 1s, max: 60s}\n")
	keys, err := dottedKeys(text, []string{"elasticsearch.backoff={init: 2s}", "output.kafka.topic=logs"})
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(maps.Keys(keys))
	want := []string{"elasticsearch.backoff.init", "elasticsearch.flush_interval", "output.kafka.hosts", "output.kafka.partition.hash", "output.kafka.topic"}
	if !slices.Equal(got, want) {
		t.Fatalf("keys %v, want %v", got, want)
	}
	if keys["elasticsearch.backoff.init"] != "2s" || keys["output.kafka.topic"] != "logs" || keys["elasticsearch.flush_interval"] != "1s" {
		t.Errorf("values %v", keys)
	}
	if _, err := dottedKeys(text, []string{"no-equals-sign"}); err == nil {
		t.Error("an override without = was accepted")
	}
}

// TestEffectiveFlush reads the shipped configs: the shipper's flush
// frequency, which configs/shipper.yml leaves out, is the default the file
// documents, and -shipper-set and -indexer-set change what is reported.
func TestEffectiveFlush(t *testing.T) {
	root, err := devstack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	value := func(s []setting, key string) string {
		i := slices.IndexFunc(s, func(kv setting) bool { return kv.key == key })
		if i < 0 {
			t.Fatalf("no %s in %v", key, s)
		}
		return s[i].value
	}
	o, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	fl, err := effectiveFlush(root, o)
	if err != nil {
		t.Fatal(err)
	}
	if got := value(fl.shipper, "output.kafka.bulk_flush_frequency"); got != "5ms" {
		t.Errorf("shipped bulk_flush_frequency: got %s, want 5ms (configs/shipper.yml's documented default)", got)
	}
	if got := value(fl.shipper, "output.kafka.compression"); got != "gzip" {
		t.Errorf("shipped compression: got %s, want gzip", got)
	}
	o, err = parseFlags([]string{"-shipper-set", "output.kafka.bulk_flush_frequency=0 output.kafka.compression=none", "-indexer-set", "elasticsearch.flush_interval=100ms"})
	if err != nil {
		t.Fatal(err)
	}
	if fl, err = effectiveFlush(root, o); err != nil {
		t.Fatal(err)
	}
	if got := value(fl.shipper, "output.kafka.bulk_flush_frequency"); got != "0s" {
		t.Errorf("bulk_flush_frequency=0: got %s, want 0s", got)
	}
	if got := value(fl.shipper, "output.kafka.compression"); got != "none" {
		t.Errorf("compression=none: got %s, want none", got)
	}
	if got := value(fl.indexer, "elasticsearch.flush_interval"); got != "100ms" {
		t.Errorf("flush_interval=100ms: got %s, want 100ms", got)
	}
	o.shipperSet = []string{"output.kafka.bulk_flush_frequency=-1s"}
	if _, err := effectiveFlush(root, o); err == nil || !strings.Contains(err.Error(), "bulk_flush_frequency") {
		t.Errorf("a negative bulk_flush_frequency: got error %v, want the shipper's complaint about it", err)
	}
}

// TestMoveLogs moves the shipped config's two logs and refuses a config
// that does not name them both.
func TestMoveLogs(t *testing.T) {
	root, err := devstack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	shipped, err := os.ReadFile(filepath.Join(root, "configs", "shipper.yml"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := moveLogs(shipped, "/tmp/w/logs/")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"- /tmp/w/logs/access_log\n", "- /tmp/w/logs/error_log\n"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("the moved config lacks %q", want)
		}
	}
	if strings.Contains(string(got), shippedLogs) {
		t.Errorf("the moved config still names %s", shippedLogs)
	}
	if _, err := moveLogs([]byte("paths: [/var/log/httpd/access_log]\n"), "/tmp"); err == nil {
		t.Error("a config with one httpd log was accepted")
	}
}

// TestParseFlags checks the brokers -broker selects and what it refuses.
func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		brokers []string
	}{
		{nil, []string{brokerBrokerd, brokerKafka}},
		{[]string{"-broker", "kafka"}, []string{brokerKafka}},
		{[]string{"-broker", "brokerd", "-mode", "steady"}, []string{brokerBrokerd}},
	} {
		o, err := parseFlags(tc.args)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if !slices.Equal(o.brokers, tc.brokers) {
			t.Errorf("%v: brokers %v, want %v", tc.args, o.brokers, tc.brokers)
		}
	}
	for _, args := range [][]string{
		{"-broker", "redpanda"}, {"-mode", "burst"}, {"-lines", "0"}, {"-shipper-set", "novalue"}, {"-es-heap-mb", "64"}, {"extra"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%v was accepted", args)
		}
	}
}
