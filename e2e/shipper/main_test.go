// Package shipper_test runs the real shipper binary against real brokers
// (Apache Kafka from the harness and the brokerd binary) on real files:
// the configuration, rotation torture, kill -9, a broker outage
// under load, bad input, multiline.
package shipper_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/e2e/harness"
	"logpipe/internal/await"
	"logpipe/internal/devstack"
	"logpipe/pipeline/event"
	"logpipe/shipper/registry"
)

var (
	// shipperBin is built with the race detector; plainShipperBin without,
	// for memory measurements; brokerdBin is the broker.
	shipperBin, plainShipperBin, brokerdBin string
)

func TestMain(m *testing.M) {
	paths, err := harness.BuildPrograms(
		devstack.Program{Package: "logpipe/shipper", Race: true},
		devstack.Program{Package: "logpipe/shipper"},
		devstack.Program{Package: "logpipe/brokerd"},
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shipperBin, plainShipperBin, brokerdBin = paths[0], paths[1], paths[2]
	harness.Main(m)
}

// Time limit of a wait. Generous: two shared cores also run JVMs.
const waitTime = 2 * time.Minute

// patient is how the tests wait for a shipper or a broker to do something.
var patient = await.Options(await.Within(waitTime), await.Every(50*time.Millisecond))

// broker is a Kafka-protocol broker under test.
type broker struct {
	name      string
	bootstrap string
	// stop and start take the broker away and bring it back on the same
	// address and data, for outage tests.
	stop  func()
	start func(t *testing.T)
}

// forEachBroker runs f as a subtest against each broker.
func forEachBroker(t *testing.T, f func(t *testing.T, b broker)) {
	for _, b := range []string{"kafka", "brokerd"} {
		t.Run(b, func(t *testing.T) {
			var br broker
			if b == "kafka" {
				br = broker{name: "kafka", bootstrap: harness.SharedKafka(t).Bootstrap()}
			} else {
				br = startBrokerd(t)
			}
			f(t, br)
		})
	}
}

// startBrokerd runs the brokerd binary on a free port with its data in a
// temporary folder; extra are more -E settings.
func startBrokerd(t *testing.T, extra ...string) broker {
	t.Helper()
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	dir := t.TempDir()
	var mu sync.Mutex
	var proc *devstack.Process
	start := func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), waitTime)
		defer cancel()
		p, err := devstack.StartBrokerd(ctx, devstack.BrokerdOptions{Bin: brokerdBin, Addr: addr, DataDir: filepath.Join(dir, "data"),
			Settings: append([]string{"num.partitions=1"}, extra...)})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		proc = p
		mu.Unlock()
	}
	stop := func() {
		mu.Lock()
		p := proc
		proc = nil
		mu.Unlock()
		if p != nil {
			p.Stop(10 * time.Second)
		}
	}
	start(t)
	t.Cleanup(stop)
	return broker{name: "brokerd", bootstrap: addr, stop: stop, start: start}
}

// shipper is a running shipper process.
type shipper struct {
	t    *testing.T
	dir  string // holds config, data, log
	cfg  string
	proc *devstack.Process
	log  string
	http string // host:port of /metrics
	// wrap runs the binary through a command (such as setpriv), if set.
	wrap []string
}

// startShipper writes config text into dir/shipper.yml and runs the
// shipper on it with path.data dir/data and the metrics server on, until
// the test ends.
func startShipper(t *testing.T, dir, config string, extra ...string) *shipper {
	t.Helper()
	return startShipperBin(t, shipperBin, dir, config, extra...)
}

