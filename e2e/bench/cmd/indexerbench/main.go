// Command indexerbench measures the indexer against the ceiling that
// Elasticsearch sets on this machine. In one run it starts a fresh
// Elasticsearch node (e2e/harness) and brokerd, pre-fills a topic with
// shipper-shaped httpd access events, and times two phases:
//
//   - ceiling: the very documents the indexer makes of those events (built
//     beforehand with the indexer's own document package) bulk-loaded
//     straight into Elasticsearch with the indexer's bulk size and number of
//     workers;
//   - pipeline: bin/indexer consuming the topic until Elasticsearch holds
//     every document.
//
// Each round runs both phases, the ceiling first in odd rounds and the
// pipeline first in even ones; a round during which other processes on the
// machine took more than -max-other-cpus is run again (up to -extra-rounds
// more), and the figures add up the -rounds undisturbed ones. It reports
// documents per second for both and their ratio, the CPU seconds of the
// indexer, Elasticsearch and brokerd, and the indexer's peak memory. Run it
// from the repository root
// after `make deps` and `make build`:
//
//	go run ./e2e/bench/cmd/indexerbench                                     # 1,000,000 events
//	go run ./e2e/bench/cmd/indexerbench -events 50000 -warmup 10000 -doc ''   # a quick check
//
// It prints a markdown report to stdout, progress to stderr, and replaces
// the "indexer vs direct bulk load" section of docs/benchmarks.md with the
// report unless -doc is empty.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"logpipe/e2e/bench/benchkit"
	"logpipe/e2e/harness"
)

// options are the command-line settings.
type options struct {
	events     int
	partitions int
	workers    int
	flushBytes int
	shards     int
	esHeapMB   int
	warmup     int
	rounds     int
	extra      int
	maxOther   float64
	seed       uint64
	timeout    time.Duration
	indexerBin string
	brokerdBin string
	doc        string
	profile    int
	profileOut string
}

func main() { benchkit.Main("indexerbench", parseFlags, run) }

// commandLine reproduces the current run; parseFlags sets it.
var commandLine string

func parseFlags(args []string) (*options, error) {
	fs := flag.NewFlagSet("indexerbench", flag.ContinueOnError)
	o := &options{}
	fs.IntVar(&o.events, "events", 1000000, "access events pre-filled in the topic (each one document)")
	fs.IntVar(&o.partitions, "partitions", 6, "partitions of the topic")
	fs.IntVar(&o.workers, "workers", 2, "bulk requests in flight at once, for the indexer (elasticsearch.workers) and the direct load alike")
	fs.IntVar(&o.flushBytes, "flush-bytes", 5<<20, "bulk request size, for the indexer (elasticsearch.flush_bytes) and the direct load alike")
	fs.IntVar(&o.shards, "shards", 1, "primary shards per index (the template's index.number_of_shards; replicas are 0 on the one node)")
	fs.IntVar(&o.esHeapMB, "es-heap-mb", 1024, "Elasticsearch's JVM heap, -Xms and -Xmx")
	fs.IntVar(&o.warmup, "warmup", 1000000, "documents bulk-loaded into Elasticsearch and deleted before the first timed phase, to warm the JVM up; at most -events are loaded (0: none)")
	fs.IntVar(&o.rounds, "rounds", 2, "rounds of both phases to keep; odd rounds time the ceiling first, even ones the pipeline first, and the figures add the kept rounds up")
	fs.IntVar(&o.extra, "extra-rounds", 4, "rounds that may be run beyond -rounds in place of rounds disturbed by other work on the machine")
	fs.Float64Var(&o.maxOther, "max-other-cpus", 0.15, "a round is kept only if other processes took at most this many CPUs on average during each of its phases")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the event generator")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Hour, "give up on a phase after this long")
	fs.StringVar(&o.indexerBin, "indexer", "bin/indexer", "the indexer binary (relative paths are from the repository root)")
	fs.StringVar(&o.brokerdBin, "brokerd", "bin/brokerd", "the brokerd binary (relative paths are from the repository root)")
	fs.StringVar(&o.doc, "doc", "docs/benchmarks.md", "markdown file whose \"indexer vs direct bulk load\" section is replaced with the report ('' to leave files alone)")
	fs.IntVar(&o.profile, "profile", 0, "take a CPU profile of the indexer for this many seconds once it indexes, and a heap profile half way (0: none; turns on its pprof endpoint)")
	fs.StringVar(&o.profileOut, "profile-out", "indexer.pprof", "where -profile writes the CPU profile; the heap profile goes to the same name with .heap added")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("indexerbench: unexpected arguments %q", fs.Args())
	}
	if o.events <= 0 || o.partitions <= 0 || o.workers <= 0 || o.flushBytes <= 0 || o.shards <= 0 || o.rounds <= 0 || o.extra < 0 || o.maxOther < 0 || o.esHeapMB < 256 || o.warmup < 0 || o.profile < 0 || o.timeout <= 0 {
		return nil, errors.New("indexerbench: -events, -partitions, -workers, -flush-bytes, -shards, -rounds and -timeout must be positive, -es-heap-mb at least 256, -warmup, -extra-rounds, -max-other-cpus and -profile not negative")
	}
	cmdline := []string{"go", "run", "./e2e/bench/cmd/indexerbench"}
	fs.Visit(func(f *flag.Flag) {
		v := f.Value.String()
		if v == "" || strings.ContainsAny(v, " '\"") {
			v = "'" + v + "'"
		}
		cmdline = append(cmdline, "-"+f.Name, v)
	})
	commandLine = strings.Join(cmdline, " ")
	return o, nil
}

