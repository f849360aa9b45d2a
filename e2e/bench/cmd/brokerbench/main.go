// Command brokerbench measures brokerd side by side with Apache Kafka on
// this machine: produce and consume throughput, produce latency at a fixed
// rate, and each broker's peak memory, with the same load and settings for
// both. The brokers never run together: for each configuration each one is
// started on a fresh data folder, measured and stopped in turn. After the
// single-node figures it compares a three-node brokerd cluster with a
// three-node Kafka cluster (replicated topics, acks=all, and the time a
// partition takes to be written again after its leader is killed).
//
// Run it from the repository root after `make deps` and `make build`:
//
//	go run ./e2e/bench/cmd/brokerbench                                        # 30 s per timed step
//	go run ./e2e/bench/cmd/brokerbench -duration 5s -doc ''                   # a quick check
//	go run ./e2e/bench/cmd/brokerbench -parts cluster -duration 5s -doc ''    # the clusters only
//	go run ./e2e/bench/cmd/brokerbench -parts tls -duration 20s               # PLAINTEXT against SASL_SSL (tls.go)
//	go run ./e2e/bench/cmd/brokerbench -parts scale,logstash                  # scale.go, logstash.go
//	go run ./e2e/bench/cmd/brokerbench -parts tenk,conns                      # tenk.go, conns.go
//
// It prints a markdown report to stdout, progress to stderr, and replaces
// the "brokerd vs Apache Kafka" and "brokerd cluster vs Apache Kafka
// cluster" sections of docs/benchmarks.md (with -parts tls, "brokerd vs
// Apache Kafka: the cost of SASL_SSL") with the report unless -doc is
// empty.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"logpipe/e2e/bench/benchkit"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"logpipe/e2e/bench/loadgen"
	"logpipe/internal/devstack"
)

// options are the command-line settings.
type options struct {
	duration    time.Duration
	warmup      time.Duration
	recordSize  int
	rate        int
	partitions  []int
	acks        []string
	perfRecords int64
	// produceRecords caps the franz-go produce step of the single part.
	produceRecords int64
	kafkaHeapMB    int
	brokerdBin     string
	doc            string
	brokers        []string

	// single and clusters say which parts run: one node of each broker,
	// three-node clusters of each.
	single, clusters bool
	// tls runs the PLAINTEXT against SASL_SSL comparison (tls.go).
	tls bool
	// clusterRate is the records per second of the clusters' latency run.
	clusterRate int
	// failovers is how many times a leader is killed on each cluster;
	// failoverRate is the records per second produced meanwhile, and
	// failoverTimeout how long to wait for a successor's acknowledgement.
	failovers       int
	failoverRate    int
	failoverTimeout time.Duration
	// many holds the tenk and conns parts' settings (tenk.go).
	many tenkOptions

	scaleOptions // the scale and logstash parts (scale.go)
}

// perfRecordsPerSecond sizes ProducerPerformance's run when -perf-records
// is not given: this many records per second of -duration, the same count
// for both brokers. The Java producer with its defaults (linger.ms 0,
// 16 KiB batches) sends 1 KiB records at a few tens of thousands per second
// on a 2-CPU machine, so a run takes about -duration.
const perfRecordsPerSecond = 30000

// latencyWarmup is the start of each fixed-rate latency run whose
// records are left out of its percentiles: Apache Kafka held a new
// topic's first produce requests for about 300 ms (every one of a 10 s
// run's slowest 1% was sent in its first second, in two runs of three),
// which is a start-up cost, not the latency the run measures.
const latencyWarmup = time.Second

// perfConsumeRuns is how many times ConsumerPerformance reads the records
// back; the median run is reported.
const perfConsumeRuns = 5

// perfConsumeTarget is how many of the produced records each
// ConsumerPerformance run reads: nine tenths, so that it stops while many
// partitions still hold records. The producer's sticky partitioner fills
// the partitions unevenly (2,700 to 7,200 records apart of two million
// over six partitions, in four runs), and once every partition with
// records left is one whose records the Java consumer already holds, it
// leaves them out of its next fetch, which then waits the whole
// fetch.max.wait.ms (500 ms) on the exhausted ones before it may fetch
// again. That tail added one to three such waits to a fetch phase of
// about four seconds, for either broker, as the partitions happened to be
// filled.
func perfConsumeTarget(produced int64) int64 { return produced - produced/10 }

