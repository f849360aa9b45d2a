// Command shipperbench measures the shipper side by side with rsyslog
// (Debian's rsyslog with imfile and omkafka) shipping the same
// combined-format access-log lines to the same broker, brokerd and Apache
// Kafka, one node each with acks=all: from one pre-written file, and from
// many files while a writer appends to them. For each run it reports
// lines/s, MiB/s of log read, CPU seconds per million lines and peak
// memory. A run is complete when the topic's end offsets add up to the
// number of lines: every line is in the broker's log, acknowledged.
//
// Run it from the repository root after `make deps` and `make build`:
//
//	go run ./e2e/bench/cmd/shipperbench                                  # the full run, about 10 minutes
//	go run ./e2e/bench/cmd/shipperbench -lines 100000 -brokers brokerd -doc ''   # a quick check
//
// It prints a markdown report to stdout, progress to stderr, and replaces
// the "shipper vs rsyslog" section of docs/benchmarks.md with the report
// unless -doc is empty.
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
	"syscall"
	"time"

	"logpipe/e2e/bench/accesslog"
	"logpipe/e2e/bench/benchkit"
	"logpipe/internal/devstack"
)

// The inputs measured.
const (
	inputFile = "file" // one pre-written file
	inputTail = "tail" // many files appended to while shipped
)

// options are the command-line settings.
type options struct {
	lines          int
	files          int
	runs           int
	chunk          int
	seed           uint64
	partitions     int
	brokers        []string
	peers          []string
	inputs         []string
	shipperBin     string
	brokerdBin     string
	kafkaHeapMB    int
	runTimeout     time.Duration
	stall          time.Duration
	doc            string
	profile        string
	profileSeconds int
	// shipperSet are -E overrides for the shipper, for trying settings;
	// shipperEnv are environment variables for it.
	shipperSet []string
	shipperEnv []string
	// keep leaves the work folder (configs, logs, state) in place.
	keep bool
}

func main() { benchkit.Main("shipperbench", parseFlags, run) }

func logf(format string, args ...any) { log.Printf(format, args...) }

