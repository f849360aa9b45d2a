package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"logpipe/internal/devstack"
)

// runOptions are the flags of `stack run`.
type runOptions struct {
	dir, bin, esURL            string
	esPort, kafkaPort, webPort int
	rate                       float64
}

func parseRun(root string, args []string) runOptions {
	var o runOptions
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	fs.StringVar(&o.dir, "dir", filepath.Join(root, ".cache", "run"), "the run folder: every service's data and logs; a later run on it resumes")
	fs.StringVar(&o.bin, "bin", filepath.Join(root, "bin"), "the folder of the brokerd, shipper and indexer binaries")
	fs.StringVar(&o.esURL, "elasticsearch", "", "use the Elasticsearch node at this URL instead of starting one")
	fs.IntVar(&o.esPort, "es-port", 9200, "the HTTP port of the Elasticsearch node started")
	fs.IntVar(&o.kafkaPort, "kafka-port", 9092, "node N's client port is this + 2(N-1), its controller port the one after (keep it for a run folder)")
	fs.IntVar(&o.webPort, "http-port", 9101, "/metrics of node N on this + N-1, the shipper's on + 3, the indexer's on + 4")
	fs.Float64Var(&o.rate, "rate", 10, "lines per second the generator appends to the tailed logs (0: none)")
	fs.Parse(args)
	return o
}

// runStack runs the local pipeline (`make run`) until ctx ends: the
// Elasticsearch node (unless -elasticsearch names one), then through
// devstack.StartPipeline three brokerd nodes, the topic httpd, `indexer
// setup`, the indexer and the shipper, from the binaries in bin/ and the
// configs in configs/, with every service's data and log in the run folder;
// then the generator, which appends lines to the logs the shipper tails.
// Ctrl-C stops the generator, the shipper, the indexer, the nodes and
// Elasticsearch, each waited for; the next run on the same folder resumes
// from the brokers' data, the shipper's registry and the indexer's
// committed offsets. A program that ends on its own is started again (see
// watch); if it cannot be, everything is stopped and the error returned.
func runStack(ctx context.Context, args []string) error {
	root, err := devstack.RepoRoot()
	if err != nil {
		return err
	}
	o := parseRun(root, args)
	if o.dir, err = filepath.Abs(o.dir); err != nil {
		return err
	}
	if o.bin, err = filepath.Abs(o.bin); err != nil {
		return err
	}
	noteOldData(root)

	for _, name := range []string{"brokerd", "shipper", "indexer"} {
		if _, err := os.Stat(filepath.Join(o.bin, name)); err != nil {
			return fmt.Errorf("no %s binary (`make build` makes them): %w", name, err)
		}
	}

	var es *devstack.Elasticsearch
	if o.esURL == "" {
		es, err = startES(ctx, filepath.Join(o.dir, "elasticsearch"), o.esPort)
		if err != nil {
			return interrupted(ctx, err)
		}
		defer es.Stop()
		o.esURL = es.URL
	}

	p, err := devstack.StartPipeline(ctx, devstack.PipelineOptions{
		Bin: o.bin, Configs: filepath.Join(root, "configs"), Dir: o.dir, ElasticsearchURL: o.esURL,
		KafkaPort: o.kafkaPort, HTTPPort: o.webPort,
		// A static member of its group: started again after a crash, the
		// indexer takes its partitions back at once.
		IndexerSettings: []string{"kafka.version=2.3.0", "kafka.group_instance_id=make-run-indexer"},
		Logf:            func(format string, args ...any) { fmt.Printf("stack: "+format+"\n", args...) },
	})
	if err != nil {
		return interrupted(ctx, err)
	}
	genCtx, stopGen := context.WithCancel(context.Background())
	genDone := make(chan error, 1)
	go func() {
		err := generate(genCtx, p.LogsDir(), o.rate)
		if err != nil {
			fmt.Fprintf(os.Stderr, "stack: %v; the pipeline goes on without it\n", err)
		}
		genDone <- err
	}()
	printWhere(p, o, es)

	ended := watch(ctx, p, es)
	if ended != nil {
		fmt.Fprintf(os.Stderr, "stack: %v\n", ended)
		ended = errors.New("the run cannot go on (see above)")
	}
	fmt.Println("stack: stopping the generator, the shipper, the indexer, the brokers, then Elasticsearch")
	stopGen()
	genErr := <-genDone
	stopErr := p.Stop()
	if es != nil {
		es.Stop()
	}
	if err := errors.Join(ended, genErr, stopErr); err != nil {
		return err
	}
	fmt.Printf("stack: stopped; the next `make run` resumes from %s\n", show(o.dir))
	return nil
}

// A program of the pipeline that ends on its own is started again after
// restartDelay; one that, started again, ends within quickExit quickExits
// times in a row is not, and the run stops.
const (
	restartDelay = time.Second
	quickExit    = 30 * time.Second
	quickExits   = 3
)

