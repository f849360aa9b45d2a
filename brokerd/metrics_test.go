package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"logpipe/brokerd/broker"
)

// partitionStats are n partitions of 10 topics, every third one
// followed (not led) by this node.
func partitionStats(n int) []broker.PartitionStats {
	ps := make([]broker.PartitionStats, n)
	for i := range ps {
		ps[i] = broker.PartitionStats{
			Topic: fmt.Sprintf("topic-%d", i%10), Partition: int32(i / 10),
			LogStartOffset: int64(i), LogEndOffset: int64(2 * i), HighWatermark: int64(2*i - 1),
			SizeBytes: int64(1000 * i), Segments: 1 + i%3, Producers: i % 5,
			Leader: i%3 != 0, UnderReplicated: i%3 == 1, ISR: 1 + i%3, FetchLag: int64(i % 7),
		}
	}
	return ps
}

// TestPartitionSeriesParse: the partition counts and the per-partition
// families written as text parse as Prometheus's text format, with one
// series per partition (the fetch lag only on followers) and each
// partition's values.
func TestPartitionSeriesParse(t *testing.T) {
	ps := partitionStats(30)
	ps[4].Topic = "odd\"name\\with\nescapes"
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	writePartitionSeries(w, ps)
	w.Flush()
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(&buf)
	if err != nil {
		t.Fatalf("does not parse: %v", err)
	}
	if len(mfs) != len(partitionFamilies)+3 {
		t.Errorf("got %d families, want %d", len(mfs), len(partitionFamilies)+3)
	}
	// Of partitionStats(30), i%3 != 0 lead (20) and i%3 == 1 are under-replicated (10).
	for name, want := range map[string]int{"brokerd_partitions": 30, "brokerd_leader_partitions": 20, "brokerd_under_replicated_partitions": 10} {
		if m := mfs[name].GetMetric(); len(m) != 1 || m[0].GetGauge().GetValue() != float64(want) {
			t.Errorf("%s: got %v, want one series of %d", name, m, want)
		}
	}
	for _, f := range partitionFamilies {
		got := map[string]float64{}
		for _, m := range mfs[f.name].GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			got[labels["topic"]+"/"+labels["partition"]] = m.GetGauge().GetValue()
		}
		want := map[string]float64{}
		for i := range ps {
			if v, ok := f.value(&ps[i]); ok {
				want[fmt.Sprintf("%s/%d", ps[i].Topic, ps[i].Partition)] = float64(v)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: got %v, want %v", f.name, got, want)
		}
	}
}

// TestPartitionSeriesAllocations: writing the per-partition series of
// 10,000 partitions allocates a handful of times per scrape, not per
// series (through the registry it was several objects per series).
func TestPartitionSeriesAllocations(t *testing.T) {
	ps := partitionStats(10000)
	w := bufio.NewWriterSize(io.Discard, 64<<10)
	allocs := testing.AllocsPerRun(20, func() {
		writePartitionSeries(w, ps)
		w.Flush()
	})
	t.Logf("%.0f allocations to write %d series", allocs, 8*len(ps))
	if allocs > 64 {
		t.Errorf("writing the series of %d partitions: %.0f allocations, want at most 64", len(ps), allocs)
	}
}
