// Package harness gives logpipe's tests the real services of
// internal/devstack in the form tests want them: an Elasticsearch node and
// an Apache Kafka cluster shared by every test of a test binary (see
// SharedElasticsearch and SharedKafka), and this module's programs built
// once per test binary (BuildPrograms).
//
// A test binary that uses them wraps its TestMain with Main, which stops
// every shared service and removes every build when the tests end. The
// launchers themselves live in devstack, which does not import testing, so
// that `make run` and the benchmark commands use them as they are.
package harness

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"logpipe/internal/devstack"
)

// How long a shared service may take to start, fetching its jars included.
const (
	sharedElasticsearchTimeout = 13 * time.Minute
	sharedKafkaTimeout         = 6 * time.Minute
)

var (
	cleanupMu sync.Mutex
	cleanups  []func()
)

// atExit registers f to run when Main's tests have finished.
func atExit(f func()) {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	cleanups = append(cleanups, f)
}

// StopAll stops every shared service this process started and removes
// its builds, newest first.
func StopAll() {
	cleanupMu.Lock()
	fs := cleanups
	cleanups = nil
	cleanupMu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}

// Main runs the tests of a package and then stops the shared services they
// started. Use it as the body of TestMain:
//
//	func TestMain(m *testing.M) { harness.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	StopAll()
	os.Exit(code)
}

// BuildPrograms builds each program (see devstack.BuildPrograms) into a new
// temporary folder and returns the binaries' paths, in the order of progs.
// The folder is readable and searchable by every user, so that a test may
// run a binary as another user; StopAll (and so Main) removes it. It may be
// called from TestMain before Main.
func BuildPrograms(progs ...devstack.Program) ([]string, error) {
	dir, err := os.MkdirTemp("", "logpipe-bin-")
	if err != nil {
		return nil, fmt.Errorf("harness: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("harness: %w", err)
	}
	paths, err := devstack.BuildPrograms(dir, progs...)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	atExit(func() { os.RemoveAll(dir) })
	return paths, nil
}

// shared starts a service once per test binary and hands the same one, or
// the same start error, to every caller.
type shared[S any] struct {
	once sync.Once
	s    S
	err  error
}

// get starts the service with start on the first call and registers stop
// to run when Main's tests end. A start failure fails every caller's test.
func (sh *shared[S]) get(tb testing.TB, name string, timeout time.Duration,
	start func(context.Context) (S, error), stop func(S)) S {
	tb.Helper()
	sh.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		sh.s, sh.err = start(ctx)
		if sh.err == nil {
			atExit(func() { stop(sh.s) })
		}
	})
	if sh.err != nil {
		tb.Fatalf("harness: shared %s: %v", name, sh.err)
	}
	return sh.s
}

var (
	esShared    shared[*devstack.Elasticsearch]
	kafkaShared shared[*devstack.Kafka]
)

// SharedElasticsearch returns the node shared by every test of this test
// binary, starting it on the first call. A start failure fails every caller
// with the same error; it never skips. The node is closed when Main's tests
// end. Tests that Stop or Kill it must Start it again before they return.
func SharedElasticsearch(tb testing.TB) *devstack.Elasticsearch {
	tb.Helper()
	return esShared.get(tb, "Elasticsearch", sharedElasticsearchTimeout,
		func(ctx context.Context) (*devstack.Elasticsearch, error) {
			return devstack.StartElasticsearch(ctx, devstack.ElasticsearchOptions{})
		},
		(*devstack.Elasticsearch).Close)
}

// SharedKafka returns the single-node cluster shared by every test of this
// test binary, starting it on the first call. It is stopped when Main's
// tests end. If it cannot start, every caller fails with the same error.
func SharedKafka(tb testing.TB) *devstack.Kafka {
	tb.Helper()
	return kafkaShared.get(tb, "Kafka", sharedKafkaTimeout,
		func(ctx context.Context) (*devstack.Kafka, error) {
			return devstack.StartKafka(ctx, devstack.KafkaOptions{})
		},
		(*devstack.Kafka).Stop)
}
