package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/e2e/bench/benchkit"
	"logpipe/internal/devstack"
)

// binaries are the programs BuildPrograms made for the run.
type binaries struct{ brokerd, shipper, indexer string }

// Time limits for bringing the pipeline up.
const (
	brokerTimeout = 6 * time.Minute // Kafka formats its storage and starts a JVM
	readyTimeout  = 2 * time.Minute // the indexer joins its group, the shipper connects
	setupTimeout  = 2 * time.Minute
	stopGrace     = time.Minute // the indexer drains for up to kafka.drain_timeout (30s)
)

// shippedLogs is the folder configs/shipper.yml reads the httpd logs from;
// the benchmark moves both inputs into its work folder.
const shippedLogs = "/var/log/httpd/"

// stack is one broker's running pipeline, in a folder of its own.
type stack struct {
	name string // the broker
	es   *devstack.Elasticsearch
	// Exactly one of brokerd and kafka is set.
	brokerd   *devstack.BrokerdCluster
	kafka     *devstack.Kafka
	bootstrap string
	adm       *kadm.Client
	cl        *kgo.Client
	topic     string
	search    *searcher
	logs      [numLogs]*logFile
	// run makes this pipeline's markers unique.
	run string

	// The shipper and the indexer, and how to start them again. A fault
	// sets one to nil while it is down.
	mu                       sync.Mutex
	shipper, indexer         *devstack.Process
	shipperCmd, indexerCmd   func() *exec.Cmd
	shipperHTTP, indexerHTTP int
	shipperLog, indexerLog   string
}

// logFile is a log the shipper tails, open for appending.
type logFile struct {
	path string
	f    *os.File
	// size is where the next line starts.
	size int64
}

// startStack starts Elasticsearch, the broker name (o.nodes nodes), the
// topic, the indexer (after `indexer setup`) and the shipper in dir, and
// waits until the indexer is in its consumer group and the shipper is
// connected. On failure it stops what it started.
func startStack(ctx context.Context, o *options, root string, bins binaries, name, dir string) (*stack, error) {
	st := &stack{name: name, run: fmt.Sprintf("%08x", rand.Uint32())}
	started := false
	defer func() {
		if !started {
			st.stop()
		}
	}()
	logs := filepath.Join(dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return nil, fmt.Errorf("latencybench: %w", err)
	}
	cfg := func(name string) string { return filepath.Join(root, "configs", name+".yml") }
	var err error
	if st.topic, err = shippedTopic(root); err != nil {
		return nil, err
	}

	log.Printf("%s: starting Elasticsearch (heap %d MiB)", name, o.esHeapMB)
	st.es, err = devstack.StartElasticsearch(ctx, devstack.ElasticsearchOptions{Dir: filepath.Join(dir, "elasticsearch"), ClusterName: "latencybench", HeapMB: o.esHeapMB})
	if err != nil {
		return nil, err
	}
	st.search = &searcher{url: st.es.URL, client: &http.Client{Timeout: 30 * time.Second}}

	log.Printf("%s: starting the broker (%d nodes)", name, o.nodes)
	bctx, cancel := context.WithTimeout(ctx, brokerTimeout)
	defer cancel()
	switch name {
	case brokerBrokerd:
		st.brokerd, err = devstack.StartBrokerdCluster(bctx, devstack.BrokerdClusterOptions{Bin: bins.brokerd, Dir: filepath.Join(dir, "brokerd"), Nodes: o.nodes})
		if err != nil {
			return nil, err
		}
		st.bootstrap = st.brokerd.Bootstrap()
	case brokerKafka:
		st.kafka, err = devstack.StartKafka(bctx, devstack.KafkaOptions{Nodes: o.nodes, Dir: filepath.Join(dir, "kafka"), HeapMB: o.kafkaHeapMB})
		if err != nil {
			return nil, err
		}
		st.bootstrap = st.kafka.Bootstrap()
	}
	if st.cl, err = kgo.NewClient(kgo.SeedBrokers(strings.Split(st.bootstrap, ",")...)); err != nil {
		return nil, fmt.Errorf("latencybench: %w", err)
	}
	st.adm = kadm.NewClient(st.cl)
	rf := o.replicas()
	log.Printf("%s: creating topic %s: %d partitions, replication factor %d, min.insync.replicas %d", name, st.topic, o.partitions, rf, o.minISR())
	if err := benchkit.CreateReplicatedTopic(bctx, st.adm, st.topic, o.partitions, rf, o.minISR()); err != nil {
		return nil, err
	}

	indexerArgs := slices.Concat([]string{"-c", cfg("indexer")}, indexerOverrides(st.bootstrap, st.es.URL), eFlags(o.indexerSet))
	log.Printf("%s: indexer setup", name)
	sctx, scancel := context.WithTimeout(ctx, setupTimeout)
	defer scancel()
	if out, err := exec.CommandContext(sctx, bins.indexer, append(slices.Clone(indexerArgs), "setup")...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("latencybench: indexer setup: %w\n%s", err, out)
	}
	if st.indexerHTTP, err = devstack.FreePort(); err != nil {
		return nil, err
	}
	indexerArgs = slices.Concat(indexerArgs, httpFlags(st.indexerHTTP))
	st.indexerCmd = func() *exec.Cmd { return exec.Command(bins.indexer, indexerArgs...) }
	st.indexerLog = filepath.Join(dir, "indexer.log")
	log.Printf("%s: starting the indexer and waiting for it to join its group", name)
	if err := st.startIndexer(ctx); err != nil {
		return nil, err
	}

	for k := range numLogs {
		path := filepath.Join(logs, k.fileName())
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, fmt.Errorf("latencybench: %w", err)
		}
		st.logs[k] = &logFile{path: path, f: f}
	}
	shipped, err := os.ReadFile(cfg("shipper"))
	if err != nil {
		return nil, fmt.Errorf("latencybench: %w", err)
	}
	text, err := moveLogs(shipped, logs)
	if err != nil {
		return nil, err
	}
	shipperCfg := filepath.Join(dir, "shipper.yml")
	if err := os.WriteFile(shipperCfg, text, 0o644); err != nil {
		return nil, fmt.Errorf("latencybench: %w", err)
	}
	if st.shipperHTTP, err = devstack.FreePort(); err != nil {
		return nil, err
	}
	shipperArgs := slices.Concat([]string{"-c", shipperCfg}, shipperOverrides(st.bootstrap, filepath.Join(dir, "shipper-data")), eFlags(o.shipperSet), httpFlags(st.shipperHTTP))
	st.shipperCmd = func() *exec.Cmd { return exec.Command(bins.shipper, shipperArgs...) }
	st.shipperLog = filepath.Join(dir, "shipper.log")
	log.Printf("%s: starting the shipper and waiting for it to connect", name)
	if err := st.startShipper(ctx); err != nil {
		return nil, err
	}
	started = true
	return st, nil
}

