package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"logpipe/e2e/bench/benchkit"
	"logpipe/e2e/bench/loadgen"
	"logpipe/internal/devstack"
	"logpipe/internal/testcerts"
)

// The two listeners the TLS comparison measures on each broker.
const (
	plaintextListener = "PLAINTEXT"
	saslSSLListener   = "SASL_SSL"
)

// tlsListeners are the two listeners, in the order the report lists them.
var tlsListeners = []string{plaintextListener, saslSSLListener}

// tlsBlocks is the order in which the listeners are measured on each
// broker, each block for half of -duration: A B B A, so that a drift in
// the machine's load over a broker's run weighs on both listeners alike.
var tlsBlocks = []string{plaintextListener, saslSSLListener, saslSSLListener, plaintextListener}

// tlsPartitions is the partition count of the TLS comparison's topics.
const tlsPartitions = 6

// tlsLatencyRounds is how many rounds the latency phase has; in each, the
// two listeners take one turn each of -duration / tlsLatencyRounds.
const tlsLatencyRounds = 12

// The SCRAM-SHA-512 account the benchmark creates on each broker and logs
// in with on its SASL_SSL listener.
const (
	tlsUser     = "brokerbench"
	tlsPassword = "brokerbench-tls-pw-71c9"
	// tlsIterations is the SCRAM iteration count of the account, the
	// smallest SCRAM-SHA-512 allows and what Kafka's tools use by default.
	tlsIterations = 4096
)

// tlsRun is what the TLS comparison measured on one broker.
type tlsRun struct {
	name string
	// load is the 1-minute load average when the broker was started.
	load string
	// negotiated is the protocol version and cipher suite the SASL_SSL
	// listener agreed on with the load generator, as "TLS 1.3
	// (TLS_AES_128_GCM_SHA256)".
	negotiated string
	// results and cpu are keyed by listener; cpu holds the broker's CPU
	// seconds over the full-speed produce and over the consume.
	results map[string]*caseResult
	cpu     map[string]*stepCPU
	// blocks are the measured blocks in the order they ran, each on its
	// own, so that the report can show where in a run a figure moved.
	blocks []tlsBlock
	// rounds are the latency phase's rounds in the order they ran.
	rounds []latencyRound
}

// latencyRound is one round of the latency phase: a turn over each
// listener, in order.
type latencyRound struct {
	order []string
	// results are keyed by listener; a failed turn has none.
	results map[string]*loadgen.ProduceResult
	// trips are the turns' round trips, one record at a time, keyed by
	// listener; a failed one has none.
	trips map[string]*loadgen.ProduceResult
	// cpu is the broker's CPU seconds over each listener's fixed-rate
	// produce; a turn whose CPU time could not be read has none.
	cpu map[string]float64
}

// tlsBlock is what one block measured over one listener.
type tlsBlock struct {
	listener string
	result   *caseResult
}

// stepCPU is the broker's CPU time over the two throughput steps, and
// over the latency phase's fixed-rate produce.
type stepCPU struct {
	produce, consume float64
	produceOK        bool
	consumeOK        bool
	latency          float64
	latencyOK        bool
}

// tlsReport is one run of the TLS comparison.
type tlsReport struct {
	rep      *report
	started  time.Time
	finished time.Time
	runs     []*tlsRun
}

// tlsSetup is the certificate material and client settings shared by the
// brokers of one run.
type tlsSetup struct {
	dir      string // holds brokerd's keystore
	keystore string // PEM file, certificate then key
	cert     testcerts.Leaf
	client   *tls.Config
}

// newTLSSetup makes a test CA and a server certificate for 127.0.0.1.
func newTLSSetup() (*tlsSetup, error) {
	ca, err := testcerts.NewCA("brokerbench CA")
	if err != nil {
		return nil, err
	}
	leaf, err := ca.Issue(testcerts.Options{Hosts: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		return nil, err
	}
	dir, err := benchkit.WorkDir("bench-tls-")
	if err != nil {
		return nil, err
	}
	ks := filepath.Join(dir, "keystore.pem")
	if err := os.WriteFile(ks, slices.Concat(leaf.CertPEM, leaf.KeyPEM), 0o600); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("brokerbench: %w", err)
	}
	return &tlsSetup{dir: dir, keystore: ks, cert: leaf, client: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}}, nil
}

// clientOpts are the franz-go options of a client of listener.
func (s *tlsSetup) clientOpts(listener string) []kgo.Opt {
	if listener != saslSSLListener {
		return nil
	}
	return []kgo.Opt{
		kgo.DialTLSConfig(s.client.Clone()),
		kgo.SASL(scram.Auth{User: tlsUser, Pass: tlsPassword}.AsSha512Mechanism()),
	}
}

