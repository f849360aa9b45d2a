package output

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"logpipe/e2e/harness"
	"logpipe/internal/await"
	"logpipe/internal/devstack"
	"logpipe/pipeline/config"
	"logpipe/pipeline/event"
	"logpipe/shipper/publish"
)

func TestMain(m *testing.M) { harness.Main(m) }

// brokerdBin is the brokerd binary, built once for the package's tests.
var brokerdBin = sync.OnceValues(func() (string, error) {
	paths, err := harness.BuildPrograms(devstack.Program{Package: "logpipe/brokerd"})
	if err != nil {
		return "", err
	}
	return paths[0], nil
})

// startBroker runs a brokerd node with settings (each "key=value") on a
// loopback port, and returns its address and a function that stops it
// (called again when the test ends, it does nothing).
func startBroker(t *testing.T, settings ...string) (addr string, stop func()) {
	t.Helper()
	addr, p := startBrokerProcess(t, settings...)
	var once sync.Once
	stop = func() { once.Do(func() { p.Stop(10 * time.Second) }) }
	t.Cleanup(stop)
	return addr, stop
}

// startBrokerProcess runs a brokerd node as startBroker does and returns
// its address and process, which the test stops.
func startBrokerProcess(t *testing.T, settings ...string) (string, *devstack.Process) {
	t.Helper()
	bin, err := brokerdBin()
	if err != nil {
		t.Fatal(err)
	}
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := devstack.StartBrokerd(ctx, devstack.BrokerdOptions{Bin: bin, Addr: addr, DataDir: filepath.Join(dir, "data"), Settings: settings})
	if err != nil {
		t.Fatal(err)
	}
	return addr, p
}

// testOutput is a Kafka output running until the test ends, with what
// its hooks were told.
type testOutput struct {
	k    *Kafka
	stop context.CancelFunc
	ran  chan error

	mu     sync.Mutex
	acked  int
	failed map[string]int // failed look-ups by topic
	// requests are the events of each produce request sent, in order.
	requests []int
}

// startOutput runs the output of c.
func startOutput(t *testing.T, c Config) *testOutput {
	t.Helper()
	s, err := c.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	o := &testOutput{ran: make(chan error, 1), failed: map[string]int{}}
	hooks := Hooks{Published: func(n int) {
		o.mu.Lock()
		o.requests = append(o.requests, n)
		o.mu.Unlock()
	}, Health: func(err error) {
		if err == nil {
			return
		}
		if _, rest, ok := strings.Cut(err.Error(), `cannot look up topic "`); ok {
			topic, _, _ := strings.Cut(rest, `"`)
			o.mu.Lock()
			o.failed[topic]++
			o.mu.Unlock()
		}
	}}
	o.k = NewKafka(s, 1000, 1<<20, slog.New(slog.NewTextHandler(io.Discard, nil)), hooks, func(acks []publish.Ack) {
		o.mu.Lock()
		o.acked += len(acks)
		o.mu.Unlock()
	})
	var ctx context.Context
	ctx, o.stop = context.WithCancel(context.Background())
	go func() { o.ran <- o.k.Run(ctx, time.Second) }()
	t.Cleanup(func() { o.end(t) })
	return o
}

// publish hands the output an event whose field "topic" is topic.
func (o *testOutput) publish(t *testing.T, topic string) {
	t.Helper()
	o.publishN(t, topic, 1)
}

// publishN hands the output n events whose field "topic" is topic, in one
// batch.
func (o *testOutput) publishN(t *testing.T, topic string, n int) {
	t.Helper()
	tmpl := event.Event{Input: event.Input{Type: "log"}, Fields: map[string]any{"topic": topic}}
	b := &publish.Batch{
		Source:   &publish.Source{Template: tmpl, HostID: "h", FileID: topic},
		Path:     "/var/log/" + topic,
		Time:     time.Now(),
		Register: func(*publish.Batch) any { return nil },
	}
	for i := range n {
		b.Add([]byte("line"), int64(5*i), int64(5*i+5), 0)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := o.k.Publish(ctx, b); err != nil {
		t.Fatal(err)
	}
}

// end stops the output and waits for Run to return.
func (o *testOutput) end(t *testing.T) {
	t.Helper()
	o.stop()
	select {
	case err, ok := <-o.ran:
		if ok && err != nil {
			t.Errorf("Run: %v", err)
		}
		if ok {
			close(o.ran)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return after its context ended")
	}
}

// waitFor polls cond, under the output's lock, until it holds.
func (o *testOutput) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	await.Eventually(t, what, func() error {
		o.mu.Lock()
		defer o.mu.Unlock()
		if !cond() {
			return await.NotYet("not yet", what)
		}
		return nil
	})
}

// engineGoroutines returns the stacks of the goroutines that run the
// engine's code.
func engineGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "shipper/output.(*engine)") {
			out = append(out, g)
		}
	}
	return out
}

