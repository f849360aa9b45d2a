package devstack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
)

// The node runs the launcher compiled by deploy/maven/elasticsearch/pom.xml;
// see the README beside it for why these JVM flags.
const (
	esMainClass    = "logpipe.esnode.Launcher"
	esNodeName     = "logpipe-es"
	esLogName      = "elasticsearch.log"
	esStartTimeout = 3 * time.Minute  // a first start on two busy cores can take a minute
	esStopGrace    = 30 * time.Second // then SIGKILL
	esJarsTimeout  = 10 * time.Minute // a cold Maven run downloads ~40 MB
)

// ElasticsearchOptions configures StartElasticsearch. Every zero value has a
// default, noted on the field.
type ElasticsearchOptions struct {
	// Dir is the node's home: config/, data/, logs/, tmp/ and the log file
	// elasticsearch.log. A node started again on the same Dir keeps its
	// indices. Empty means a new folder under <repo>/.cache/run, removed by
	// Close.
	Dir string
	// HTTPPort is the REST port on 127.0.0.1; 0 means a free port. It stays
	// the same across Stop and Start.
	HTTPPort int
	// ClusterName is the cluster's name; empty means "logpipe-test".
	ClusterName string
	// HeapMB is the JVM heap in MiB (-Xms and -Xmx); 0 means 512.
	HeapMB int
	// Security, if not nil, turns on X-Pack security: the node answers
	// HTTPS only and every request needs credentials. Nil means a node
	// without X-Pack, over plain HTTP, as the tests use by default.
	Security *ElasticsearchSecurity
}

// ElasticsearchSecurity is what a node with X-Pack security needs: the
// HTTP layer's certificate and key (PEM, the certificate valid for
// 127.0.0.1), the CA that issued it, and one superuser kept in the node's
// file realm (config/users, as elasticsearch-users writes it). The native
// realm, roles and API keys are the node's own and are managed through its
// REST API with the superuser's credentials.
type ElasticsearchSecurity struct {
	CertPEM, KeyPEM, CAPEM []byte
	Username, Password     string
}

// Elasticsearch is a single-node Elasticsearch 8 cluster running in a child
// JVM, reachable over HTTP on 127.0.0.1. Its methods are safe for concurrent
// use.
type Elasticsearch struct {
	// URL is the node's REST address, e.g. "http://127.0.0.1:41234".
	URL string
	// Dir is the node's home (see ElasticsearchOptions.Dir).
	Dir string
	// HTTPPort is the port in URL.
	HTTPPort int

	// Security is the node's security (nil without X-Pack).
	Security *ElasticsearchSecurity

	clusterName string
	heapMB      int
	jars        string
	ownsDir     bool

	mu   sync.Mutex
	proc *Process // the running JVM; nil when stopped
	last *Process // the latest JVM, kept for its log after it ends
}