func main() { benchkit.Main("brokerbench", parseFlags, run) }

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("brokerbench", flag.ContinueOnError)
	o := &options{}
	var parts, acks, brokers, what string
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "length of each timed produce run (full speed and fixed rate)")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "full-speed produce to a scratch topic after each broker starts, not measured (0: none); the tls part instead rehearses one unmeasured block per listener and one round of its latency phase unless it is 0")
	fs.IntVar(&o.recordSize, "record-size", 1024, "bytes per record value")
	fs.IntVar(&o.rate, "rate", 20000, "records per second of the latency run")
	fs.StringVar(&parts, "partitions", "1,6", "partition counts to measure, comma-separated")
	fs.StringVar(&acks, "acks", "1,all", "acks settings to measure, comma-separated (1, all)")
	fs.Int64Var(&o.produceRecords, "produce-records", 15_000_000, "most records the franz-go produce step of the single part sends (0: no cap), so that what it wrote fits in the page cache for the consume step whichever broker is faster")
	fs.Int64Var(&o.perfRecords, "perf-records", 0, "records per ProducerPerformance run (0: 30000 per second of -duration)")
	fs.IntVar(&o.kafkaHeapMB, "kafka-heap-mb", 1024, "Apache Kafka's JVM heap, -Xms and -Xmx (kafka-server-start.sh uses 1 GiB)")
	fs.StringVar(&o.brokerdBin, "brokerd", "bin/brokerd", "the brokerd binary (relative paths are from the repository root)")
	fs.StringVar(&o.doc, "doc", "docs/benchmarks.md", "markdown file whose \"brokerd vs Apache Kafka\" and \"brokerd cluster vs Apache Kafka cluster\" sections are replaced with the report's ('' to leave files alone)")
	fs.StringVar(&brokers, "brokers", "brokerd,kafka", "which brokers to run, in order")
	fs.StringVar(&what, "parts", "single,cluster", "what to measure, comma-separated: single (one node of each broker), cluster (three-node clusters), tls (one node of each, PLAINTEXT against SASL_SSL), scale (1,000 partitions, 100 groups), logstash (the Logstash-style Java consumer), tenk (10,000 partitions and a kill -9 restart), conns (10,000 idle connections)")
	fs.IntVar(&o.clusterRate, "cluster-rate", 5000, "records per second of the clusters' latency run")
	fs.IntVar(&o.failovers, "failovers", 4, "leader kills per cluster, every second one of the active controller (0: none)")
	fs.IntVar(&o.failoverRate, "failover-rate", 1000, "records per second produced while a leader is killed")
	fs.DurationVar(&o.failoverTimeout, "failover-timeout", time.Minute, "how long to wait after a kill for a new leader's acknowledgement")
	addTenkFlags(fs, &o.many)
	o.addScaleFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("brokerbench: unexpected arguments %q", fs.Args())
	}
	if o.duration <= 0 || o.warmup < 0 || o.recordSize <= 0 || o.rate <= 0 || o.kafkaHeapMB <= 0 || o.perfRecords < 0 || o.produceRecords < 0 {
		return nil, errors.New("brokerbench: -duration, -record-size, -rate and -kafka-heap-mb must be positive, -warmup, -perf-records and -produce-records not negative")
	}
	if o.clusterRate <= 0 || o.failoverRate <= 0 || o.failoverTimeout <= 0 || o.failovers < 0 {
		return nil, errors.New("brokerbench: -cluster-rate, -failover-rate and -failover-timeout must be positive, -failovers not negative")
	}
	for _, s := range strings.Split(what, ",") {
		switch s = strings.TrimSpace(s); s {
		case "single":
			o.single = true
		case "cluster":
			o.clusters = true
		case "tls":
			o.tls = true
		case "scale":
			o.scale = true
		case "logstash":
			o.logstash = true
		default:
			if !o.many.parsePart(s) {
				return nil, fmt.Errorf("brokerbench: bad -parts entry %q (want single, cluster, tls, scale, logstash, tenk or conns)", s)
			}
		}
	}
	if err := o.checkScale(); err != nil {
		return nil, err
	}
	for _, s := range strings.Split(parts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("brokerbench: bad -partitions entry %q", s)
		}
		o.partitions = append(o.partitions, n)
	}
	for _, s := range strings.Split(acks, ",") {
		switch s = strings.TrimSpace(s); s {
		case "1", "all":
			o.acks = append(o.acks, s)
		case "-1":
			o.acks = append(o.acks, "all")
		default:
			return nil, fmt.Errorf("brokerbench: bad -acks entry %q (want 1 or all)", s)
		}
	}
	for _, s := range strings.Split(brokers, ",") {
		switch s = strings.TrimSpace(s); s {
		case "brokerd", "kafka":
			o.brokers = append(o.brokers, s)
		default:
			return nil, fmt.Errorf("brokerbench: bad -brokers entry %q (want brokerd or kafka)", s)
		}
	}
	if o.perfRecords == 0 {
		o.perfRecords = int64(o.duration.Seconds() * perfRecordsPerSecond)
	}
	commandLine = benchkit.CommandLine("./e2e/bench/cmd/brokerbench", fs)
	return o, nil
}

