// Package indexer_test runs the real indexer binary against a real
// Elasticsearch 8 node and real brokers (the harness's Apache Kafka and the
// brokerd binary): the Logstash behaviour it replaces, parsing as
// Elasticsearch stores it, exactly-once documents across kill -9, an
// Elasticsearch outage, a mapping conflict, two indexers in one group, and
// `indexer setup`.
package indexer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/e2e/harness"
	"logpipe/internal/await"
	"logpipe/internal/devstack"
	"logpipe/pipeline/event"
)

func TestMain(m *testing.M) { harness.Main(m) }

// Time limit of a wait: generous, two shared cores also run the JVMs.
const waitTime = 3 * time.Minute

// patient is how the tests wait for the pipeline to do something.
var patient = await.Options(await.Within(waitTime), await.Every(50*time.Millisecond))

// The binaries, built once per test run: the indexer with the race
// detector, the indexer without it (for memory figures), and brokerd.
var bins struct {
	once                          sync.Once
	err                           error
	indexer, plainIndexer, broker string
}

func binaries(t *testing.T) {
	t.Helper()
	bins.once.Do(func() {
		paths, err := harness.BuildPrograms(
			devstack.Program{Package: "logpipe/indexer", Race: true},
			devstack.Program{Package: "logpipe/indexer"},
			devstack.Program{Package: "logpipe/brokerd"},
		)
		if err != nil {
			bins.err = err
			return
		}
		bins.indexer, bins.plainIndexer, bins.broker = paths[0], paths[1], paths[2]
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
}

// broker is a Kafka-protocol broker under test.
type broker struct {
	name      string
	bootstrap string
}

// forEachBroker runs f against Apache Kafka and against a fresh brokerd.
func forEachBroker(t *testing.T, f func(t *testing.T, b broker)) {
	for _, name := range []string{"kafka", "brokerd"} {
		t.Run(name, func(t *testing.T) {
			f(t, startBroker(t, name))
		})
	}
}

func startBroker(t *testing.T, name string) broker {
	t.Helper()
	if name == "kafka" {
		return broker{name: "kafka", bootstrap: harness.SharedKafka(t).Bootstrap()}
	}
	return startBrokerd(t)
}

// startBrokerd runs the brokerd binary on a free port with its data in a
// temporary folder, until the test ends.
func startBrokerd(t *testing.T) broker {
	t.Helper()
	binaries(t)
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	p, err := devstack.StartBrokerd(ctx, devstack.BrokerdOptions{Bin: bins.broker, Addr: addr, DataDir: filepath.Join(t.TempDir(), "data"),
		Settings: []string{"group.initial.rebalance.delay.ms=0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(20 * time.Second) })
	return broker{name: "brokerd", bootstrap: addr}
}

// admin returns a franz-go admin client for b.
func admin(t *testing.T, b broker) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(b.bootstrap, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func createTopic(t *testing.T, b broker, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	res, err := admin(t, b).CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = res.Err
	}
	if err != nil {
		t.Fatalf("create topic %s on %s: %v", topic, b.name, err)
	}
}

// producer sends records with franz-go (a client other than the indexer's
// own sarama), acks=all and idempotent.
type producer struct {
	t  *testing.T
	cl *kgo.Client
}

func newProducer(t *testing.T, b broker, topic string) *producer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(b.bootstrap, ",")...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &producer{t: t, cl: cl}
}

// send produces values to partitions (value i to partition part(i)) and
// waits until all are acknowledged. It returns the records, with their
// offsets.
func (p *producer) send(values [][]byte, part func(i int) int32) []*kgo.Record {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		wg.Add(1)
		r := &kgo.Record{Value: v, Partition: part(i), Key: []byte(strconv.Itoa(i))}
		recs[i] = r
		p.cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	if firstErr != nil {
		p.t.Fatalf("produce: %v", firstErr)
	}
	return recs
}

// sendAt produces values in order to partition 0, each with Kafka
// timestamp ts.
func (p *producer) sendAt(values [][]byte, ts time.Time) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	for _, v := range values {
		if err := p.cl.ProduceSync(ctx, &kgo.Record{Value: v, Partition: 0, Timestamp: ts}).FirstErr(); err != nil {
			p.t.Fatalf("produce: %v", err)
		}
	}
}

// shipped returns the JSON the shipper would send for one line.
func shipped(line string, ts time.Time, id string, tags ...string) []byte {
	e := event.Event{
		Timestamp: ts,
		Message:   line,
		Tags:      tags,
		Event:     event.Meta{ID: id},
		Log:       event.Log{File: event.File{Path: "/var/log/httpd/access_log"}, Offset: 1},
		Input:     event.Input{Type: "log"},
		Host:      event.Host{Name: "web-1"},
		Agent:     event.Agent{Type: "shipper", Version: "test"},
	}
	return e.AppendJSON(nil)
}

// idOf returns a stable event id for test event i of a run.
func idOf(run string, i int) string { return event.ID("e2e-"+run, "file", int64(i)) }

// indexer is a running indexer process.
type indexer struct {
	t    *testing.T
	dir  string
	cfg  string
	bin  string
	args []string
	proc *devstack.Process
	http string
	log  string
	runs int
}

// startIndexer writes the config into a new folder and runs the indexer
// built with the race detector, metrics on.
func startIndexer(t *testing.T, config string, extra ...string) *indexer {
	t.Helper()
	binaries(t)
	return startIndexerBin(t, bins.indexer, config, extra...)
}

// startIndexerBin is startIndexer with the binary given.
func startIndexerBin(t *testing.T, bin, config string, extra ...string) *indexer {
	t.Helper()
	ix := &indexer{t: t, dir: t.TempDir(), bin: bin, args: extra}
	ix.cfg = filepath.Join(ix.dir, "indexer.yml")
	if err := os.WriteFile(ix.cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	ix.start()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the end of the indexer's log %s:\n%s", ix.log, ix.proc.Tail(8000))
		}
	})
	return ix
}

func (ix *indexer) start() {
	ix.t.Helper()
	port, err := devstack.FreePort()
	if err != nil {
		ix.t.Fatal(err)
	}
	ix.http = "127.0.0.1:" + strconv.Itoa(port)
	ix.runs++
	ix.log = filepath.Join(ix.dir, fmt.Sprintf("indexer-%d.log", ix.runs))
	args := append([]string{"-c", ix.cfg, "-E", "http.enabled=true", "-E", "http.port=" + strconv.Itoa(port),
		"-E", "logging.level=debug"}, ix.args...)
	p, err := devstack.StartProcess("indexer", exec.Command(ix.bin, args...), ix.log)
	if err != nil {
		ix.t.Fatal(err)
	}
	ix.proc = p
	ix.t.Cleanup(func() { p.Stop(30 * time.Second) })
	await.Eventually(ix.t, "the metrics server", func() error {
		_, err := ix.metrics()
		return err
	}, ix.alive())
}

// kill ends the indexer with SIGKILL, as kill -9 does.
func (ix *indexer) kill() { ix.proc.Kill() }

// stop sends SIGTERM and waits for the drain.
func (ix *indexer) stop() {
	ix.proc.Stop(time.Minute)
	if exited, err := ix.proc.Exited(); !exited || err != nil {
		ix.t.Errorf("indexer did not exit cleanly on SIGTERM (%v); log:\n%s", err, ix.proc.Tail(4000))
	}
}

// alive is how the tests wait on the indexer: patiently, and failing at
// once, with its log, if it exits.
func (ix *indexer) alive() await.Option { return await.Options(patient, await.While(ix.proc.Alive)) }

// metrics scrapes /metrics into a map from series (name and labels, as
// printed) to value.
func (ix *indexer) metrics() (map[string]float64, error) { return devstack.ScrapeMetrics(ix.http) }

// metric returns one series' value (0 when absent).
func (ix *indexer) metric(series string) float64 {
	ix.t.Helper()
	m, err := ix.metrics()
	if err != nil {
		ix.t.Fatal(err)
	}
	return m[series]
}

// ready returns nil when /readyz says ready, else its answer.
func (ix *indexer) ready() error {
	c := http.Client{Timeout: 5 * time.Second}
	res, err := c.Get("http://" + ix.http + "/readyz")
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		return fmt.Errorf("/readyz %d: %s", res.StatusCode, bytes.TrimSpace(b))
	}
	return nil
}

