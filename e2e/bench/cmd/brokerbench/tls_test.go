package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"logpipe/e2e/bench/benchkit"
	"logpipe/e2e/bench/loadgen"
)

// tlsFigures builds one listener's results: records produced and consumed
// in one second each, latencies in milliseconds, and the broker's CPU
// seconds over produce and consume.
func tlsFigures(produced, consumed int64, latMs []float64, cpuProduce, cpuConsume float64) (*caseResult, *stepCPU) {
	c := &caseResult{}
	if produced > 0 {
		c.produce = &loadgen.ProduceResult{Records: produced, Bytes: produced << 10, Elapsed: time.Second}
	}
	if consumed > 0 {
		c.consume = &loadgen.ConsumeResult{Records: consumed, Bytes: consumed << 10, Elapsed: time.Second}
	}
	if latMs != nil {
		var ls loadgen.Latencies
		for _, m := range latMs {
			ls = append(ls, time.Duration(m*float64(time.Millisecond)))
		}
		c.latency = &loadgen.ProduceResult{Records: int64(len(ls)), Elapsed: time.Second, Latencies: ls}
	}
	return c, &stepCPU{produce: cpuProduce, consume: cpuConsume, produceOK: true, consumeOK: true}
}

// newTLSRun puts a PLAINTEXT and a SASL_SSL result together.
func newTLSRun(name, load string, plain, ssl *caseResult, plainCPU, sslCPU *stepCPU) *tlsRun {
	return &tlsRun{
		name: name, load: load, negotiated: "TLS 1.3 (TLS_AES_128_GCM_SHA256)",
		results: map[string]*caseResult{plaintextListener: plain, saslSSLListener: ssl},
		cpu:     map[string]*stepCPU{plaintextListener: plainCPU, saslSSLListener: sslCPU},
	}
}

// TestTLSGoals checks each goal row both ways: a throughput ratio counts
// as met when brokerd keeps at least Kafka's share, a p99 ratio when
// brokerd's grows no more than Kafka's, and equal ratios meet it.
func TestTLSGoals(t *testing.T) {
	bp, bpc := tlsFigures(400000, 800000, []float64{1, 1, 1, 2}, 1, 1)
	bs, bsc := tlsFigures(200000, 600000, []float64{1, 1, 1, 3}, 2, 2)
	kp, kpc := tlsFigures(300000, 600000, []float64{1, 1, 1, 4}, 1, 1)
	ks, ksc := tlsFigures(240000, 300000, []float64{1, 1, 1, 6}, 2, 2)
	bd := newTLSRun("brokerd", "0.5", bp, bs, bpc, bsc)
	kf := newTLSRun("kafka", "0.7", kp, ks, kpc, ksc)
	lines, met, compared := tlsGoals(bd, kf)
	want := []string{
		"produce (records/s): SASL_SSL / PLAINTEXT is 0.50 on brokerd and 0.80 on Kafka: not met.",
		"consume (records/s): SASL_SSL / PLAINTEXT is 0.75 on brokerd and 0.50 on Kafka: met.",
		"produce p99 at fixed rate (ms): SASL_SSL / PLAINTEXT is 1.50 on brokerd and 1.50 on Kafka: met.",
	}
	if !slices.Equal(lines, want) || met != 2 || compared != 3 {
		t.Errorf("tlsGoals = %q, %d met of %d; want %q, 2 met of 3", lines, met, compared, want)
	}

	// A missing figure is said, not counted.
	bs.consume = nil
	lines, met, compared = tlsGoals(bd, kf)
	if lines[1] != "consume (records/s): not compared, a figure is missing." || met != 1 || compared != 2 {
		t.Errorf("without brokerd's SASL_SSL consume: %q, %d met of %d; want the consume row not compared, 1 met of 2", lines, met, compared)
	}
}

