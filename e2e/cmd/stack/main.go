// Command stack starts logpipe's real services by hand, in the foreground:
//
//	stack fetch                  download the service jars (Maven Central) into .cache/jars
//	stack es [-port 9200]        one Elasticsearch 8 node
//	stack kafka [-nodes 1]       Apache Kafka in KRaft combined mode
//	stack run                    the local pipeline (what `make run` runs)
//
// Ctrl-C stops what it started. Data lives under .cache/run/ until `make clean`.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"logpipe/internal/devstack"
	"logpipe/pipeline/lifecycle"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := lifecycle.SignalContext(context.Background(), log)
	defer stop()
	var err error
	switch os.Args[1] {
	case "fetch":
		err = fetch(ctx)
	case "es":
		err = runES(ctx, os.Args[2:])
	case "kafka":
		err = runKafka(ctx, os.Args[2:])
	case "run":
		err = runStack(ctx, os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "stack:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: stack fetch | es [-port N] | kafka [-nodes N] | run")
	os.Exit(2)
}

func fetch(ctx context.Context) error {
	for _, name := range []string{"elasticsearch", "kafka"} {
		start := time.Now()
		dir, err := devstack.Jars(ctx, name)
		if err != nil {
			return err
		}
		fmt.Printf("stack: %s jars in %s (%.1fs)\n", name, dir, time.Since(start).Seconds())
	}
	return nil
}

func runDir(name string) (string, error) {
	dir, err := devstack.CacheDir(filepath.Join("run", name))
	if err != nil {
		return "", err
	}
	return dir, nil
}

func startES(ctx context.Context, port int) (*devstack.Elasticsearch, error) {
	dir, err := runDir("elasticsearch")
	if err != nil {
		return nil, err
	}
	fmt.Printf("stack: starting Elasticsearch on 127.0.0.1:%d (data in %s)\n", port, dir)
	return devstack.StartElasticsearch(ctx, devstack.ElasticsearchOptions{Dir: dir, HTTPPort: port, ClusterName: "logpipe"})
}

func runES(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("es", flag.ExitOnError)
	port := fs.Int("port", 9200, "HTTP port")
	fs.Parse(args)
	es, err := startES(ctx, *port)
	if err != nil {
		return err
	}
	defer es.Stop()
	fmt.Printf("stack: Elasticsearch is up at %s; Ctrl-C stops it\n", es.URL)
	<-ctx.Done()
	return nil
}

func runKafka(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("kafka", flag.ExitOnError)
	nodes := fs.Int("nodes", 1, "number of brokers (KRaft combined mode)")
	fs.Parse(args)
	dir, err := runDir("kafka")
	if err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	k, err := devstack.StartKafka(ctx, devstack.KafkaOptions{Nodes: *nodes, Dir: dir})
	if err != nil {
		return err
	}
	defer k.Stop()
	fmt.Printf("stack: Apache Kafka is up, bootstrap %s; Ctrl-C stops it\n", k.Bootstrap())
	<-ctx.Done()
	return nil
}

// runStack runs the local pipeline from the binaries in bin/ and the
// configs in configs/: brokerd on 127.0.0.1:9092 (data in ./data), the
// Elasticsearch node on 127.0.0.1:9200, the indexer (after it installed
// the index templates) and the shipper, which tails the files
// configs/shipper.yml names (/var/log/httpd/access_log and error_log).
// Ctrl-C stops the binaries in reverse order, then Elasticsearch.
func runStack(ctx context.Context, _ []string) error {
	root, err := devstack.RepoRoot()
	if err != nil {
		return err
	}
	es, err := startES(ctx, 9200)
	if err != nil {
		return err
	}
	defer es.Stop()
	fmt.Printf("stack: Elasticsearch is up at %s\n", es.URL)

	var procs []*exec.Cmd
	defer func() {
		for i := len(procs) - 1; i >= 0; i-- {
			_ = procs[i].Process.Signal(syscall.SIGTERM)
			_ = procs[i].Wait()
		}
	}()
	start := func(name string, args ...string) error {
		cmd := exec.Command(filepath.Join(root, "bin", name), args...)
		cmd.Dir = root
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("starting %s (run `make build` first): %w", name, err)
		}
		procs = append(procs, cmd)
		return nil
	}
	cfg := func(name string) string { return filepath.Join(root, "configs", name+".yml") }
	if err := start("brokerd", "-c", cfg("brokerd")); err != nil {
		return err
	}
	setup := exec.CommandContext(ctx, filepath.Join(root, "bin", "indexer"), "-c", cfg("indexer"), "setup")
	setup.Dir, setup.Stdout, setup.Stderr = root, os.Stdout, os.Stderr
	if err := setup.Run(); err != nil {
		return fmt.Errorf("indexer setup: %w", err)
	}
	// A new group on a fresh local broker reads the topic from its start,
	// so the first lines shipped before the group formed are not skipped
	// (the config's default, latest, is Logstash's).
	if err := start("indexer", "-c", cfg("indexer"), "-E", "kafka.auto_offset_reset=earliest"); err != nil {
		return err
	}
	if err := start("shipper", "-c", cfg("shipper")); err != nil {
		return err
	}
	fmt.Println("stack: brokerd (127.0.0.1:9092), the indexer and the shipper are running; append to the logs configs/shipper.yml names and look in httpd_access-* and httpd_error-*. Ctrl-C stops the stack.")
	<-ctx.Done()
	return nil
}