// startIndexer starts the indexer and waits until it is ready.
func (st *stack) startIndexer(ctx context.Context) error {
	return st.startProgram(ctx, "indexer", st.indexerCmd(), st.indexerLog, st.indexerHTTP, &st.indexer)
}

// startShipper starts the shipper and waits until it is ready.
func (st *stack) startShipper(ctx context.Context) error {
	return st.startProgram(ctx, "shipper", st.shipperCmd(), st.shipperLog, st.shipperHTTP, &st.shipper)
}

// startProgram starts cmd as name with its output appended to logPath,
// keeps it in *slot and waits until its /readyz on port answers.
func (st *stack) startProgram(ctx context.Context, name string, cmd *exec.Cmd, logPath string, port int, slot **devstack.Process) error {
	p, err := devstack.StartProcess(name, cmd, logPath)
	if err != nil {
		return err
	}
	st.mu.Lock()
	*slot = p
	st.mu.Unlock()
	return waitReady(ctx, p, port)
}

// shippedTopic is the topic configs/shipper.yml produces to.
func shippedTopic(root string) (string, error) {
	text, err := os.ReadFile(filepath.Join(root, "configs", "shipper.yml"))
	if err != nil {
		return "", fmt.Errorf("latencybench: %w", err)
	}
	keys, err := dottedKeys(text, nil)
	if err != nil {
		return "", fmt.Errorf("latencybench: configs/shipper.yml: %w", err)
	}
	topic, ok := keys["output.kafka.topic"].(string)
	if !ok || topic == "" || strings.Contains(topic, "%{") {
		return "", fmt.Errorf("latencybench: configs/shipper.yml: output.kafka.topic is %v, want a fixed topic name", keys["output.kafka.topic"])
	}
	return topic, nil
}