// tlsBroker is a broker started for the TLS comparison, with the address
// of each of its listeners.
type tlsBroker struct {
	benchkit.Broker
	addrs map[string]string
}

// startTLSBroker starts broker name with a PLAINTEXT and a SASL_SSL
// listener.
func startTLSBroker(ctx context.Context, o *options, bin, name string, s *tlsSetup) (*tlsBroker, error) {
	switch name {
	case "brokerd":
		overrides := map[string]string{
			"ssl.keystore.location":   s.keystore,
			"sasl.enabled.mechanisms": "SCRAM-SHA-512",
		}
		maps.Copy(overrides, brokerdOverrides)
		b, addr, err := benchkit.StartBrokerdSASLSSL(ctx, bin, overrides)
		if err != nil {
			return nil, err
		}
		return &tlsBroker{b, map[string]string{plaintextListener: b.Bootstrap(), saslSSLListener: addr}}, nil
	case "kafka":
		k, addr, err := benchkit.StartKafkaSASLSSL(ctx, o.kafkaHeapMB, kafkaOverrides,
			devstack.KafkaTLS{CertPEM: s.cert.CertPEM, KeyPEM: s.cert.KeyPEM})
		if err != nil {
			return nil, err
		}
		return &tlsBroker{k, map[string]string{plaintextListener: k.Bootstrap(), saslSSLListener: addr}}, nil
	}
	return nil, fmt.Errorf("brokerbench: unknown broker %q", name)
}

// addSCRAMUser creates the benchmark's SCRAM-SHA-512 account through the
// PLAINTEXT listener and waits until the SASL_SSL listener admits it; it
// returns the TLS version and cipher suite that listener negotiated.
func addSCRAMUser(ctx context.Context, b *tlsBroker, s *tlsSetup) (string, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addrs[plaintextListener]))
	if err != nil {
		return "", fmt.Errorf("brokerbench: %w", err)
	}
	defer cl.Close()
	actx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	res, err := kadm.NewClient(cl).AlterUserSCRAMs(actx, nil, []kadm.UpsertSCRAM{{
		User: tlsUser, Mechanism: kadm.ScramSha512, Iterations: tlsIterations, Password: tlsPassword,
	}})
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		return "", fmt.Errorf("brokerbench: add SCRAM user: %w", err)
	}
	addr := b.addrs[saslSSLListener]
	err = devstack.WaitFor(actx, 200*time.Millisecond, nil, func(ctx context.Context) error {
		c, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, s.clientOpts(saslSSLListener)...)...)
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = kadm.NewClient(c).BrokerMetadata(ctx)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("brokerbench: SASL_SSL login at %s: %w", addr, err)
	}
	var d tls.Dialer
	d.Config = s.client.Clone()
	conn, err := d.DialContext(actx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("brokerbench: %w", err)
	}
	defer conn.Close()
	cs := conn.(*tls.Conn).ConnectionState()
	return tls.VersionName(cs.Version) + " (" + tls.CipherSuiteName(cs.CipherSuite) + ")", nil
}

// runTLS measures each broker over its PLAINTEXT and its SASL_SSL
// listener and publishes the comparison.
func runTLS(ctx context.Context, o *options, root, bin string, rep *report) error {
	s, err := newTLSSetup()
	if err != nil {
		return err
	}
	defer os.RemoveAll(s.dir)
	tr := &tlsReport{rep: rep, started: time.Now()}
	for _, name := range o.brokers {
		r := &tlsRun{name: name, results: map[string]*caseResult{}, cpu: map[string]*stepCPU{}}
		tr.runs = append(tr.runs, r)
		if err := runTLSBroker(ctx, o, bin, r, s, rep.settleMemory); err != nil {
			return err
		}
	}
	tr.finished = time.Now()
	return publish(o, root, tlsHeading, tr.markdown())
}