// lookUpGoroutines counts the engine's goroutines that run a look-up.
func lookUpGoroutines() int {
	n := 0
	for _, g := range engineGoroutines() {
		if strings.Contains(g, "(*engine).lookUp.func") {
			n++
		}
	}
	return n
}

// TestRunLeavesNoLookupBehind stops Run while more look-ups are running
// than the engine's channel for their answers holds: the output knows 40
// topics and refreshes their metadata every 10ms, and the broker has just
// gone away, so that each look-up waits for its retries. One more topic
// cannot exist (its name is invalid): its look-up failed just before, and
// it waits for a backoff of 2s to be looked up again. Once Run has
// returned, no goroutine of the engine may be left: an answer that comes,
// or a backoff that ends, after the engine has exited must not wait for
// it.
func TestRunLeavesNoLookupBehind(t *testing.T) {
	addr, stopBroker := startBroker(t)
	const topics = 40
	retries := 5
	c := Config{Hosts: []string{addr}, Topic: "%{[fields.topic]}"}
	c.Metadata.RefreshFrequency = config.Duration(10 * time.Millisecond)
	c.Metadata.Retry.Max = &retries
	c.Metadata.Retry.Backoff = config.Duration(100 * time.Millisecond)
	c.Backoff.Init = config.Duration(2 * time.Second)
	o := startOutput(t, c)
	for i := range topics {
		o.publish(t, fmt.Sprintf("t-%d", i))
	}
	o.waitFor(t, "the events' acknowledgements", func() bool { return o.acked == topics })
	o.publish(t, "bad/name")
	o.waitFor(t, "a failed look-up of bad/name", func() bool { return o.failed["bad/name"] > 0 })

	stopBroker()
	await.Eventually(t, "more than 16 look-ups running", func() error {
		if n := lookUpGoroutines(); n <= 16 {
			return await.NotYet(n, "more than 16")
		}
		return nil
	})
	o.end(t)
	// The look-ups end within their retries (well under a second); what is
	// left after that waits for an engine that is gone.
	deadline := time.Now().Add(30 * time.Second)
	for {
		left := engineGoroutines()
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			funcs := map[string]int{}
			for _, g := range left {
				if lines := strings.Split(g, "\n"); len(lines) > 1 {
					funcs[lines[1]]++
				}
			}
			t.Fatalf("got %d goroutines of the engine after Run returned, want none; in %v; the first:\n%s", len(left), funcs, left[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMissingTopicIsLookedUpAgain publishes an event for a topic that does
// not exist yet: its look-up fails, and is tried again after a backoff
// until the topic is created; then the event is delivered.
func TestMissingTopicIsLookedUpAgain(t *testing.T) {
	addr, _ := startBroker(t, "auto.create.topics.enable=false")
	c := Config{Hosts: []string{addr}, Topic: "%{[fields.topic]}"}
	c.Backoff.Init = config.Duration(5 * time.Millisecond)
	o := startOutput(t, c)
	o.publish(t, "late")
	o.waitFor(t, "two failed look-ups of the topic", func() bool { return o.failed["late"] >= 2 })

	admin, err := sarama.NewClusterAdmin([]string{addr}, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := admin.CreateTopic("late", &sarama.TopicDetail{NumPartitions: 1, ReplicationFactor: 1}, false); err != nil {
		t.Fatal(err)
	}
	o.waitFor(t, "the event's acknowledgement", func() bool { return o.acked == 1 })
}
