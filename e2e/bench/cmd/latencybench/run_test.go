package main

import (
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSteadyModeBrokerd runs the command for real, as a short steady run
// against a three-node brokerd cluster with -doc FILE: it builds the
// programs, starts Elasticsearch, brokerd, the topic, the indexer and the
// shipper, appends 200 lines a second for 3 s (not measured) and 10 s
// (every 10th an error line), then 3,000 lines as fast as they go, and writes its section into a
// document that has another one, and the chart beside it. Every line is
// found, the documents match the lines one for one, the latency row holds
// ordered, positive figures, and the chart is a PNG of one panel.
func TestSteadyModeBrokerd(t *testing.T) {
	dir := t.TempDir()
	doc := filepath.Join(dir, "benchmarks.md")
	const other = "# Benchmarks\n\n## another benchmark\n\nits figures\n"
	if err := os.WriteFile(doc, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	o, err := parseFlags([]string{"-mode", "steady", "-broker", "brokerd", "-rate", "200", "-warmup", "3s", "-duration", "10s", "-burst", "3000", "-doc", doc})
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
		"go run ./e2e/bench/cmd/latencybench -broker brokerd -burst 3000 -doc "+doc+" -duration 10s -mode steady -rate 200 -warmup 3s\n",
		"`output.kafka.bulk_flush_frequency` 5ms",
		"`elasticsearch.flush_interval` 1s",
		"`index.refresh_interval` 1s (read from httpd_access-",
		"brokerd: 3 nodes",
		"](latency.png)\n",
	)
	if strings.Contains(md, "Failed runs") {
		t.Fatalf("the report lists failed runs:\n%s", md)
	}
	var rows []string
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(line, "| brokerd |") {
			rows = append(rows, line)
		}
	}
	if len(rows) < 2 {
		t.Fatalf("brokerd has rows %q, want a latency row and a load row", rows)
	}
	// The load row: 2,000 lines at 200 a second, none never searchable,
	// and one document for each line appended: the 600 warm-up, 2,000
	// steady and 3,000 as-fast-as-it-goes lines and each phase's closing
	// error line.
	load := strings.Split(strings.Trim(rows[1], "| "), " | ")
	if len(load) != 11 || load[1] != "2,000" || load[2] != "200" || load[7] != "0" || load[10] != "5,603 / 5,603" {
		t.Errorf("brokerd's load row is %q, want 11 cells: 2,000 lines, 200/s, 0 never searchable, 5,603 / 5,603 documents", rows[1])
	}
	row := rows[0]
	cells := strings.Split(strings.Trim(row, "| "), " | ")
	if len(cells) != 9 || cells[1] != "2,000" {
		t.Fatalf("brokerd's latency row is %q, want 9 cells for 2,000 lines", row)
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

	f, err := os.Open(filepath.Join(dir, chartName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatalf("the chart is no PNG: %v", err)
	}
	if cfg.Width != 1200 || cfg.Height != 400 {
		t.Errorf("the chart is %dx%d, want 1200x400 (one panel)", cfg.Width, cfg.Height)
	}
}
