// Command indexer is a Kafka consumer group that parses httpd log events
// into ECS fields and writes them to date-suffixed Elasticsearch indices,
// committing offsets only for documents Elasticsearch has acknowledged.
//
//	indexer [-c FILE] [-E key=value]...          consume and index
//	indexer [-c FILE] [-E key=value]... setup    install templates and data views
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"logpipe/indexer/bulk"
	"logpipe/indexer/console"
	"logpipe/indexer/consumer"
	"logpipe/indexer/route"
	"logpipe/indexer/setup"
	"logpipe/pipeline/cli"
)

var program = cli.Program{
	Name:    "indexer",
	Summary: "index Kafka log events into Elasticsearch",
	Subcommands: []string{
		"setup  install the index templates and, with kibana.url, the Kibana data views",
	},
}

func main() {
	s := defaultSettings()
	os.Exit(cli.Main(program, os.Args[1:], s, func(ctx context.Context, env *cli.Env) error {
		if len(env.Args) > 0 {
			switch env.Args[0] {
			case "setup":
				return runSetup(ctx, env, s, env.Args[1:])
			default:
				return fmt.Errorf("indexer: unknown command %q (known: setup)", env.Args[0])
			}
		}
		return run(ctx, env, s)
	}))
}

// Timing of the indexer's own housekeeping.
const (
	probeInterval = 5 * time.Second  // Elasticsearch reachability for /readyz
	closeTimeout  = 10 * time.Second // the sink's last flush after the consumer has drained
)

func run(ctx context.Context, env *cli.Env, s *settings) error {
	log := env.Log
	router, err := s.router()
	if err != nil {
		return err
	}
	dlq, err := route.ParseFormat(s.DLQ.Index)
	if err != nil {
		return err
	}
	build, err := s.buildOptions()
	if err != nil {
		return err
	}
	sc, err := s.Kafka.Sarama()
	if err != nil {
		return fmt.Errorf("indexer: kafka: %w", err)
	}
	es, err := s.esClient()
	if err != nil {
		return err
	}
	env.Readiness.Set("elasticsearch", errors.New("not contacted yet"))
	env.Readiness.Set("kafka", errors.New("not in the consumer group yet"))
	reachable := func(err error) { env.Readiness.Set("elasticsearch", err) }

	var sinkRef atomic.Pointer[bulk.Sink]
	m := newMetrics(env, sinkRef.Load)

	probeCtx, stopProbe := context.WithCancel(ctx)
	defer stopProbe()
	go probe(probeCtx, es, reachable)

	if s.Setup.Template.Enabled {
		if err := installTemplates(ctx, env, s, es, router); err != nil {
			return err
		}
	}

	sink := bulk.New(bulk.Config{
		Client:           es,
		Workers:          s.ES.Workers,
		FlushBytes:       int(s.ES.FlushBytes),
		FlushInterval:    s.ES.FlushInterval.D(),
		MaxInFlightBytes: int64(s.ES.MaxInFlightBytes),
		BackoffInit:      s.ES.Backoff.Init.D(),
		BackoffMax:       s.ES.Backoff.Max.D(),
		Timeout:          s.ES.Timeout.D(),
		Hooks:            m.sinkHooks(reachable),
		Log:              log,
	})
	sinkRef.Store(sink)
	var out *console.Writer
	if s.Out.Enabled {
		out = console.New(env.Stdout, s.consoleCodec())
	}
	hooks := m.consumerHooks(func() {
		log.Warn("an event matched no route and was dropped; further ones are only counted in logpipe_indexer_events_unrouted_total")
	})
	hooks.Joined = func() { env.Readiness.Set("kafka", nil) }
	ccfg := consumer.Config{
		Brokers:        s.Kafka.Hosts,
		Topics:         s.Kafka.Topics,
		GroupID:        s.Kafka.GroupID,
		Sarama:         sc,
		Codec:          s.codec(),
		Build:          build,
		Router:         router,
		DeadLetter:     dlq,
		Sink:           sink,
		Console:        out,
		CommitInterval: s.Kafka.CommitInterval.D(),
		DrainTimeout:   s.Kafka.DrainTimeout.D(),
		Hooks:          hooks,
		Log:            log,
	}
	// Wait for Kafka as for Elasticsearch: a broker that is not up yet is
	// no reason to exit.
	var c *consumer.Consumer
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		if c, err = consumer.New(ccfg); err == nil {
			break
		}
		log.Warn("cannot reach Kafka; retrying", "brokers", s.Kafka.Hosts, "err", err, "in", wait)
		env.Readiness.Set("kafka", fmt.Errorf("cannot reach Kafka: %w", err))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
			continue
		case <-ctx.Done():
			t.Stop()
		}
		closeCtx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		sink.Close(closeCtx)
		return nil
	}
	log.Info("indexer is consuming", "brokers", s.Kafka.Hosts, "topics", s.Kafka.Topics, "group", s.Kafka.GroupID,
		"elasticsearch", s.ES.Hosts, "routes", len(s.Route), "version", cli.Version)
	runErr := c.Run(ctx)
	closeCtx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	if err := sink.Close(closeCtx); err != nil {
		log.Warn("documents still in flight at shutdown were given up; their records were not committed and will be read again", "err", err)
	}
	log.Info("indexer stopped")
	return runErr
}

