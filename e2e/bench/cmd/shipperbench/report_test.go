package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"logpipe/e2e/bench/benchkit"
)

// TestMarkdown renders a report of one broker where the shipper is
// faster than both rsyslog runs on one file, uses more CPU than the bare
// rsyslog on the tailed files, and misses the RSS goal; a failed run is
// listed.
func TestMarkdown(t *testing.T) {
	o, err := parseFlags([]string{"-brokers", "brokerd", "-lines", "1000000", "-doc", "", "-runs", "1"})
	if err != nil {
		t.Fatal(err)
	}
	sec := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	res := func(peer string, secs, cpu float64, rssMiB int64) *result {
		return &result{peer: peer, lines: 1e6, bytes: 200 << 20, records: 1e6, elapsed: sec(secs), cpu: cpu, peakKB: rssMiB << 10, load: "1.5"}
	}
	rep := &report{opts: o, started: time.Now(), finished: time.Now(), machine: benchkit.Machine{CPUs: 2}, singleBytes: 200 << 20}
	fileKey, tailKey := caseKey{"brokerd", inputFile}, caseKey{"brokerd", inputTail}
	rep.add(fileKey, res(peerShipper, 1.6, 3, 40))
	rep.add(fileKey, res(peerRsyslog, 8, 9, 200))
	rep.add(fileKey, res(peerRsyslogRaw, 4, 4, 150))
	shipTail := res(peerShipper, 4, 3.5, 70)
	shipTail.writer = sec(1.25)
	rep.add(tailKey, shipTail)
	rep.add(tailKey, res(peerRsyslogRaw, 5, 3, 160))
	rep.add(tailKey, &result{peer: peerRsyslog, err: "the peer exited\nwith a long log"})
	md := rep.markdown()
	for _, want := range []string{
		"## shipper vs rsyslog\n",
		"| Broker | Input | Measure | shipper | rsyslog | rsyslog-raw | shipper / rsyslog | shipper / rsyslog-raw |",
		"| brokerd | 1 file | lines/s | 625,000 | 125,000 | 250,000 | 5.00 | 2.50 |",
		"| brokerd | 1 file | MiB/s of log read | 125.0 | 25.0 | 50.0 | 5.00 | 2.50 |",
		"| brokerd | 1 file | CPU-s per million lines | 3.00 | 9.00 | 4.00 | 0.33 | 0.75 |",
		"| brokerd | 100 files, tailed | lines/s | 250,000 | – | 200,000 | – | 1.25 |",
		"| brokerd | 100 files, tailed | writer's time to append every line (s) | 1.25 |",
		"- 100 MiB/s from one file, to brokerd: met, 125.0 MiB/s (625,000 lines/s).",
		"- Fewer CPU-s per million lines than rsyslog, brokerd, 1 file: met, 3.00 against 9.00 (0.33).",
		"- Fewer CPU-s per million lines than rsyslog-raw, brokerd, 100 files, tailed: **not met**, 3.50 against 3.00 (1.17).",
		"- RSS under 64 MiB with 100 files, to brokerd: **not met**, peak 70.0 MiB (the highest of the runs).",
		"Filebeat about 8 MiB/s, Vector about 77 MiB/s file→TCP",
		"### Failed runs\n\n- brokerd, 100 files, tailed, rsyslog, run 1: the peer exited\n",
		"go run ./e2e/bench/cmd/shipperbench -brokers brokerd -doc '' -lines 1000000 -runs 1\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "records for") || strings.Contains(md, "slowest") {
		t.Errorf("report sees duplicates or several runs where there are none:\n%s", md)
	}
}

// TestMedianRun: with three runs, the figures are the median run's, the
// spread row shows the slowest and fastest, peak RSS is the highest, and
// a run with duplicates is reported.
func TestMedianRun(t *testing.T) {
	o, err := parseFlags([]string{"-brokers", "kafka", "-inputs", "tail", "-peers", "shipper"})
	if err != nil {
		t.Fatal(err)
	}
	rep := &report{opts: o, started: time.Now(), finished: time.Now()}
	k := caseKey{"kafka", inputTail}
	for _, c := range []struct {
		secs, cpu float64
		rss       int64
		records   int64
	}{{2, 3, 50, 1e6}, {4, 5, 66, 1e6}, {1, 2, 40, 1e6 + 7}} {
		rep.add(k, &result{peer: peerShipper, lines: 1e6, bytes: 100 << 20, records: c.records, elapsed: time.Duration(c.secs * float64(time.Second)), cpu: c.cpu, peakKB: c.rss << 10})
	}
	md := rep.markdown()
	for _, want := range []string{
		"| Broker | Input | Measure | shipper |\n",
		"| Apache Kafka | 100 files, tailed | lines/s | 500,000 |\n",
		"| Apache Kafka | 100 files, tailed | lines/s, slowest – fastest run | 250,000 – 1,000,000 |\n",
		"| Apache Kafka | 100 files, tailed | CPU-s per million lines | 3.00 |\n",
		"| Apache Kafka | 100 files, tailed | peak RSS, highest of the runs (MiB) | 66.0 |\n",
		"**not met**, peak 66.0 MiB",
		"Not exactly one record per line: Apache Kafka, 100 files, tailed, shipper: 1,000,007 records for 1,000,000 lines.",
		"ran 3 times",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}

func TestParseFlags(t *testing.T) {
	o, err := parseFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.lines != 1000000 || o.files != 100 || strings.Join(o.brokers, ",") != "brokerd,kafka" ||
		strings.Join(o.peers, ",") != "shipper,rsyslog,rsyslog-raw" || strings.Join(o.inputs, ",") != "file,tail" || o.doc != "docs/benchmarks.md" {
		t.Fatalf("defaults: %+v", o)
	}
	for _, bad := range [][]string{{"-brokers", "redpanda"}, {"-peers", "filebeat"}, {"-lines", "0"}, {"-files", "10", "-lines", "5"}, {"extra"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("parseFlags(%q) accepted", bad)
		}
	}
}

// TestTailLoad writes the many-files load and checks that every file got
// its share of whole lines and that they add up to the total.
func TestTailLoad(t *testing.T) {
	l := tailLoad{dir: t.TempDir(), files: 7, lines: 1000, chunk: 3, seed: 1}
	if err := l.create(); err != nil {
		t.Fatal(err)
	}
	n, _, err := l.write(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var lines, size int
	for i, p := range l.paths() {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Count(string(b), "\n")
		if got != l.perFile(i) || got < 142 || got > 143 || !strings.HasSuffix(string(b), "\n") {
			t.Errorf("%s: %d lines, want %d", p, got, l.perFile(i))
		}
		lines += got
		size += len(b)
	}
	if lines != 1000 || int64(size) != n {
		t.Fatalf("%d lines, %d bytes in the files; write reported %d bytes", lines, size, n)
	}
}