// TestTLSMarkdown renders known figures and checks the table's cells and
// cost columns, the goal lines, the failure list and the command line.
func TestTLSMarkdown(t *testing.T) {
	o, err := parseFlags([]string{"-parts", "tls", "-duration", "2s"})
	if err != nil {
		t.Fatal(err)
	}
	if !o.tls || o.single || o.clusters {
		t.Fatalf("-parts tls: tls %v, single %v, clusters %v; want only tls", o.tls, o.single, o.clusters)
	}
	bp, bpc := tlsFigures(400000, 800000, []float64{1, 1, 1, 2}, 1, 1)
	bs, bsc := tlsFigures(200000, 600000, []float64{1, 1, 1, 3}, 2, 2)
	kp, kpc := tlsFigures(300000, 600000, []float64{1, 1, 1, 4}, 1, 1)
	ks, ksc := tlsFigures(240000, 0, nil, 3, 0)
	ks.errs = []string{"consume: broken\nsecond line", "latency: also broken"}
	bd, kf := newTLSRun("brokerd", "0.5", bp, bs, bpc, bsc), newTLSRun("kafka", "3.5", kp, ks, kpc, ksc)
	bd.blocks = []tlsBlock{{plaintextListener, bp}, {saslSSLListener, bs}}
	kf.blocks = []tlsBlock{{saslSSLListener, ks}}
	tr := &tlsReport{rep: &report{opts: o, machine: benchkit.Machine{CPUs: 2}}, runs: []*tlsRun{bd, kf}}
	containsAll(t, "TLS report", tr.markdown(), []string{
		tlsHeading + "\n",
		"brokerd negotiated TLS 1.3 (TLS_AES_128_GCM_SHA256). Kafka negotiated TLS 1.3 (TLS_AES_128_GCM_SHA256).",
		"| produce (records/s) | 400,000 | 200,000 | 0.50 | 300,000 | 240,000 | 0.80 |",
		"| consume (MiB/s) | 781.2 | 585.9 | 0.75 | 585.9 | – | – |",
		"| produce p99 at fixed rate (ms) | 2.00 | 3.00 | 1.50 | 4.00 | – | – |",
		// 1 CPU second over 400,000 KiB is 2.56 ms per MiB.
		"| broker CPU per MiB produced (ms) | 2.56 | 10.24 | 4.00 | 3.41 | 12.80 | 3.75 |",
		"| brokerd | 1 | PLAINTEXT | 400,000 | 800,000 |\n| brokerd | 2 | SASL_SSL | 200,000 | 600,000 |\n| Kafka | 1 | SASL_SSL | 240,000 | – |\n",
		"12 rounds, each a turn over PLAINTEXT and a turn over SASL_SSL",
		"- produce (records/s): SASL_SSL / PLAINTEXT is 0.50 on brokerd and 0.80 on Kafka: not met.",
		"- consume (records/s): not compared, a figure is missing.",
		"Met in 0 of 1 compared figures.",
		"It reached 3.5 on 2 CPUs",
		"- Kafka, SASL_SSL, consume: broken\n",
		"- Kafka, SASL_SSL, latency: also broken\n",
		"go run ./e2e/bench/cmd/brokerbench -duration 2s -parts tls",
	})
}

// TestMergeBlocks adds up two blocks of one listener: sums, and a step
// missing from one block missing from both.
func TestMergeBlocks(t *testing.T) {
	a, ac := tlsFigures(100, 300, nil, 1, 2)
	b, bc := tlsFigures(200, 0, nil, 0.5, 0.25)
	a.errs, b.errs = []string{"one"}, []string{"two"}
	m := mergeBlocks(a, b)
	if m.produce.Records != 300 || m.produce.Bytes != 300<<10 || m.produce.Elapsed != 2*time.Second {
		t.Errorf("merged produce = %+v; want 300 records, %d bytes, 2s", m.produce, 300<<10)
	}
	if m.consume != nil {
		t.Errorf("merged consume = %+v; want none, the second block has none", m.consume)
	}
	if !slices.Equal(m.errs, []string{"one", "two"}) {
		t.Errorf("merged errs = %q; want [one two]", m.errs)
	}
	c := mergeCPU(ac, bc)
	if c.produce != 1.5 || c.consume != 2.25 || !c.produceOK || !c.consumeOK {
		t.Errorf("merged CPU = %+v; want produce 1.5, consume 2.25, both read", c)
	}
	bc.consumeOK = false
	if mergeCPU(ac, bc).consumeOK {
		t.Error("merged CPU counts a consume whose CPU was not read in one block")
	}
}