// watch waits until ctx ends (Ctrl-C), starting again each program of the
// pipeline that ends on its own (a crash, a kill -9), as docker compose's
// restart policy does. It returns why the run must stop instead: a program
// that keeps ending right after being started again, or cannot be started
// again, or the Elasticsearch node it started ending.
func watch(ctx context.Context, p *devstack.Pipeline, es *devstack.Elasticsearch) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	restarted := map[string]time.Time{}
	quick := map[string]int{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		for _, e := range p.Exits() {
			if at, ok := restarted[e.Program]; ok && time.Since(at) < quickExit {
				quick[e.Program]++
			} else {
				quick[e.Program] = 0
			}
			if quick[e.Program] >= quickExits {
				return fmt.Errorf("%v\n%s ended %d times in a row within %v of being started again; not starting it again", e.Err, e.Program, quickExits, quickExit)
			}
			fmt.Fprintf(os.Stderr, "stack: %s ended on its own: %v\nstack: starting %s again in %v\n", e.Program, e.Err, e.Program, restartDelay)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(restartDelay):
			}
			if err := e.Restart(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("starting %s again: %w", e.Program, err)
			}
			restarted[e.Program] = time.Now()
			fmt.Printf("stack: %s is running again\n", e.Program)
		}
		if es != nil && !es.Running() {
			return fmt.Errorf("elasticsearch exited; log %s:\n%s", es.LogPath(), es.LogTail(3000))
		}
	}
}

// interrupted turns a start that failed because of Ctrl-C into a plain
// stop.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		fmt.Println("stack: interrupted while starting; stopped")
		return nil
	}
	return err
}

// noteOldData says that the ./data folder of earlier `make run`s, if it is
// there, is no longer used. Those runs kept one brokerd node's data (a
// quorum of one, which cannot become one of three voters) and the
// shipper's registry there; nothing is moved or removed.
func noteOldData(root string) {
	old := filepath.Join(root, "data")
	if _, err := os.Stat(filepath.Join(old, "meta.properties")); err != nil {
		return
	}
	fmt.Printf("stack: note: %s holds the single-node brokerd data and shipper registry of an earlier `make run`. "+
		"make run now runs a three-node cluster with its data under .cache/run and no longer reads %s "+
		"(a quorum of one cannot grow into three voters): its topic, offsets and registry are not carried over. "+
		"Remove %s once you no longer need it.\n", show(old), show(old), show(old))
}

// show returns path relative to the working directory when it lies under
// it, for shorter lines.
func show(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if rel, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}

// printWhere says where everything is and how to look at today's
// documents.
func printWhere(p *devstack.Pipeline, o runOptions, es *devstack.Elasticsearch) {
	var nodeLogs, nodeData, brokerMetrics []string
	for i := range p.BrokerAddrs() {
		nodeLogs = append(nodeLogs, show(p.Broker(i).LogPath))
		nodeData = append(nodeData, show(filepath.Join(o.dir, "brokerd", fmt.Sprintf("node%d", i+1), "data")))
		brokerMetrics = append(brokerMetrics, "http://"+p.BrokerHTTP(i)+"/metrics")
	}
	esWhere := "(not started by make run)"
	if es != nil {
		esWhere = fmt.Sprintf("(data in %s, log %s)", show(es.Dir), show(es.LogPath()))
	}
	generator := fmt.Sprintf("a generator appends about %g lines/s", o.rate)
	if o.rate <= 0 {
		generator = "no generator"
	}
	today := time.Now().UTC().Format("2006.01.02")
	fmt.Printf(`stack: logpipe is running; Ctrl-C stops it
  run folder     %s (the next make run resumes from it; make clean removes it)
  brokers        %s: topic %s, %d partitions, %d replicas, min.insync.replicas %d
                 data %s
                 logs %s
  shipper        tails %s and error_log (%s); registry %s; log %s
  indexer        log %s
  Elasticsearch  %s %s
  metrics        brokerd %s
                 shipper http://%s/metrics  indexer http://%s/metrics
  today's documents (UTC dates):
    curl -s '%s/httpd_*-%s/_search?pretty&size=5&sort=@timestamp:desc'
`, show(o.dir), p.Bootstrap(), devstack.PipelineTopic, devstack.PipelinePartitions, devstack.PipelineReplicas, devstack.PipelineMinISR,
		strings.Join(nodeData, " "), strings.Join(nodeLogs, " "),
		show(filepath.Join(p.LogsDir(), "access_log")), generator, show(filepath.Join(o.dir, "shipper", "registry")), show(p.Shipper().LogPath),
		show(p.Indexer().LogPath),
		o.esURL, esWhere,
		strings.Join(brokerMetrics, " "), p.ShipperHTTP(), p.IndexerHTTP(),
		o.esURL, today)
}
