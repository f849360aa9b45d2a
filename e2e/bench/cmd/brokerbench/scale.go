package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/e2e/bench/benchkit"
	"logpipe/e2e/bench/loadgen"
	"logpipe/internal/devstack"
)

// The scale configuration's shape, fixed by the issue.
const (
	scaleTopics          = 20
	scalePartitions      = 50 // per topic: 1,000 in all
	scaleGroups          = 100
	scaleMembers         = 2 // franz-go members per group
	scaleProducers       = 20
	scaleJavaConsumers   = 2
	scaleJavaGroup       = "scale-java"
	scaleLagSampleEvery  = 5 * time.Second
	scaleProcSampleEvery = time.Second
)

// scaleOptions are the settings of the scale and Logstash parts; they are
// embedded in options.
type scaleOptions struct {
	// scale and logstash say whether those parts run.
	scale, logstash bool
	// scaleRate is the total records per second of the 20 producers,
	// scaleRecordSize their size, scaleWarmup the unmeasured time with
	// everything running before the measured scaleDuration.
	scaleRate       int
	scaleRecordSize int
	scaleWarmup     time.Duration
	scaleDuration   time.Duration
	// logstashRecords are pre-filled into the Logstash part's topic.
	logstashRecords int64
	// brokerdPprofPort, if not 0, is where brokerd serves Go's profiler
	// in these parts, for a diagnosis with go tool pprof.
	brokerdPprofPort int
}

// addScaleFlags defines the scale and Logstash parts' flags on fs.
func (s *scaleOptions) addScaleFlags(fs *flag.FlagSet) {
	fs.IntVar(&s.scaleRate, "scale-rate", 5000, "records per second of the scale part's 20 producers together")
	fs.IntVar(&s.scaleRecordSize, "scale-record-size", 200, "bytes per record value in the scale and logstash parts")
	fs.DurationVar(&s.scaleWarmup, "scale-warmup", time.Minute, "time the scale part runs before it measures (Kafka's 100 groups were still catching up after 30 s)")
	fs.DurationVar(&s.scaleDuration, "scale-duration", 2*time.Minute, "time the scale part measures")
	fs.Int64Var(&s.logstashRecords, "logstash-records", 2_000_000, "records pre-filled for the logstash part")
	fs.IntVar(&s.brokerdPprofPort, "scale-brokerd-pprof-port", 0, "serve brokerd's /debug/pprof/ on 127.0.0.1 at this port in the scale and logstash parts (0: off)")
}

// checkScale validates the scale and Logstash flags.
func (s *scaleOptions) checkScale() error {
	if s.scaleRate < scaleProducers || s.scaleRecordSize <= 0 || s.scaleWarmup < 0 || s.scaleDuration <= 0 || s.logstashRecords <= 0 {
		return fmt.Errorf("brokerbench: -scale-rate must be at least %d, -scale-record-size, -scale-duration and -logstash-records positive, -scale-warmup not negative", scaleProducers)
	}
	return nil
}

// scaleRun is what the scale part measured on one broker.
type scaleRun struct {
	name string
	load string
	// produced counts the measured window's acknowledged records, failed
	// those the producers gave up on; latencies are the acknowledged
	// records' times from hand-over to acknowledgement, sorted.
	produced, failed int64
	firstErr         error
	latencies        loadgen.Latencies
	// ages are, sorted, the times from a record's hand-over to the
	// producer to its arrival at a franz-go group member, for records
	// consumed in the measured window.
	ages     loadgen.Latencies
	consumed int64
	// lags are samples of the records not yet committed, over the 100
	// franz-go groups together, and javaLags of the Java consumers' group.
	lags, javaLags []int64
	// javaErr is set if a Java consumer stopped before the end.
	javaErr error
	// cpuSeconds is the broker's user+system time over the window; the
	// RSS and fds figures are sampled every second over it.
	cpuSeconds float64
	rssKB, fds []int64
	window     time.Duration
	errs       []string
}