// esClient is a client for checks against the node.
type esClient struct {
	t *testing.T
	c *elasticsearch.Client
}

func newES(t *testing.T, node *devstack.Elasticsearch) *esClient {
	t.Helper()
	c, err := node.Client()
	if err != nil {
		t.Fatal(err)
	}
	return &esClient{t: t, c: c}
}

// do sends a request and decodes the JSON answer; it returns the status.
func (e *esClient) do(method, path, body string, out any) int {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := e.c.Perform(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return res.StatusCode
}

// count returns the documents in the indices matching pattern, after a
// refresh; 0 when there are none, -1 while a new index has no active shard
// yet (Elasticsearch answers 503 then).
func (e *esClient) count(pattern string) int {
	e.t.Helper()
	e.do(http.MethodPost, "/"+pattern+"/_refresh?ignore_unavailable=true&allow_no_indices=true", "", nil)
	var c struct {
		Count int `json:"count"`
	}
	switch code := e.do(http.MethodGet, "/"+pattern+"/_count?ignore_unavailable=true&allow_no_indices=true", "", &c); code {
	case 200:
		return c.Count
	case 503:
		return -1
	default:
		e.t.Fatalf("count %s: %d", pattern, code)
	}
	return 0
}

// hit is one search hit.
type hit struct {
	Index  string         `json:"_index"`
	ID     string         `json:"_id"`
	Source map[string]any `json:"_source"`
	Sort   []any          `json:"sort"`
}

// docs returns every document in the indices matching pattern, paging with
// search_after on _id order (_source included when withSource).
func (e *esClient) docs(pattern string, withSource bool) []hit {
	e.t.Helper()
	e.do(http.MethodPost, "/"+pattern+"/_refresh?ignore_unavailable=true&allow_no_indices=true", "", nil)
	var out []hit
	var after []any
	for {
		q := map[string]any{"size": 5000, "sort": []any{map[string]any{"event.id": "asc"}, map[string]any{"_index": "asc"}}, "_source": withSource,
			"track_total_hits": false}
		if after != nil {
			q["search_after"] = after
		}
		body, _ := json.Marshal(q)
		var res struct {
			Hits struct {
				Hits []hit `json:"hits"`
			} `json:"hits"`
		}
		if code := e.do(http.MethodPost, "/"+pattern+"/_search?ignore_unavailable=true&allow_no_indices=true", string(body), &res); code != 200 {
			e.t.Fatalf("search %s: %d", pattern, code)
		}
		out = append(out, res.Hits.Hits...)
		if len(res.Hits.Hits) < 5000 {
			return out
		}
		after = res.Hits.Hits[len(res.Hits.Hits)-1].Sort
	}
}

// indices returns the names of the indices matching pattern, sorted.
func (e *esClient) indices(pattern string) []string {
	e.t.Helper()
	var rows []struct {
		Index string `json:"index"`
	}
	e.do(http.MethodGet, "/_cat/indices/"+pattern+"?format=json&expand_wildcards=open", "", &rows)
	var out []string
	for _, r := range rows {
		out = append(out, r.Index)
	}
	sort.Strings(out)
	return out
}

// waitCount waits until the indices matching pattern hold want documents,
// failing at once if they hold more, or if ix (when not nil) exits.
func waitCount(t *testing.T, es *esClient, ix *indexer, pattern string, want int) {
	t.Helper()
	opt := patient
	if ix != nil {
		opt = ix.alive()
	}
	await.Eventually(t, fmt.Sprintf("%s to hold %d documents", pattern, want), func() error {
		switch n := es.count(pattern); {
		case n > want:
			return await.Stop(fmt.Errorf("%s holds %d documents, more than the %d expected", pattern, n, want))
		case n < want:
			return await.NotYet(n, want)
		}
		return nil
	}, opt)
}

// config returns an indexer configuration for a test: the broker, topic and
// group, Elasticsearch, earliest offsets, quick flushes; routes and extra
// YAML are appended.
func config(b broker, topic, group, esURL, extra string) string {
	var hosts []string
	for _, h := range strings.Split(b.bootstrap, ",") {
		hosts = append(hosts, strconv.Quote(h))
	}
	return fmt.Sprintf(`kafka:
  hosts: [%s]
  topics: [%q]
  group_id: %q
  auto_offset_reset: earliest
  commit_interval: 200ms
  drain_timeout: 20s
elasticsearch:
  hosts: [%q]
  flush_interval: 200ms
  backoff:
    init: 100ms
    max: 2s
setup.template.settings:
  index.number_of_replicas: 0
%s`, strings.Join(hosts, ", "), topic, group, esURL, extra)
}

// tcpProxy forwards connections to a target; down refuses new connections
// and cuts open ones, as an unreachable host would look, until up.
type tcpProxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{t: t, target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *tcpProxy) URL() string { return "http://" + p.addr }

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[u] = true, true
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
}

func (p *tcpProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

func (p *tcpProxy) up() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy cannot listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}