// The indices of the two phases: both match the template the indexer
// installs for its default access route, httpd_access-%{+YYYY.MM.dd}
// (pattern httpd_access-*).
const (
	ceilingRoute    = "httpd_access-ceiling-%{+YYYY.MM.dd}"
	pipelinePattern = "httpd_access-2*"
	ceilingPattern  = "httpd_access-ceiling-*"
	benchTopic      = "httpd"
)

func run(ctx context.Context, o *options) error {
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(root, p)
	}
	ixBin, brBin := abs(o.indexerBin), abs(o.brokerdBin)
	for _, b := range []string{ixBin, brBin} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("indexerbench: %s is missing (run `make build` first): %w", b, err)
		}
	}
	dir, err := benchkit.WorkDir("indexerbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	rep := &report{
		opts:    o,
		started: time.Now(),
		machine: benchkit.DescribeMachine(),
		indexer: firstLine(ixBin, "--version"),
		brokerd: firstLine(brBin, "--version"),
	}
	if java, err := harness.JavaPath(); err == nil {
		rep.java = firstLine(java, "-version")
	}

	log.Printf("starting Elasticsearch (heap %d MiB)", o.esHeapMB)
	node, err := harness.StartElasticsearch(ctx, harness.ElasticsearchOptions{HeapMB: o.esHeapMB, ClusterName: "indexerbench"})
	if err != nil {
		return err
	}
	defer node.Close()
	es, err := esClient(node.URL, o.workers)
	if err != nil {
		return err
	}
	var info struct {
		Version struct {
			Number string `json:"number"`
		} `json:"version"`
	}
	if err := esDo(ctx, es, "GET", "/", &info); err != nil {
		return err
	}
	rep.elasticsearch = info.Version.Number

	log.Printf("starting brokerd")
	// The initial rebalance delay is 0, so the indexer's group forms at once.
	br, err := benchkit.StartBrokerd(ctx, brBin, map[string]string{"group.initial.rebalance.delay.ms": "0"})
	if err != nil {
		return err
	}
	defer br.Stop()

	// The templates first, with the configuration the indexer runs with.
	setupCfg := filepath.Join(dir, "setup.yml")
	if err := os.WriteFile(setupCfg, []byte(indexerConfig(o, br.Bootstrap(), benchTopic, "indexerbench", node.URL, 0)), 0o644); err != nil {
		return fmt.Errorf("indexerbench: %w", err)
	}
	if out, err := exec.CommandContext(ctx, ixBin, "-c", setupCfg, "setup", "--templates").CombinedOutput(); err != nil {
		return fmt.Errorf("indexerbench: indexer setup: %v\n%s", err, out)
	}

	sp, err := fill(ctx, o, rep, br.Bootstrap(), dir)
	if err != nil {
		return err
	}
	defer sp.close()
	if err := warmUp(ctx, o, rep, es, sp); err != nil {
		return err
	}
	kept := 0
	for round := 1; kept < o.rounds && round <= o.rounds+o.extra; round++ {
		ceilingFirst := round%2 == 1
		var c, p *phase
		for i := 0; i < 2; i++ {
			var err error
			if ceilingFirst == (i == 0) {
				c, err = ceilingPhase(ctx, o, es, node, sp, round)
			} else {
				p, err = pipelinePhase(ctx, o, rep.docs, es, node, br, ixBin, dir, round)
			}
			if err != nil {
				return err
			}
		}
		rep.ceilings, rep.pipelines = append(rep.ceilings, c), append(rep.pipelines, p)
		oc, op := perSec(c.otherCPU(), c.elapsed), perSec(p.otherCPU(), p.elapsed)
		if oc <= o.maxOther && op <= o.maxOther {
			c.kept, p.kept = true, true
			kept++
			continue
		}
		log.Printf("round %d: other processes took %.2f CPUs during the ceiling and %.2f during the pipeline (limit %.2f); not kept", round, oc, op, o.maxOther)
	}
	if kept < o.rounds {
		log.Printf("only %d of %d rounds undisturbed; the report adds up every round run", kept, o.rounds)
		for i := range rep.ceilings {
			rep.ceilings[i].kept, rep.pipelines[i].kept = true, true
		}
		rep.disturbed = true
	}
	sp.close()
	rep.finished = time.Now()

	section := rep.markdown()
	fmt.Print(section)
	if o.doc != "" {
		path := abs(o.doc)
		if err := benchkit.WriteSection(path, sectionHeading, section); err != nil {
			return err
		}
		log.Printf("wrote the report to %s", path)
	}
	return nil
}