// scaleTopic names the scale part's i-th topic.
func scaleTopic(i int) string { return fmt.Sprintf("scale-t%02d", i) }

// scaleGroup names the scale part's g-th franz-go group.
func scaleGroup(g int) string { return fmt.Sprintf("scale-g%03d", g) }

// scaleGroupTopics returns the topics group g reads: one per group,
// spread so that every topic is read by the same number of groups.
func scaleGroupTopics(g int) []string { return []string{scaleTopic(g % scaleTopics)} }

// runScaleParts runs the scale and Logstash parts on each of o's brokers
// and publishes their sections.
func runScaleParts(ctx context.Context, o *options, root, bin string, base *report) error {
	overrides := brokerdOverrides
	if o.brokerdPprofPort != 0 {
		overrides = maps.Clone(brokerdOverrides)
		overrides["http.enabled"] = "true"
		overrides["http.port"] = strconv.Itoa(o.brokerdPprofPort)
		overrides["http.pprof"] = "true"
	}
	start := func(ctx context.Context, name string) (benchkit.Broker, error) {
		if name == "brokerd" {
			return benchkit.StartBrokerd(ctx, bin, overrides)
		}
		return benchkit.StartKafka(ctx, o.kafkaHeapMB, kafkaOverrides)
	}
	if o.scale {
		sr := &scaleReport{base: base, started: time.Now()}
		runs, err := eachBroker(ctx, o, start, func(name string) *scaleRun { return &scaleRun{name: name} }, runScale)
		if err != nil {
			return err
		}
		sr.runs, sr.finished = runs, time.Now()
		if err := publish(o, root, scaleHeading, sr.markdown()); err != nil {
			return err
		}
	}
	if o.logstash {
		lr := &logstashReport{base: base, started: time.Now()}
		runs, err := eachBroker(ctx, o, start, func(name string) *logstashRun { return &logstashRun{name: name} }, runLogstash)
		if err != nil {
			return err
		}
		lr.runs, lr.finished = runs, time.Now()
		if err := publish(o, root, logstashHeading, lr.markdown()); err != nil {
			return err
		}
	}
	return nil
}

// eachBroker runs one part on each of o's brokers in turn: newRun makes a
// broker's run and measure fills it, starting the broker with start.
func eachBroker[R any](ctx context.Context, o *options, start func(context.Context, string) (benchkit.Broker, error),
	newRun func(name string) *R, measure func(context.Context, *options, *R, func(context.Context) (benchkit.Broker, error)) error) ([]*R, error) {
	var runs []*R
	for _, name := range o.brokers {
		// Write back what the previous broker left dirty.
		syscall.Sync()
		r := newRun(name)
		runs = append(runs, r)
		if err := measure(ctx, o, r, func(ctx context.Context) (benchkit.Broker, error) { return start(ctx, name) }); err != nil {
			return runs, err
		}
	}
	return runs, nil
}

