package devstack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/internal/await"
)

// This file starts the programs of a Pipeline and waits for them.

// httpSettings turn on a program's /metrics, /healthz and /readyz at addr.
func httpSettings(addr string) []string {
	host, port, _ := strings.Cut(addr, ":")
	return []string{"http.enabled=true", "http.host=" + host, "http.port=" + port}
}

// eFlags turns key=value settings into -E arguments.
func eFlags(settings ...[]string) []string {
	var args []string
	for _, list := range settings {
		for _, s := range list {
			args = append(args, "-E", s)
		}
	}
	return args
}

// yamlList is a YAML flow list of the quoted strings.
func yamlList(items ...string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(quoted, ",") + "]"
}

// StartBroker starts node i (from 0) on its data and waits until it
// accepts connections and its HTTP server answers.
func (p *Pipeline) StartBroker(ctx context.Context, i int) error {
	n := p.nodes[i]
	settings := append(VoterSettings(n.id, n.addr, n.ctl, p.voters), httpSettings(n.web)...)
	// The shipped config first; StartBrokerd's -E settings override it.
	withConfig := func(bin string, args ...string) *exec.Cmd {
		return exec.Command(bin, append([]string{"-c", filepath.Join(p.opts.Configs, "brokerd.yml")}, args...)...)
	}
	proc, err := StartBrokerd(ctx, BrokerdOptions{
		Bin: p.bin("brokerd"), Addr: n.addr, DataDir: filepath.Join(n.dir, "data"), LogPath: filepath.Join(n.dir, "brokerd.log"),
		Settings: append(settings, p.opts.BrokerdSettings...), Command: withConfig,
	})
	if err != nil {
		return fmt.Errorf("devstack: brokerd node %d: %w", n.id, err)
	}
	return p.started(ctx, &p.brokers[i], proc, n.web)
}

// indexerArgs are the indexer's arguments before any subcommand.
func (p *Pipeline) indexerArgs() []string {
	return append([]string{"-c", filepath.Join(p.opts.Configs, "indexer.yml")}, eFlags(
		[]string{"kafka.hosts=" + yamlList(p.BrokerAddrs()...), "elasticsearch.hosts=" + yamlList(p.opts.ElasticsearchURL)},
		httpSettings(p.indexerWeb), p.opts.IndexerSettings)...)
}

func (p *Pipeline) indexerLog() string { return filepath.Join(p.opts.Dir, "indexer", "indexer.log") }

// setup runs `indexer setup`, its output appended to the indexer's log.
func (p *Pipeline) setup(ctx context.Context) error {
	logf, err := os.OpenFile(p.indexerLog(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	defer logf.Close()
	cmd := exec.CommandContext(ctx, p.bin("indexer"), append(p.indexerArgs(), "setup")...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("devstack: indexer setup: %w; log %s:\n%s", err, p.indexerLog(), tailFile(p.indexerLog(), 3000))
	}
	return nil
}

// StartIndexer starts the indexer and waits until its HTTP server answers.
func (p *Pipeline) StartIndexer(ctx context.Context) error {
	proc, err := StartProcess("indexer", exec.Command(p.bin("indexer"), p.indexerArgs()...), p.indexerLog())
	if err != nil {
		return err
	}
	return p.started(ctx, &p.indexer, proc, p.indexerWeb)
}

// StartShipper starts the shipper and waits until its HTTP server answers.
func (p *Pipeline) StartShipper(ctx context.Context) error {
	args := append([]string{"-c", p.shipperConf}, eFlags(
		[]string{"output.kafka.hosts=" + yamlList(p.BrokerAddrs()...), "path.data=" + strconv.Quote(filepath.Join(p.opts.Dir, "shipper"))},
		httpSettings(p.shipperWeb), p.opts.ShipperSettings)...)
	proc, err := StartProcess("shipper", exec.Command(p.bin("shipper"), args...), filepath.Join(p.opts.Dir, "shipper", "shipper.log"))
	if err != nil {
		return err
	}
	return p.started(ctx, &p.shipper, proc, p.shipperWeb)
}

// started waits for a new process's /healthz and records it in slot; a
// process that fails to come up, or whose slot is taken, is stopped.
func (p *Pipeline) started(ctx context.Context, slot **Process, proc *Process, web string) error {
	err := waitHTTP(ctx, proc, web, "/healthz")
	if err == nil {
		err = p.put(slot, proc)
	}
	if err != nil {
		proc.Stop(pipelineStopGrace)
	}
	return err
}

// waitHTTP polls http://addr+path until it answers 200, giving up if proc
// exits.
func waitHTTP(ctx context.Context, proc *Process, addr, path string) error {
	client := &http.Client{Timeout: 5 * time.Second}
	return WaitFor(ctx, 50*time.Millisecond, proc, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
		if err != nil {
			return err
		}
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("%s %s: %s: %s", proc.Name, path, res.Status, bytes.TrimSpace(body))
		}
		return nil
	})
}

