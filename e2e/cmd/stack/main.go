// Command stack starts logpipe's real services by hand, in the foreground:
//
//	stack fetch                  download the service jars (Maven Central) into .cache/jars
//	stack es [-port 9200]        one Elasticsearch 8 node
//	stack kafka [-nodes 1]       Apache Kafka in KRaft combined mode
//	stack run [flags]            the local pipeline (what `make run` runs; -h lists the flags)
//
// Ctrl-C stops what it started. Data lives under .cache/run/ until `make clean`.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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
	fmt.Fprintln(os.Stderr, "usage: stack fetch | es [-port N] | kafka [-nodes N] | run [-h | flags]")
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

// startES starts the Elasticsearch node of `make es` and `make run` with
// its home in dir.
func startES(ctx context.Context, dir string, port int) (*devstack.Elasticsearch, error) {
	fmt.Printf("stack: starting Elasticsearch on 127.0.0.1:%d (data in %s)\n", port, show(dir))
	return devstack.StartElasticsearch(ctx, devstack.ElasticsearchOptions{Dir: dir, HTTPPort: port, ClusterName: "logpipe"})
}

func runES(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("es", flag.ExitOnError)
	port := fs.Int("port", 9200, "HTTP port")
	fs.Parse(args)
	dir, err := runDir("elasticsearch")
	if err != nil {
		return err
	}
	es, err := startES(ctx, dir, *port)
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