// commandLine reproduces the current run; parseFlags sets it.
var commandLine string

func run(ctx context.Context, o *options) error {
	root, err := devstack.RepoRoot()
	if err != nil {
		return err
	}
	bin := o.brokerdBin
	if !filepath.IsAbs(bin) {
		bin = filepath.Join(root, bin)
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("brokerbench: no brokerd binary (run `make build` first): %w", err)
	}
	rep := &report{
		opts:    o,
		started: time.Now(),
		machine: benchkit.DescribeMachine(),
		brokerd: benchkit.BrokerdVersion(bin),
		java:    javaVersion(),
	}
	// Fetch the Kafka jars (once) before anything is timed.
	if _, err := devstack.KafkaJars(ctx); err != nil {
		return err
	}
	rep.kafka = kafkaVersion(ctx)

	starters := map[string]func(context.Context) (benchkit.Broker, error){
		"brokerd": func(ctx context.Context) (benchkit.Broker, error) {
			return benchkit.StartBrokerd(ctx, bin, brokerdOverrides)
		},
		"kafka": func(ctx context.Context) (benchkit.Broker, error) {
			return benchkit.StartKafka(ctx, o.kafkaHeapMB, kafkaOverrides)
		},
	}
	if o.single {
		for _, name := range o.brokers {
			rep.runs = append(rep.runs, &brokerRun{name: name, cases: map[caseKey]*caseResult{}})
		}
		// Each configuration gets a freshly started broker of each kind,
		// one at a time; which broker goes first alternates, so that a
		// change in the machine's load over the run does not favour one of
		// them.
		for i, k := range o.cases() {
			order := slices.Clone(rep.runs)
			if i%2 == 1 {
				slices.Reverse(order)
			}
			for _, r := range order {
				rep.settleMemory(ctx)
				if err := runCase(ctx, o, r, starters[r.name], k); err != nil {
					return err
				}
			}
		}
		rep.finished = time.Now()
		if err := publish(o, root, sectionHeading, rep.markdown()); err != nil {
			return err
		}
	}
	if o.clusters {
		rep.clusterStarted = time.Now()
		clusterStarters := map[string]func(context.Context, string) (cluster, error){
			"brokerd": func(ctx context.Context, dir string) (cluster, error) { return startBrokerdCluster(ctx, bin, dir) },
			"kafka": func(ctx context.Context, dir string) (cluster, error) {
				return startKafkaCluster(ctx, o.kafkaHeapMB, dir)
			},
		}
		for _, name := range o.brokers {
			rep.settleMemory(ctx)
			r := &clusterRun{name: name}
			rep.clusters = append(rep.clusters, r)
			if err := runCluster(ctx, o, root, r, clusterStarters[name]); err != nil {
				return err
			}
		}
		rep.clusterFinished = time.Now()
		if err := publish(o, root, clusterHeading, rep.clusterMarkdown()); err != nil {
			return err
		}
	}
	if o.tls {
		if err := runTLS(ctx, o, root, bin, rep); err != nil {
			return err
		}
	}
	if err := runScaleParts(ctx, o, root, bin, rep); err != nil {
		return err
	}
	return runTenkParts(ctx, o, root, bin, rep)
}

// publish prints a report section and, unless -doc is empty, puts it in
// place of the document's section under heading.
func publish(o *options, root, heading, section string) error {
	fmt.Print(section)
	if o.doc == "" {
		return nil
	}
	path := o.doc
	if !filepath.IsAbs(path) {
		path = filepath.Join(root, path)
	}
	if err := benchkit.WriteSection(path, heading, section); err != nil {
		return err
	}
	log.Printf("wrote %q to %s", heading, path)
	return nil
}

