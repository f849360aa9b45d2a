package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"logpipe/e2e/bench/benchkit"
	"logpipe/indexer/httpdlog"
	"logpipe/pipeline/event"
)

// TestGeneratorEvents checks the generated events: the same seed gives the
// same bytes, every id is distinct and is event.ID of host, file and
// offset, offsets follow the line lengths, every line parses as a combined
// access line whose time is within the run's day, and the events spread
// over every partition.
func TestGeneratorEvents(t *testing.T) {
	const n, parts = 5000, 6
	a, b := newGenerator(7, n, parts), newGenerator(7, n, parts)
	ids := map[string]bool{}
	perPart := map[int32]int{}
	nextOffset := map[string]int64{}
	var acc httpdlog.Access
	var errLine httpdlog.Error
	ipv6 := 0
	for i := 0; i < n; i++ {
		ev, part := a.next()
		ev2, part2 := b.next()
		if !bytes.Equal(ev.AppendJSON(nil), ev2.AppendJSON(nil)) || part != part2 {
			t.Fatalf("event %d differs between two generators of the same seed", i)
		}
		if ids[ev.Event.ID] {
			t.Fatalf("event %d repeats id %s", i, ev.Event.ID)
		}
		ids[ev.Event.ID] = true
		perPart[part]++
		host := ev.Host.Name
		if ev.Log.Offset != nextOffset[host] {
			t.Fatalf("event %d of %s at offset %d, want %d", i, host, ev.Log.Offset, nextOffset[host])
		}
		nextOffset[host] += int64(len(ev.Message)) + 1
		var fileID string
		for _, h := range a.hosts {
			if h.name == host {
				fileID = h.fileID
			}
		}
		if want := event.ID(host, fileID, ev.Log.Offset); ev.Event.ID != want {
			t.Fatalf("event %d has id %s, want %s", i, ev.Event.ID, want)
		}
		if len(ev.Tags) != 1 || ev.Tags[0] != "access" {
			t.Fatalf("event %d tags %v", i, ev.Tags)
		}
		kind, err := httpdlog.Parse(ev.Message, time.UTC, &acc, &errLine)
		if err != nil || kind != httpdlog.KindAccess || acc.Format != httpdlog.Combined {
			t.Fatalf("event %d: %q parsed as %v (%v)", i, ev.Message, kind, err)
		}
		if strings.Contains(acc.SourceAddress, ":") {
			ipv6++
		}
		day := generatorStart.Truncate(24 * time.Hour)
		if ts := acc.Timestamp.UTC(); ts.Before(generatorStart) || !ts.Before(day.Add(24*time.Hour)) {
			t.Fatalf("event %d: line time %v outside the run's day", i, ts)
		}
		if ev.Timestamp.Before(acc.Timestamp) {
			t.Fatalf("event %d: read at %v, before its line time %v", i, ev.Timestamp, acc.Timestamp)
		}
		var back map[string]any
		if err := json.Unmarshal(ev.AppendJSON(nil), &back); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
	}
	if len(perPart) != parts {
		t.Fatalf("events on %d partitions, want %d", len(perPart), parts)
	}
	if ipv6 < n/20 || ipv6 > n/5 {
		t.Fatalf("%d IPv6 clients in %d lines", ipv6, n)
	}
}

