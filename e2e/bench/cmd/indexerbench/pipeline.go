package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// producer sends records with franz-go (acks=all, idempotent) to chosen
// partitions and counts what fails.
type producer struct {
	cl *kgo.Client
	wg sync.WaitGroup

	mu       sync.Mutex
	acked    int
	bytes    int64
	firstErr error
}

func newProducer(addr, topic string) (*producer, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return nil, fmt.Errorf("indexerbench: %w", err)
	}
	return &producer{cl: cl}, nil
}

// send hands one record to the client; it blocks while the client's buffer
// is full.
func (p *producer) send(ctx context.Context, partition int32, value []byte) {
	p.wg.Add(1)
	p.cl.Produce(ctx, &kgo.Record{Partition: partition, Value: value}, func(r *kgo.Record, err error) {
		p.mu.Lock()
		if err != nil && p.firstErr == nil {
			p.firstErr = err
		}
		if err == nil {
			p.acked++
			p.bytes += int64(len(r.Value))
		}
		p.mu.Unlock()
		p.wg.Done()
	})
}

// finish waits for every record and closes the client. It returns the
// records acknowledged and the first failure.
func (p *producer) finish() (int, error) {
	p.wg.Wait()
	p.cl.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.firstErr != nil {
		return p.acked, fmt.Errorf("indexerbench: produce: %w", p.firstErr)
	}
	return p.acked, nil
}

// topicRecords returns the number of records in topic (end offsets less
// start offsets, over its partitions).
func topicRecords(ctx context.Context, addr, topic string) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return 0, fmt.Errorf("indexerbench: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("indexerbench: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("indexerbench: %w", err)
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) {
		if s, ok := starts.Lookup(topic, o.Partition); ok {
			n += o.Offset - s.Offset
		}
	})
	return n, nil
}

// indexerConfig is the YAML the indexer runs with: the defaults of
// configs/indexer.yml except what a run must set.
func indexerConfig(o *options, broker, topic, group, esURL string, httpPort int) string {
	return fmt.Sprintf(`kafka:
  hosts: [%q]
  topics: [%q]
  group_id: %q
  auto_offset_reset: earliest
elasticsearch:
  hosts: [%q]
  workers: %d
  flush_bytes: %d
setup.template.settings:
  index.number_of_shards: %d
  index.number_of_replicas: 0
http:
  enabled: true
  port: %d
  pprof: %t
`, broker, topic, group, esURL, o.workers, o.flushBytes, o.shards, httpPort, o.profile > 0)
}

// metrics scrapes a Prometheus text page into a map from series (name and
// labels as printed) to value.
func metrics(ctx context.Context, addr string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("indexerbench: /metrics answered %s", res.Status)
	}
	return parseMetrics(res.Body)
}

// parseMetrics reads Prometheus's text format: one "series value" per
// line, comments skipped.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

// The indexer's series the benchmark reads.
const (
	mIndexed   = `logpipe_indexer_documents_total{result="indexed"}`
	mDuplicate = `logpipe_indexer_documents_total{result="duplicate"}`
	mDead      = `logpipe_indexer_documents_total{result="dead_lettered"}`
	mFailed    = `logpipe_indexer_documents_total{result="failed"}`
	mRetried   = `logpipe_indexer_documents_retried_total`
	mBulkBytes = `logpipe_indexer_bulk_request_bytes_sum`
	mBulkReqs  = `logpipe_indexer_bulk_request_bytes_count`
	mBulkSecs  = `logpipe_indexer_bulk_request_duration_seconds_sum`
)

// ready reports whether the indexer's /readyz says ready.
func ready(ctx context.Context, addr string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
	if err != nil {
		return false
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// fetchProfile fetches /debug/pprof/<what> from the indexer into path.
func fetchProfile(ctx context.Context, addr, what, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/pprof/"+what, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("indexerbench: profile: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("indexerbench: profile %s: %s", what, res.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("indexerbench: %w", err)
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return fmt.Errorf("indexerbench: profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("indexerbench: %w", err)
	}
	log.Printf("wrote the indexer's %s profile to %s (go tool pprof bin/indexer %s)", what, path, path)
	return nil
}

// firstLine returns the first line of the output of bin with args.
func firstLine(bin string, args ...string) string {
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}