// caseKey is one configuration measured on each broker.
type caseKey struct {
	partitions int
	acks       string // "1" or "all"
}

func (k caseKey) topic(suffix string) string {
	return fmt.Sprintf("bench-p%d-acks%s-%s", k.partitions, k.acks, suffix)
}

// caseResult holds one configuration's figures on one broker; a nil field
// is a step that failed, and errs says why.
type caseResult struct {
	produce     *loadgen.ProduceResult
	consume     *loadgen.ConsumeResult
	perfProduce *perfProduce
	perfConsume *perfConsume
	latency     *loadgen.ProduceResult
	// roundTrip is produce one record at a time (the tls part only).
	roundTrip *loadgen.ProduceResult
	errs      []string
}

// brokerRun is everything measured on one broker, over all the times it
// was started.
type brokerRun struct {
	name string
	// idleRSSKB is the largest resident memory right after a start,
	// peakRSSKB the largest seen at any time.
	idleRSSKB int64
	peakRSSKB int64
	// cpuSeconds and elapsed add up every start-to-stop span.
	cpuSeconds float64
	elapsed    time.Duration
	// loads are the 1-minute load averages when the broker was started.
	loads []string
	cases map[caseKey]*caseResult
}

// stepTimeout bounds one measuring step: generous, since the machine may
// be busy, yet finite, so that a broker that stops answering does not
// hold up the run.
func (o *options) stepTimeout() time.Duration { return 10*o.duration + 3*time.Minute }

func (o *options) cases() []caseKey {
	var ks []caseKey
	for _, p := range o.partitions {
		for _, a := range o.acks {
			ks = append(ks, caseKey{p, a})
		}
	}
	return ks
}

