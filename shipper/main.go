// Command shipper tails log files (Apache httpd access_log and error_log,
// or any log), tags each line, gives it a stable id and produces it as a
// JSON event to a Kafka topic. It reads Filebeat-style YAML.
//
// On SIGTERM it stops reading, waits up to shutdown_timeout for the broker
// to acknowledge what was sent, writes the registry and exits. Lines not
// acknowledged by then are read again at the next start.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"logpipe/pipeline/cli"
	"logpipe/pipeline/event"
	"logpipe/shipper/input"
	"logpipe/shipper/output"
	"logpipe/shipper/publish"
	"logpipe/shipper/registry"
)

var program = cli.Program{Name: "shipper", Summary: "tail log files and produce their lines to Kafka"}

func main() {
	s := defaultSettings()
	os.Exit(cli.Main(program, os.Args[1:], s, func(ctx context.Context, env *cli.Env) error {
		return run(ctx, env, s)
	}))
}

// defaultInputs are read when the configuration names no inputs: the two
// httpd logs of the issue, tagged for the indexer's routing.
func defaultInputs() []input.Config {
	return []input.Config{
		{Type: "log", ID: "httpd-access", Paths: []string{"/var/log/httpd/access_log"}, Tags: []string{"access"}},
		{Type: "log", ID: "httpd-error", Paths: []string{"/var/log/httpd/error_log"}, Tags: []string{"error"}},
	}
}

func hasKey(env *cli.Env, prefix string) bool {
	for k := range env.Positions {
		if k == prefix || strings.HasPrefix(k, prefix+".") || strings.HasPrefix(k, prefix+"[") {
			return true
		}
	}
	return false
}

func run(ctx context.Context, env *cli.Env, s *settings) error {
	log := env.Log
	if !hasKey(env, "filebeat.inputs") && !hasKey(env, "filebeat.prospectors") {
		s.Filebeat.Inputs = defaultInputs()
		log.Info("no inputs configured; reading the httpd logs", "paths", "/var/log/httpd/access_log, /var/log/httpd/error_log")
	}
	r, err := s.resolve()
	if err != nil {
		return err
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set && r.MemoryLimit > 0 {
		debug.SetMemoryLimit(r.MemoryLimit)
		log.Debug("soft memory limit", "bytes", r.MemoryLimit)
	}
	host := s.Name
	if host == "" {
		if host, err = os.Hostname(); err != nil {
			return fmt.Errorf("shipper: host name: %w", err)
		}
	}

	// One shipper per data folder: two would overwrite each other's
	// registry.
	if err := os.MkdirAll(filepath.Join(r.DataPath, "registry"), 0o750); err != nil {
		return fmt.Errorf("shipper: path.data: %w", err)
	}
	unlock, err := lockData(r.DataPath)
	if err != nil {
		return err
	}
	defer unlock()

	m := newMetrics(env)
	reg, err := registry.Open(filepath.Join(r.DataPath, "registry", "shipper.json"), log, m.registryHooks())
	if err != nil {
		return err
	}
	log.Info("registry loaded", "path", reg.Path(), "files", reg.Len())
	out := output.NewKafka(r.Output, r.QueueEvents, r.QueueBytes, log, m.outputHooks(env), ackRegistry(reg))
	m.watch(env, out.Queue(), reg)
	env.Readiness.Set("kafka", errors.New("not connected yet"))
	mgr, err := input.NewManager(r.Inputs, input.Options{
		Registry: reg,
		Sink:     out,
		Log:      log,
		Host:     input.Host{Name: host, ID: host},
		Agent:    event.Agent{Type: "shipper", Version: cli.Version},
		Hooks:    m.inputHooks(),
	})
	if err != nil {
		return err
	}

	outCtx, stopOut := context.WithCancel(context.Background())
	defer stopOut()
	outDone := make(chan error, 1)
	go func() { outDone <- out.Run(outCtx, 5*time.Second) }()
	regCtx, stopReg := context.WithCancel(context.Background())
	defer stopReg()
	regDone := make(chan error, 1)
	go func() { regDone <- reg.Run(regCtx, r.RegistryFlush) }()

	log.Info("shipper is running", "inputs", len(r.Inputs), "hosts", r.Output.Hosts, "topic", r.Output.Topic.String(), "version", cli.Version)
	mgrErr := mgr.Run(ctx)

	// Stopping: reading has stopped; let the broker acknowledge what was
	// sent, then save the registry.
	n, _ := out.Queue().Len()
	log.Info("stopping: waiting for the broker to acknowledge events in flight", "events", n, "timeout", r.ShutdownTimeout)
	dctx, cancel := context.WithTimeout(context.Background(), r.ShutdownTimeout)
	if err := out.Drain(dctx); err != nil {
		n, _ := out.Queue().Len()
		log.Warn("shutdown_timeout passed with events unacknowledged; they are read again at the next start", "events", n)
	}
	cancel()
	stopOut()
	outErr := <-outDone
	stopReg()
	regErr := <-regDone
	if regErr != nil {
		log.Error("cannot write the registry at shutdown", "err", regErr)
	}
	log.Info("shipper stopped", "registry", reg.Path(), "files", reg.Len())
	return errors.Join(mgrErr, outErr, regErr)
}

// ackRegistry returns the function that records acknowledgements in the
// registry: each receipt is the registry.Span of a batch.
func ackRegistry(reg *registry.Registry) func(acks []publish.Ack) {
	return func(acks []publish.Ack) {
		reg.AckEach(len(acks), func(i int) registry.Ticket {
			return acks[i].Receipt.(registry.Span).Ticket(acks[i].Index)
		})
	}
}

// lockData takes an exclusive lock on path.data, so that two shippers
// never share a registry.
func lockData(dir string) (func(), error) {
	path := filepath.Join(dir, "shipper.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("shipper: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("shipper: %s is locked: another shipper uses path.data %s (%v)", path, dir, err)
	}
	return func() { f.Close() }, nil
}