// fill creates the topic, produces the events and spools the documents the
// indexer will make of them. Nothing here is timed for the comparison.
func fill(ctx context.Context, o *options, rep *report, broker, dir string) (*spool, error) {
	if err := benchkit.CreateTopic(ctx, broker, benchTopic, o.partitions); err != nil {
		return nil, err
	}
	sp, err := newSpool(dir, o.flushBytes)
	if err != nil {
		return nil, err
	}
	maker, err := newDocMaker(ceilingRoute)
	if err != nil {
		sp.close()
		return nil, err
	}
	p, err := newProducer(broker, benchTopic)
	if err != nil {
		sp.close()
		return nil, err
	}
	log.Printf("producing %s events to %d partitions and building their documents", benchkit.Thousands(float64(o.events)), o.partitions)
	gen := newGenerator(o.seed, o.events, o.partitions)
	start := time.Now()
	last := start
	var valueBytes int64
	for i := 0; i < o.events; i++ {
		ev, part := gen.next()
		value := ev.AppendJSON(nil)
		valueBytes += int64(len(value))
		p.send(ctx, part, value)
		index, d, err := maker.make(benchTopic, part, int64(i), value, ev.Timestamp)
		if err == nil {
			err = sp.add(index, d.ID, d.Body)
		}
		if err != nil {
			p.finish()
			sp.close()
			return nil, err
		}
		if time.Since(last) >= 10*time.Second {
			last = time.Now()
			log.Printf("  %s events", benchkit.Thousands(float64(i+1)))
		}
	}
	acked, err := p.finish()
	if err == nil {
		err = sp.finish()
	}
	if err != nil {
		sp.close()
		return nil, err
	}
	rep.produceTime = time.Since(start)
	n, err := topicRecords(ctx, broker, benchTopic)
	if err != nil {
		sp.close()
		return nil, err
	}
	if acked != o.events || n != int64(o.events) {
		sp.close()
		return nil, fmt.Errorf("indexerbench: %d events acknowledged and %d records in the topic, want %d", acked, n, o.events)
	}
	rep.valueBytes = valueBytes
	rep.docs, rep.docBytes, rep.bulkBytes, rep.bulkRequests = sp.docs, sp.docBytes, sp.bodyBytes, len(sp.requests)
	log.Printf("topic %s holds %s records (%.1f MiB of values, in %s); %d bulk requests of documents (%.1f MiB) spooled",
		benchTopic, benchkit.Thousands(float64(n)), float64(valueBytes)/(1<<20), rep.produceTime.Round(time.Second), len(sp.requests), float64(sp.bodyBytes)/(1<<20))
	return sp, nil
}

// warmUp bulk-loads the first -warmup documents and deletes them, so that
// the first timed phase does not pay for a cold JVM.
func warmUp(ctx context.Context, o *options, rep *report, es *elasticsearch.Client, sp *spool) error {
	if o.warmup == 0 {
		return nil
	}
	n, docs := 0, 0
	for n < len(sp.requests) && docs < o.warmup {
		docs += sp.requests[n].items
		n++
	}
	log.Printf("warm-up: loading %s documents, then deleting them", benchkit.Thousands(float64(docs)))
	if _, err := bulkLoad(ctx, es, sp, 0, n, o.workers, nil); err != nil {
		return err
	}
	rep.warmupDocs = docs
	return deleteIndices(ctx, es, ceilingPattern)
}