// TestSpoolCutsAsTheSink fills a spool and checks that requests are cut
// where the sink cuts them, hold the sink's action lines, and read back.
func TestSpoolCutsAsTheSink(t *testing.T) {
	sp, err := newSpool(t.TempDir(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	body := []byte(`{"message":"` + strings.Repeat("x", 300) + `"}`)
	// Each item counts len(body) + len(index) + len(id) + 48 = 365 + 5 + 2
	// + 48 = 420 bytes, so three items reach 1000.
	for i := 0; i < 7; i++ {
		if err := sp.add("ix-01", "i"+string(rune('0'+i)), body); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.finish(); err != nil {
		t.Fatal(err)
	}
	if len(sp.requests) != 3 || sp.requests[0].items != 3 || sp.requests[1].items != 3 || sp.requests[2].items != 1 || sp.docs != 7 {
		t.Fatalf("requests %+v, %d docs", sp.requests, sp.docs)
	}
	got, err := sp.read(2, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"create":{"_index":"ix-01","_id":"i6"}}` + "\n" + string(body) + "\n"
	if string(got) != want {
		t.Fatalf("request 2 is %q, want %q", got, want)
	}
	sp.close()
	sp.close()
}

// TestDocMakerBuildsTheIndexersDocument makes the document of a generated
// event and checks the ECS fields the indexer adds and the index.
func TestDocMakerBuildsTheIndexersDocument(t *testing.T) {
	m, err := newDocMaker(ceilingRoute)
	if err != nil {
		t.Fatal(err)
	}
	ev, part := newGenerator(1, 10, 6).next()
	value := ev.AppendJSON(nil)
	index, d, err := m.make(benchTopic, part, 0, value, ev.Timestamp)
	if err != nil {
		t.Fatal(err)
	}
	if index != "httpd_access-ceiling-2026.11.21" || d.ID != ev.Event.ID {
		t.Fatalf("index %q id %q", index, d.ID)
	}
	var doc struct {
		Event struct {
			Original string `json:"original"`
			Ingested string `json:"ingested"`
		} `json:"event"`
		HTTP struct {
			Request struct {
				Method string `json:"method"`
			} `json:"request"`
		} `json:"http"`
		Source struct {
			Address string `json:"address"`
		} `json:"source"`
	}
	if err := json.Unmarshal(d.Body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Event.Original != ev.Message || doc.Event.Ingested == "" || doc.HTTP.Request.Method == "" || doc.Source.Address == "" {
		t.Fatalf("document %s", d.Body)
	}
	if _, _, err := m.make(benchTopic, 0, 1, []byte(`{"message":"not an access line","tags":["access"]}`), ev.Timestamp); err == nil {
		t.Fatal("a line that does not parse was accepted")
	}
}

// TestParseMetrics reads the series the benchmark polls.
func TestParseMetrics(t *testing.T) {
	page := "# HELP x y\n# TYPE logpipe_indexer_documents_total counter\n" +
		mIndexed + " 1.5e+06\n" + mDuplicate + " 3\nlogpipe_indexer_bulk_request_bytes_sum 5.24288e+06\n\n"
	m, err := parseMetrics(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	if m[mIndexed] != 1.5e6 || m[mDuplicate] != 3 || m[mBulkBytes] != 5242880 || len(m) != 3 {
		t.Fatalf("parsed %v", m)
	}
}

// TestMarkdown renders a report with a pipeline at 80% of the ceiling and
// checks the rows, the ratio and the goal lines.
func TestMarkdown(t *testing.T) {
	o, err := parseFlags([]string{"-events", "1000", "-doc", ""})
	if err != nil {
		t.Fatal(err)
	}
	rep := &report{
		opts: o, started: time.Now(), finished: time.Now().Add(time.Minute),
		machine: benchkit.Machine{CPUs: 2},
		docs:    1000, docBytes: 1000 * 1200, valueBytes: 1000 * 600, bulkBytes: 1300000, bulkRequests: 1,
		ceilings: []*phase{
			{round: 1, kept: true, load: "3.5 1 1", docs: 1000, elapsed: time.Second, bodyBytes: 1 << 20, requests: 1, esCPU: 1.8, clientCPU: 0.1,
				machine: cpuTimes{busy: 2.5, idle: 0.5, iowait: 0.25, steal: 0.1}},
			{round: 2, kept: true, load: "1.5 1 1", docs: 1000, elapsed: time.Second, bodyBytes: 1 << 20, requests: 1, esCPU: 1.8, clientCPU: 0.1,
				machine: cpuTimes{busy: 1.9}},
		},
		pipelines: []*phase{
			{round: 1, kept: true, load: "0.5 1 1", docs: 1000, elapsed: 1500 * time.Millisecond, bodyBytes: 1 << 20, requests: 1, esCPU: 1.9,
				indexerCPU: 0.2, indexerPeakKB: 40 << 10, halfRSSKB: 30 << 10, brokerCPU: 0.1, startup: 500 * time.Millisecond},
			{round: 2, kept: true, load: "2.5 1 1", docs: 1000, elapsed: 1000 * time.Millisecond, bodyBytes: 1 << 20, requests: 1, esCPU: 1.9,
				indexerCPU: 0.2, indexerPeakKB: 35 << 10, halfRSSKB: 32 << 10, brokerCPU: 0.1, startup: 300 * time.Millisecond},
		},
	}
	md := rep.markdown()
	for _, want := range []string{
		"## indexer vs direct bulk load\n",
		"| documents/s | 800 | 1,000 | 0.800 |",
		"| MiB/s of bulk request bodies | 0.80 | 1.00 | 0.800 |",
		"| elapsed (s) | 2.5 | 2.0 | 1.250 |",
		"| indexer CPU (s) | 0.4 | – | – |",
		"| this command's CPU: the load client, or the metrics poller (s) | 0.0 | 0.2 | – |",
		"| CPU used by other processes on the machine (s) | 0.0 | 0.6 | – |",
		"| machine CPU waiting for I/O (s) | 0.0 | 0.2 | – |",
		"| documents per CPU second of the phase's own processes | 455 | 526 | 0.864 |",
		"| 1 | ceiling | yes | 667 | 1,000 | 0.667 | 1.900 / 1.800 | 0.00 / 0.60 |",
		"| indexer peak RSS (MiB) | 40 | – | – |",
		"| indexer start to /readyz, mean (s) | 0.4 | – | – |",
		"| 2 | pipeline | yes | 1,000 | 1,000 | 1.000 | 1.900 / 1.800 | 0.00 / 0.00 |",
		"round 1 ceiling 3.5, round 1 pipeline 0.5, round 2 pipeline 2.5, round 2 ceiling 1.5",
		"**not met**, the pipeline reached 80.0% of the ceiling (800 against 1,000 documents/s)",
		"peak RSS was 40 MiB for 1,000 documents a round (32 MiB when half of them were in)",
		"Elasticsearch used 1.80 of the 2 CPUs on average",
		"it is the bottleneck",
		"(workers + 2) × flush_bytes = 20 MiB",
		"about 52,000 documents/s for 2.5 KB",
		"**It was 3.5 on 2 CPUs**",
		"go run ./e2e/bench/cmd/indexerbench -doc '' -events 1000",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if !strings.Contains(md, "the same mappings (checked)") {
		t.Errorf("report does not say the mappings were the same:\n%s", md)
	}
	if strings.Contains(md, "not reliable") {
		t.Errorf("a quiet machine's run is flagged as unreliable:\n%s", md)
	}
	rep.pipelines[0].elapsed = time.Second
	rep.pipelines[1].mapping = `{"properties":{}}`
	rep.ceilings[1].machine.busy = 3.5 // 1.6 s of others' work in a 1 s phase
	md = rep.markdown()
	if !strings.Contains(md, "took 0.00 CPUs on average during the pipeline phases and 1.10 during the ceiling phases, so this wall-clock verdict is not reliable") {
		t.Errorf("a run with much outside work is not flagged:\n%s", md)
	}
	if !strings.Contains(md, ": met, the pipeline reached 100.0% of the ceiling") {
		t.Errorf("a pipeline as fast as the ceiling does not meet the goal:\n%s", md)
	}
	if !strings.Contains(md, "**The phases' indices ended with different mappings**") {
		t.Errorf("report does not flag different mappings:\n%s", md)
	}

	// A third round, disturbed and not kept, counts in no total.
	rep.ceilings = append(rep.ceilings, &phase{round: 3, docs: 1000, elapsed: 10 * time.Second, esCPU: 1, machine: cpuTimes{busy: 20}})
	rep.pipelines = append(rep.pipelines, &phase{round: 3, docs: 1000, elapsed: 10 * time.Second, esCPU: 1})
	md = rep.markdown()
	for _, want := range []string{
		"| documents/s | 1,000 | 1,000 | 1.000 |",
		"| 3 | ceiling | no | 100 | 100 | 1.000 | 1.000 / 1.000 | 0.00 / 1.90 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report with a disturbed round lacks %q:\n%s", want, md)
		}
	}
	rep.disturbed = true
	if md := rep.markdown(); !strings.Contains(md, "**Fewer than 2 rounds ran undisturbed") {
		t.Errorf("report does not say that disturbed rounds count:\n%s", md)
	}
}

// TestWriteSectionOwnsOnlyItsSection writes the report into a document
// with another benchmark's section and checks that one is kept.
func TestWriteSectionOwnsOnlyItsSection(t *testing.T) {
	path := t.TempDir() + "/benchmarks.md"
	other := "# Benchmarks\n\n## brokerd vs Apache Kafka\n\nfigures\n"
	if err := os.WriteFile(path, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := benchkit.WriteSection(path, sectionHeading, sectionHeading+"\n\nrun\n"); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := os.ReadFile(path)
	if string(got) != other+"\n"+sectionHeading+"\n\nrun\n" {
		t.Fatalf("document is\n%s", got)
	}
}

// TestParseCPUTimes reads /proc/stat's first line: busy is user, nice and
// system, interrupts irq and softirq; idle includes iowait.
func TestParseCPUTimes(t *testing.T) {
	got := parseCPUTimes("cpu  1000 100 300 5000 200 10 20 30 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n")
	want := cpuTimes{busy: 14, intr: 0.3, idle: 52, iowait: 2, steal: 0.3}
	if d := got.since(want); math.Abs(d.busy)+math.Abs(d.intr)+math.Abs(d.idle)+math.Abs(d.iowait)+math.Abs(d.steal) > 1e-9 {
		t.Fatalf("parsed %+v, want %+v", got, want)
	}
	if (parseCPUTimes("intr 1 2 3\n") != cpuTimes{}) {
		t.Fatal("a text without a cpu line gave times")
	}
}