// admin returns an admin client of the cluster and its close function.
func (p *Pipeline) admin() (*kadm.Client, func(), error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.BrokerAddrs()...), kgo.DialTimeout(2*time.Second))
	if err != nil {
		return nil, nil, fmt.Errorf("devstack: kafka client: %w", err)
	}
	return kadm.NewClient(cl), cl.Close, nil
}

// createTopic creates PipelineTopic unless it exists, trying again until
// every node has registered (three replicas need three brokers), and
// waits until each partition has a leader.
func (p *Pipeline) createTopic(ctx context.Context, adm *kadm.Client) error {
	minISR := strconv.Itoa(PipelineMinISR)
	created := false
	return WaitFor(ctx, pipelinePoll, nil, func(ctx context.Context) error {
		if err := p.Alive(); err != nil {
			return await.Stop(err)
		}
		ctx, cancel := context.WithTimeout(ctx, pipelineCheck)
		defer cancel()
		if !created {
			res, err := adm.CreateTopic(ctx, PipelinePartitions, PipelineReplicas, map[string]*string{"min.insync.replicas": &minISR}, PipelineTopic)
			if err == nil {
				err = res.Err
			}
			if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
				return fmt.Errorf("create topic %s: %w", PipelineTopic, err)
			}
			created = true
		}
		md, err := adm.Metadata(ctx, PipelineTopic)
		if err != nil {
			return err
		}
		t := md.Topics[PipelineTopic]
		if t.Err != nil || len(t.Partitions) == 0 {
			return fmt.Errorf("topic %s not in the metadata yet (%v)", PipelineTopic, t.Err)
		}
		for _, part := range t.Partitions {
			if part.Leader < 0 || part.Err != nil {
				return fmt.Errorf("partition %d of %s has no leader yet (%v)", part.Partition, PipelineTopic, part.Err)
			}
		}
		return nil
	})
}

// waitPlaceHeld waits until a consumer group (the indexer's, whatever
// indexer.yml names it) has committed an offset on every partition of
// PipelineTopic: the indexer commits where a new group starts as soon as it
// holds the partitions, and a resumed run finds its commits there already.
func (p *Pipeline) waitPlaceHeld(ctx context.Context, adm *kadm.Client) error {
	return WaitFor(ctx, 250*time.Millisecond, p.Indexer(), func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, pipelineCheck)
		defer cancel()
		md, err := adm.Metadata(ctx, PipelineTopic)
		if err != nil {
			return err
		}
		parts := len(md.Topics[PipelineTopic].Partitions)
		groups, err := adm.ListGroups(ctx)
		if err != nil {
			return err
		}
		for _, g := range groups.Groups() {
			committed, err := adm.FetchOffsets(ctx, g)
			if err != nil {
				continue
			}
			held := 0
			for part := range parts {
				if o, ok := committed.Lookup(PipelineTopic, int32(part)); ok && o.At >= 0 {
					held++
				}
			}
			if parts > 0 && held == parts {
				return nil
			}
		}
		return fmt.Errorf("no consumer group has committed an offset on all %d partitions of %s yet", parts, PipelineTopic)
	})
}