// ceilingPhase times the direct load of every spooled request into empty
// indices, checks the count and deletes the indices again.
func ceilingPhase(ctx context.Context, o *options, es *elasticsearch.Client, node *harness.Elasticsearch, sp *spool, round int) (*phase, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	syscall.Sync()
	settle(ctx, node.Pid())
	ph := &phase{round: round, load: benchkit.LoadAverage()}
	name := fmt.Sprintf("round %d, ceiling", round)
	log.Printf("%s: bulk-loading %s documents with %d workers (load average %s)", name, benchkit.Thousands(float64(sp.docs)), o.workers, ph.load)
	esW := benchkit.WatchMemory(node.Pid())
	es0, _ := benchkit.CPUSeconds(node.Pid())
	self0, _ := benchkit.CPUSeconds(os.Getpid())
	m0 := readCPUTimes()
	prog := newProgress(name, sp.docs)
	res, err := bulkLoad(ctx, es, sp, 0, len(sp.requests), o.workers, prog.report)
	ph.machine = readCPUTimes().since(m0)
	es1, _ := benchkit.CPUSeconds(node.Pid())
	self1, _ := benchkit.CPUSeconds(os.Getpid())
	ph.esPeakKB, _ = esW.Finish()
	if err != nil {
		return nil, err
	}
	ph.docs, ph.elapsed, ph.bodyBytes, ph.requests = res.docs, res.elapsed, res.bodyBytes, res.requests
	ph.esCPU, ph.clientCPU, ph.retried, ph.duplicates = es1-es0, self1-self0, res.retried, res.duplicates
	n, err := countDocs(ctx, es, ceilingPattern)
	if err != nil {
		return nil, err
	}
	if n != sp.docs {
		return nil, fmt.Errorf("indexerbench: the ceiling indices hold %d documents, want %d", n, sp.docs)
	}
	if ph.mapping, err = mappingOf(ctx, es, ceilingPattern); err != nil {
		return nil, err
	}
	log.Printf("%s: %s docs/s (%s), Elasticsearch %.0f CPU s", name, benchkit.Thousands(ph.docsPerSec()), ph.elapsed.Round(time.Millisecond), ph.esCPU)
	return ph, deleteIndices(ctx, es, ceilingPattern)
}