// runCase starts a broker on a fresh data folder, warms it up, measures
// configuration k on it, and stops it. Failed steps are recorded in the
// results; only a broker that does not start, or an interrupt, is an error.
func runCase(ctx context.Context, o *options, r *brokerRun, start func(context.Context) (benchkit.Broker, error), k caseKey) error {
	name := r.name
	load := benchkit.LoadAverage()
	r.loads = append(r.loads, strings.Fields(load)[0])
	log.Printf("%s: starting for %d partition(s), acks=%s (load average %s)", name, k.partitions, k.acks, load)
	srv, err := start(ctx)
	if err != nil {
		return err
	}
	defer srv.Stop()
	began := time.Now()
	pid := srv.Pid()
	idle, _ := benchkit.ProcStatusKB(pid, "VmRSS")
	r.idleRSSKB = max(r.idleRSSKB, idle)
	w := benchkit.WatchMemory(pid)
	boot := srv.Bootstrap()
	log.Printf("%s: pid %d at %s, RSS %.0f MiB", name, pid, boot, float64(idle)/1024)

	stepTimeout := o.stepTimeout()
	if o.warmup > 0 {
		topic := "bench-warmup"
		err := benchkit.CreateTopic(ctx, boot, topic, 6)
		if err == nil {
			sctx, cancel := context.WithTimeout(ctx, stepTimeout)
			_, err = loadgen.Produce(sctx, loadgen.ProduceConfig{
				Brokers: []string{boot}, Topic: topic, RecordSize: o.recordSize,
				Duration: o.warmup, Linger: -1,
			})
			cancel()
		}
		if err != nil {
			log.Printf("%s: warm-up failed: %v", name, err)
		}
	}

	if err := ctx.Err(); err != nil {
		return fmt.Errorf("brokerbench: %w", err)
	}
	res := &caseResult{}
	r.cases[k] = res
	prefix := fmt.Sprintf("%s p=%d acks=%s", name, k.partitions, k.acks)
	step := func(what string, f func(context.Context) error) {
		// As in the TLS part: the writeback of what the step before
		// wrote (gigabytes after a full-speed produce) is not this
		// step's to share the disk and CPUs with.
		syscall.Sync()
		runStep(ctx, stepTimeout, &res.errs, prefix, what, f)
	}

	// 1 and 2: franz-go at full speed, then read back.
	step("produce (franz-go)", func(ctx context.Context) error {
		topic := k.topic("kgo")
		if err := benchkit.CreateTopic(ctx, boot, topic, k.partitions); err != nil {
			return err
		}
		pr, err := loadgen.Produce(ctx, loadgen.ProduceConfig{
			Brokers: []string{boot}, Topic: topic, RecordSize: o.recordSize,
			AllAcks: k.acks == "all", Duration: o.duration, Linger: -1, MaxRecords: o.produceRecords,
		})
		if err == nil {
			err = allAcknowledged(pr)
		}
		if err != nil {
			return err
		}
		res.produce = &pr
		log.Printf("%s: produce (franz-go) %.0f records/s, %.1f MiB/s", prefix, pr.RecordsPerSec(), pr.MiBPerSec())
		return nil
	})
	if res.produce != nil {
		step("consume (franz-go)", func(ctx context.Context) error {
			cr, err := loadgen.Consume(ctx, []string{boot}, k.topic("kgo"))
			if err != nil {
				return err
			}
			if cr.Records != res.produce.Records {
				return fmt.Errorf("read %d records, %d were acknowledged", cr.Records, res.produce.Records)
			}
			res.consume = &cr
			log.Printf("%s: consume (franz-go) %.0f records/s, %.1f MiB/s", prefix, cr.RecordsPerSec(), cr.MiBPerSec())
			return nil
		})
	}

	// 3 and 4: Kafka's own tools.
	step("produce (ProducerPerformance)", func(ctx context.Context) error {
		topic := k.topic("perf")
		if err := benchkit.CreateTopic(ctx, boot, topic, k.partitions); err != nil {
			return err
		}
		pp, err := runProducerPerformance(ctx, boot, topic, o.perfRecords, o.recordSize, k.acks)
		if err != nil {
			return err
		}
		res.perfProduce = &pp
		log.Printf("%s: produce (ProducerPerformance) %.0f records/s, %.1f MiB/s", prefix, pp.recordsPerSec, pp.mibPerSec)
		return nil
	})
	if res.perfProduce != nil {
		step("consume (ConsumerPerformance)", func(ctx context.Context) error {
			pc, err := medianConsumerPerformance(ctx, boot, k.topic("perf"), k.topic("group"), perfConsumeTarget(res.perfProduce.records), prefix, nil)
			if err != nil {
				return err
			}
			res.perfConsume = &pc
			log.Printf("%s: consume (ConsumerPerformance) %.0f records/s, %.1f MiB/s (group join %d ms)", prefix, pc.recordsPerSec, pc.mibPerSec, pc.rebalanceMs)
			return nil
		})
	}

	// 5: latency at a fixed rate.
	step("latency (franz-go)", func(ctx context.Context) error {
		topic := k.topic("latency")
		if err := benchkit.CreateTopic(ctx, boot, topic, k.partitions); err != nil {
			return err
		}
		lr, err := loadgen.Produce(ctx, loadgen.ProduceConfig{
			Brokers: []string{boot}, Topic: topic, RecordSize: o.recordSize,
			AllAcks: k.acks == "all", Duration: o.duration, Rate: o.rate, Linger: 0, Warmup: latencyWarmup,
		})
		if err == nil {
			err = allAcknowledged(lr)
		}
		if err != nil {
			return err
		}
		res.latency = &lr
		log.Printf("%s: latency at %d records/s: p50 %s, p99 %s", prefix, o.rate, ms(lr.Latencies.Percentile(50)), ms(lr.Latencies.Percentile(99)))
		return nil
	})
	peak, cpu := w.Finish()
	r.peakRSSKB = max(r.peakRSSKB, peak)
	r.cpuSeconds += cpu
	r.elapsed += time.Since(began)
	log.Printf("%s: peak RSS %.0f MiB, %.0f CPU seconds; stopping", name, float64(peak)/1024, cpu)
	return nil
}

// runStep runs one measuring step f with at most timeout, and records its
// failure, if any, in errs under the step's name what.
func runStep(ctx context.Context, timeout time.Duration, errs *[]string, prefix, what string, f func(context.Context) error) {
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := f(sctx); err != nil {
		*errs = append(*errs, fmt.Sprintf("%s: %v", what, err))
		log.Printf("%s: %s failed: %v", prefix, what, err)
	}
}

// allAcknowledged returns an error if a produce run had records fail.
func allAcknowledged(pr loadgen.ProduceResult) error {
	if pr.Failed > 0 {
		return fmt.Errorf("brokerbench: %d of %d records failed, first: %w", pr.Failed, pr.Sent, pr.FirstError)
	}
	return nil
}

// ms formats a duration in milliseconds with two decimals.
func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + " ms"
}
