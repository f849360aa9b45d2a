// Command brokerd is a Kafka-protocol broker: partitioned topics on Kafka's
// on-disk layout, consumer groups and idempotent producers, with the cluster
// metadata in a Raft quorum instead of ZooKeeper. Several nodes form one
// cluster, whose partitions are replicated from their leaders to their
// followers (ISR, high watermark, acks=all).
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"logpipe/brokerd/admin"
	"logpipe/brokerd/broker"
	"logpipe/brokerd/heapfloor"
	"logpipe/brokerd/wire"
	"logpipe/pipeline/cli"
	"logpipe/pipeline/config"
	"logpipe/pipeline/lifecycle"
	"logpipe/pipeline/telemetry"
)

var program = cli.Program{Name: "brokerd", Summary: "a Kafka-protocol broker", Subcommands: admin.Commands()}

// settings is the broker's YAML configuration (Kafka's key names).
type settings struct {
	telemetry.Config `yaml:",inline"`
	Broker           broker.Config `yaml:",inline"`
	GC               gcSettings    `yaml:",inline"`
}

// defaultSettings returns the settings a brokerd.yml starts from.
func defaultSettings() *settings {
	return &settings{Broker: broker.DefaultConfig(), GC: gcSettings{MinHeapBytes: 32 << 20}}
}

// gcSettings are brokerd's settings of the Go garbage collector (not
// Kafka keys).
type gcSettings struct {
	// MinHeapBytes is the heap size under which the collector does not
	// start a cycle (heapfloor); 0 leaves the collector to GOGC alone.
	MinHeapBytes int64 `yaml:"gc.min.heap.bytes"`
}

// maxMinHeapBytes bounds gc.min.heap.bytes: 1 TiB.
const maxMinHeapBytes = 1 << 40

// Validate checks gc.min.heap.bytes.
func (g *gcSettings) Validate() error {
	if g.MinHeapBytes < 0 || g.MinHeapBytes > maxMinHeapBytes {
		return config.Errorf("gc.min.heap.bytes", "must be from 0 (no floor) to %d, not %d", int64(maxMinHeapBytes), g.MinHeapBytes)
	}
	return nil
}

func main() {
	// Admin subcommands are Kafka clients: they need no broker config.
	if len(os.Args) > 1 && admin.IsCommand(os.Args[1]) {
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		ctx, stop := lifecycle.SignalContext(context.Background(), log)
		code := admin.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	s := defaultSettings()
	os.Exit(cli.Main(program, os.Args[1:], s, func(ctx context.Context, env *cli.Env) error {
		return serve(ctx, env, s)
	}))
}

func serve(ctx context.Context, env *cli.Env, s *settings) error {
	floor := heapfloor.Set(s.GC.MinHeapBytes)
	defer floor.Stop()
	m := newMetrics(env)
	// /readyz answers 503 until the node has joined the cluster (joined
	// the metadata quorum, registered and been unfenced by the controller)
	// and serves clients, and again once it is stopping.
	env.Readiness.Set("brokerd", errors.New("joining the cluster"))
	b, err := broker.New(ctx, s.Broker, env.Log, m.brokerHooks())
	if err != nil {
		return err
	}
	if env.Telemetry != nil {
		env.Telemetry.Registry.MustRegister(newPartitionCollector(b))
		env.Telemetry.AppendText(func(w *bufio.Writer) { writePartitionSeries(w, b.Partitions()) })
	}
	lns, err := b.ClientListeners()
	if err != nil {
		b.Close()
		return fmt.Errorf("brokerd: %w", err)
	}
	srv := &wire.Server{
		Handler:            b,
		Log:                env.Log,
		Hooks:              m.wireHooks(),
		MaxRequestBytes:    s.Broker.SocketRequestMaxBytes,
		IdleTimeout:        time.Duration(s.Broker.ConnectionsMaxIdleMs) * time.Millisecond,
		SendBufferBytes:    s.Broker.SocketSendBufferBytes,
		ReceiveBufferBytes: s.Broker.SocketReceiveBufferBytes,
	}
	served := make(chan error, len(lns))
	var names []string
	for _, ln := range lns {
		go func() { served <- srv.ServeSecured(ln.Listener, ln.Security) }()
		names = append(names, ln.Security.Listener+"://"+ln.Addr().String())
	}
	env.Log.Info("brokerd is serving", "listeners", names, "node.id", s.Broker.NodeID, "log.dirs", s.Broker.Dirs(), "gc.min.heap.bytes", s.GC.MinHeapBytes, "gogc", floor.Percent(), "version", cli.Version)
	env.Readiness.Set("brokerd", nil)

	select {
	case <-ctx.Done():
	case err = <-served:
	case <-b.Failed():
		err = b.Err()
		env.Log.Error("stopping: this node cannot follow the cluster metadata", "err", err)
	}
	env.Readiness.Set("brokerd", errors.New("stopping"))
	drainCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if serr := srv.Shutdown(drainCtx); serr != nil {
		env.Log.Warn("requests still in flight at the end of the drain", "err", serr)
	}
	if cerr := b.Close(); cerr != nil {
		env.Log.Error("closing logs", "err", cerr)
		err = errors.Join(err, cerr)
	}
	if errors.Is(err, wire.ErrServerClosed) {
		err = nil
	}
	env.Log.Info("brokerd stopped")
	return err
}