// latencyTurn is a turn of the latency phase with latencies in ms.
func latencyTurn(latMs ...float64) *loadgen.ProduceResult {
	c, _ := tlsFigures(0, 0, latMs, 0, 0)
	return c.latency
}

// TestPooledTurns pools a listener's turns, sorted, and drops the figure
// when a turn of it failed; the broker's CPU time likewise.
func TestPooledTurns(t *testing.T) {
	rounds := []latencyRound{
		{order: tlsListeners, results: map[string]*loadgen.ProduceResult{plaintextListener: latencyTurn(1, 5), saslSSLListener: latencyTurn(2)},
			cpu: map[string]float64{plaintextListener: 0.5, saslSSLListener: 0.25}},
		{order: []string{saslSSLListener, plaintextListener}, results: map[string]*loadgen.ProduceResult{plaintextListener: latencyTurn(3, 4)},
			cpu: map[string]float64{plaintextListener: 0.25}},
	}
	pooled := func(rounds []latencyRound, l string) *loadgen.ProduceResult {
		return pooledTurns(rounds, func(rd latencyRound) *loadgen.ProduceResult { return rd.results[l] })
	}
	p := pooled(rounds, plaintextListener)
	if want := (loadgen.Latencies{1e6, 3e6, 4e6, 5e6}); p == nil || !slices.Equal(p.Latencies, want) || p.Records != 4 || p.Elapsed != 2*time.Second {
		t.Errorf("pooled PLAINTEXT = %+v; want latencies %v, 4 records over 2s", p, want)
	}
	if s := pooled(rounds, saslSSLListener); s != nil {
		t.Errorf("pooled SASL_SSL = %+v; want none, its second turn failed", s)
	}
	if s := pooled(nil, saslSSLListener); s != nil {
		t.Errorf("pooled over no round = %+v; want none", s)
	}
	if c, ok := pooledCPU(rounds, plaintextListener); !ok || c != 0.75 {
		t.Errorf("PLAINTEXT CPU = %v, %v; want 0.75, true", c, ok)
	}
	if c, ok := pooledCPU(rounds, saslSSLListener); ok {
		t.Errorf("SASL_SSL CPU = %v, %v; want none, its second turn has none", c, ok)
	}
}

// TestLatencyRoundsTable renders the rounds and the median of their
// ratios.
func TestLatencyRoundsTable(t *testing.T) {
	r := &tlsRun{name: "brokerd", rounds: []latencyRound{
		{order: tlsListeners, results: map[string]*loadgen.ProduceResult{plaintextListener: latencyTurn(1), saslSSLListener: latencyTurn(1.5)}},
		{order: []string{saslSSLListener, plaintextListener}, results: map[string]*loadgen.ProduceResult{plaintextListener: latencyTurn(2), saslSSLListener: latencyTurn(1)}},
		{order: tlsListeners, results: map[string]*loadgen.ProduceResult{plaintextListener: latencyTurn(1), saslSSLListener: latencyTurn(1.2)}},
		{order: []string{saslSSLListener, plaintextListener}, results: map[string]*loadgen.ProduceResult{plaintextListener: latencyTurn(1)}},
	}}
	var b strings.Builder
	writeLatencyRounds(func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }, []*tlsRun{r})
	containsAll(t, "rounds table", b.String(), []string{
		"| brokerd | 1 | PLAINTEXT | 1.00 | 1.50 | 1.50 |\n| brokerd | 2 | SASL_SSL | 2.00 | 1.00 | 0.50 |\n",
		"| brokerd | 4 | SASL_SSL | 1.00 | – | – |\n",
		"brokerd: median ratio 1.20 over 3 rounds, SASL_SSL's p99 the higher in 2.",
	})
}
