package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSingleModeBrokerd runs the command for real, as `-lines 3 -broker
// brokerd -doc FILE`: it builds the programs, starts Elasticsearch,
// brokerd, the indexer and the shipper, measures three lines one at a
// time and writes its section into a document that has another one. The
// row holds three lines with ordered, positive figures, and the settings
// in effect are named.
func TestSingleModeBrokerd(t *testing.T) {
	doc := filepath.Join(t.TempDir(), "benchmarks.md")
	const other = "# Benchmarks\n\n## another benchmark\n\nits figures\n"
	if err := os.WriteFile(doc, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := parseFlags([]string{"-lines", "3", "-broker", "brokerd", "-doc", doc})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	if err := run(ctx, o); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	md := string(b)
	if !strings.HasPrefix(md, other+"\n"+sectionHeading+"\n") {
		t.Fatalf("the document does not keep the other section and then add this one; got:\n%s", md)
	}
	wantAll(t, md,
		"go run ./e2e/bench/cmd/latencybench -broker brokerd -doc "+doc+" -lines 3\n",
		"`output.kafka.bulk_flush_frequency` 5ms",
		"`elasticsearch.flush_interval` 1s",
		"`index.refresh_interval` 1s (read from httpd_access-",
	)
	if strings.Contains(md, "Failed runs") {
		t.Fatalf("the report lists failed runs:\n%s", md)
	}
	var row string
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "| brokerd |") {
			row = line
		}
	}
	cells := strings.Split(strings.Trim(row, "| "), " | ")
	if len(cells) != 9 || cells[1] != "3" {
		t.Fatalf("brokerd's row is %q, want 9 cells for 3 lines", row)
	}
	var figs []int // min, p50, p90, p99, max, mean, warm-up, in ms
	for _, c := range cells[2:] {
		v, err := strconv.Atoi(strings.ReplaceAll(c, ",", ""))
		if err != nil {
			t.Fatalf("brokerd's row %q: %v", row, err)
		}
		figs = append(figs, v)
	}
	minMs, p50, p90, p99, maxMs, mean, warmup := figs[0], figs[1], figs[2], figs[3], figs[4], figs[5], figs[6]
	if minMs <= 0 || minMs > p50 || p50 > p90 || p90 > p99 || p99 > maxMs || mean < minMs || mean > maxMs || warmup <= 0 {
		t.Errorf("brokerd's figures min %d, p50 %d, p90 %d, p99 %d, max %d, mean %d, warm-up %d ms: want 0 < min <= p50 <= p90 <= p99 <= max, min <= mean <= max, warm-up > 0",
			minMs, p50, p90, p99, maxMs, mean, warmup)
	}
}