// runTLSBroker starts one broker, rehearses a block over each listener
// and a round of the latency phase (unless -warmup is 0), then runs the
// measured blocks in tlsBlocks' order and the latency phase. Failed steps
// are recorded; only a broker that does not start or admit the account,
// or an interrupt, is an error.
//
// settle puts the machine's memory back in one state (see
// report.settleMemory) before the broker starts, before every block and
// before the latency phase, so that a block's produce does not run faster
// for where it sits in the run: once earlier blocks have filled the page
// cache, writes reuse memory the host already backs and cost several
// times less.
func runTLSBroker(ctx context.Context, o *options, bin string, r *tlsRun, s *tlsSetup, settle func(context.Context)) error {
	settle(ctx)
	load := benchkit.LoadAverage()
	r.load = strings.Fields(load)[0]
	log.Printf("%s: starting with PLAINTEXT and SASL_SSL listeners (load average %s)", r.name, load)
	b, err := startTLSBroker(ctx, o, bin, r.name, s)
	if err != nil {
		return err
	}
	defer b.Stop()
	if r.negotiated, err = addSCRAMUser(ctx, b, s); err != nil {
		return err
	}
	pid := b.Pid()
	log.Printf("%s: pid %d, PLAINTEXT %s, SASL_SSL %s (%s)", r.name, pid, b.addrs[plaintextListener], b.addrs[saslSSLListener], r.negotiated)
	stepTimeout := o.stepTimeout()
	if o.warmup > 0 {
		// A rehearsal: one block over each listener and one round of the
		// latency phase, exactly as measured and then thrown away, so
		// that the first measured ones do not pay for what a cold broker
		// (a JVM still compiling) does slower.
		logErrs := func(l string, errs []string) {
			for _, e := range errs {
				log.Printf("%s: rehearsal over %s: %s", r.name, l, e)
			}
		}
		for _, l := range tlsListeners {
			settle(ctx)
			var res caseResult
			measureListener(ctx, o, stepTimeout, fmt.Sprintf("%s %s rehearsal", r.name, l), b.addrs[l], b.addrs[plaintextListener], pid, s.clientOpts(l), &res, &stepCPU{})
			logErrs(l, res.errs)
		}
		_, errs := measureLatency(ctx, o, stepTimeout, r.name+" latency rehearsal", b, s, 1)
		for l, e := range errs {
			logErrs(l, e)
		}
	}
	for i, l := range tlsBlocks {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("brokerbench: %w", err)
		}
		settle(ctx)
		res, cpu := &caseResult{}, &stepCPU{}
		measureListener(ctx, o, stepTimeout, fmt.Sprintf("%s %s block %d", r.name, l, i+1), b.addrs[l], b.addrs[plaintextListener], pid, s.clientOpts(l), res, cpu)
		r.blocks = append(r.blocks, tlsBlock{listener: l, result: res})
		if r.results[l] == nil {
			r.results[l], r.cpu[l] = res, cpu
		} else {
			r.results[l], r.cpu[l] = mergeBlocks(r.results[l], res), mergeCPU(r.cpu[l], cpu)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("brokerbench: %w", err)
	}
	settle(ctx)
	rounds, errs := measureLatency(ctx, o, stepTimeout, r.name+" latency", b, s, tlsLatencyRounds)
	r.rounds = rounds
	for _, l := range tlsListeners {
		if r.results[l] == nil {
			r.results[l], r.cpu[l] = &caseResult{}, &stepCPU{}
		}
		r.results[l].errs = append(r.results[l].errs, errs[l]...)
		r.results[l].latency = pooledTurns(rounds, func(rd latencyRound) *loadgen.ProduceResult { return rd.results[l] })
		r.results[l].roundTrip = pooledTurns(rounds, func(rd latencyRound) *loadgen.ProduceResult { return rd.trips[l] })
		r.cpu[l].latency, r.cpu[l].latencyOK = pooledCPU(rounds, l)
	}
	log.Printf("%s: stopping", r.name)
	return nil
}

