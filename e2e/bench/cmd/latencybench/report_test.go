package main

import (
	"errors"
	"image"
	"image/png"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/plot/vg"

	"logpipe/e2e/bench/loadgen"
	"logpipe/indexer/httpdlog"
	"logpipe/internal/devstack"
)

// faultLines counts the vertical fault lines drawn in panel i of a chart
// (panelHeight pixels each): runs of neighbouring pixel columns holding
// more than a third of a panel's height of the fault colour (the end
// lines are dashed). The series' colours are far from it, and the labels
// are too short to count.
func faultLines(img image.Image, panel int) int {
	b := img.Bounds()
	top := b.Min.Y + panel*int(panelHeight/vg.Inch*chartDPI)
	bottom := top + int(panelHeight/vg.Inch*chartDPI)
	lines, inLine := 0, false
	for x := b.Min.X; x < b.Max.X; x++ {
		red := 0
		for y := top; y < bottom; y++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r>>8 > 150 && g>>8 < 90 && bl>>8 < 90 {
				red++
			}
		}
		column := red > (bottom-top)/3
		if column && !inLine {
			lines++
		}
		inLine = column
	}
	return lines
}

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
			{broker: brokerBrokerd, nodes: 3, load: "1.50", loadAfter: "1.70", warmup: 5 * time.Second, refresh: refresh{interval: "1s", idleAfter: "30s", index: "httpd_access-2026.12.04"},
				latencies: loadgen.Latencies{time.Second, 2 * time.Second, 4 * time.Second}},
			{broker: brokerKafka, nodes: 3, load: "2.00", err: errors.New("latencybench: the warm-up line: not searchable\nlog tail")},
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
		"- 1-minute load average when each pipeline was started and when it had been measured: brokerd 1.50 → 1.70; Apache Kafka 2.00 → –;",
		"brokerd: 3 nodes, each in KRaft combined mode",
		"with 3 partitions, replication factor 3 and `min.insync.replicas=2`",
		"shipper `output.kafka.bulk_flush_frequency` 5ms; indexer `elasticsearch.flush_interval` 1s; Elasticsearch `index.refresh_interval` 1s (read from httpd_access-2026.12.04: Elasticsearch's default",
		"| Broker | lines | min (ms) | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | mean (ms) | warm-up line (ms) |\n",
		"| brokerd | 3 | 1,000 | 2,000 | 4,000 | 4,000 | 4,000 | 2,333 | 5,000 |\n",
		"### Failed runs\n\n- Apache Kafka: latencybench: the warm-up line: not searchable\n",
	)
	if strings.Contains(md, "| Apache Kafka |") || strings.Contains(md, "log tail") || strings.Contains(md, "Against the goals") {
		t.Errorf("the failed run has a row or its whole error, or single mode has goals; got:\n%s", md)
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

// steadyRun is a steady run of broker whose lines took latencies, with a
// burst and a count.
func steadyRun(broker string, latencies loadgen.Latencies) *brokerRun {
	return &brokerRun{broker: broker, nodes: 3, load: "1.00", loadAfter: "1.20", warmup: time.Second, latencies: latencies,
		steady: &steadyResult{lines: 600000, errorLines: 60000, found: 599998, writing: 300 * time.Second, maxLag: 12 * time.Millisecond,
			latencies: latencies, byLog: [numLogs]loadgen.Latencies{latencies, latencies[:1]},
			upstream: loadgen.Latencies{50 * time.Millisecond, 60 * time.Millisecond}, downstream: loadgen.Latencies{600 * time.Millisecond, 2 * time.Second},
			polls: pollStats{searches: 1000, fetches: 300, hits: 599998, total: 15 * time.Second, longest: 90 * time.Millisecond},
			es:    esStats{searches: 1000, search: 4500 * time.Millisecond, cached: 1400, indexed: 600000, indexing: 40 * time.Second, bulks: 3000},
			warm:  loadgen.Latencies{time.Second, 3 * time.Second},
			burst: &burstResult{lines: 200000, appended: 200001, all: 21500 * time.Millisecond, t10: 3 * time.Second, t90: 19 * time.Second, n10: 20000, n90: 180000},
			audit: &audit{lines: 800002, docs: 800003}}}
}

// TestMarkdownSteady renders a steady-mode report of both brokers: the
// latency rows, the load and throughput rows, the poller, the goals, the
// faults and the chart's link.
func TestMarkdownSteady(t *testing.T) {
	dir := t.TempDir()
	o, err := parseFlags([]string{"-mode", "steady", "-rate", "2000", "-duration", "5m", "-faults", "-indexer-set", "kafka.version=2.3.0 kafka.group_instance_id=x", "-doc", filepath.Join(dir, "docs", "benchmarks.md")})
	if err != nil {
		t.Fatal(err)
	}
	o.chart = filepath.Join(dir, "docs", chartName)
	r := testReport(o)
	bd := steadyRun(brokerBrokerd, loadgen.Latencies{800 * time.Millisecond, time.Second, 2600 * time.Millisecond})
	bd.steady.faults = []faultEvent{{at: 60 * time.Second, end: 66500 * time.Millisecond, short: "kill -9 broker", what: "kill -9 of brokerd node 2"}}
	kf := steadyRun(brokerKafka, loadgen.Latencies{700 * time.Millisecond, 1100 * time.Millisecond, 2 * time.Second})
	r.runs = []*brokerRun{bd, kf}
	md := r.markdown()
	wantAll(t, md,
		"a writer appends 2,000 lines a second for 5m0s",
		"This run also set: indexer `kafka.version=2.3.0 kafka.group_instance_id=x`.\n",
		"-faults=true -indexer-set 'kafka.version=2.3.0 kafka.group_instance_id=x' -mode steady",
		"Every 10th line goes to the error log",
		"| brokerd | 3 | 800 | 1,000 | 2,600 | 2,600 | 2,600 | 1,467 | 1,000 |\n",
		"| Apache Kafka | 3 | 700 | 1,100 | 2,000 | 2,000 | 2,000 | 1,267 | 1,000 |\n",
		"Before that, the same load for 30s warms the programs and JVMs up",
		"| brokerd | 50 / 60 | 600 / 2,000 |\n",
		"| brokerd | 600,000 | 2,000 | 12 | 1,000 / 2,600 | 800 / 800 | 1,000 / 3,000 | 2 | 10,000 | 21.5 | 800,003 / 800,002 |\n",
		"brokerd: 1,000 polls, 300 of which fetched documents (2000.0 on average), 15.0 ms on average and 90 ms at most from the poll's first request to its last response; Elasticsearch ran 1,000 shard queries in 4.5 s (query and fetch phases) and answered 1,400 from its request cache, and spent 40.0 s indexing 600,000 documents in 3,000 shard bulk operations",
		"| p50 ≤ 1,200 ms with brokerd | 1,000 | | yes |\n",
		"| p99 ≤ 2,500 ms with brokerd | 2,600 | | **no** |\n",
		"| p50 not worse than with Apache Kafka | 1,000 | 1,100 | yes |\n",
		"| p99 not worse than with Apache Kafka | 2,600 | 2,000 | **no** |\n",
		"### Faults in brokerd's run\n\n| began (s) | over (s) | what |\n|---:|---:|---|\n| 60.0 | 66.5 | kill -9 of brokerd node 2 |\n",
		"After the faults: 2 lines never searchable, 1 duplicate documents (800,003 documents for 800,002 lines appended).",
		"](latency.png)\n",
	)
	if strings.Contains(md, "Failed runs") {
		t.Errorf("a report without failures lists some:\n%s", md)
	}
}

// TestLinesParse parses the benchmark's lines with the indexer's own
// parser: the access lines in combined format with the marker in
// url.original, the error lines in httpd 2.4 format with the marker in the
// referrer, the time to the second (access) or microsecond (error), and
// unique markers.
func TestLinesParse(t *testing.T) {
	at := time.Date(2026, 12, 4, 6, 7, 8, 123456789, time.FixedZone("CET", 3600))
	seen := map[string]bool{}
	for _, n := range []int{0, 1, 249, 250, 9000, 123456} {
		for k := range numLogs {
			line := string(appendSteadyLine(nil, "0badcafe", k, n, at))
			if !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 {
				t.Fatalf("line %d is %q, want one line ending in a newline", n, line)
			}
			want := steadyMarked("0badcafe", k, n)
			var got string
			var ts time.Time
			switch k {
			case accessLog:
				var a httpdlog.Access
				if err := httpdlog.ParseAccess(line, &a); err != nil {
					t.Fatalf("access line %d %q: %v", n, line, err)
				}
				if a.Format != httpdlog.Combined || a.Method != "GET" || a.StatusCode != 200 {
					t.Errorf("access line %d parsed as format %v, %s %d; want combined, GET 200", n, a.Format, a.Method, a.StatusCode)
				}
				got, ts = a.URL, at.Truncate(time.Second)
				if !a.Timestamp.Equal(ts) {
					t.Errorf("access line %d at %v, want %v", n, a.Timestamp, ts)
				}
			case errorLog:
				var e httpdlog.Error
				if err := httpdlog.ParseError(line, time.UTC, &e); err != nil {
					t.Fatalf("error line %d %q: %v", n, line, err)
				}
				if e.Format != httpdlog.Error24 || e.Level != "error" || e.Code != "AH00128" {
					t.Errorf("error line %d parsed as format %v, level %q, code %q; want httpd-2.4, error, AH00128", n, e.Format, e.Level, e.Code)
				}
				got, ts = e.Referrer, at.Truncate(time.Microsecond)
				if !e.Timestamp.Equal(ts) {
					t.Errorf("error line %d at %v, want %v", n, e.Timestamp, ts)
				}
			}
			if got != want {
				t.Errorf("line %d of the %s: marked %q, want %q", n, k.fileName(), got, want)
			}
			if !strings.Contains(want, "lb=0badcafe-"+marker(k, n)) || seen[want] {
				t.Errorf("marked %q of line %d is not unique or lacks its marker", want, n)
			}
			seen[want] = true
		}
	}
	if single := requestTarget("0badcafe", "1", 1); seen[single] || single == steadyMarked("0badcafe", accessLog, 1) {
		t.Errorf("the single-mode target %q collides with a steady one", single)
	}
}

// TestLedger lays out lines: every 4th an error line, a closing error line
// after the measured ones, each log's lines in order, and how many of each
// log are among the first n.
func TestLedger(t *testing.T) {
	l := newLedger("r", 10, 4)
	var kinds []logKind
	for i := range l.total() {
		kinds = append(kinds, l.kinds[i])
		if got := l.lines[l.kinds[i]][l.pos[i]]; int(got) != i {
			t.Errorf("line %d: its log's position %d holds line %d", i, l.pos[i], got)
		}
	}
	a, e := accessLog, errorLog
	if want := []logKind{a, a, a, e, a, a, a, e, a, a, e}; !slices.Equal(kinds, want) {
		t.Errorf("kinds %v, want %v (the last the closing line)", kinds, want)
	}
	for _, tc := range []struct{ n, access, errors int }{{0, 0, 0}, {3, 3, 0}, {4, 3, 1}, {10, 8, 2}, {11, 8, 3}} {
		if got := [2]int{l.writtenIn(accessLog, tc.n), l.writtenIn(errorLog, tc.n)}; got != [2]int{tc.access, tc.errors} {
			t.Errorf("among the first %d lines: %v access and error lines, want %d and %d", tc.n, got, tc.access, tc.errors)
		}
	}
	if l := newLedger("r", 10, 0); l.total() != 10 || len(l.lines[errorLog]) != 0 {
		t.Errorf("without error lines: %d lines, %d error lines; want 10 and none", l.total(), len(l.lines[errorLog]))
	}
}

// TestUnfound names the lines not found yet as offset ranges: consecutive
// ones in one range, at most maxRuns, the last reaching to the end.
func TestUnfound(t *testing.T) {
	l := newLedger("r", 3*maxRuns+10, 0)
	for p := range l.offsets[accessLog] {
		l.offsets[accessLog][p] = int64(100 * p)
	}
	// Lines 0-2 found, 3-5 not, 6 found, 7 not, 8 found, then every other
	// line from 9 on found.
	for _, i := range []int{0, 1, 2, 6, 8} {
		l.found[i] = time.Second
	}
	for i := 9; i < l.total(); i += 2 {
		l.found[i] = time.Second
	}
	got := unfound(l, accessLog, 3, 9)
	if want := [][2]int64{{300, 500}, {700, 700}}; !slices.Equal(got, want) {
		t.Errorf("lines 3 to 8: %v, want %v", got, want)
	}
	last := l.total() - 1
	for l.found[last] != 0 {
		last--
	}
	got = unfound(l, accessLog, 3, l.total())
	if len(got) != maxRuns || got[0] != [2]int64{300, 500} || got[maxRuns-1][1] != int64(100*last) {
		t.Errorf("all lines: %d ranges from %v to %v; want %d, from [300 500], the last ending at %d", len(got), got[0], got[len(got)-1], maxRuns, 100*last)
	}
}

// TestPerSecond groups the lines found by the second they were appended
// in, with each second's p50, p99 and largest latency; lines not found and
// the closing line are left out.
func TestPerSecond(t *testing.T) {
	l := newLedger("r", 5, 0)
	ms := func(v int) time.Duration { return time.Duration(v) * time.Millisecond }
	for i, at := range []int{100, 200, 900, 1500, 1600} {
		l.appended[i] = ms(at)
	}
	for i, took := range []int{800, 1200, 1000, 0, 700} {
		if took > 0 {
			l.found[i] = l.appended[i] + ms(took)
		}
	}
	got := perSecond(l)
	want := []second{{at: 0, n: 3, p50: ms(1000), p99: ms(1200), max: ms(1200)}, {at: time.Second, n: 1, p50: ms(700), p99: ms(700), max: ms(700)}}
	if !slices.Equal(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestSustained is the lines that became searchable between the 10% and
// 90% counts over the time between them.
func TestSustained(t *testing.T) {
	b := &burstResult{t10: 2 * time.Second, t90: 10 * time.Second, n10: 10000, n90: 90000}
	if got := b.sustained(); got != 10000 {
		t.Errorf("got %v lines/s, want 10000", got)
	}
	if got := (&burstResult{}).sustained(); got != 0 {
		t.Errorf("without counts: got %v lines/s, want 0", got)
	}
}

// TestChart writes the chart of two runs, one with faults and a peak that
// calls for a log scale: a PNG of one 1200 by 400 pixel panel per run.
func TestChart(t *testing.T) {
	mk := func(peak time.Duration) []second {
		var out []second
		for s := range 120 {
			sec := second{at: time.Duration(s) * time.Second, n: 2000, p50: 700 * time.Millisecond, p99: 1500 * time.Millisecond, max: 1900 * time.Millisecond}
			if s == 70 {
				sec.p99, sec.max = peak, peak
			}
			out = append(out, sec)
		}
		return out
	}
	bd := &brokerRun{broker: brokerBrokerd, nodes: 3, steady: &steadyResult{seconds: mk(25 * time.Second), faults: []faultEvent{
		{at: 24 * time.Second, end: 29 * time.Second, short: "kill -9 broker"},
		{at: 48 * time.Second, end: 49 * time.Second, short: "kill -9 shipper"},
		{at: 72 * time.Second, end: 85 * time.Second, short: "kill -9 indexer"},
		{at: 96 * time.Second, end: 116 * time.Second, short: "Elasticsearch stopped"},
	}}}
	kf := &brokerRun{broker: brokerKafka, nodes: 3, steady: &steadyResult{seconds: mk(2 * time.Second)}}
	if a := axesFor([]*brokerRun{bd, kf}); !a.log || a.xMax != 120 {
		t.Errorf("axes %+v, want a log scale to 120 s", a)
	}
	if a := axesFor([]*brokerRun{kf}); a.log || a.yMin != 0 {
		t.Errorf("axes without a peak %+v, want a linear scale from 0", a)
	}
	for _, runs := range [][]*brokerRun{{bd, kf}, {kf}} {
		path := filepath.Join(t.TempDir(), chartName)
		if err := writeChart(path, runs); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s is no PNG: %v", path, err)
		}
		if b := img.Bounds(); b.Dx() != 1200 || b.Dy() != 400*len(runs) {
			t.Errorf("%d runs: a %dx%d PNG, want 1200x%d", len(runs), b.Dx(), b.Dy(), 400*len(runs))
		}
		// Each panel shows its own run's faults: a start and an end line
		// for each, and nothing red where a run had none.
		for i, run := range runs {
			if got, want := faultLines(img, i), 2*len(run.steady.faults); got != want {
				t.Errorf("%d runs: panel %d (%s) has %d fault lines, want %d", len(runs), i+1, run.broker, got, want)
			}
		}
	}
	for _, tc := range []struct {
		hi   float64
		want []string
	}{
		{2.77, []string{"0", "0.5", "1", "1.5", "2", "2.5"}},
		{0.75, []string{"0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7"}},
	} {
		var labels []string
		for _, tick := range linearTicks(0, tc.hi) {
			if tick.Label != "" {
				labels = append(labels, tick.Label)
			}
		}
		if !slices.Equal(labels, tc.want) {
			t.Errorf("labels from 0 to %v s: %v, want %v", tc.hi, labels, tc.want)
		}
	}
	if err := writeChart(filepath.Join(t.TempDir(), chartName), []*brokerRun{{broker: brokerBrokerd}}); err == nil {
		t.Error("a chart without a steady run was written")
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
		{"-nodes", "0"}, {"-error-every", "1"}, {"-burst", "-1"}, {"-faults"}, {"-mode", "steady", "-faults", "-broker", "kafka"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%v was accepted", args)
		}
	}
}
