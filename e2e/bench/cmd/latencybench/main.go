// Command latencybench measures logpipe's end-to-end latency: the time
// from a line appended to an httpd log until Elasticsearch finds its
// document in a search. For each broker in turn (brokerd, then Apache
// Kafka in its place, each a cluster of -nodes nodes) it starts a fresh
// pipeline in a work folder: an Elasticsearch 8 node, the broker, the
// topic (replicated over the nodes), `indexer setup` and the indexer, and
// the shipper tailing an access log and an error log there. The shipper
// and the indexer run with the shipped configs/*.yml, overridden with -E
// only where the run must say where things are, so what is measured is
// what users run.
//
// Two modes:
//
//   - single (the default): -lines access lines one at a time; each is
//     appended, then Elasticsearch is searched for it every -poll until it
//     is found, then the command waits -gap and a random part of -jitter
//     before the next one.
//   - steady: a writer appends -rate lines a second (every -error-every-th
//     an error-log line) for -duration while a poller fetches the
//     documents that became searchable; every line's latency counts. Then
//     -burst lines are appended as fast as they can be, and the rate at
//     which their documents become searchable is the sustained end-to-end
//     rate. Last, the documents are counted: every line must have exactly
//     one. With -faults, brokerd's run also has the pipeline fault test's
//     faults injected (a broker node, the shipper and the indexer killed
//     with SIGKILL and started again, Elasticsearch stopped for 20 s).
//     With -doc or -chart, a PNG chart of the latency over the run's
//     seconds is written.
//
// Neither mode forces a refresh while measuring: the index's refresh
// interval is part of what is measured. Run it from the repository root
// after `make deps`:
//
//	go run ./e2e/bench/cmd/latencybench                                # both brokers, 60 lines each
//	go run ./e2e/bench/cmd/latencybench -lines 30 -broker brokerd       # a quick check
//	go run ./e2e/bench/cmd/latencybench -mode steady -rate 2000 -duration 5m -doc docs/benchmarks.md
//
// It builds its own binaries (no race detector), prints a markdown report
// to stdout and progress to stderr, and with -doc replaces the report's
// section of that file (and writes the chart beside it).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"logpipe/e2e/bench/benchkit"
	"logpipe/internal/devstack"
)

// The modes.
const (
	modeSingle = "single"
	modeSteady = "steady"
)

// The brokers, by the names -broker takes.
const (
	brokerBrokerd = "brokerd"
	brokerKafka   = "kafka"
)

// options are the command-line settings.
type options struct {
	mode    string
	brokers []string
	// single mode
	lines  int
	gap    time.Duration
	jitter time.Duration
	// steady mode
	rate       int
	duration   time.Duration
	drain      time.Duration
	warmup     time.Duration
	errorEvery int
	burst      int
	faults     bool
	chart      string
	// both
	nodes      int
	partitions int
	// both
	poll        time.Duration
	lineTimeout time.Duration
	esHeapMB    int
	kafkaHeapMB int
	// shipperSet and indexerSet are more -E overrides for the programs,
	// for measuring what a setting changes.
	shipperSet []string
	indexerSet []string
	doc        string
	keep       bool
	// commandLine reproduces the run.
	commandLine string
}