// measureListener runs the two throughput steps against addr with the
// client options opts: a full-speed produce for half of -duration, then a
// consume of what it wrote. Topics are created through admin, the
// PLAINTEXT listener, so that only the measured traffic crosses addr.
func measureListener(ctx context.Context, o *options, timeout time.Duration, prefix, addr, admin string, pid int, opts []kgo.Opt, res *caseResult, cpu *stepCPU) {
	topic := topicFor(prefix, "kgo")
	step := func(what string, f func(context.Context) error) {
		// Write back what the previous step left dirty (a full-speed
		// produce leaves gigabytes), so that a step does not share the
		// disk and CPUs with the writeback of the one before it.
		syscall.Sync()
		runStep(ctx, timeout, &res.errs, prefix, what, f)
	}
	// cpuOver returns the broker's CPU seconds over f, and whether both
	// readings were had.
	cpuOver := func(f func() error) (float64, bool, error) {
		before, err1 := benchkit.CPUSeconds(pid)
		err := f()
		after, err2 := benchkit.CPUSeconds(pid)
		return after - before, err1 == nil && err2 == nil, err
	}
	step("produce", func(ctx context.Context) error {
		if err := benchkit.CreateTopic(ctx, admin, topic, tlsPartitions); err != nil {
			return err
		}
		var pr loadgen.ProduceResult
		secs, ok, err := cpuOver(func() (err error) {
			pr, err = loadgen.Produce(ctx, loadgen.ProduceConfig{
				Brokers: []string{addr}, Topic: topic, RecordSize: o.recordSize,
				AllAcks: true, Duration: o.duration / 2, Linger: -1, Opts: opts,
			})
			return err
		})
		if err == nil {
			err = allAcknowledged(pr)
		}
		if err != nil {
			return err
		}
		res.produce, cpu.produce, cpu.produceOK = &pr, secs, ok
		log.Printf("%s: produce %.0f records/s, %.1f MiB/s", prefix, pr.RecordsPerSec(), pr.MiBPerSec())
		return nil
	})
	if res.produce != nil {
		step("consume", func(ctx context.Context) error {
			var cr loadgen.ConsumeResult
			secs, ok, err := cpuOver(func() (err error) {
				cr, err = loadgen.Consume(ctx, []string{addr}, topic, opts...)
				return err
			})
			if err != nil {
				return err
			}
			if cr.Records != res.produce.Records {
				return fmt.Errorf("brokerbench: read %d records, %d were acknowledged", cr.Records, res.produce.Records)
			}
			res.consume, cpu.consume, cpu.consumeOK = &cr, secs, ok
			log.Printf("%s: consume %.0f records/s, %.1f MiB/s", prefix, cr.RecordsPerSec(), cr.MiBPerSec())
			return nil
		})
	}
	// A block at full speed writes over 10 GB; six blocks do not fit on
	// the disk together.
	if err := benchkit.DeleteTopics(ctx, admin, topic); err != nil {
		log.Printf("%s: %v", prefix, err)
	}
}

// topicFor names the topic of what in the step or phase prefix names.
func topicFor(prefix, what string) string {
	return strings.ToLower(strings.ReplaceAll(prefix+" "+what, " ", "-"))
}

// measureLatency runs the latency phase on b: rounds of a produce at
// -rate records/s with linger 0, one turn over each listener per round,
// the order alternating from round to round. Each turn is a new client on
// the listener's own topic (created through the PLAINTEXT listener) and
// lasts -duration / tlsLatencyRounds after a warm-up of latencyWarmup,
// whose records are acknowledged but not timed; the broker's CPU time over
// it is kept. Then a new client on the same topic produces one record at a
// time, each sent once the one before is acknowledged, for half as long
// after the same warm-up: a produce round trip with nothing queued before
// it. The listeners take turns seconds apart, so that a drift in the
// machine's state over the phase weighs on both alike. It returns the
// rounds and, by listener, the turns that failed.
func measureLatency(ctx context.Context, o *options, timeout time.Duration, prefix string, b *tlsBroker, s *tlsSetup, rounds int) ([]latencyRound, map[string][]string) {
	errs := map[string][]string{}
	admin := b.addrs[plaintextListener]
	topics := map[string]string{}
	for _, l := range tlsListeners {
		topics[l] = topicFor(prefix, l)
		var createErrs []string
		runStep(ctx, timeout, &createErrs, prefix, "latency: create "+topics[l], func(ctx context.Context) error {
			return benchkit.CreateTopic(ctx, admin, topics[l], tlsPartitions)
		})
		errs[l] = createErrs
	}
	turn := o.duration / tlsLatencyRounds
	var out []latencyRound
	for i := range rounds {
		if ctx.Err() != nil {
			break
		}
		order := slices.Clone(tlsListeners)
		if i%2 == 1 {
			slices.Reverse(order)
		}
		round := latencyRound{order: order, results: map[string]*loadgen.ProduceResult{},
			trips: map[string]*loadgen.ProduceResult{}, cpu: map[string]float64{}}
		for _, l := range order {
			var turnErrs []string
			runStep(ctx, timeout, &turnErrs, prefix+" "+l, fmt.Sprintf("latency round %d", i+1), func(ctx context.Context) error {
				cpu0, cpuErr0 := benchkit.CPUSeconds(b.Pid())
				lr, err := timedProduce(ctx, loadgen.ProduceConfig{
					Brokers: []string{b.addrs[l]}, Topic: topics[l], RecordSize: o.recordSize,
					AllAcks: true, Duration: latencyWarmup + turn, Rate: o.rate, Linger: 0, Warmup: latencyWarmup, Opts: s.clientOpts(l),
				})
				if err != nil {
					return err
				}
				cpu1, cpuErr1 := benchkit.CPUSeconds(b.Pid())
				round.results[l] = lr
				if cpuErr0 == nil && cpuErr1 == nil {
					round.cpu[l] = cpu1 - cpu0
				}
				return nil
			})
			runStep(ctx, timeout, &turnErrs, prefix+" "+l, fmt.Sprintf("round trips, round %d", i+1), func(ctx context.Context) error {
				rt, err := timedProduce(ctx, loadgen.ProduceConfig{
					Brokers: []string{b.addrs[l]}, Topic: topics[l], RecordSize: o.recordSize,
					AllAcks: true, Duration: latencyWarmup + turn/2, OneAtATime: true, Linger: 0, Warmup: latencyWarmup, Opts: s.clientOpts(l),
				})
				if err == nil {
					round.trips[l] = rt
				}
				return err
			})
			errs[l] = append(errs[l], turnErrs...)
		}
		if lp, ls := round.results[plaintextListener], round.results[saslSSLListener]; lp != nil && ls != nil {
			log.Printf("%s round %d: p99 PLAINTEXT %s, SASL_SSL %s", prefix, i+1, ms(lp.Latencies.Percentile(99)), ms(ls.Latencies.Percentile(99)))
		}
		out = append(out, round)
	}
	if err := benchkit.DeleteTopics(ctx, admin, topics[plaintextListener], topics[saslSSLListener]); err != nil {
		log.Printf("%s: %v", prefix, err)
	}
	return out, errs
}

