package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"logpipe/pipeline/config"
	"logpipe/pipeline/lifecycle"
	"logpipe/pipeline/telemetry"
)

// Env is what a binary's run function gets once its config is loaded.
type Env struct {
	Log       *slog.Logger
	Telemetry *telemetry.Server // nil when http.enabled is false
	// Readiness feeds /readyz; it is usable even without the HTTP server.
	Readiness *telemetry.Readiness
	Args      []string                   // arguments after the flags
	Positions map[string]config.Position // where each config key was set
	Stdout    io.Writer
	Stderr    io.Writer
}

// Configurable is a config struct that embeds telemetry.Config.
type Configurable interface {
	Telemetry() *telemetry.Config
}

// Main is the body of every binary's main: it parses args, loads the config
// into cfg (which holds the defaults), sets up logging, the telemetry server
// and signal handling, and calls run with a context that the first SIGINT or
// SIGTERM cancels. It returns the process exit status: 0 on success, 1 when
// the config or run fails, 2 for usage errors.
func Main(p Program, args []string, cfg Configurable, run func(ctx context.Context, env *Env) error) int {
	return MainIO(p, args, cfg, run, os.Stdout, os.Stderr)
}

// MainIO is Main with the output streams given, for tests.
func MainIO(p Program, args []string, cfg Configurable, run func(ctx context.Context, env *Env) error, stdout, stderr io.Writer) int {
	opts, done, code := Parse(p, args, stdout)
	if done {
		return code
	}
	pos, err := config.Load(opts.ConfigFile, opts.Overrides, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "%s: invalid configuration:\n%v\n", p.Name, err)
		return 1
	}
	tc := cfg.Telemetry()
	log, err := telemetry.NewLogger(tc.Logging, p.Name, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", p.Name, err)
		return 1
	}
	env := &Env{Log: log, Args: opts.Args, Positions: pos, Stdout: stdout, Stderr: stderr, Readiness: &telemetry.Readiness{}}
	if tc.HTTP.Enabled {
		srv := telemetry.NewServer()
		srv.Readiness = env.Readiness
		if tc.HTTP.Pprof {
			srv.EnablePprof()
		}
		if err := srv.Start(tc.HTTP.Addr()); err != nil {
			log.Error("cannot start the metrics and health server", "err", err)
			return 1
		}
		log.Info("serving /metrics, /healthz and /readyz", "addr", srv.Addr())
		env.Telemetry = srv
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		}()
	}
	if run == nil {
		log.Error("this binary does not do its job yet: only its command line, config and telemetry exist", "version", Version)
		return 3
	}
	ctx, stop := lifecycle.SignalContext(context.Background(), log)
	defer stop()
	if err := run(ctx, env); err != nil {
		log.Error("exiting on error", "err", err)
		return 1
	}
	return 0
}