// probe checks Elasticsearch every probeInterval for /readyz, so that
// readiness follows it even when no documents flow.
func probe(ctx context.Context, es *elasticsearch.Client, reachable func(error)) {
	t := time.NewTicker(probeInterval)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, probeInterval)
		res, err := es.Ping(es.Ping.WithContext(pctx))
		cancel()
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			reachable(err)
		case res.StatusCode >= 500:
			res.Body.Close()
			reachable(fmt.Errorf("indexer: Elasticsearch answered %s", res.Status()))
		case res.StatusCode == http.StatusUnauthorized:
			res.Body.Close()
			reachable(fmt.Errorf("indexer: Elasticsearch refused the credentials: it answered %s to HEAD /", res.Status()))
		case res.StatusCode == http.StatusForbidden:
			res.Body.Close()
			reachable(fmt.Errorf("indexer: Elasticsearch answered %s to HEAD /: the credentials lack the cluster privilege \"monitor\"", res.Status()))
		default:
			res.Body.Close()
			reachable(nil)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// installTemplates installs the missing templates, waiting for
// Elasticsearch as long as it takes (or until ctx ends): documents indexed
// before their template would get dynamic mappings for good.
func installTemplates(ctx context.Context, env *cli.Env, s *settings, es *elasticsearch.Client, r *route.Router) error {
	wait := s.ES.Backoff.Init.D()
	for {
		written, err := setup.Install(ctx, es, s.templateConfig(r), false, env.Log)
		if err == nil {
			if len(written) > 0 {
				env.Log.Info("installed missing index templates", "templates", written)
			}
			return nil
		}
		switch {
		case errors.Is(err, setup.ErrUnreachable):
			env.Log.Warn("cannot reach Elasticsearch to check the index templates; retrying", "err", err, "in", wait)
		case errors.Is(err, setup.ErrRefused):
			// Credentials or privileges an operator can put right in
			// Elasticsearch; /readyz says so meanwhile (the probe sees it too).
			env.Log.Warn("Elasticsearch refused the indexer's credentials or privileges for its index templates; retrying", "err", err, "in", wait)
		default:
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(2*wait, s.ES.Backoff.Max.D())
	}
}

// runSetup is `indexer setup`.
func runSetup(ctx context.Context, env *cli.Env, s *settings, args []string) error {
	fs := flag.NewFlagSet("indexer setup", flag.ContinueOnError)
	fs.SetOutput(env.Stdout)
	templates := fs.Bool("templates", false, "install the index templates only")
	views := fs.Bool("data-views", false, "create the Kibana data views only (needs kibana.url)")
	wait := fs.Duration("wait", time.Minute, "how long to wait for Elasticsearch and Kibana to answer")
	fs.Usage = func() {
		fmt.Fprint(env.Stdout, "indexer setup: install the index templates (overwriting earlier versions) and,\n"+
			"with kibana.url set, create the Kibana data views that do not exist yet.\n\n"+
			"Usage:\n  indexer [-c FILE] [-E key=value]... setup [--templates | --data-views] [--wait DURATION]\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return fmt.Errorf("indexer: setup: %w", err)
	}
	if !*templates && !*views {
		*templates, *views = true, s.KB.URL != ""
	}
	router, err := s.router()
	if err != nil {
		return err
	}
	cfg := s.templateConfig(router)
	ctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	retry := func(what string, f func() error) error {
		backoff := 500 * time.Millisecond
		for {
			err := f()
			if err == nil || !errors.Is(err, setup.ErrUnreachable) {
				return err
			}
			env.Log.Warn(what+" not reachable yet; retrying", "err", err)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("indexer: setup: gave up after --wait %v: %w", *wait, err)
			case <-t.C:
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}
	if *templates {
		es, err := s.esClient()
		if err != nil {
			return err
		}
		err = retry("Elasticsearch", func() error {
			written, err := setup.Install(ctx, es, cfg, true, env.Log)
			if err == nil {
				fmt.Fprintf(env.Stdout, "Index templates installed: %v\n", written)
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	if *views {
		kb, err := s.kibana()
		if err != nil {
			return err
		}
		if kb == nil {
			return errors.New("indexer: setup --data-views needs kibana.url")
		}
		patterns := append(append([]string(nil), cfg.Patterns...), cfg.DeadLetterPattern)
		err = retry("Kibana", func() error {
			created, err := kb.EnsureDataViews(ctx, patterns, env.Log)
			if err == nil {
				fmt.Fprintf(env.Stdout, "Kibana data views created: %v (the others existed)\n", created)
			}
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}