// list splits a comma-separated flag value and checks each entry against
// allowed.
func list(flagName, value string, allowed ...string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(value, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(allowed, s) {
			return nil, fmt.Errorf("shipperbench: bad -%s entry %q (want %s)", flagName, s, strings.Join(allowed, ", "))
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("shipperbench", flag.ContinueOnError)
	o := &options{}
	var brokers, peers, inputs, shipperSet, shipperEnv string
	fs.IntVar(&o.lines, "lines", 1000000, "access-log lines shipped in each run (the one file's, and all the tailed files' together)")
	fs.IntVar(&o.files, "files", 100, "files tailed at once in the tail runs")
	fs.IntVar(&o.runs, "runs", 3, "runs of each program on each broker and input; the report gives the median run")
	fs.IntVar(&o.chunk, "chunk", 10, "lines the tail writer appends to one file at a time")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the line generator")
	fs.IntVar(&o.partitions, "partitions", 1, "partitions of each topic")
	fs.StringVar(&brokers, "brokers", "brokerd,kafka", "brokers to ship to, in order (brokerd, kafka)")
	fs.StringVar(&peers, "peers", "shipper,rsyslog,rsyslog-raw", "programs to measure: shipper, rsyslog (making the shipper's JSON event), rsyslog-raw (sending the bare line)")
	fs.StringVar(&inputs, "inputs", "file,tail", "inputs to measure: file (one pre-written file), tail (-files files being appended to)")
	fs.StringVar(&o.shipperBin, "shipper", "bin/shipper", "the shipper binary (relative paths are from the repository root)")
	fs.StringVar(&o.brokerdBin, "brokerd", "bin/brokerd", "the brokerd binary (relative paths are from the repository root)")
	fs.IntVar(&o.kafkaHeapMB, "kafka-heap-mb", 1024, "Apache Kafka's JVM heap, -Xms and -Xmx")
	fs.DurationVar(&o.runTimeout, "run-timeout", 10*time.Minute, "longest one run may take")
	fs.DurationVar(&o.stall, "stall", time.Minute, "a run fails when the topic does not grow for this long")
	fs.StringVar(&o.doc, "doc", "docs/benchmarks.md", "markdown file whose \"shipper vs rsyslog\" section is replaced with the report ('' to leave files alone)")
	fs.StringVar(&o.profile, "profile", "", "folder to write CPU profiles of the shipper's runs to ('' for none)")
	fs.IntVar(&o.profileSeconds, "profile-seconds", 3, "length of each CPU profile, from the shipper's start")
	fs.StringVar(&shipperSet, "shipper-set", "", "settings for the shipper beyond the benchmark's config, as key=value pairs separated by spaces (each becomes -E key=value)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work folder with the peers' configs, logs and state, for looking into a run")
	fs.StringVar(&shipperEnv, "shipper-env", "", "environment variables for the shipper, as NAME=value pairs separated by spaces (GOGC=200, ...)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	o.shipperSet = strings.Fields(shipperSet)
	o.shipperEnv = strings.Fields(shipperEnv)
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("shipperbench: unexpected arguments %q", fs.Args())
	}
	if o.lines <= 0 || o.files <= 0 || o.runs <= 0 || o.chunk <= 0 || o.partitions <= 0 || o.kafkaHeapMB <= 0 || o.runTimeout <= 0 || o.stall <= 0 || o.profileSeconds <= 0 {
		return nil, errors.New("shipperbench: -lines, -files, -runs, -chunk, -partitions, -kafka-heap-mb, -run-timeout, -stall and -profile-seconds must be positive")
	}
	if o.files > o.lines {
		return nil, errors.New("shipperbench: -files must not exceed -lines")
	}
	var err error
	if o.brokers, err = list("brokers", brokers, "brokerd", "kafka"); err != nil {
		return nil, err
	}
	if o.peers, err = list("peers", peers, peerShipper, peerRsyslog, peerRsyslogRaw); err != nil {
		return nil, err
	}
	if o.inputs, err = list("inputs", inputs, inputFile, inputTail); err != nil {
		return nil, err
	}
	commandLine = benchkit.CommandLine("./e2e/bench/cmd/shipperbench", fs)
	return o, nil
}

// shipperName returns the shipper binary as the report names it: relative
// to the repository root when it is inside it.
func (o *options) shipperName() string {
	if root, err := devstack.RepoRoot(); err == nil {
		if rel, err := filepath.Rel(root, o.shipperBin); err == nil && !strings.HasPrefix(rel, "..") {
			return rel
		}
	}
	return o.shipperBin
}

// commandLine reproduces the current run; parseFlags sets it.
var commandLine string

func run(ctx context.Context, o *options) error {
	root, err := devstack.RepoRoot()
	if err != nil {
		return err
	}
	for _, p := range []*string{&o.shipperBin, &o.brokerdBin, &o.doc, &o.profile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(root, *p)
		}
	}
	if _, err := os.Stat(o.shipperBin); err != nil {
		return fmt.Errorf("shipperbench: no shipper binary (run `make build` first): %w", err)
	}
	if slices.Contains(o.brokers, "brokerd") {
		if _, err := os.Stat(o.brokerdBin); err != nil {
			return fmt.Errorf("shipperbench: no brokerd binary (run `make build` first): %w", err)
		}
	}
	if slices.Contains(o.peers, peerRsyslog) || slices.Contains(o.peers, peerRsyslogRaw) {
		if _, err := os.Stat(rsyslogd); err != nil {
			return fmt.Errorf("shipperbench: no rsyslogd (apt-get install rsyslog rsyslog-kafka, or `make deps`): %w", err)
		}
		if m, _ := filepath.Glob(omkafka); len(m) == 0 {
			return errors.New("shipperbench: no omkafka module for rsyslog (apt-get install rsyslog-kafka, or `make deps`)")
		}
	}
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return fmt.Errorf("shipperbench: %w", err)
		}
	}
	rep := &report{
		opts:     o,
		started:  time.Now(),
		machine:  benchkit.DescribeMachine(),
		shipper:  firstLine(commandOutput(o.shipperBin, "--version")),
		rsyslog:  rsyslogVersion(),
		rdkafka:  packageVersion("librdkafka1"),
		rsyskafk: packageVersion("rsyslog-kafka"),
	}
	if slices.Contains(o.brokers, "brokerd") {
		rep.brokerd = benchkit.BrokerdVersion(o.brokerdBin)
	}
	if slices.Contains(o.brokers, "kafka") {
		// Fetch the Kafka jars (once) before anything is timed.
		if _, err := devstack.KafkaJars(ctx); err != nil {
			return err
		}
		rep.kafka = kafkaJarVersion(ctx)
	}

	work, err := benchkit.WorkDir("shipperbench-")
	if err != nil {
		return err
	}
	if o.keep {
		logf("work folder %s is kept", work)
	} else {
		defer os.RemoveAll(work)
	}
	if err := os.Chmod(work, 0o755); err != nil {
		return fmt.Errorf("shipperbench: %w", err)
	}
	var single string
	if slices.Contains(o.inputs, inputFile) {
		single = filepath.Join(work, "access_log")
		t0 := time.Now()
		n, err := accesslog.WriteFile(single, o.lines, o.seed)
		if err != nil {
			return err
		}
		rep.singleBytes = n
		logf("wrote %s lines (%.1f MiB, %.0f bytes a line) to %s in %v", benchkit.Thousands(float64(o.lines)),
			float64(n)/(1<<20), float64(n)/float64(o.lines), single, time.Since(t0).Round(time.Millisecond))
	}

	seq := 0
	for bi, name := range o.brokers {
		syscall.Sync()
		logf("%s: starting (load average %s)", name, benchkit.LoadAverage())
		b, err := startBroker(ctx, name, o)
		if err != nil {
			return err
		}
		logf("%s: pid %d at %s", name, b.pid, b.addr)
		for ii, input := range o.inputs {
			for run := range o.runs {
				// Which peer goes first alternates, so that a change in the
				// machine's load over the run does not favour one of them.
				order := slices.Clone(o.peers)
				if (bi+ii+run)%2 == 1 {
					slices.Reverse(order)
				}
				for _, p := range order {
					if err := ctx.Err(); err != nil {
						b.stop()
						return fmt.Errorf("shipperbench: %w", err)
					}
					seq++
					syscall.Sync()
					res := measure(ctx, o, b, p, input, seq, work, single, rep.singleBytes)
					rep.add(caseKey{broker: name, input: input}, res)
				}
			}
		}
		b.stop()
	}
	rep.finished = time.Now()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("shipperbench: %w", err)
	}

	section := rep.markdown()
	fmt.Print(section)
	if o.doc != "" {
		if err := benchkit.WriteSection(o.doc, sectionHeading, section); err != nil {
			return err
		}
		logf("wrote the report to %s", o.doc)
	}
	return nil
}

