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
	"time"

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
	es      *devstack.Elasticsearch
	brokerd *devstack.Process
	kafka   *devstack.Kafka
	indexer *devstack.Process
	shipper *devstack.Process
	search  *searcher
	// accessPath is the access log the shipper tails; access is it open
	// for appending.
	accessPath string
	access     *os.File
	// offset is the size of the access log: where the next line starts.
	offset int64
	// run makes this pipeline's markers unique.
	run string
}

// startStack starts Elasticsearch, the broker name, the indexer (after
// `indexer setup`) and the shipper in dir, and waits until the indexer is
// in its consumer group and the shipper is connected. On failure it stops
// what it started.
func startStack(ctx context.Context, o *options, root string, bins binaries, name, dir string) (*stack, error) {
	st := &stack{run: fmt.Sprintf("%08x", rand.Uint32())}
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

	log.Printf("%s: starting Elasticsearch (heap %d MiB)", name, o.esHeapMB)
	var err error
	st.es, err = devstack.StartElasticsearch(ctx, devstack.ElasticsearchOptions{Dir: filepath.Join(dir, "elasticsearch"), ClusterName: "latencybench", HeapMB: o.esHeapMB})
	if err != nil {
		return nil, err
	}
	st.search = &searcher{url: st.es.URL, client: &http.Client{Timeout: 30 * time.Second}}

	log.Printf("%s: starting the broker", name)
	bctx, cancel := context.WithTimeout(ctx, brokerTimeout)
	defer cancel()
	var bootstrap string
	switch name {
	case brokerBrokerd:
		port, err := devstack.FreePort()
		if err != nil {
			return nil, err
		}
		bootstrap = "127.0.0.1:" + strconv.Itoa(port)
		// The shipped config first; StartBrokerd's -E settings (the
		// listener and the data folder) override it.
		withConfig := func(bin string, args ...string) *exec.Cmd {
			return exec.Command(bin, append([]string{"-c", cfg("brokerd")}, args...)...)
		}
		st.brokerd, err = devstack.StartBrokerd(bctx, devstack.BrokerdOptions{
			Bin: bins.brokerd, Addr: bootstrap, DataDir: filepath.Join(dir, "brokerd", "data"),
			LogPath: filepath.Join(dir, "brokerd.log"), Command: withConfig,
		})
		if err != nil {
			return nil, err
		}
	case brokerKafka:
		st.kafka, err = devstack.StartKafka(bctx, devstack.KafkaOptions{Nodes: 1, Dir: filepath.Join(dir, "kafka"), HeapMB: o.kafkaHeapMB})
		if err != nil {
			return nil, err
		}
		bootstrap = st.kafka.Bootstrap()
	}

	indexerArgs := slices.Concat([]string{"-c", cfg("indexer")}, indexerOverrides(bootstrap, st.es.URL), eFlags(o.indexerSet))
	log.Printf("%s: indexer setup", name)
	sctx, scancel := context.WithTimeout(ctx, setupTimeout)
	defer scancel()
	if out, err := exec.CommandContext(sctx, bins.indexer, append(slices.Clone(indexerArgs), "setup")...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("latencybench: indexer setup: %w\n%s", err, out)
	}
	indexerHTTP, err := devstack.FreePort()
	if err != nil {
		return nil, err
	}
	st.indexer, err = devstack.StartProcess("indexer", exec.Command(bins.indexer, slices.Concat(indexerArgs, httpFlags(indexerHTTP))...), filepath.Join(dir, "indexer.log"))
	if err != nil {
		return nil, err
	}
	log.Printf("%s: waiting for the indexer to join its group", name)
	if err := waitReady(ctx, st.indexer, indexerHTTP); err != nil {
		return nil, err
	}

	st.accessPath = filepath.Join(logs, "access_log")
	for _, f := range []string{st.accessPath, filepath.Join(logs, "error_log")} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			return nil, fmt.Errorf("latencybench: %w", err)
		}
	}
	if st.access, err = os.OpenFile(st.accessPath, os.O_WRONLY|os.O_APPEND, 0); err != nil {
		return nil, fmt.Errorf("latencybench: %w", err)
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
	shipperHTTP, err := devstack.FreePort()
	if err != nil {
		return nil, err
	}
	shipperArgs := slices.Concat([]string{"-c", shipperCfg}, shipperOverrides(bootstrap, filepath.Join(dir, "shipper-data")), eFlags(o.shipperSet), httpFlags(shipperHTTP))
	st.shipper, err = devstack.StartProcess("shipper", exec.Command(bins.shipper, shipperArgs...), filepath.Join(dir, "shipper.log"))
	if err != nil {
		return nil, err
	}
	log.Printf("%s: waiting for the shipper to connect", name)
	if err := waitReady(ctx, st.shipper, shipperHTTP); err != nil {
		return nil, err
	}
	started = true
	return st, nil
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

// alive returns nil while every process of the pipeline runs, else an
// error naming the first one that has exited, with its log.
func (st *stack) alive() error {
	for _, p := range []*devstack.Process{st.shipper, st.indexer, st.brokerd} {
		if p != nil {
			if err := p.Alive(); err != nil {
				return err
			}
		}
	}
	if st.kafka != nil && st.kafka.Pid(0) == 0 {
		return fmt.Errorf("latencybench: Apache Kafka exited; log %s", st.kafka.LogPath(0))
	}
	if !st.es.Running() {
		return fmt.Errorf("latencybench: Elasticsearch exited; log %s:\n%s", st.es.LogPath(), st.es.LogTail(3000))
	}
	return nil
}

// stop stops the pipeline, the shipper first and Elasticsearch last. It
// leaves the folder to the caller.
func (st *stack) stop() {
	if st.access != nil {
		st.access.Close()
	}
	for _, p := range []*devstack.Process{st.shipper, st.indexer, st.brokerd} {
		if p != nil {
			p.Stop(stopGrace)
		}
	}
	if st.kafka != nil {
		st.kafka.Stop()
	}
	if st.es != nil {
		st.es.Stop()
	}
}

// appendLines appends lines to the access log in one write and moves the
// offset on.
func (st *stack) appendLines(lines []byte) error {
	n, err := st.access.Write(lines)
	st.offset += int64(n)
	if err != nil {
		return fmt.Errorf("latencybench: append to %s: %w", st.accessPath, err)
	}
	return nil
}