// timedProduce runs one produce of the latency phase: every record must
// be acknowledged, and some after the warm-up.
func timedProduce(ctx context.Context, cfg loadgen.ProduceConfig) (*loadgen.ProduceResult, error) {
	lr, err := loadgen.Produce(ctx, cfg)
	if err == nil {
		err = allAcknowledged(lr)
	}
	if err == nil && len(lr.Latencies) == 0 {
		err = errors.New("brokerbench: no record acknowledged after the warm-up")
	}
	if err != nil {
		return nil, err
	}
	return &lr, nil
}

// pooledTurns adds up the turns pick takes from each of rounds; it is nil
// when a turn failed (or there was none), as a figure missing from a round
// is missing from the whole.
func pooledTurns(rounds []latencyRound, pick func(latencyRound) *loadgen.ProduceResult) *loadgen.ProduceResult {
	var sum *loadgen.ProduceResult
	for _, rd := range rounds {
		lr := pick(rd)
		if lr == nil {
			return nil
		}
		if sum == nil {
			sum = lr
		} else {
			sum = mergeProduce(sum, lr)
		}
	}
	return sum
}

// pooledCPU adds up the broker's CPU seconds over listener's fixed-rate
// turns; ok is false when a turn has none.
func pooledCPU(rounds []latencyRound, listener string) (sum float64, ok bool) {
	for _, rd := range rounds {
		c, has := rd.cpu[listener]
		if !has {
			return 0, false
		}
		sum += c
	}
	return sum, len(rounds) > 0
}

// mergeBlocks adds up two blocks of the same listener: counts, bytes and
// elapsed times add, and a step missing from either block is missing from
// the sum.
func mergeBlocks(a, b *caseResult) *caseResult {
	m := &caseResult{errs: slices.Concat(a.errs, b.errs)}
	if a.produce != nil && b.produce != nil {
		m.produce = mergeProduce(a.produce, b.produce)
	}
	if a.consume != nil && b.consume != nil {
		m.consume = &loadgen.ConsumeResult{
			Records: a.consume.Records + b.consume.Records,
			Bytes:   a.consume.Bytes + b.consume.Bytes,
			Elapsed: a.consume.Elapsed + b.consume.Elapsed,
		}
	}
	return m
}

// mergeProduce adds up two produce runs; the latencies stay sorted.
func mergeProduce(a, b *loadgen.ProduceResult) *loadgen.ProduceResult {
	lat := slices.Concat(a.Latencies, b.Latencies)
	slices.Sort(lat)
	return &loadgen.ProduceResult{
		Sent:       a.Sent + b.Sent,
		Records:    a.Records + b.Records,
		Bytes:      a.Bytes + b.Bytes,
		Failed:     a.Failed + b.Failed,
		FirstError: cmp.Or(a.FirstError, b.FirstError),
		Elapsed:    a.Elapsed + b.Elapsed,
		Latencies:  lat,
	}
}

// mergeCPU adds up the broker's CPU time of two blocks.
func mergeCPU(a, b *stepCPU) *stepCPU {
	return &stepCPU{
		produce:   a.produce + b.produce,
		consume:   a.consume + b.consume,
		produceOK: a.produceOK && b.produceOK,
		consumeOK: a.consumeOK && b.consumeOK,
	}
}
