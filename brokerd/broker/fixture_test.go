package broker_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/brokerd/broker"
	"logpipe/brokerd/wire"
	"logpipe/internal/await"
)

// testBroker is a real broker behind a real wire server on a loopback
// port, stopped when the test ends.
type testBroker struct {
	t    *testing.T
	addr string
	dir  string
	b    *broker.Broker
	srv  *wire.Server
	once sync.Once
}

// startBroker starts a broker with its data in dir (a new temporary folder
// if empty), listening on addr (a free port if empty; a given address is
// retried while a stopped broker's socket lets it go), with change (if not
// nil) applied to a test configuration: the defaults with no initial
// rebalance delay.
func startBroker(t *testing.T, dir, addr string, change func(*broker.Config)) *testBroker {
	t.Helper()
	return startBrokerServing(t, dir, addr, change, func(b *broker.Broker) wire.Handler { return b })
}

// startBrokerServing is startBroker with the wire server's handler made
// from the broker by handler.
func startBrokerServing(t *testing.T, dir, addr string, change func(*broker.Config), handler func(*broker.Broker) wire.Handler) *testBroker {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	await.Eventually(t, "listening on "+addr, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	}, await.Within(10*time.Second))
	cfg := broker.DefaultConfig()
	cfg.Listeners = "PLAINTEXT://" + ln.Addr().String()
	cfg.LogDirs = []string{dir}
	cfg.GroupInitialRebalanceDelayMs = 0
	if change != nil {
		change(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	b, err := broker.New(context.Background(), cfg, log, broker.Hooks{})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	srv := &wire.Server{Handler: handler(b), Log: log}
	go srv.Serve(ln)
	tb := &testBroker{t: t, addr: ln.Addr().String(), dir: dir, b: b, srv: srv}
	t.Cleanup(tb.stop)
	return tb
}

// stop shuts the server and the broker down; later calls do nothing.
func (tb *testBroker) stop() {
	tb.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tb.srv.Shutdown(ctx)
		if err := tb.b.Close(); err != nil {
			tb.t.Errorf("closing broker: %v", err)
		}
	})
}

// clStart starts a broker on dir (a new temp dir if empty) with cfg
// changes applied.
func clStart(t *testing.T, dir string, change func(*broker.Config)) *testBroker {
	t.Helper()
	return startBroker(t, dir, "", change)
}

// grpStart starts a broker on dir (a new temp dir if empty), listening on
// addr (a free port if empty), set up for quick group tests: short session
// timeouts allowed, few offsets partitions.
func grpStart(t *testing.T, dir, addr string) *testBroker {
	t.Helper()
	return startBroker(t, dir, addr, func(cfg *broker.Config) {
		cfg.GroupMinSessionTimeoutMs = 500
		cfg.OffsetsTopicPartitions = 8
	})
}

// grpStartAdmin is grpStart that also returns an admin client of the
// broker.
func grpStartAdmin(t *testing.T, dir, addr string) (*testBroker, *kadm.Client) {
	t.Helper()
	tb := grpStart(t, dir, addr)
	return tb, grpAdmin(t, tb.addr)
}

// clClient returns a franz-go client of the broker at addr, closed when
// the test ends.
func clClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// grpAdmin returns an admin client of the broker at addr.
func grpAdmin(t *testing.T, addr string) *kadm.Client {
	t.Helper()
	return kadm.NewClient(clClient(t, addr))
}

// ctxWithin returns a context that ends after d or with the test.
func ctxWithin(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// ctxT is the context of a client test: one minute.
func ctxT(t *testing.T) context.Context { return ctxWithin(t, 60*time.Second) }

// grpCtx is the context of a group test: two minutes.
func grpCtx(t *testing.T) context.Context { return ctxWithin(t, 2*time.Minute) }