// startShipperBin is startShipper with the binary given.
func startShipperBin(t *testing.T, bin, dir, config string, extra ...string) *shipper {
	t.Helper()
	s := &shipper{t: t, dir: dir, cfg: filepath.Join(dir, "shipper.yml"), log: filepath.Join(dir, "shipper.log")}
	if err := os.WriteFile(s.cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	s.start(bin, extra...)
	return s
}

func (s *shipper) start(bin string, extra ...string) {
	s.t.Helper()
	port, err := devstack.FreePort()
	if err != nil {
		s.t.Fatal(err)
	}
	s.http = "127.0.0.1:" + strconv.Itoa(port)
	args := append([]string{"-c", s.cfg, "-E", "path.data=" + filepath.Join(s.dir, "data"),
		"-E", "http.enabled=true", "-E", "http.port=" + strconv.Itoa(port), "-E", "logging.level=debug"}, extra...)
	cmd := exec.Command(bin, args...)
	if len(s.wrap) > 0 {
		cmd = exec.Command(s.wrap[0], append(append(s.wrap[1:len(s.wrap):len(s.wrap)], bin), args...)...)
	}
	p, err := devstack.StartProcess("shipper", cmd, s.log)
	if err != nil {
		s.t.Fatal(err)
	}
	if s.proc == nil {
		s.t.Cleanup(func() {
			if s.t.Failed() {
				s.t.Logf("the end of the shipper's log %s:\n%s", s.log, s.proc.Tail(8000))
			}
		})
	}
	s.proc = p
	s.t.Cleanup(func() { p.Stop(20 * time.Second) })
	await.Eventually(s.t, "the metrics server", func() error {
		_, err := s.metrics()
		return err
	}, s.alive())
}

// alive is how the tests wait on the shipper: patiently, and failing at
// once, with its log, if it exits.
func (s *shipper) alive() await.Option { return await.Options(patient, await.While(s.proc.Alive)) }

// metrics scrapes /metrics into name{labels} -> value.
func (s *shipper) metrics() (map[string]float64, error) { return devstack.ScrapeMetrics(s.http) }

// metric returns one metric, failing the test if it cannot be read.
func (s *shipper) metric(name string) float64 {
	s.t.Helper()
	m, err := s.metrics()
	if err != nil {
		s.t.Fatal(err)
	}
	return m[name]
}

// stop sends SIGTERM and waits for a clean exit.
func (s *shipper) stop() {
	s.t.Helper()
	s.proc.Stop(30 * time.Second)
	if _, err := s.proc.Exited(); err != nil {
		s.t.Fatalf("shipper exited with %v; log:\n%s", err, s.proc.Tail(4000))
	}
}

// registry reads the shipper's registry file.
func (s *shipper) registry() []registry.Entry {
	s.t.Helper()
	entries, err := registry.Load(filepath.Join(s.dir, "data", "registry", "shipper.json"))
	if err != nil {
		s.t.Fatal(err)
	}
	return entries
}

// record is one consumed event with its Kafka record's details.
type record struct {
	event.Event
	Raw       map[string]any
	Partition int32
	Offset    int64
	Timestamp time.Time
	Key       string
}

// consumer reads a topic from its start.
type consumer struct {
	t  *testing.T
	cl *kgo.Client

	mu    sync.Mutex
	recs  []record
	lines map[int]bool // numbered lines seen (see lineNumber)
	// fetchErr is the last error a fetch returned, for a wait that fails.
	fetchErr error
}

func consume(t *testing.T, bootstrap, topic string, opts ...kgo.Opt) *consumer {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(strings.Split(bootstrap, ",")...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.FetchMaxBytes(64 << 20), kgo.FetchMaxPartitionBytes(64 << 20), kgo.BrokerMaxReadBytes(128 << 20)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	c := &consumer{t: t, cl: cl, lines: map[int]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			for _, e := range fs.Errors() {
				if ctx.Err() == nil {
					c.mu.Lock()
					c.fetchErr = fmt.Errorf("topic %s partition %d: %w", e.Topic, e.Partition, e.Err)
					c.mu.Unlock()
				}
			}
			fs.EachRecord(func(r *kgo.Record) {
				var rec record
				if err := json.Unmarshal(r.Value, &rec.Event); err != nil {
					t.Errorf("record %d is not an event: %v: %.200s", r.Offset, err, r.Value)
					return
				}
				if len(rec.Fields) > 0 || bytes.Contains(r.Value, []byte(`"fields"`)) {
					_ = json.Unmarshal(r.Value, &rec.Raw)
				}
				rec.Partition, rec.Offset, rec.Timestamp, rec.Key = r.Partition, r.Offset, r.Timestamp, string(r.Key)
				c.mu.Lock()
				c.recs = append(c.recs, rec)
				if n, ok := lineNumber(rec.Message); ok {
					c.lines[n] = true
				}
				c.mu.Unlock()
			})
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		cl.Close()
	})
	return c
}

// distinctLines returns how many different numbered lines were consumed.
func (c *consumer) distinctLines() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.lines)
}

// waitLines waits until lines 1..total have all been consumed.
func (c *consumer) waitLines(s *shipper, total int) {
	c.t.Helper()
	await.Eventually(c.t, fmt.Sprintf("all %d lines", total), func() error {
		if n := c.distinctLines(); n < total {
			return await.NotYet(fmt.Sprintf("%d distinct lines", n), total)
		}
		return nil
	}, s.alive())
}

// lastFetchErr returns the last error a fetch returned, nil if none.
func (c *consumer) lastFetchErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fetchErr
}

func (c *consumer) records() []record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]record(nil), c.recs...)
}

// waitRecords waits until cond holds for the records consumed so far,
// what describing them.
func (c *consumer) waitRecords(what string, s *shipper, cond func([]record) bool) []record {
	c.t.Helper()
	var recs []record
	await.Eventually(c.t, what, func() error {
		if recs = c.records(); !cond(recs) {
			return await.NotYet(fmt.Sprintf("%d records", len(recs)), what)
		}
		return nil
	}, s.alive())
	return recs
}

// adminClient returns an admin client of the brokers at bootstrap
// (comma-separated), closed when the test ends.
func adminClient(t *testing.T, bootstrap string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(bootstrap, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// createTopic makes a topic with n partitions.
func createTopic(t *testing.T, bootstrap, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	if _, err := adminClient(t, bootstrap).CreateTopic(ctx, partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
}

// topicName returns a topic name unique to the test.
func topicName(t *testing.T) string {
	name := []byte(strings.ToLower(t.Name()))
	for i, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			name[i] = '-'
		}
	}
	if len(name) > 180 {
		name = name[len(name)-180:]
	}
	return string(name) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
