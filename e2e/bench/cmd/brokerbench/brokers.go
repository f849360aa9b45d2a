package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/e2e/harness"
)

// server is a broker under test: one process, listening on loopback, on a
// data folder of its own that stop removes.
type server interface {
	// bootstrap returns the host:port clients connect to.
	bootstrap() string
	// pid returns the broker's process id (the JVM's for Kafka).
	pid() int
	// stop shuts the broker down and removes its data.
	stop()
}

// brokerdServer is bin/brokerd run as a child process.
type brokerdServer struct {
	addr string
	dir  string
	proc *harness.Process
}

// startBrokerd runs the brokerd binary at bin with its defaults except the
// listener, the data folder and the initial rebalance delay, and waits until
// it answers Metadata.
func startBrokerd(ctx context.Context, bin string) (*brokerdServer, error) {
	runDir, err := harness.CacheDir("run")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(runDir, "brokerbench-brokerd-")
	if err != nil {
		return nil, fmt.Errorf("brokerbench: %w", err)
	}
	port, err := harness.FreePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	args := []string{
		"-E", "listeners=PLAINTEXT://" + addr,
		"-E", "log.dirs=" + filepath.Join(dir, "data"),
	}
	for k, v := range brokerdOverrides {
		args = append(args, "-E", k+"="+v)
	}
	proc, err := harness.StartProcess("brokerd", exec.Command(bin, args...), filepath.Join(dir, "brokerd.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	s := &brokerdServer{addr: addr, dir: dir, proc: proc}
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := waitMetadata(rctx, addr, proc); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *brokerdServer) bootstrap() string { return s.addr }
func (s *brokerdServer) pid() int          { return s.proc.Pid() }

func (s *brokerdServer) stop() {
	s.proc.Stop(30 * time.Second)
	_ = os.RemoveAll(s.dir)
}

// brokerdOverrides are the settings given to brokerd beyond its listener
// and data folder.
var brokerdOverrides = map[string]string{
	// The consumer-performance tool joins a group; do not make it wait.
	"group.initial.rebalance.delay.ms": "0",
}

// kafkaOverrides are the server.properties given to Apache Kafka beyond the
// harness's single-node KRaft settings: they put back Kafka's shipped
// defaults where the harness chose smaller values for tests.
var kafkaOverrides = map[string]string{
	"num.network.threads":          "3",
	"num.io.threads":               "8",
	"offsets.topic.num.partitions": "50",
	// As for brokerd.
	"group.initial.rebalance.delay.ms": "0",
}

// kafkaServer is a one-node Apache Kafka cluster run by the e2e harness.
type kafkaServer struct{ k *harness.Kafka }

// startKafka starts a one-node Kafka (KRaft combined mode) with heapMB of
// JVM heap on a fresh folder.
func startKafka(ctx context.Context, heapMB int) (*kafkaServer, error) {
	sctx, cancel := context.WithTimeout(ctx, 6*time.Minute)
	defer cancel()
	k, err := harness.StartKafka(sctx, harness.KafkaOptions{Nodes: 1, HeapMB: heapMB, Properties: kafkaOverrides})
	if err != nil {
		return nil, err
	}
	return &kafkaServer{k: k}, nil
}

func (s *kafkaServer) bootstrap() string { return s.k.Bootstrap() }
func (s *kafkaServer) pid() int          { return s.k.Pid(0) }
func (s *kafkaServer) stop()             { s.k.Stop() }

// waitMetadata polls addr with Metadata requests until one succeeds, proc
// exits or ctx ends.
func waitMetadata(ctx context.Context, addr string, proc *harness.Process) error {
	return harness.WaitFor(ctx, 50*time.Millisecond, proc, func(ctx context.Context) error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		c.Close()
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err != nil {
			return err
		}
		defer cl.Close()
		mctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_, err = kadm.NewClient(cl).BrokerMetadata(mctx)
		return err
	})
}

// createTopic creates topic with the given partitions and one replica and
// waits until every partition has a leader.
func createTopic(ctx context.Context, addr, topic string, partitions int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return fmt.Errorf("brokerbench: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	resp, err := adm.CreateTopic(cctx, int32(partitions), 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("brokerbench: create topic %s: %w", topic, err)
	}
	return harness.WaitFor(cctx, 50*time.Millisecond, nil, func(ctx context.Context) error {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return err
		}
		t, ok := md.Topics[topic]
		if !ok || t.Err != nil || len(t.Partitions) != partitions {
			return errors.New("topic not in metadata yet")
		}
		for _, p := range t.Partitions {
			if p.Leader < 0 || p.Err != nil {
				return errors.New("partition without leader")
			}
		}
		return nil
	})
}

// brokerdVersion returns the first line of `brokerd --version`.
func brokerdVersion(bin string) string {
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}
