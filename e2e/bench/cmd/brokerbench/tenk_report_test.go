package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"logpipe/e2e/bench/benchkit"
)

// TestScaleParts: tenk and conns are -parts entries of their own, with
// their flags; a misspelt entry is refused.
func TestScaleParts(t *testing.T) {
	o, err := parseFlags([]string{"-parts", "tenk,conns", "-conns", "500", "-tenk-topics", "2"})
	if err != nil {
		t.Fatal(err)
	}
	if o.single || o.clusters || !o.many.tenk || !o.many.conns || o.many.connections != 500 || o.many.topics != 2 || o.many.perTopic != 1000 {
		t.Errorf("-parts tenk,conns -conns 500 -tenk-topics 2 gave %+v, single %v, clusters %v", o.many, o.single, o.clusters)
	}
	if _, err := parseFlags([]string{"-parts", "tenks"}); err == nil || !strings.Contains(err.Error(), `"tenks"`) {
		t.Errorf("-parts tenks: got error %v, want one naming the entry", err)
	}
}

// TestTenkMarkdownGoals renders the tenk section for a brokerd within the
// goals and a Kafka slower to restart, then for a brokerd past them.
func TestTenkMarkdownGoals(t *testing.T) {
	o, err := parseFlags([]string{"-parts", "tenk"})
	if err != nil {
		t.Fatal(err)
	}
	rep := &report{opts: o, machine: benchkit.Machine{CPUs: 2}}
	bd := &tenkResult{name: "brokerd", load: "0.5 0.4 0.3", create: 9 * time.Second, rssKB: 80 << 10, restartRSSKB: 90 << 10,
		listening: 2 * time.Second, readable: 3 * time.Second, hasGo: true,
		goEmpty: goMemory{inUse: 4 << 20}, goFull: goMemory{inUse: 4<<20 + 10000*3000, goroutines: 40},
		openedLogs: `msg="opened partition logs" took=1.5s`}
	kf := &tenkResult{name: "kafka", load: "1.5 1 1", create: 30 * time.Second, rssKB: 900 << 10, listening: 16 * time.Second, readable: 20 * time.Second}
	md := rep.tenkMarkdown(&o.many, time.Now(), time.Now(), []*tenkResult{bd, kf})
	containsAll(t, "report", md, []string{
		"## 10,000 partitions: brokerd vs Apache Kafka\n",
		"| create 10,000 partitions (s) | 9.0 | 30.0 | 0.30 |",
		"| after kill -9: every partition read (s) | 3.00 | 20.00 | 0.15 |",
		"| Go heap and stacks per partition (bytes) | 3,000 | – | – |",
		"- RSS with 10,000 partitions under 100 MiB: met, 90 MiB",
		"under 5s: met, 3.00 s. brokerd's log of the restart: `msg=\"opened partition logs\" took=1.5s`.\n",
		"a quarter of Kafka's time for the same data: met, 15% of Kafka's 20.00 s.",
		"go run ./e2e/bench/cmd/brokerbench -parts tenk",
	})

	bd.readable, bd.restartRSSKB = 7*time.Second, 120<<10
	kf.err = errors.New("create topic tenk-3: timed out\nmore")
	kf.slowStart = "devstack: kafka node 1 not ready"
	md = rep.tenkMarkdown(&o.many, time.Now(), time.Now(), []*tenkResult{bd, kf})
	containsAll(t, "report", md, []string{
		"under 100 MiB: not met, 120 MiB",
		"under 5s: not met, 7.00 s.",
		"- Kafka: create topic tenk-3: timed out\n",
		"- Kafka was not ready after the restart in the time devstack allows, and the reading client went on until every record was read: devstack: kafka node 1 not ready\n",
	})
	if strings.Contains(md, "a quarter of Kafka's time") {
		t.Errorf("report compares with a Kafka run that failed:\n%s", md)
	}
}

// TestConnsMarkdownGoals renders the conns section and its goals.
func TestConnsMarkdownGoals(t *testing.T) {
	o, err := parseFlags([]string{"-parts", "conns", "-conns", "1000"})
	if err != nil {
		t.Fatal(err)
	}
	rep := &report{opts: o, machine: benchkit.Machine{CPUs: 2}}
	bd := &connsResult{name: "brokerd", load: "0.5", held: 1000, beforeKB: 20 << 10, heldKB: 36 << 10, hasGo: true,
		goBefore: goMemory{inUse: 1 << 20, goroutines: 20}, goHeld: goMemory{inUse: 1<<20 + 1000*16000, goroutines: 2021},
		newClient: []time.Duration{time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond}}
	kf := &connsResult{name: "kafka", load: "0.5", held: 1000, beforeKB: 500 << 10, heldKB: 564 << 10, newClient: []time.Duration{6 * time.Millisecond}}
	md := rep.connsMarkdown(&o.many, time.Now(), time.Now(), []*connsResult{bd, kf})
	containsAll(t, "report", md, []string{
		"## 10,000 idle connections: brokerd vs Apache Kafka\n",
		"| RSS growth (MiB) | 16.0 | 64.0 | 0.25 |",
		"| RSS growth per connection (KiB) | 16.4 | 65.5 | 0.25 |",
		"| new client answered ApiVersions + Metadata, slowest of 5 (ms) | 3.00 | 6.00 | 0.50 |",
		"| Go heap and stacks per connection (bytes) | 16,000 | – | – |",
		"| goroutines per connection | 2.00 | – | – |",
		"- 1,000 idle connections with RSS growth under 100 MiB: met, 16.0 MiB.",
		"(here: the slowest of five under 100ms): met, 3.00 ms.",
	})
}
