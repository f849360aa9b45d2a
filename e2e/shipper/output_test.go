package shipper_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"logpipe/internal/await"
	"logpipe/pipeline/config"
	"logpipe/pipeline/event"
	"logpipe/shipper/output"
	"logpipe/shipper/publish"
)

// runOutput starts the Kafka output in this process with the given
// output.kafka settings (YAML) and returns it with a function that counts
// acknowledgements by their meta.
func runOutput(t *testing.T, yml string) (*output.Kafka, func() map[any]int) {
	t.Helper()
	return runOutputHooks(t, yml, output.Hooks{})
}

// runOutputHooks is runOutput with hooks.
func runOutputHooks(t *testing.T, yml string, hooks output.Hooks) (*output.Kafka, func() map[any]int) {
	t.Helper()
	var cfg struct {
		Kafka output.Config `yaml:"kafka"`
	}
	if _, err := config.LoadBytes("output.yml", []byte(yml), nil, &cfg); err != nil {
		t.Fatal(err)
	}
	s, err := cfg.Kafka.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acks := map[any]int{}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	k := output.NewKafka(s, 1000, 8<<20, log, hooks, func(got []publish.Ack) {
		mu.Lock()
		for _, a := range got {
			acks[a.Receipt]++
		}
		mu.Unlock()
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- k.Run(ctx, 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return k, func() map[any]int {
		mu.Lock()
		defer mu.Unlock()
		out := map[any]int{}
		for k, v := range acks {
			out[k] = v
		}
		return out
	}
}

func testEvent(file string, n int, fields map[string]any) *event.Event {
	return &event.Event{
		Timestamp: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Millisecond),
		Message:   fmt.Sprintf("%08d from %s", n, file),
		Event:     event.Meta{ID: event.ID("h", file, int64(n))},
		Log:       event.Log{File: event.File{Path: file}, Offset: int64(n)},
		Host:      event.Host{Name: "h"},
		Fields:    fields,
	}
}

// publishOne hands ev to the output in a batch of its own, as the
// harvester of a file whose identity is fileKey would; its acknowledgement
// carries meta.
func publishOne(t *testing.T, k *output.Kafka, ev *event.Event, fileKey string, meta any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	b := &publish.Batch{
		Source:   &publish.Source{Template: *ev, HostID: ev.Host.Name, FileID: fileKey},
		Path:     ev.Log.File.Path,
		Time:     ev.Timestamp,
		Register: func(*publish.Batch) any { return meta },
	}
	b.Add([]byte(ev.Message), ev.Log.Offset, ev.Log.Offset+int64(len(ev.Message))+1, 0)
	if err := k.Publish(ctx, b); err != nil {
		t.Fatal(err)
	}
}

func drain(t *testing.T, k *output.Kafka) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	if err := k.Drain(ctx); err != nil {
		t.Fatalf("events not acknowledged: %v", err)
	}
}

// waitConsumed waits for n records without a shipper process to watch.
func waitConsumed(t *testing.T, c *consumer, n int) []record {
	t.Helper()
	var recs []record
	await.Eventually(t, fmt.Sprintf("%d records to be consumed", n), func() error {
		if recs = c.records(); len(recs) < n {
			got := fmt.Sprint(len(recs))
			if err := c.lastFetchErr(); err != nil {
				got += fmt.Sprintf(" (last fetch error: %v)", err)
			}
			return await.NotYet(got, fmt.Sprintf("at least %d", n))
		}
		return nil
	}, patient)
	return recs
}

func TestOutputCompression(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b broker) {
		for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
			t.Run(codec, func(t *testing.T) {
				topic := topicName(t)
				k, acks := runOutput(t, fmt.Sprintf("kafka: {hosts: [%q], topic: %s, compression: %s}", b.bootstrap, topic, codec))
				for i := 0; i < 200; i++ {
					publishOne(t, k, testEvent("/var/log/a", i, nil), "/var/log/a", i)
				}
				drain(t, k)
				if n := len(acks()); n != 200 {
					t.Fatalf("%d events acknowledged", n)
				}
				recs := waitConsumed(t, consume(t, b.bootstrap, topic), 200)
				for i, r := range recs {
					want := testEvent("/var/log/a", i, nil)
					if r.Message != want.Message || !r.Timestamp.Equal(want.Timestamp) || r.Event.Event.ID != want.Event.ID {
						t.Fatalf("record %d: %q at %v, want %q at %v", i, r.Message, r.Timestamp, want.Message, want.Timestamp)
					}
				}
			})
		}
	})
}