func main() { benchkit.Main("latencybench", parseFlags, run) }

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("latencybench", flag.ContinueOnError)
	o := &options{}
	var broker, shipperSet, indexerSet string
	fs.StringVar(&o.mode, "mode", modeSingle, "single: one line at a time; steady: lines at a fixed rate")
	fs.StringVar(&broker, "broker", "both", "brokerd, kafka, or both (brokerd first, then Apache Kafka in its place)")
	fs.IntVar(&o.lines, "lines", 60, "single mode: lines measured per broker, after one warm-up line")
	fs.DurationVar(&o.gap, "gap", 200*time.Millisecond, "single mode: pause after a line is found, before the next one")
	fs.DurationVar(&o.jitter, "jitter", time.Second, "single mode: a random extra pause of up to this much, so that lines land at random points of the refresh and flush cycles (0: none)")
	fs.IntVar(&o.rate, "rate", 2000, "steady mode: lines appended per second")
	fs.DurationVar(&o.duration, "duration", 5*time.Minute, "steady mode: how long lines are appended")
	fs.DurationVar(&o.drain, "drain", 2*time.Minute, "steady mode: how long after the last append the rest may take to become searchable")
	fs.DurationVar(&o.warmup, "warmup", 30*time.Second, "steady mode: how long lines are appended at -rate before the measured -duration, not measured, so that the programs and JVMs are warm (0: none)")
	fs.IntVar(&o.errorEvery, "error-every", 10, "steady mode: every n-th line goes to the error log, the others to the access log (0: access lines only)")
	fs.IntVar(&o.burst, "burst", 200000, "steady mode: lines appended as fast as they go after the steady phase, to measure the sustained end-to-end rate (0: none)")
	fs.BoolVar(&o.faults, "faults", false, "steady mode: inject the pipeline fault test's faults into brokerd's run, spread over -duration")
	fs.StringVar(&o.chart, "chart", "", "steady mode: the PNG chart of latency over time to write (default with -doc: latency.png beside it, with -faults latency-faults.png; '' without -doc: none)")
	fs.IntVar(&o.nodes, "nodes", 3, "broker nodes of each cluster (brokerd and Apache Kafka alike)")
	fs.IntVar(&o.partitions, "partitions", 3, "partitions of the topic, which the benchmark creates with replication factor min(3, -nodes) and min.insync.replicas min(2, -nodes)")
	fs.DurationVar(&o.poll, "poll", 20*time.Millisecond, "how often Elasticsearch is searched")
	fs.DurationVar(&o.lineTimeout, "line-timeout", time.Minute, "single mode: a line not searchable after this long fails the broker's run; also the limit for the warm-up line")
	fs.IntVar(&o.esHeapMB, "es-heap-mb", 512, "Elasticsearch's JVM heap (what `make run` gives it)")
	fs.IntVar(&o.kafkaHeapMB, "kafka-heap-mb", 512, "Apache Kafka's JVM heap")
	fs.StringVar(&shipperSet, "shipper-set", "", "more shipper settings, key=value pairs separated by spaces, each passed as -E (e.g. output.kafka.bulk_flush_frequency=0)")
	fs.StringVar(&indexerSet, "indexer-set", "", "more indexer settings, key=value pairs separated by spaces, each passed as -E (e.g. elasticsearch.flush_interval=100ms)")
	fs.StringVar(&o.doc, "doc", "", "markdown file whose \""+strings.TrimPrefix(sectionHeading, "## ")+"\" section (with -faults: the \""+strings.TrimPrefix(faultsHeading, "## ")+"\" section) is replaced with the report ('' to leave files alone)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work folder (configs, logs, data) for looking into a run")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("latencybench: unexpected arguments %q", fs.Args())
	}
	switch broker {
	case "both":
		o.brokers = []string{brokerBrokerd, brokerKafka}
	case brokerBrokerd, brokerKafka:
		o.brokers = []string{broker}
	default:
		return nil, fmt.Errorf("latencybench: bad -broker %q (want brokerd, kafka or both)", broker)
	}
	if o.mode != modeSingle && o.mode != modeSteady {
		return nil, fmt.Errorf("latencybench: bad -mode %q (want %s or %s)", o.mode, modeSingle, modeSteady)
	}
	if o.lines <= 0 || o.rate <= 0 || o.duration <= 0 || o.drain <= 0 || o.poll <= 0 || o.lineTimeout <= 0 || o.nodes <= 0 || o.partitions <= 0 ||
		o.gap < 0 || o.jitter < 0 || o.burst < 0 || o.warmup < 0 {
		return nil, errors.New("latencybench: -lines, -rate, -duration, -drain, -poll, -line-timeout, -nodes and -partitions must be positive, -gap, -jitter, -burst and -warmup not negative")
	}
	if o.errorEvery < 0 || o.errorEvery == 1 {
		return nil, errors.New("latencybench: -error-every must be 0 or at least 2")
	}
	if o.faults && (o.mode != modeSteady || !slices.Contains(o.brokers, brokerBrokerd)) {
		return nil, errors.New("latencybench: -faults needs -mode steady and brokerd among -broker")
	}
	if o.esHeapMB < 256 || o.kafkaHeapMB < 256 {
		return nil, errors.New("latencybench: -es-heap-mb and -kafka-heap-mb must be at least 256")
	}
	o.shipperSet, o.indexerSet = strings.Fields(shipperSet), strings.Fields(indexerSet)
	for _, kv := range slices.Concat(o.shipperSet, o.indexerSet) {
		if !strings.Contains(kv, "=") {
			return nil, fmt.Errorf("latencybench: setting %q is not key=value", kv)
		}
	}
	o.commandLine = benchkit.CommandLine("./e2e/bench/cmd/latencybench", fs)
	return o, nil
}

// replicas is the topic's replication factor.
func (o *options) replicas() int { return min(3, o.nodes) }

// minISR is the topic's min.insync.replicas.
func (o *options) minISR() int { return min(2, o.nodes) }

func run(ctx context.Context, o *options) error {
	rep, err := measure(ctx, o)
	if rep != nil {
		fmt.Print(rep.markdown())
	}
	if err != nil {
		return err
	}
	if o.chart != "" && o.mode == modeSteady {
		if err := writeChart(o.chart, rep.completed()); err != nil {
			return err
		}
		log.Printf("wrote the chart to %s", o.chart)
	}
	if o.doc != "" {
		if err := benchkit.WriteSection(o.doc, heading(o), rep.markdown()); err != nil {
			return err
		}
		log.Printf("wrote the report to %s", o.doc)
	}
	return nil
}