// StartElasticsearch fetches the node's jars (once per pom version, see Jars),
// starts a node and waits until the cluster is at least yellow. A failure
// error holds the tail of the node's log. Call Close when done.
func StartElasticsearch(ctx context.Context, opts ElasticsearchOptions) (*Elasticsearch, error) {
	es := &Elasticsearch{
		Dir:         opts.Dir,
		HTTPPort:    opts.HTTPPort,
		clusterName: opts.ClusterName,
		heapMB:      opts.HeapMB,
		Security:    opts.Security,
	}
	if es.clusterName == "" {
		es.clusterName = "logpipe-test"
	}
	if es.heapMB == 0 {
		es.heapMB = 512
	}
	if es.heapMB < 128 {
		return nil, fmt.Errorf("devstack: elasticsearch heap of %d MiB is too small", es.heapMB)
	}
	if es.HTTPPort == 0 {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		es.HTTPPort = p
	}
	scheme := "http"
	if es.Security != nil {
		scheme = "https"
	}
	es.URL = fmt.Sprintf("%s://127.0.0.1:%d", scheme, es.HTTPPort)

	jarsCtx, cancel := context.WithTimeout(ctx, esJarsTimeout)
	jars, err := Jars(jarsCtx, "elasticsearch")
	cancel()
	if err != nil {
		return nil, err
	}
	es.jars = jars

	if es.Dir == "" {
		run, err := CacheDir("run")
		if err != nil {
			return nil, err
		}
		dir, err := os.MkdirTemp(run, "es-")
		if err != nil {
			return nil, fmt.Errorf("devstack: %w", err)
		}
		es.Dir = dir
		es.ownsDir = true
	} else if err := os.MkdirAll(es.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	if es.Security != nil {
		if err := es.Security.writeConfig(filepath.Join(es.Dir, "config")); err != nil {
			if es.ownsDir {
				_ = os.RemoveAll(es.Dir)
			}
			return nil, err
		}
	}

	if err := es.Start(ctx); err != nil {
		if es.ownsDir {
			_ = os.RemoveAll(es.Dir)
		}
		return nil, err
	}
	return es, nil
}

// Start launches the node on Dir and HTTPPort again after Stop or Kill and
// waits until the cluster is at least yellow (every primary shard of the
// indices it had is active again). It fails if the node is running.
func (es *Elasticsearch) Start(ctx context.Context) error {
	client, err := es.httpClient()
	if err != nil {
		return err
	}
	client.Timeout = 10 * time.Second
	es.mu.Lock()
	if es.proc != nil {
		es.mu.Unlock()
		return errors.New("devstack: elasticsearch is already running")
	}
	proc, err := es.launch()
	if err != nil {
		es.mu.Unlock()
		return err
	}
	es.proc, es.last = proc, proc
	es.mu.Unlock()

	waitCtx, cancel := context.WithTimeout(ctx, esStartTimeout)
	defer cancel()
	err = WaitFor(waitCtx, 250*time.Millisecond, proc, func(ctx context.Context) error {
		return esHealthy(ctx, client, es.URL, es.Security)
	})
	if err != nil {
		// Do not leave a half-started JVM holding the data folder's lock.
		proc.Kill()
		es.mu.Lock()
		if es.proc == proc {
			es.proc = nil
		}
		es.mu.Unlock()
		return fmt.Errorf("devstack: elasticsearch on %s did not become healthy: %w", es.URL, err)
	}
	return nil
}

// launch starts the JVM; es.mu is held.
func (es *Elasticsearch) launch() (*Process, error) {
	java, err := JavaPath()
	if err != nil {
		return nil, err
	}
	// The transport port only links the node to itself in a single-node
	// cluster, so a fresh one each start avoids a clash after a restart.
	transportPort, err := FreePort()
	if err != nil {
		return nil, err
	}
	args := esJVMArgs(es.heapMB, es.Dir)
	args = append(args, "-cp", filepath.Join(es.jars, "*"), esMainClass, es.Dir)
	if es.Security != nil {
		args = append(args, esSecurityFlag)
		args = append(args, esSecuritySettings...)
	}
	args = append(args,
		"cluster.name="+es.clusterName,
		"node.name="+esNodeName,
		"http.port="+strconv.Itoa(es.HTTPPort),
		"transport.port="+strconv.Itoa(transportPort),
	)
	cmd := exec.Command(java, args...)
	cmd.Dir = es.Dir
	return StartProcess("elasticsearch", cmd, filepath.Join(es.Dir, esLogName))
}

// esJVMArgs returns the JVM flags for a node with heapMB of heap whose home
// is dir: the system properties Elasticsearch's own launcher sets, a fixed
// heap, and temporary and crash files kept inside dir.
func esJVMArgs(heapMB int, dir string) []string {
	return []string{
		fmt.Sprintf("-Xms%dm", heapMB),
		fmt.Sprintf("-Xmx%dm", heapMB),
		fmt.Sprintf("-XX:MaxDirectMemorySize=%dm", heapMB/2),
		"-XX:+UseG1GC",
		"-Xss1m",
		"-XX:-OmitStackTraceInFastThrow",
		"-XX:ErrorFile=" + filepath.Join(dir, "hs_err_pid%p.log"),
		"-Djava.io.tmpdir=" + filepath.Join(dir, "tmp"),
		"-Djava.awt.headless=true",
		"-Dfile.encoding=UTF-8",
		"-Djava.locale.providers=SPI,CLDR",
		"-Djna.nosys=true",
		"-Dio.netty.noUnsafe=true",
		"-Dio.netty.noKeySetOptimization=true",
		"-Dio.netty.recycler.maxCapacityPerThread=0",
		"-Dlog4j.shutdownHookEnabled=false",
		"-Dlog4j2.disable.jmx=true",
		"-Dlog4j2.formatMsgNoLookups=true",
	}
}

// esHealthy asks the node for its cluster health and accepts yellow or green.
func esHealthy(ctx context.Context, client *http.Client, url string, sec *ElasticsearchSecurity) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/_cluster/health?wait_for_status=yellow&timeout=2s", nil)
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	if sec != nil {
		req.SetBasicAuth(sec.Username, sec.Password)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("devstack: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("devstack: cluster health: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("devstack: cluster health: %s: %s", resp.Status, body)
	}
	var health struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(body, &health); err != nil {
		return fmt.Errorf("devstack: cluster health: %w", err)
	}
	if health.Status != "yellow" && health.Status != "green" {
		return fmt.Errorf("devstack: cluster health is %q", health.Status)
	}
	return nil
}

// Stop shuts the node down gracefully: SIGTERM, which makes the launcher
// close the node (flushing shards), then SIGKILL if it has not exited after
// 30 s. It keeps Dir, so Start brings the same indices back. Stopping a
// stopped node does nothing.
func (es *Elasticsearch) Stop() {
	if p := es.take(); p != nil {
		p.Stop(esStopGrace)
	}
}

// Kill ends the node with SIGKILL at once, as a crash would. Acknowledged
// writes survive: Elasticsearch fsyncs its translog before it answers.
// Killing a stopped node does nothing.
func (es *Elasticsearch) Kill() {
	if p := es.take(); p != nil {
		p.Kill()
	}
}

func (es *Elasticsearch) take() *Process {
	es.mu.Lock()
	defer es.mu.Unlock()
	p := es.proc
	es.proc = nil
	return p
}

// Close stops the node and, if StartElasticsearch made Dir, removes it.
func (es *Elasticsearch) Close() {
	es.Stop()
	if es.ownsDir {
		_ = os.RemoveAll(es.Dir)
	}
}

// Running reports whether the node's JVM is started and has not been
// stopped (it may have died on its own; see LogTail).
func (es *Elasticsearch) Running() bool {
	es.mu.Lock()
	defer es.mu.Unlock()
	if es.proc == nil {
		return false
	}
	exited, _ := es.proc.Exited()
	return !exited
}

// Pid returns the operating system's id of the node's JVM, or 0 if it is
// stopped.
func (es *Elasticsearch) Pid() int {
	es.mu.Lock()
	defer es.mu.Unlock()
	if es.proc == nil {
		return 0
	}
	return es.proc.Pid()
}

// LogPath returns the file the node's JVM writes its log to. It is appended
// to by every start.
func (es *Elasticsearch) LogPath() string { return filepath.Join(es.Dir, esLogName) }

// LogTail returns the last n bytes of the node's log, for test failures.
func (es *Elasticsearch) LogTail(n int64) string { return tailFile(es.LogPath(), n) }

// Client returns a new go-elasticsearch client for the node (with the
// superuser's credentials and the CA when the node has security). Its
// product check passes: the node is Elasticsearch 8 and sends
// X-Elastic-Product.
func (es *Elasticsearch) Client() (*elasticsearch.Client, error) {
	cfg := elasticsearch.Config{Addresses: []string{es.URL}}
	if sec := es.Security; sec != nil {
		cfg.CACert, cfg.Username, cfg.Password = sec.CAPEM, sec.Username, sec.Password
	}
	c, err := elasticsearch.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("devstack: elasticsearch client: %w", err)
	}
	return c, nil
}

// httpClient returns an HTTP client that trusts the node's CA when it has
// security (requests still need credentials: see ElasticsearchSecurity),
// or a plain client otherwise.
func (es *Elasticsearch) httpClient() (*http.Client, error) {
	if es.Security == nil {
		return &http.Client{}, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(es.Security.CAPEM) {
		return nil, errors.New("devstack: elasticsearch security: CAPEM holds no certificate")
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}, nil
}