// runScale starts a broker, creates the scale topics, runs producers,
// group members and Java consumers through a warm-up and the measured
// window, and stops the broker. Only a broker that does not start, or an
// interrupt, is an error; other failures are recorded in r.
func runScale(ctx context.Context, o *options, r *scaleRun, start func(context.Context) (benchkit.Broker, error)) error {
	r.load = strings.Fields(benchkit.LoadAverage())[0]
	log.Printf("%s scale: starting (load average %s)", r.name, r.load)
	srv, err := start(ctx)
	if err != nil {
		return err
	}
	defer srv.Stop()
	boot := srv.Bootstrap()
	fail := func(what string, err error) {
		r.errs = append(r.errs, fmt.Sprintf("%s: %v", what, err))
		log.Printf("%s scale: %s failed: %v", r.name, what, err)
	}
	for i := range scaleTopics {
		if err := benchkit.CreateTopic(ctx, boot, scaleTopic(i), scalePartitions); err != nil {
			fail("create topics", err)
			return ctx.Err()
		}
	}
	log.Printf("%s scale: %d topics of %d partitions created", r.name, scaleTopics, scalePartitions)

	// Everything below runs until stop is cancelled.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	var measuring atomic.Bool

	// The franz-go group members.
	members := make([]*scaleMember, 0, scaleGroups*scaleMembers)
	for g := range scaleGroups {
		for range scaleMembers {
			m, err := newScaleMember(boot, scaleGroup(g), scaleGroupTopics(g), &measuring)
			if err != nil {
				fail("group member", err)
				continue
			}
			members = append(members, m)
			wg.Go(func() { m.run(runCtx) })
		}
	}
	defer func() {
		for _, m := range members {
			m.cl.Close()
		}
	}()

	// The Java consumers, one group, reading the first topic.
	conf, err := writeConsumerConfig(scaleJavaGroup, map[string]string{"auto.offset.reset": "earliest"})
	if err != nil {
		return err
	}
	defer os.RemoveAll(filepath.Dir(conf))
	javaDone := make(chan error, scaleJavaConsumers)
	for range scaleJavaConsumers {
		wg.Go(func() { javaDone <- runConsoleConsumer(runCtx, boot, scaleTopic(0), conf) })
	}

	// The producers: warm-up, then the measured window.
	perProducer := o.scaleRate / scaleProducers
	produce := func(ctx context.Context, d time.Duration) ([]loadgen.ProduceResult, error) {
		// A broker that stops answering must not hold the run up.
		ctx, cancel := context.WithTimeout(ctx, d+3*time.Minute)
		defer cancel()
		res := make([]loadgen.ProduceResult, scaleProducers)
		errs := make([]error, scaleProducers)
		var pwg sync.WaitGroup
		for i := range scaleProducers {
			pwg.Go(func() {
				res[i], errs[i] = loadgen.Produce(ctx, loadgen.ProduceConfig{
					Brokers: []string{boot}, Topic: scaleTopic(i), RecordSize: o.scaleRecordSize,
					Duration: d, Rate: perProducer, Linger: 0,
					Opts: []kgo.Opt{kgo.RecordPartitioner(kgo.RoundRobinPartitioner())},
				})
			})
		}
		pwg.Wait()
		return res, errors.Join(errs...)
	}
	if o.scaleWarmup > 0 {
		log.Printf("%s scale: warming up for %s", r.name, o.scaleWarmup)
		if _, err := produce(ctx, o.scaleWarmup); err != nil {
			fail("warm-up produce", err)
		}
	}

	// The measured window.
	log.Printf("%s scale: measuring for %s at %d records/s", r.name, o.scaleDuration, perProducer*scaleProducers)
	pid := srv.Pid()
	cpu0, _ := benchkit.CPUSeconds(pid)
	measuring.Store(true)
	began := time.Now()
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var swg sync.WaitGroup
	swg.Go(func() { sampleProc(sampleCtx, pid, r) })
	swg.Go(func() { sampleLag(sampleCtx, boot, r) })
	results, err := produce(ctx, o.scaleDuration)
	r.window = time.Since(began)
	measuring.Store(false)
	cpu1, cerr := benchkit.CPUSeconds(pid)
	stopSampling()
	swg.Wait()
	if cerr == nil {
		r.cpuSeconds = cpu1 - cpu0
	}
	if err != nil {
		fail("produce", err)
	}
	for _, pr := range results {
		r.produced += pr.Records
		r.failed += pr.Failed
		if r.firstErr == nil {
			r.firstErr = pr.FirstError
		}
		r.latencies = append(r.latencies, pr.Latencies...)
	}
	slices.Sort(r.latencies)
	stop()
	wg.Wait()
	close(javaDone)
	for err := range javaDone {
		if err != nil && r.javaErr == nil {
			r.javaErr = err
		}
	}
	if r.javaErr != nil {
		fail("Java consumer", r.javaErr)
	}
	for _, m := range members {
		r.ages = append(r.ages, m.ages...)
		r.consumed += m.consumed
	}
	slices.Sort(r.ages)
	log.Printf("%s scale: produce p99 %s, record age p99 %s, %.0f CPU s; stopping", r.name,
		ms(r.latencies.Percentile(99)), ms(r.ages.Percentile(99)), r.cpuSeconds)
	return ctx.Err()
}

