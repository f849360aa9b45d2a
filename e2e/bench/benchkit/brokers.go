package benchkit

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
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/internal/devstack"
)

// Broker is a broker under test: one process, listening on loopback, on a
// data folder of its own that Stop removes.
type Broker interface {
	// Bootstrap returns the host:port clients connect to.
	Bootstrap() string
	// Pid returns the broker's process id (the JVM's for Kafka).
	Pid() int
	// Stop shuts the broker down and removes its data.
	Stop()
}

// Brokerd is the brokerd binary run as a child process.
type Brokerd struct {
	addr string
	dir  string
	proc *devstack.Process
}

// StartBrokerd runs the brokerd binary at bin with its defaults except the
// listener, the data folder and the overrides (brokerd.yml keys), and waits
// until it answers Metadata.
func StartBrokerd(ctx context.Context, bin string, overrides map[string]string) (*Brokerd, error) {
	s, _, err := startBrokerd(ctx, bin, overrides, "")
	return s, err
}

// startBrokerd is StartBrokerd with, unless extra is empty, a second client
// listener called extra on a free loopback port, whose address it returns.
func startBrokerd(ctx context.Context, bin string, overrides map[string]string, extra string) (*Brokerd, string, error) {
	dir, err := WorkDir("bench-brokerd-")
	if err != nil {
		return nil, "", err
	}
	port, err := devstack.FreePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	listeners := "PLAINTEXT://" + addr
	var extraAddr string
	if extra != "" {
		p2, err := devstack.FreePort()
		for err == nil && p2 == port {
			p2, err = devstack.FreePort()
		}
		if err != nil {
			os.RemoveAll(dir)
			return nil, "", err
		}
		extraAddr = fmt.Sprintf("127.0.0.1:%d", p2)
		listeners += "," + extra + "://" + extraAddr
	}
	args := []string{
		"-E", "listeners=" + listeners,
		"-E", "log.dirs=" + filepath.Join(dir, "data"),
	}
	for k, v := range overrides {
		args = append(args, "-E", k+"="+v)
	}
	proc, err := devstack.StartProcess("brokerd", exec.Command(bin, args...), filepath.Join(dir, "brokerd.log"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	s := &Brokerd{addr: addr, dir: dir, proc: proc}
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := WaitMetadata(rctx, addr, proc); err != nil {
		s.Stop()
		return nil, "", err
	}
	return s, extraAddr, nil
}

// Bootstrap returns brokerd's listener address.
func (s *Brokerd) Bootstrap() string { return s.addr }

// Pid returns brokerd's process id.
func (s *Brokerd) Pid() int { return s.proc.Pid() }

// Stop stops brokerd (SIGTERM, then SIGKILL after 30 s) and removes its
// folder.
func (s *Brokerd) Stop() {
	s.proc.Stop(30 * time.Second)
	_ = os.RemoveAll(s.dir)
}

// Kafka is a one-node Apache Kafka cluster run by internal/devstack.
type Kafka struct{ k *devstack.Kafka }

// StartKafka starts a one-node Kafka (KRaft combined mode) with heapMB of
// JVM heap on a fresh folder, with properties added to devstack's
// server.properties.
func StartKafka(ctx context.Context, heapMB int, properties map[string]string) (*Kafka, error) {
	return startKafka(ctx, devstack.KafkaOptions{Nodes: 1, HeapMB: heapMB, Properties: properties})
}

// startKafka starts Kafka with opts, allowing it six minutes.
func startKafka(ctx context.Context, opts devstack.KafkaOptions) (*Kafka, error) {
	sctx, cancel := context.WithTimeout(ctx, 6*time.Minute)
	defer cancel()
	k, err := devstack.StartKafka(sctx, opts)
	if err != nil {
		return nil, err
	}
	return &Kafka{k: k}, nil
}

// Bootstrap returns Kafka's listener address.
func (s *Kafka) Bootstrap() string { return s.k.Bootstrap() }

// Pid returns the JVM's process id.
func (s *Kafka) Pid() int { return s.k.Pid(0) }

// Stop stops Kafka and removes its folder.
func (s *Kafka) Stop() { s.k.Stop() }

// WaitMetadata polls addr with Metadata requests until one succeeds, proc
// exits or ctx ends.
func WaitMetadata(ctx context.Context, addr string, proc *devstack.Process) error {
	return devstack.WaitFor(ctx, 50*time.Millisecond, proc, func(ctx context.Context) error {
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

// CreateTopic creates topic with the given partitions and one replica and
// waits until every partition has a leader.
func CreateTopic(ctx context.Context, addr, topic string, partitions int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return fmt.Errorf("benchkit: %w", err)
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
		return fmt.Errorf("benchkit: create topic %s: %w", topic, err)
	}
	return devstack.WaitFor(cctx, 50*time.Millisecond, nil, func(ctx context.Context) error {
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

// DeleteTopics deletes topics through the broker at addr; a topic that
// does not exist is not an error.
func DeleteTopics(ctx context.Context, addr string, topics ...string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return fmt.Errorf("benchkit: %w", err)
	}
	defer cl.Close()
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	resp, err := kadm.NewClient(cl).DeleteTopics(dctx, topics...)
	if err != nil {
		return fmt.Errorf("benchkit: delete topics %v: %w", topics, err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("benchkit: delete topic %s: %w", r.Topic, r.Err)
		}
	}
	return nil
}

// BrokerdVersion returns the first line of `brokerd --version`.
func BrokerdVersion(bin string) string {
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}