// indexerOverrides are the -E settings the run gives the indexer beyond
// configs/indexer.yml: where the broker and Elasticsearch are, and, as
// `make run` does, a new group reading the topic from its start, so that
// no line shipped before the group formed is skipped.
func indexerOverrides(bootstrap, esURL string) []string {
	return eFlags([]string{
		"kafka.hosts=" + yamlList(bootstrap),
		"elasticsearch.hosts=" + yamlList(esURL),
		"kafka.auto_offset_reset=earliest",
	})
}

// shipperOverrides are the -E settings the run gives the shipper beyond
// its config: where the broker is and where the registry goes.
func shipperOverrides(bootstrap, data string) []string {
	return eFlags([]string{"output.kafka.hosts=" + yamlList(bootstrap), "path.data=" + strconv.Quote(data)})
}

// httpFlags turn on a program's /readyz on port, which the run waits on.
func httpFlags(port int) []string {
	return eFlags([]string{"http.enabled=true", "http.host=127.0.0.1", "http.port=" + strconv.Itoa(port)})
}

// eFlags turns key=value settings into -E arguments.
func eFlags(settings []string) []string {
	var args []string
	for _, s := range settings {
		args = append(args, "-E", s)
	}
	return args
}

// yamlList is the YAML flow list of a comma-separated address list.
func yamlList(addrs string) string {
	var quoted []string
	for _, a := range strings.Split(addrs, ",") {
		quoted = append(quoted, strconv.Quote(a))
	}
	return "[" + strings.Join(quoted, ",") + "]"
}

// moveLogs returns the shipped shipper config with its two inputs'
// folder, /var/log/httpd/, replaced by dir. The shipper's -E overrides
// cannot reach into the list of inputs, and everything else stays as
// shipped.
func moveLogs(shipped []byte, dir string) ([]byte, error) {
	if n := bytes.Count(shipped, []byte(shippedLogs)); n != 2 {
		return nil, fmt.Errorf("latencybench: configs/shipper.yml names %s %d times, want 2 (the access log and the error log)", shippedLogs, n)
	}
	return bytes.ReplaceAll(shipped, []byte(shippedLogs), []byte(filepath.Clean(dir)+"/")), nil
}

// waitReady polls a program's /readyz on port until it answers 200.
func waitReady(ctx context.Context, p *devstack.Process, port int) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	url := "http://127.0.0.1:" + strconv.Itoa(port) + "/readyz"
	client := &http.Client{Timeout: 5 * time.Second}
	return devstack.WaitFor(ctx, 50*time.Millisecond, p, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s: %s", url, resp.Status, bytes.TrimSpace(body))
		}
		return nil
	})
}

// alive returns nil while every process of the pipeline that should run
// runs, else an error naming the first one that has exited, with its log.
func (st *stack) alive() error {
	st.mu.Lock()
	procs := []*devstack.Process{st.shipper, st.indexer}
	st.mu.Unlock()
	if st.brokerd != nil {
		for i := range st.brokerd.Nodes() {
			procs = append(procs, st.brokerd.Process(i))
		}
	}
	for _, p := range procs {
		if p != nil {
			if err := p.Alive(); err != nil {
				return err
			}
		}
	}
	if st.kafka != nil {
		for i := range st.kafka.Nodes() {
			if st.kafka.Pid(i) == 0 {
				return fmt.Errorf("latencybench: Apache Kafka node %d exited; log %s", st.kafka.NodeID(i), st.kafka.LogPath(i))
			}
		}
	}
	if !st.es.Running() {
		return fmt.Errorf("latencybench: Elasticsearch exited; log %s:\n%s", st.es.LogPath(), st.es.LogTail(3000))
	}
	return nil
}

// stop stops the pipeline, the shipper first and Elasticsearch last. It
// leaves the folder to the caller.
func (st *stack) stop() {
	for _, l := range st.logs {
		if l != nil {
			l.f.Close()
		}
	}
	st.mu.Lock()
	procs := []*devstack.Process{st.shipper, st.indexer}
	st.mu.Unlock()
	for _, p := range procs {
		if p != nil {
			p.Stop(stopGrace)
		}
	}
	if st.cl != nil {
		st.cl.Close()
	}
	if st.brokerd != nil {
		st.brokerd.Stop()
	}
	if st.kafka != nil {
		st.kafka.Stop()
	}
	if st.es != nil {
		st.es.Stop()
	}
}

// append appends lines to the log in one write and moves its size on.
func (l *logFile) append(lines []byte) error {
	n, err := l.f.Write(lines)
	l.size += int64(n)
	if err != nil {
		return fmt.Errorf("latencybench: append to %s: %w", l.path, err)
	}
	return nil
}
