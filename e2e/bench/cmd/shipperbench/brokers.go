package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/e2e/bench/benchkit"
	"logpipe/internal/devstack"
)

// broker is a one-node Kafka-protocol broker the peers ship to, with an
// admin client on it. stop shuts it down and removes its data.
type broker struct {
	name string
	addr string
	pid  int
	cl   *kgo.Client
	adm  *kadm.Client
	srv  benchkit.Broker
}

// kafkaOverrides put back Kafka's shipped defaults where devstack
// chose smaller values for tests.
var kafkaOverrides = map[string]string{
	"num.network.threads":          "3",
	"num.io.threads":               "8",
	"offsets.topic.num.partitions": "50",
}

// startBroker starts the named broker ("brokerd" or "kafka") on a fresh
// folder, with its defaults, and waits until it answers Metadata.
func startBroker(ctx context.Context, name string, o *options) (*broker, error) {
	var srv benchkit.Broker
	var err error
	switch name {
	case "brokerd":
		srv, err = benchkit.StartBrokerd(ctx, o.brokerdBin, nil)
	case "kafka":
		srv, err = benchkit.StartKafka(ctx, o.kafkaHeapMB, kafkaOverrides)
	default:
		err = fmt.Errorf("shipperbench: unknown broker %q", name)
	}
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(srv.Bootstrap()))
	if err != nil {
		srv.Stop()
		return nil, fmt.Errorf("shipperbench: %w", err)
	}
	return &broker{name: name, addr: srv.Bootstrap(), pid: srv.Pid(), cl: cl, adm: kadm.NewClient(cl), srv: srv}, nil
}

// stop closes the admin client, stops the broker and removes its data.
func (b *broker) stop() {
	b.cl.Close()
	b.srv.Stop()
}

// createTopic creates topic with the given partitions and one replica and
// waits until every partition has a leader.
func (b *broker) createTopic(ctx context.Context, topic string, partitions int) error {
	return benchkit.CreateTopic(ctx, b.addr, topic, partitions)
}

// deleteTopic deletes topic, so the next run's data does not pile up on
// disk. A failure is only logged by the caller.
func (b *broker) deleteTopic(ctx context.Context, topic string) error {
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	resp, err := b.adm.DeleteTopic(dctx, topic)
	if err == nil {
		err = resp.Err
	}
	return err
}

// records returns the sum of topic's end offsets: on a new topic, the
// number of records the broker has acknowledged.
func (b *broker) records(ctx context.Context, topic string) (int64, error) {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	offs, err := b.adm.ListEndOffsets(lctx, topic)
	if err != nil {
		return 0, err
	}
	if err := offs.Error(); err != nil {
		return 0, err
	}
	var n int64
	offs.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n, nil
}

// kafkaJarVersion reads Apache Kafka's version from the name of its
// server jar (kafka_2.13-3.9.1.jar).
func kafkaJarVersion(ctx context.Context) string {
	dir, err := devstack.KafkaJars(ctx)
	if err != nil {
		return "unknown"
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "kafka_2.*-*.jar"))
	re := regexp.MustCompile(`^kafka_2\.\d+-([0-9][0-9A-Za-z.\-]*)\.jar$`)
	for _, m := range matches {
		if s := re.FindStringSubmatch(filepath.Base(m)); s != nil && !strings.Contains(s[1], "test") {
			return s[1]
		}
	}
	return "unknown"
}

// commandOutput runs a command and returns its trimmed output, or a note
// saying why it could not.
func commandOutput(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return "unknown (" + err.Error() + ")"
	}
	return strings.TrimSpace(string(out))
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