// measure builds the programs and measures each broker's pipeline in turn.
// It returns the report even when a run failed (the report lists the
// failures), with an error saying so.
func measure(ctx context.Context, o *options) (*report, error) {
	root, err := devstack.RepoRoot()
	if err != nil {
		return nil, err
	}
	if o.doc != "" && !filepath.IsAbs(o.doc) {
		o.doc = filepath.Join(root, o.doc)
	}
	if o.chart == "" && o.doc != "" && o.mode == modeSteady {
		o.chart = filepath.Join(filepath.Dir(o.doc), chartName)
		if o.faults {
			o.chart = filepath.Join(filepath.Dir(o.doc), faultsChartName)
		}
	} else if o.chart != "" && !filepath.IsAbs(o.chart) {
		o.chart = filepath.Join(root, o.chart)
	}
	work, err := benchkit.WorkDir("latencybench-")
	if err != nil {
		return nil, err
	}
	if o.keep {
		log.Printf("the work folder %s is kept", work)
	} else {
		defer os.RemoveAll(work)
	}

	log.Printf("building brokerd, the shipper and the indexer")
	progs := []devstack.Program{{Package: "logpipe/shipper"}, {Package: "logpipe/indexer"}, {Package: "logpipe/brokerd"}}
	paths, err := devstack.BuildPrograms(filepath.Join(work, "bin"), progs...)
	if err != nil {
		return nil, err
	}
	bins := binaries{shipper: paths[0], indexer: paths[1], brokerd: paths[2]}

	rep := &report{opts: o, started: time.Now(), machine: benchkit.DescribeMachine(), logpipe: benchkit.BrokerdVersion(bins.brokerd), commit: gitCommit(root)}
	if rep.flush, err = effectiveFlush(root, o); err != nil {
		return nil, err
	}
	if slices.Contains(o.brokers, brokerKafka) {
		// Fetched (once) before anything is timed.
		if rep.kafka, err = kafkaVersion(ctx); err != nil {
			return nil, err
		}
	}
	for _, name := range o.brokers {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("latencybench: %w", err)
		}
		res := measureBroker(ctx, o, root, bins, name, filepath.Join(work, name))
		if res.err != nil {
			log.Printf("%s: failed: %v", name, res.err)
		}
		rep.runs = append(rep.runs, res)
		if res.esVersion != "" {
			rep.elasticsearch = res.esVersion
		}
	}
	rep.finished = time.Now()
	var failed []string
	for _, r := range rep.runs {
		if r.err != nil {
			failed = append(failed, brokerTitle(r.broker))
		}
	}
	if len(failed) > 0 {
		return rep, fmt.Errorf("latencybench: the run with %s failed (see the report); nothing was written to -doc", strings.Join(failed, " and "))
	}
	return rep, nil
}

// measureBroker starts a pipeline on broker name in dir, measures it in
// o's mode and stops it again.
func measureBroker(ctx context.Context, o *options, root string, bins binaries, name, dir string) *brokerRun {
	res := &brokerRun{broker: name, nodes: o.nodes, load: strings.Fields(benchkit.LoadAverage())[0]}
	log.Printf("%s: starting the pipeline (load average %s)", name, benchkit.LoadAverage())
	st, err := startStack(ctx, o, root, bins, name, dir)
	if err != nil {
		res.err = err
		return res
	}
	defer st.stop()
	res.esVersion, res.err = st.search.version(ctx)
	if res.err != nil {
		return res
	}
	// The warm-up line also creates the topic's first records, the day's
	// index and the indexer's first bulk request; it is not counted.
	res.warmup, res.err = st.single(ctx, o, "warmup", 0)
	if res.err != nil {
		res.err = fmt.Errorf("the warm-up line: %w", res.err)
		return res
	}
	log.Printf("%s: the warm-up line was searchable after %v", name, res.warmup.Round(time.Millisecond))
	if res.refresh, res.err = st.search.refreshInterval(ctx); res.err != nil {
		return res
	}
	switch o.mode {
	case modeSingle:
		res.err = st.singleMode(ctx, o, res)
	case modeSteady:
		res.steady, res.err = st.steadyMode(ctx, o)
		if res.steady != nil {
			res.latencies = res.steady.latencies
		}
	}
	res.loadAfter = strings.Fields(benchkit.LoadAverage())[0]
	if res.err == nil {
		s := res.summary()
		log.Printf("%s: %d lines: min %v, p50 %v, p99 %v, max %v", name, s.n, s.min.Round(time.Millisecond), s.p50.Round(time.Millisecond), s.p99.Round(time.Millisecond), s.max.Round(time.Millisecond))
	}
	return res
}