// omkafka is where Debian's rsyslog-kafka puts its output module.
const omkafka = "/usr/lib/*/rsyslog/omkafka.so"

// packageVersion returns a Debian package's installed version.
func packageVersion(pkg string) string {
	return commandOutput("dpkg-query", "-W", "-f=${Version}", pkg)
}

// measure runs one peer on one input against broker b and returns what it
// measured; a run that fails says why in its err.
func measure(ctx context.Context, o *options, b *broker, peerName, input string, seq int, work, single string, singleBytes int64) *result {
	res := &result{peer: peerName, lines: int64(o.lines), load: strings.Fields(benchkit.LoadAverage())[0]}
	prefix := fmt.Sprintf("%s, %s, %s", b.name, input, peerName)
	fail := func(err error) *result {
		res.err = err.Error()
		logf("%s: failed: %v", prefix, err)
		return res
	}
	rctx, cancel := context.WithTimeout(ctx, o.runTimeout)
	defer cancel()

	topic := fmt.Sprintf("shipperbench-%s-%s-%d", input, peerName, seq)
	if err := b.createTopic(rctx, topic, o.partitions); err != nil {
		return fail(err)
	}
	defer func() {
		if err := b.deleteTopic(ctx, topic); err != nil {
			logf("%s: cannot delete topic %s: %v", prefix, topic, err)
		}
	}()
	dir, err := os.MkdirTemp(work, peerName+"-"+input+"-")
	if err != nil {
		return fail(err)
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fail(err)
	}
	j := job{addr: b.addr, topic: topic, dir: dir}
	var load tailLoad
	switch input {
	case inputFile:
		j.paths = single
		res.bytes = singleBytes
	case inputTail:
		logs := filepath.Join(dir, "logs")
		if err := os.Mkdir(logs, 0o755); err != nil {
			return fail(err)
		}
		load = tailLoad{dir: logs, files: o.files, lines: o.lines, chunk: o.chunk, seed: o.seed}
		if err := load.create(); err != nil {
			return fail(err)
		}
		j.paths = load.glob()
	}
	if o.profile != "" && peerName == peerShipper {
		j.profile = filepath.Join(o.profile, fmt.Sprintf("shipper-%s-%s.pprof", b.name, input))
	}

	logf("%s: starting (load average %s)", prefix, benchkit.LoadAverage())
	brokerCPU0, _ := benchkit.CPUSeconds(b.pid)
	start := time.Now()
	p, err := startPeer(peerName, o, j)
	if err != nil {
		return fail(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			p.proc.Stop(30 * time.Second)
		}
	}
	defer stop()
	pid := p.proc.Pid()
	w := benchkit.WatchMemory(pid)
	var cpu0 float64
	type written struct {
		bytes int64
		took  time.Duration
		err   error
	}
	var writer chan written
	if input == inputTail {
		// The peer is started and idle; from here on the files grow.
		if err := p.ready(rctx); err != nil {
			w.Finish()
			return fail(err)
		}
		cpu0, _ = benchkit.CPUSeconds(pid)
		start = time.Now()
		writer = make(chan written, 1)
		go func() {
			n, took, err := load.write(rctx)
			writer <- written{n, took, err}
		}()
	}
	err = waitRecords(rctx, b, topic, res.lines, o.stall, p)
	res.elapsed = time.Since(start)
	peak, cpu := w.Finish()
	brokerCPU1, _ := benchkit.CPUSeconds(b.pid)
	p.after()
	stop()
	if writer != nil {
		wr := <-writer
		res.bytes, res.writer = wr.bytes, wr.took
		if wr.err != nil && err == nil {
			err = wr.err
		}
	}
	if err != nil {
		return fail(fmt.Errorf("%w; %s log:\n%s", err, peerName, p.proc.Tail(1500)))
	}
	res.cpu = cpu - cpu0
	res.peakKB = peak
	res.brokerCPU = brokerCPU1 - brokerCPU0
	// Anything more than one record a line would be a duplicate.
	res.records, err = b.records(ctx, topic)
	if err != nil {
		return fail(err)
	}
	logf("%s: %s lines in %v: %s lines/s, %.1f MiB/s, %.2f CPU-s per million lines, peak RSS %.0f MiB, broker %.1f CPU-s; %d records",
		prefix, benchkit.Thousands(float64(res.lines)), res.elapsed.Round(time.Millisecond), benchkit.Thousands(res.linesPerSec()),
		res.mibPerSec(), res.cpuPerMillion(), res.peakMiB(), res.brokerCPU, res.records)
	return res
}

// waitRecords polls the topic's end offsets until they add up to at least
// want. It fails when they stop growing for stall, when the peer exits, or
// when ctx ends.
func waitRecords(ctx context.Context, b *broker, topic string, want int64, stall time.Duration, p *peer) error {
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	var last int64
	lastMove := time.Now()
	for {
		n, err := b.records(ctx, topic)
		if err == nil {
			if n >= want {
				return nil
			}
			if n > last {
				last, lastMove = n, time.Now()
			}
		}
		if time.Since(lastMove) > stall {
			return fmt.Errorf("the topic stayed at %d of %d records for %v (last error: %v)", last, want, stall, err)
		}
		if exited, werr := p.proc.Exited(); exited {
			return fmt.Errorf("the peer exited (%v) with %d of %d records in the topic", werr, last, want)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w with %d of %d records in the topic", ctx.Err(), last, want)
		case <-t.C:
		}
	}
}