// scaleMember is one franz-go consumer group member of the scale part.
type scaleMember struct {
	cl        *kgo.Client
	measuring *atomic.Bool
	// ages and consumed are written by run only, and read after it ends.
	ages     loadgen.Latencies
	consumed int64
}

// newScaleMember makes a group member of group reading topics from their
// start, committing automatically (franz-go's default, every 5 s).
func newScaleMember(boot, group string, topics []string, measuring *atomic.Bool) (*scaleMember, error) {
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(boot),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return nil, fmt.Errorf("brokerbench: %w", err)
	}
	return &scaleMember{cl: cl, measuring: measuring}, nil
}

// run polls until ctx ends, noting each record's age while measuring.
func (m *scaleMember) run(ctx context.Context) {
	for ctx.Err() == nil {
		fs := m.cl.PollFetches(ctx)
		now := time.Now()
		counting := m.measuring.Load()
		fs.EachRecord(func(rec *kgo.Record) {
			if counting {
				m.consumed++
				m.ages = append(m.ages, now.Sub(rec.Timestamp))
			}
		})
	}
}

// sampleProc samples the broker's resident memory and open descriptors
// every second until ctx ends.
func sampleProc(ctx context.Context, pid int, r *scaleRun) {
	t := time.NewTicker(scaleProcSampleEvery)
	defer t.Stop()
	for {
		if kb, err := benchkit.ProcStatusKB(pid, "VmRSS"); err == nil {
			r.rssKB = append(r.rssKB, kb)
		}
		if n, err := benchkit.OpenFDs(pid); err == nil {
			r.fds = append(r.fds, int64(n))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sampleLag samples, every few seconds until ctx ends, how many records
// the groups have not committed yet: the log end offset minus the
// committed offset, summed over every partition a group reads.
func sampleLag(ctx context.Context, boot string, r *scaleRun) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(boot))
	if err != nil {
		return
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	groups := []string{scaleJavaGroup}
	for g := range scaleGroups {
		groups = append(groups, scaleGroup(g))
	}
	t := time.NewTicker(scaleLagSampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		lags, err := adm.Lag(ctx, groups...)
		if err != nil || lags.Error() != nil {
			continue
		}
		var franz int64
		lags.Each(func(l kadm.DescribedGroupLag) {
			if l.Group == scaleJavaGroup {
				r.javaLags = append(r.javaLags, l.Lag.Total())
			} else {
				franz += l.Lag.Total()
			}
		})
		r.lags = append(r.lags, franz)
	}
}

// writeConsumerConfig writes a Java consumer properties file for group
// with props in a new folder of its own, and returns its path.
func writeConsumerConfig(group string, props map[string]string) (string, error) {
	dir, err := benchkit.WorkDir("bench-consumer-")
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "group.id=%s\n", group)
	for _, k := range slices.Sorted(maps.Keys(props)) {
		fmt.Fprintf(&b, "%s=%s\n", k, props[k])
	}
	path := filepath.Join(dir, "consumer.properties")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return "", fmt.Errorf("brokerbench: %w", err)
	}
	return path, nil
}

// runConsoleConsumer runs Kafka's console consumer on topic with the
// consumer config at conf, discarding what it prints, until ctx ends;
// an exit before that is an error.
func runConsoleConsumer(ctx context.Context, boot, topic, conf string) error {
	cmd, err := devstack.KafkaToolCommand(ctx, "org.apache.kafka.tools.consumer.ConsoleConsumer",
		"--bootstrap-server", boot, "--topic", topic, "--consumer.config", conf)
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stdout = io.Discard
	cmd.Stderr = &stderr
	err = cmd.Run()
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("brokerbench: console consumer exited early: %v\n%s", err, tail(stderr.String(), 2000))
}
