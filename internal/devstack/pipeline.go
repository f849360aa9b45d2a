package devstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PipelineTopic is the topic the shipped configs name (the shipper's
// output.kafka.topic, the indexer's kafka.topics). StartPipeline creates it
// before the shipper starts, so the indexer's auto_offset_reset needs no
// special case.
const PipelineTopic = "httpd"

// The pipeline's cluster and topic: three combined brokerd nodes, and the
// topic replicated on all of them, written once two have a record, so that
// it keeps taking writes with one node down.
const (
	// PipelineNodes is the number of brokerd nodes.
	PipelineNodes = 3
	// PipelinePartitions is PipelineTopic's number of partitions.
	PipelinePartitions = 3
	// PipelineReplicas is PipelineTopic's replication factor.
	PipelineReplicas = 3
	// PipelineMinISR is PipelineTopic's min.insync.replicas.
	PipelineMinISR = 2
)

// Waits and grace periods of the pipeline's programs.
const (
	// pipelineStopGrace is how long Stop waits for the shipper and the
	// indexer after SIGTERM: the indexer drains for up to its
	// kafka.drain_timeout (30 s in configs/indexer.yml).
	pipelineStopGrace = time.Minute
	// brokerdStopGrace covers a node's controlled shutdown.
	brokerdStopGrace = 30 * time.Second
	pipelinePoll     = 100 * time.Millisecond
	pipelineCheck    = 10 * time.Second // one admin request
)

// shippedLogs is the folder configs/shipper.yml reads the httpd logs from;
// a pipeline's shipper reads its own logs folder instead.
const shippedLogs = "/var/log/httpd/"

// PipelineOptions says how StartPipeline runs logpipe's three programs
// from the shipped configs. Bin, Configs, Dir and ElasticsearchURL are
// required.
type PipelineOptions struct {
	// Bin is the folder holding the brokerd, shipper and indexer binaries.
	Bin string
	// Configs is the folder of brokerd.yml, shipper.yml and indexer.yml.
	// Each program reads its file; the pipeline's addresses and folders
	// are given with -E after it.
	Configs string
	// Dir is the run folder. It holds brokerd/node<N>/ (data and log of
	// node N), shipper/ (the shipper's config, registry and log),
	// indexer/ (its log) and logs/ (access_log and error_log, the files
	// the shipper tails: shipper.yml's /var/log/httpd/ moved here). A
	// pipeline started again on the same Dir and ports resumes: the
	// brokers keep the topic and the indexer's committed offsets, the
	// shipper its registry.
	Dir string
	// ElasticsearchURL is the node the indexer writes to.
	ElasticsearchURL string
	// KafkaPort places node N's client listener (PLAINTEXT) on KafkaPort
	// + 2(N-1) and its controller listener on the port after. The
	// addresses are kept in the cluster's Raft log, so a pipeline on the
	// same Dir must use the same KafkaPort. 0 picks free ports, which
	// only this Pipeline value knows.
	KafkaPort int
	// HTTPPort places the /metrics, /healthz and /readyz server of node N
	// on HTTPPort + N-1, the shipper's on HTTPPort + 3 and the indexer's
	// on HTTPPort + 4. 0 picks free ports.
	HTTPPort int
	// BrokerdSettings, ShipperSettings and IndexerSettings are more -E
	// overrides, each "key=value", after the pipeline's own.
	BrokerdSettings, ShipperSettings, IndexerSettings []string
	// Logf, when set, receives a line for each step of StartPipeline.
	Logf func(format string, args ...any)
}

// pipelineNode is where one brokerd node of a pipeline listens and keeps
// its files.
type pipelineNode struct {
	id             int
	addr, ctl, web string // client and controller listeners, HTTP server
	dir            string
}

// Pipeline is logpipe running as `make run` runs it: three brokerd nodes,
// the indexer and the shipper, each a child process (see StartProcess),
// writing to an Elasticsearch node the caller runs. Its methods are safe
// for concurrent use.
type Pipeline struct {
	opts        PipelineOptions
	nodes       []pipelineNode
	voters      string
	shipperWeb  string
	indexerWeb  string
	shipperConf string

	mu               sync.Mutex
	brokers          []*Process
	shipper, indexer *Process
}

// StartPipeline starts the three nodes (each waits for the quorum), creates
// PipelineTopic (3 partitions, 3 replicas, min.insync.replicas 2) unless it
// exists, installs the index templates (`indexer setup`), starts the
// indexer and waits until its group has a committed offset on every
// partition, then starts the shipper and waits until it is ready. Nothing
// is shipped before the indexer holds its place, so the indexer's
// auto_offset_reset cannot skip a line. On failure it stops what it
// started.
func StartPipeline(ctx context.Context, opts PipelineOptions) (*Pipeline, error) {
	if opts.Bin == "" || opts.Configs == "" || opts.Dir == "" || opts.ElasticsearchURL == "" {
		return nil, errors.New("devstack: StartPipeline needs Bin, Configs, Dir and ElasticsearchURL")
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	p := &Pipeline{opts: opts, brokers: make([]*Process, PipelineNodes)}
	if err := p.layOut(); err != nil {
		return nil, err
	}
	started := false
	defer func() {
		if !started {
			p.Stop()
		}
	}()

	opts.Logf("starting %d brokerd nodes on %s", PipelineNodes, p.Bootstrap())
	errs := make([]error, PipelineNodes)
	var wg sync.WaitGroup
	for i := range p.nodes {
		wg.Go(func() { errs[i] = p.StartBroker(ctx, i) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	adm, closeAdmin, err := p.admin()
	if err != nil {
		return nil, err
	}
	defer closeAdmin()
	opts.Logf("creating the topic %s (%d partitions, %d replicas) unless it exists", PipelineTopic, PipelinePartitions, PipelineReplicas)
	if err := p.createTopic(ctx, adm); err != nil {
		return nil, err
	}

	opts.Logf("installing the index templates (indexer setup)")
	if err := p.setup(ctx); err != nil {
		return nil, err
	}
	opts.Logf("starting the indexer")
	if err := p.StartIndexer(ctx); err != nil {
		return nil, err
	}
	if err := p.waitPlaceHeld(ctx, adm); err != nil {
		return nil, err
	}
	opts.Logf("starting the shipper")
	if err := p.StartShipper(ctx); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, p.Shipper(), p.shipperWeb, "/readyz"); err != nil {
		return nil, err
	}
	started = true
	return p, nil
}

// layOut makes the run folder, picks the addresses, checks that node data
// already there belongs to a cluster with these addresses, and writes the
// shipper's config.
func (p *Pipeline) layOut() error {
	o := p.opts
	for _, sub := range []string{"brokerd", "shipper", "indexer", "logs"} {
		if err := os.MkdirAll(filepath.Join(o.Dir, sub), 0o755); err != nil {
			return fmt.Errorf("devstack: %w", err)
		}
	}
	port := func(base, off int) (string, error) {
		if base == 0 {
			p, err := FreePort()
			return "127.0.0.1:" + strconv.Itoa(p), err
		}
		return "127.0.0.1:" + strconv.Itoa(base+off), nil
	}
	var voters []string
	for i := range PipelineNodes {
		n := pipelineNode{id: i + 1, dir: filepath.Join(o.Dir, "brokerd", fmt.Sprintf("node%d", i+1))}
		var errs [3]error
		n.addr, errs[0] = port(o.KafkaPort, 2*i)
		n.ctl, errs[1] = port(o.KafkaPort, 2*i+1)
		n.web, errs[2] = port(o.HTTPPort, i)
		if err := errors.Join(errs[:]...); err != nil {
			return err
		}
		if err := os.MkdirAll(n.dir, 0o755); err != nil {
			return fmt.Errorf("devstack: %w", err)
		}
		p.nodes = append(p.nodes, n)
		voters = append(voters, fmt.Sprintf("%d@%s", n.id, n.ctl))
	}
	p.voters = strings.Join(voters, ",")
	var err1, err2 error
	p.shipperWeb, err1 = port(o.HTTPPort, PipelineNodes)
	p.indexerWeb, err2 = port(o.HTTPPort, PipelineNodes+1)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if err := p.checkVoters(); err != nil {
		return err
	}
	return p.writeShipperConfig()
}

// checkVoters compares the voters with those the run folder's cluster was
// formed with, recorded in brokerd/controller.quorum.voters. A node that
// has Raft state ignores the voters it is given and calls the addresses in
// its log, so a cluster cannot move to other ports; and data that this
// function did not record may be a quorum of one, which cannot grow into
// three voters. Both are refused, naming the folder, rather than started
// into a cluster that cannot elect a controller.
func (p *Pipeline) checkVoters() error {
	path := filepath.Join(p.opts.Dir, "brokerd", "controller.quorum.voters")
	saved, err := os.ReadFile(path)
	if err == nil {
		if was := strings.TrimSpace(string(saved)); was != p.voters {
			return fmt.Errorf("devstack: the brokerd cluster in %s was formed with controller.quorum.voters %s and keeps those addresses; start it on the same ports (not %s) or use another run folder",
				filepath.Dir(path), was, p.voters)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("devstack: %w", err)
	}
	for _, n := range p.nodes {
		if _, err := os.Stat(filepath.Join(n.dir, "data")); err == nil {
			return fmt.Errorf("devstack: %s holds brokerd data of unknown voters (no %s): move it away or use another run folder", n.dir, path)
		}
	}
	if err := os.WriteFile(path, []byte(p.voters+"\n"), 0o644); err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	return nil
}

// writeShipperConfig writes the shipped shipper.yml into the shipper's
// folder with its logs folder moved into the run folder: -E cannot reach
// into the list of inputs, and everything else stays as shipped.
func (p *Pipeline) writeShipperConfig() error {
	shipped, err := os.ReadFile(filepath.Join(p.opts.Configs, "shipper.yml"))
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	if !bytes.Contains(shipped, []byte(shippedLogs)) {
		return fmt.Errorf("devstack: %s names no file under %s to move into the run folder", filepath.Join(p.opts.Configs, "shipper.yml"), shippedLogs)
	}
	p.shipperConf = filepath.Join(p.opts.Dir, "shipper", "shipper.yml")
	moved := bytes.ReplaceAll(shipped, []byte(shippedLogs), []byte(p.LogsDir()+"/"))
	if err := os.WriteFile(p.shipperConf, moved, 0o644); err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	return nil
}

// Bootstrap returns the nodes' client addresses joined with commas.
func (p *Pipeline) Bootstrap() string { return strings.Join(p.BrokerAddrs(), ",") }

// BrokerAddrs returns each node's client address.
func (p *Pipeline) BrokerAddrs() []string {
	var out []string
	for _, n := range p.nodes {
		out = append(out, n.addr)
	}
	return out
}

// BrokerHTTP returns the host:port of node i's /metrics (i from 0).
func (p *Pipeline) BrokerHTTP(i int) string { return p.nodes[i].web }

// ShipperHTTP returns the host:port of the shipper's /metrics.
func (p *Pipeline) ShipperHTTP() string { return p.shipperWeb }

// IndexerHTTP returns the host:port of the indexer's /metrics.
func (p *Pipeline) IndexerHTTP() string { return p.indexerWeb }

// LogsDir returns the folder of the access_log and error_log the shipper
// tails.
func (p *Pipeline) LogsDir() string { return filepath.Join(p.opts.Dir, "logs") }

// Broker returns node i's running process, or nil.
func (p *Pipeline) Broker(i int) *Process { return p.get(&p.brokers[i]) }

// Shipper returns the shipper's running process, or nil.
func (p *Pipeline) Shipper() *Process { return p.get(&p.shipper) }

// Indexer returns the indexer's running process, or nil.
func (p *Pipeline) Indexer() *Process { return p.get(&p.indexer) }

func (p *Pipeline) get(slot **Process) *Process {
	p.mu.Lock()
	defer p.mu.Unlock()
	return *slot
}

// take empties slot and returns what it held.
func (p *Pipeline) take(slot **Process) *Process {
	p.mu.Lock()
	defer p.mu.Unlock()
	proc := *slot
	*slot = nil
	return proc
}

// put records a started process; the slot must be empty.
func (p *Pipeline) put(slot **Process, proc *Process) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if *slot != nil {
		return fmt.Errorf("devstack: %s is running already", proc.Name)
	}
	*slot = proc
	return nil
}

// KillBroker kills node i with SIGKILL.
func (p *Pipeline) KillBroker(i int) { kill(p.take(&p.brokers[i])) }

// KillShipper kills the shipper with SIGKILL.
func (p *Pipeline) KillShipper() { kill(p.take(&p.shipper)) }

// KillIndexer kills the indexer with SIGKILL.
func (p *Pipeline) KillIndexer() { kill(p.take(&p.indexer)) }

func kill(proc *Process) {
	if proc != nil {
		proc.Kill()
	}
}

func (p *Pipeline) bin(name string) string { return filepath.Join(p.opts.Bin, name) }

// Alive returns nil while every process of the pipeline that was started
// and not killed runs, else an error naming one that has ended, with the
// end of its log.
func (p *Pipeline) Alive() error {
	p.mu.Lock()
	procs := append([]*Process{p.shipper, p.indexer}, p.brokers...)
	p.mu.Unlock()
	for _, proc := range procs {
		if proc != nil {
			if err := proc.Alive(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Exit is a program of the pipeline that ended on its own: not through
// Stop or a Kill method (a crash, or a kill -9 from outside).
type Exit struct {
	// Program names it: "brokerd node N", "shipper" or "indexer".
	Program string
	// Err says how it ended, with the end of its log.
	Err error
	// Restart starts it again on its data, with the same settings, and
	// waits until it answers.
	Restart func(ctx context.Context) error
}

// Exits returns the programs that have ended on their own, and takes them
// out of the pipeline: Alive no longer names them and each may be started
// again through its Restart.
func (p *Pipeline) Exits() []Exit {
	var out []Exit
	check := func(slot **Process, program string, restart func(context.Context) error) {
		p.mu.Lock()
		proc := *slot
		p.mu.Unlock()
		if proc == nil {
			return
		}
		if err := proc.Alive(); err != nil {
			p.mu.Lock()
			if *slot == proc {
				*slot = nil
			}
			p.mu.Unlock()
			out = append(out, Exit{Program: program, Err: err, Restart: restart})
		}
	}
	for i := range p.brokers {
		check(&p.brokers[i], fmt.Sprintf("brokerd node %d", p.nodes[i].id), func(ctx context.Context) error { return p.StartBroker(ctx, i) })
	}
	check(&p.indexer, "indexer", p.StartIndexer)
	check(&p.shipper, "shipper", p.StartShipper)
	return out
}

// Stop sends SIGTERM to the shipper, waits for it (it waits for the
// brokers' acknowledgements and writes its registry), then to the indexer
// (it drains and commits), then to every node at once. It returns an
// error naming each program that did not exit with status 0, or had to be
// killed after its grace period.
func (p *Pipeline) Stop() error {
	var mu sync.Mutex
	var errs []error
	stop := func(proc *Process, grace time.Duration) {
		if proc == nil {
			return
		}
		proc.Stop(grace)
		if _, err := proc.Exited(); err != nil {
			mu.Lock()
			errs = append(errs, fmt.Errorf("devstack: %s did not exit cleanly: %v; log %s", proc.Name, err, proc.LogPath))
			mu.Unlock()
		}
	}
	stop(p.take(&p.shipper), pipelineStopGrace)
	stop(p.take(&p.indexer), pipelineStopGrace)
	var wg sync.WaitGroup
	for i := range p.brokers {
		wg.Go(func() { stop(p.take(&p.brokers[i]), brokerdStopGrace) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