func TestOutputPartitioning(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b broker) {
		t.Run("hash keeps each file in one partition, in order", func(t *testing.T) {
			topic := topicName(t)
			createTopic(t, b.bootstrap, topic, 3)
			k, _ := runOutput(t, fmt.Sprintf("kafka: {hosts: [%q], topic: %s}", b.bootstrap, topic))
			files := []string{"f0", "f1", "f2", "f3", "f4", "f5"}
			for i := 0; i < 100; i++ {
				for _, f := range files {
					publishOne(t, k, testEvent(f, i, nil), "id-"+f, f+fmt.Sprint(i))
				}
			}
			drain(t, k)
			recs := waitConsumed(t, consume(t, b.bootstrap, topic), 600)
			part := map[string]int32{}
			next := map[string]int{}
			used := map[int32]bool{}
			for _, r := range recs {
				f := r.Log.File.Path
				if p, ok := part[f]; ok && p != r.Partition {
					t.Fatalf("%s in partitions %d and %d", f, p, r.Partition)
				}
				part[f] = r.Partition
				used[r.Partition] = true
				if int(r.Log.Offset) != next[f] {
					t.Fatalf("%s: line %d after %d", f, r.Log.Offset, next[f]-1)
				}
				next[f]++
			}
			if len(used) < 2 {
				t.Errorf("six files all hashed to partition %v", used)
			}
		})
		t.Run("round robin spreads events", func(t *testing.T) {
			topic := topicName(t)
			createTopic(t, b.bootstrap, topic, 3)
			k, _ := runOutput(t, fmt.Sprintf("kafka: {hosts: [%q], topic: %s, partition.round_robin: {}}", b.bootstrap, topic))
			for i := 0; i < 90; i++ {
				publishOne(t, k, testEvent("one-file", i, nil), "one", i)
			}
			drain(t, k)
			recs := waitConsumed(t, consume(t, b.bootstrap, topic), 90)
			count := map[int32]int{}
			for _, r := range recs {
				count[r.Partition]++
			}
			if len(count) != 3 {
				t.Fatalf("partitions used: %v", count)
			}
		})
		t.Run("hash on a field, at random without it", func(t *testing.T) {
			for _, random := range []bool{false, true} {
				topic := topicName(t)
				createTopic(t, b.bootstrap, topic, 3)
				k, _ := runOutput(t, fmt.Sprintf("kafka: {hosts: [%q], topic: %s, partition.hash: {hash: [fields.user], random: %t}}", b.bootstrap, topic, random))
				for i := 0; i < 90; i++ {
					publishOne(t, k, testEvent("with", i, map[string]any{"user": "alice"}), "with", i)
					publishOne(t, k, testEvent("without", i, nil), "without", i)
				}
				drain(t, k)
				used := map[string]map[int32]bool{"with": {}, "without": {}}
				for _, r := range waitConsumed(t, consume(t, b.bootstrap, topic), 180) {
					used[r.Log.File.Path][r.Partition] = true
				}
				if len(used["with"]) != 1 {
					t.Errorf("random %t: events hashed on one value went to partitions %v", random, used["with"])
				}
				// Without the field: one partition (the hash of nothing),
				// or spread at random.
				if spread := len(used["without"]); !random && spread != 1 || random && spread < 2 {
					t.Errorf("random %t: events without the field went to partitions %v", random, used["without"])
				}
			}
		})
		t.Run("random keeps group_events together", func(t *testing.T) {
			topic := topicName(t)
			createTopic(t, b.bootstrap, topic, 3)
			k, _ := runOutput(t, fmt.Sprintf("kafka: {hosts: [%q], topic: %s, partition.random: {group_events: 10}}", b.bootstrap, topic))
			for i := 0; i < 300; i++ {
				publishOne(t, k, testEvent("one-file", i, nil), "one", i)
			}
			drain(t, k)
			group := map[int]map[int32]bool{}
			used := map[int32]bool{}
			for _, r := range waitConsumed(t, consume(t, b.bootstrap, topic), 300) {
				g := int(r.Log.Offset) / 10
				if group[g] == nil {
					group[g] = map[int32]bool{}
				}
				group[g][r.Partition] = true
				used[r.Partition] = true
			}
			for g, parts := range group {
				if len(parts) != 1 {
					t.Errorf("events %d-%d went to partitions %v", 10*g, 10*g+9, parts)
				}
			}
			if len(used) < 2 {
				t.Errorf("30 groups all went to partitions %v", used)
			}
		})
	})
}

func TestOutputTopicKeyAndSize(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b broker) {
		base := topicName(t)
		k, acks := runOutput(t, fmt.Sprintf(`kafka: {hosts: [%q], topic: '%s-%%{[fields.log_topic]:other}', key: '%%{[fields.k]}', max_message_bytes: 20000}`, b.bootstrap, base))
		publishOne(t, k, testEvent("a", 0, map[string]any{"log_topic": "access", "k": "key-a"}), "a", 0)
		publishOne(t, k, testEvent("e", 1, map[string]any{"log_topic": "error"}), "e", 1)
		publishOne(t, k, testEvent("x", 2, nil), "x", 2)
		big := testEvent("a", 3, map[string]any{"log_topic": "access", "k": "key-a"})
		big.Message = strings.Repeat("é", 30000) // 60000 bytes of UTF-8
		publishOne(t, k, big, "a", 3)
		drain(t, k)
		if n := len(acks()); n != 4 {
			t.Fatalf("%d acknowledged", n)
		}
		access := waitConsumed(t, consume(t, b.bootstrap, base+"-access"), 2)
		if access[0].Key != "key-a" || access[0].Message != "00000000 from a" {
			t.Errorf("access: %+v", access[0])
		}
		cut := access[1]
		if len(cut.Message) > 20000 || len(cut.Message) < 10000 || strings.Trim(cut.Message, "é") != "" || strings.Join(cut.Log.Flags, ",") != "truncated" {
			t.Errorf("big event: %d bytes, flags %v", len(cut.Message), cut.Log.Flags)
		}
		if e := waitConsumed(t, consume(t, b.bootstrap, base+"-error"), 1); e[0].Key != "" || e[0].Message != "00000001 from e" {
			t.Errorf("error: %+v", e[0])
		}
		if o := waitConsumed(t, consume(t, b.bootstrap, base+"-other"), 1); o[0].Message != "00000002 from x" {
			t.Errorf("other: %+v", o[0])
		}
	})
}