// pipelinePhase runs the indexer, in a consumer group of its own, until
// Elasticsearch holds every document, checks the count and deletes the
// indices again.
func pipelinePhase(ctx context.Context, o *options, want int, es *elasticsearch.Client, node *harness.Elasticsearch, br *benchkit.Brokerd,
	bin, dir string, round int) (*phase, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	httpPort, err := harness.FreePort()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, fmt.Sprintf("indexer-%d.yml", round))
	cfg := indexerConfig(o, br.Bootstrap(), benchTopic, fmt.Sprintf("indexerbench-%d", round), node.URL, httpPort)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, fmt.Errorf("indexerbench: %w", err)
	}
	syscall.Sync()
	settle(ctx, node.Pid())
	ph := &phase{round: round, load: benchkit.LoadAverage()}
	name := fmt.Sprintf("round %d, pipeline", round)
	profile := o.profile > 0 && round == 1
	log.Printf("%s: bin/indexer consuming %s records (load average %s)", name, benchkit.Thousands(float64(want)), ph.load)
	addr := "127.0.0.1:" + strconv.Itoa(httpPort)
	esW := watch(node.Pid())
	defer esW.finish()
	es0, _ := benchkit.CPUSeconds(node.Pid())
	br0, _ := benchkit.CPUSeconds(br.Pid())
	self0, _ := benchkit.CPUSeconds(os.Getpid())
	m0 := readCPUTimes()
	start := time.Now()
	proc, err := harness.StartProcess("indexer", exec.Command(bin, "-c", cfgPath), filepath.Join(dir, fmt.Sprintf("indexer-%d.log", round)))
	if err != nil {
		return nil, err
	}
	defer proc.Stop(time.Minute)
	ixW := watch(proc.Pid())
	defer ixW.finish()
	prog := newProgress(name, want)
	var profWG sync.WaitGroup
	defer profWG.Wait()
	fetch := func(what, path string) {
		profWG.Add(1)
		go func() {
			defer profWG.Done()
			if err := fetchProfile(ctx, addr, what, path); err != nil {
				log.Print(err)
			}
		}()
	}
	var m map[string]float64
	cpuProfiled := false
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if exited, werr := proc.Exited(); exited {
			return nil, fmt.Errorf("indexerbench: the indexer exited (%v); log %s:\n%s", werr, proc.LogPath, proc.Tail(4000))
		}
		if ph.startup == 0 && ready(ctx, addr) {
			ph.startup = time.Since(start)
		}
		if got, err := metrics(ctx, addr); err == nil {
			m = got
			done := int(m[mIndexed] + m[mDuplicate])
			if m[mDead]+m[mFailed] > 0 {
				return nil, fmt.Errorf("indexerbench: the indexer dead-lettered %v and failed %v documents; log %s", m[mDead], m[mFailed], proc.LogPath)
			}
			if profile && !cpuProfiled && done > 0 {
				cpuProfiled = true
				fetch(fmt.Sprintf("profile?seconds=%d", o.profile), o.profileOut)
			}
			if ph.halfRSSKB == 0 && done >= want/2 {
				ph.halfRSSKB, _ = benchkit.ProcStatusKB(proc.Pid(), "VmRSS")
				if profile {
					fetch("heap", o.profileOut+".heap")
				}
			}
			prog.report(done)
			if done >= want {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("indexerbench: %s: %w (log %s)", name, ctx.Err(), proc.LogPath)
		case <-tick.C:
		}
	}
	ph.elapsed = time.Since(start)
	ph.machine = readCPUTimes().since(m0)
	es1, _ := benchkit.CPUSeconds(node.Pid())
	br1, _ := benchkit.CPUSeconds(br.Pid())
	self1, _ := benchkit.CPUSeconds(os.Getpid())
	ph.clientCPU = self1 - self0
	ph.indexerPeakKB, ph.indexerCPU = ixW.finish()
	ph.esPeakKB, _ = esW.finish()
	ph.esCPU, ph.brokerCPU = es1-es0, br1-br0
	ph.docs = int(m[mIndexed] + m[mDuplicate])
	ph.duplicates = int(m[mDuplicate])
	ph.bodyBytes, ph.requests = int64(m[mBulkBytes]), int(m[mBulkReqs])
	ph.retried = int(m[mRetried])
	profWG.Wait()
	proc.Stop(time.Minute)
	n, err := countDocs(ctx, es, pipelinePattern)
	if err != nil {
		return nil, err
	}
	if n != want {
		return nil, fmt.Errorf("indexerbench: the indexer's indices hold %d documents, want %d", n, want)
	}
	if ph.mapping, err = mappingOf(ctx, es, pipelinePattern); err != nil {
		return nil, err
	}
	log.Printf("%s: %s docs/s (%s), indexer %.0f CPU s, peak RSS %.0f MiB, Elasticsearch %.0f CPU s", name,
		benchkit.Thousands(ph.docsPerSec()), ph.elapsed.Round(time.Millisecond), ph.indexerCPU, float64(ph.indexerPeakKB)/1024, ph.esCPU)
	return ph, deleteIndices(ctx, es, pipelinePattern)
}

// memWatch is a benchkit.MemWatch that may be finished more than once.
type memWatch struct {
	w    *benchkit.MemWatch
	once sync.Once
	peak int64
	cpu  float64
}

func watch(pid int) *memWatch { return &memWatch{w: benchkit.WatchMemory(pid)} }

// finish stops the watch the first time and returns the peak resident
// memory in KiB and the CPU seconds.
func (m *memWatch) finish() (int64, float64) {
	m.once.Do(func() { m.peak, m.cpu = m.w.Finish() })
	return m.peak, m.cpu
}

// settle waits up to a minute for the process pid (Elasticsearch) to go
// quiet after the previous step (merges, flushes of deleted indices), so
// that a phase does not pay for the one before.
func settle(ctx context.Context, pid int) {
	deadline := time.Now().Add(time.Minute)
	prev, _ := benchkit.CPUSeconds(pid)
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
		cur, _ := benchkit.CPUSeconds(pid)
		if cur-prev < 0.2 {
			return
		}
		prev = cur
	}
}

// progress logs how far a phase has got, every ten seconds at most.
type progress struct {
	name  string
	want  int
	start time.Time
	mu    sync.Mutex
	last  time.Time
}

func newProgress(name string, want int) *progress {
	now := time.Now()
	return &progress{name: name, want: want, start: now, last: now}
}

func (p *progress) report(done int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < 10*time.Second {
		return
	}
	p.last = time.Now()
	el := time.Since(p.start)
	rate := float64(done) / el.Seconds()
	eta := "–"
	if rate > 0 {
		eta = time.Duration(float64(p.want-done) / rate * float64(time.Second)).Round(time.Second).String()
	}
	log.Printf("  %s: %s of %s documents, %s docs/s, about %s to go", p.name, benchkit.Thousands(float64(done)), benchkit.Thousands(float64(p.want)),
		benchkit.Thousands(math.Round(rate)), eta)
}
