// Package broker is brokerd's request handling: one file per Kafka API
// (named NN_api_name.go after its key, each registering the versions it
// serves), the partitions this node hosts, and the glue between the wire
// server, the partition logs (storage) and the cluster metadata (metadata).
//
// Lock order: Broker.mu before partition.mu. Handlers never hold Broker.mu
// while doing I/O on a log.
package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/acl"
	"logpipe/brokerd/fetchsession"
	"logpipe/brokerd/metadata"
	"logpipe/brokerd/producers"
	"logpipe/brokerd/quorum"
	"logpipe/brokerd/replica"
	"logpipe/brokerd/storage"
	"logpipe/brokerd/wire"
)

// Hooks are optional metric callbacks; nil fields are skipped.
type Hooks struct {
	// BytesIn and MessagesIn count what producers appended, per topic.
	BytesIn func(topic string, bytes, records int64)
	// BytesOut counts what fetches returned, per topic.
	BytesOut func(topic string, bytes int64)
	// ErrorCode counts error codes returned inside responses, per API.
	ErrorCode func(api string, code int16)
	// Rebalanced counts completed consumer group rebalances.
	Rebalanced func(group string)
	// ISRChange counts ISR changes this node proposed as a leader:
	// shrinks and expansions.
	ISRChange func(shrink bool)
}

// Broker serves Kafka requests for one node.
type Broker struct {
	cfg   Config
	log   *slog.Logger
	meta  *quorum.Store
	hooks Hooks
	now   func() time.Time
	// authz decides requests (authz.go); nil when authorization is off.
	authz *acl.Authorizer

	host string
	port int32
	// clientLn is a broker-only node's inter-broker listener, opened with
	// the quorum it shares it with (ClientListeners).
	clientLn net.Listener
	// sec is TLS and SASL (security.go).
	sec *security

	mu    sync.RWMutex
	parts map[tp]*partition
	// unopened are the partitions the metadata assigns here whose logs
	// could not be opened; reconcile retries them (retryUnopened).
	unopened map[tp]OpenFailure
	// files keeps the partitions' segment files open on demand, within
	// log.max.open.files.
	files *storage.FileCache

	// ids allocates producer ids (producer_state.go).
	ids idAllocator
	// groups is the group coordinator state (groups.go).
	groups groupState
	// cp is the control plane: controller, registration, heartbeats
	// (controlplane.go, lifecycle.go).
	cp              controlPlane
	registrationErr atomic.Pointer[registrationError]
	// fetchers replicate the partitions this node follows (fetcher.go).
	fetchers fetchers
	// fetchSessions are the fetch sessions (KIP-227) of this node's
	// fetchers and of the followers fetching from it (01_fetch.go).
	fetchSessions *fetchsession.Cache
	// hwCheckpoint is the high watermarks read at start (checkpoint.go).
	hwCheckpoint map[tp]int64

	quit     chan struct{}
	wg       sync.WaitGroup
	stopOnce sync.Once
}

type tp struct {
	topic string
	part  int32
}

// partition is one partition hosted here.
type partition struct {
	topic string
	index int32
	log   *storage.Log

	// appendMu serialises appends, so that checks made before an append
	// (producer sequences) hold when it happens.
	appendMu sync.Mutex
	// watchers are the long-polling fetches waiting for the partition to
	// change (fetchwait.go).
	watchers watchers
	// leaderEpoch is the partition's current leader epoch.
	leaderEpoch atomic.Int32
	// leads is whether this node is the partition's leader.
	leads atomic.Bool
	// hw is the high watermark: records below it are committed (in
	// every ISR member) and may be read by consumers.
	hw atomic.Int64
	// replMu guards role and leader (replication.go).
	replMu sync.Mutex
	// role is the partition's state in the metadata as last applied.
	role role
	// leader is the replication state while this node leads, else nil.
	leader *replica.Leader
	// refusedEpoch and retryISRAt hold back an ISR proposal the
	// controller refused at that partition epoch until then.
	refusedEpoch int32
	retryISRAt   time.Time
	// fetchLag is, on a follower, how far its log end was behind the
	// leader's high watermark at its last fetch.
	fetchLag atomic.Int64
	// producers is the idempotent producer state; appendMu guards it.
	producers producers.State
	// saved is what the newest producer-state snapshot on disk holds;
	// appendMu guards it.
	saved savedProducers
	// configs are the topic overrides the log was last configured with;
	// Broker.mu guards it.
	configs map[string]string
}

// highWatermark is the offset below which records are committed.
func (p *partition) highWatermark() int64 { return p.hw.Load() }

// New opens the broker's state: this node's replica of the metadata quorum
// and every partition the metadata assigns to this node. It waits for the
// quorum to elect a controller (at once for a quorum of one) until ctx
// ends.
func New(ctx context.Context, cfg Config, log *slog.Logger, hooks Hooks) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	host, port, _ := cfg.AdvertisedAddr()
	dirs := cfg.Dirs()
	for _, d := range dirs {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("broker: log dir: %w", err)
		}
	}
	b := &Broker{cfg: cfg, log: log, hooks: hooks, now: time.Now,
		host: host, port: port, parts: map[tp]*partition{}, unopened: map[tp]OpenFailure{}, quit: make(chan struct{}),
		files: storage.NewFileCache(storage.FileCacheConfig{MaxOpen: cfg.LogMaxOpenFiles})}
	b.authz, _ = cfg.authorizer() // Validate checked it
	b.cp.incarnation = newIncarnation()
	b.fetchers.b = b
	b.fetchSessions = fetchsession.New(cfg.FetchSessionCacheSlots, fetchsession.DefaultEvictAfter, time.Now)
	b.hwCheckpoint = readHWCheckpoints(dirs)
	b.cp.epoch.Store(-1)
	if err := b.newSecurity(); err != nil {
		return nil, err
	}
	meta, ctlLn, err := b.openMetadata(ctx)
	if err != nil {
		return nil, err
	}
	b.meta = meta
	if err := writeMetaProperties(dirs, meta.Image().ClusterID, cfg.NodeID); err != nil {
		meta.Close()
		return nil, err
	}
	if ctlLn != nil {
		b.serveControllerListener(ctlLn)
	}
	b.wg.Add(2)
	go b.runController()
	go b.heartbeatLoop()
	if err := b.waitUnfenced(ctx); err != nil {
		b.stop()
		return nil, err
	}
	if err := b.reconcile(); err != nil {
		b.stop()
		return nil, err
	}
	if err := b.startGroups(); err != nil {
		b.stop()
		return nil, err
	}
	b.wg.Add(5)
	go b.retryUnopened()
	go b.housekeeping()
	go b.watchMetadata()
	go b.checkISRs()
	go b.checkpointHWs()
	return b, nil
}

// writeMetaProperties records the cluster and node ids in each log dir,
// in the file and format Kafka's tools read. A dir that names another
// node or cluster is refused before any file is written.
func writeMetaProperties(dirs []string, clusterID string, node int32) error {
	for _, d := range dirs {
		old, err := os.ReadFile(filepath.Join(d, "meta.properties"))
		if err != nil {
			continue
		}
		if id := propValue(string(old), "node.id"); id != "" && id != fmt.Sprint(node) {
			return fmt.Errorf("broker: %s belongs to node %s, not node.id %d", d, id, node)
		}
		if id := propValue(string(old), "cluster.id"); id != "" && id != clusterID {
			return fmt.Errorf("broker: %s belongs to cluster %s, but the metadata quorum is cluster %s; refusing to start (nothing was changed)", d, id, clusterID)
		}
	}
	body := fmt.Sprintf("#\n#written by brokerd\nnode.id=%d\nversion=1\ncluster.id=%s\n", node, clusterID)
	for _, d := range dirs {
		path := filepath.Join(d, "meta.properties")
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			return fmt.Errorf("broker: %w", err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("broker: %w", err)
		}
	}
	return nil
}

func propValue(props, key string) string {
	for _, line := range strings.Split(props, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && k == key {
			return v
		}
	}
	return ""
}

// reconcile opens logs for partitions this node now hosts and closes and
// deletes those it no longer does (deleted topics). A log that cannot be
// opened is listed by OpenFailures and retried by the next reconcile
// (retryUnopened runs one every openRetryInterval meanwhile); the error
// returned counts only the failures that are new, or have a new reason.
func (b *Broker) reconcile() error {
	img := b.meta.Image()
	want := map[tp]*metadata.Topic{}
	for _, t := range img.Topics {
		for i, p := range t.Partitions {
			if slices.Contains(p.Replicas, b.cfg.NodeID) {
				want[tp{t.Name, int32(i)}] = t
			}
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for k := range b.unopened {
		if _, ok := want[k]; !ok {
			delete(b.unopened, k)
		}
	}
	for k, p := range b.parts {
		if _, ok := want[k]; !ok {
			delete(b.parts, k)
			// acks=all produces waiting on it end with NOT_LEADER.
			p.leads.Store(false)
			if err := p.log.Delete(); err != nil {
				errs = append(errs, err)
			}
			p.drop()
			b.fetchers.remove(p)
		}
	}
	var load dirLoad // read once, only if a partition is new
	var opened openedLogs
	var failed []error // new failures to open
	for k, t := range want {
		p := b.parts[k]
		if p == nil {
			if load == nil {
				load = b.readDirLoad()
				opened.start = time.Now()
			}
			l, err := b.files.Open(b.partitionDir(k, load), b.storageConfig(t.Configs))
			if err == nil {
				p = &partition{topic: k.topic, index: k.part, log: l, configs: t.Configs}
				p.hw.Store(min(b.checkpointedHW(k), l.LogEndOffset()))
				if err = p.loadProducerState(); err != nil {
					l.Close()
				}
			}
			if err != nil {
				if b.openFailed(k, err) {
					failed = append(failed, fmt.Errorf("broker: opening %s-%d: %w", k.topic, k.part, err))
				}
				continue
			}
			delete(b.unopened, k)
			opened.add(l.Recovery())
			b.parts[k] = p
		}
		b.applyRole(p, t.Partitions[k.part])
		if !maps.Equal(p.configs, t.Configs) {
			if err := p.log.SetConfig(b.storageConfig(t.Configs)); err != nil {
				errs = append(errs, fmt.Errorf("broker: configuring %s-%d: %w", k.topic, k.part, err))
			} else {
				p.configs = t.Configs
			}
		}
	}
	opened.report(b.log)
	if len(failed) > 0 {
		errs = append(errs, fmt.Errorf("broker: %d partition logs could not be opened (retried every %v), the first: %w", len(failed), openRetryInterval, failed[0]))
	}
	return errors.Join(errs...)
}

// OpenFailure is a partition the metadata assigns to this node whose log
// could not be opened (out of file descriptors, an unreadable folder).
// Until a retry opens it, the partition is not served here.
type OpenFailure struct {
	Topic     string
	Partition int32
	Err       error
	// Since is when opening it first failed.
	Since time.Time
}

// openRetryInterval is how often partitions that could not be opened
// are tried again.
const openRetryInterval = 2 * time.Second

// openFailed records that k's log could not be opened, and logs it if the
// failure is new or has a new reason, which it reports. Holds b.mu.
func (b *Broker) openFailed(k tp, err error) bool {
	f, seen := b.unopened[k]
	fresh := !seen || f.Err.Error() != err.Error()
	if fresh {
		b.log.Warn("cannot open partition log; retrying", "topic", k.topic, "partition", k.part, "err", err)
	}
	if !seen {
		f = OpenFailure{Topic: k.topic, Partition: k.part, Since: b.now()}
	}
	f.Err = err
	b.unopened[k] = f
	return fresh
}

// unopenedOf returns a KAFKA_STORAGE_ERROR naming how many of topic's
// partitions assigned here could not be opened, nil if none.
func (b *Broker) unopenedOf(topic string) error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var n int
	var first error
	for k, f := range b.unopened {
		if k.topic == topic {
			n++
			first = cmp.Or(first, f.Err)
		}
	}
	if n == 0 {
		return nil
	}
	return newAPIError(kerr.KafkaStorageError, "%s was created, but the logs of %d of its partitions could not be opened on node %d (%v); they are retried every %v", topic, n, b.cfg.NodeID, first, openRetryInterval)
}

// OpenFailures returns the partitions assigned here whose logs could not
// be opened, by topic and partition.
func (b *Broker) OpenFailures() []OpenFailure {
	b.mu.RLock()
	out := slices.Collect(maps.Values(b.unopened))
	b.mu.RUnlock()
	slices.SortFunc(out, func(x, y OpenFailure) int {
		return cmp.Or(cmp.Compare(x.Topic, y.Topic), cmp.Compare(x.Partition, y.Partition))
	})
	return out
}

// OpenFiles returns the state of the segment files kept open for the
// hosted partitions (log.max.open.files).
func (b *Broker) OpenFiles() storage.FileCacheStats { return b.files.Stats() }

// retryUnopened runs reconcile every openRetryInterval while some
// partition could not be opened.
func (b *Broker) retryUnopened() {
	defer b.wg.Done()
	t := time.NewTicker(openRetryInterval)
	defer t.Stop()
	for {
		select {
		case <-b.quit:
			return
		case <-t.C:
		}
		b.mu.RLock()
		n := len(b.unopened)
		b.mu.RUnlock()
		if n > 0 {
			if err := b.reconcile(); err != nil {
				b.log.Error("applying metadata", "err", err)
			}
		}
	}
}

// openedLogs sums up what opening partition logs found, for one log line
// per reconcile.
type openedLogs struct {
	start                        time.Time
	partitions, clean, recovered int
	bytesChecked, bytesTruncated int64
}

func (o *openedLogs) add(r storage.RecoveryInfo) {
	o.partitions++
	if r.CleanShutdown {
		o.clean++
	}
	o.recovered += r.SegmentsRecovered
	o.bytesChecked += r.BytesChecked
	o.bytesTruncated += r.BytesTruncated
}

func (o *openedLogs) report(log *slog.Logger) {
	if o.partitions == 0 {
		return
	}
	log.Info("opened partition logs", "partitions", o.partitions, "after_clean_shutdown", o.clean,
		"segments_recovered", o.recovered, "bytes_checked", o.bytesChecked, "bytes_truncated", o.bytesTruncated,
		"took", time.Since(o.start).Round(time.Millisecond))
}

// dirLoad is how many entries each log dir holds, to place new
// partitions in the least loaded one.
type dirLoad map[string]int

// readDirLoad lists every log dir once.
func (b *Broker) readDirLoad() dirLoad {
	load := dirLoad{}
	for _, d := range b.cfg.Dirs() {
		entries, _ := os.ReadDir(d)
		load[d] = len(entries)
		dirListings.Add(1)
	}
	return load
}

// dirListings counts readDirLoad's listings (for a test that placing many
// partitions lists each log dir once, not once per partition).
var dirListings atomic.Int64

// partitionDir returns where a partition's folder is: where it already is,
// or the log dir with the fewest entries in load, which counts the new one.
func (b *Broker) partitionDir(k tp, load dirLoad) string {
	name := fmt.Sprintf("%s-%d", k.topic, k.part)
	dirs := b.cfg.Dirs()
	best := dirs[0]
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, name)); err == nil {
			return filepath.Join(d, name)
		}
		if load[d] < load[best] {
			best = d
		}
	}
	load[best]++
	return filepath.Join(best, name)
}

// partition returns the hosted partition, or nil.
func (b *Broker) partition(topic string, part int32) *partition {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.parts[tp{topic, part}]
}

// absent is the error code for a partition this node does not serve:
// KAFKA_STORAGE_ERROR while its log could not be opened (OpenFailures),
// as Kafka answers for a partition on an offline log dir, else
// UNKNOWN_TOPIC_OR_PARTITION.
func (b *Broker) absent(topic string, part int32) int16 {
	b.mu.RLock()
	_, unopened := b.unopened[tp{topic, part}]
	b.mu.RUnlock()
	if unopened {
		return kerr.KafkaStorageError.Code
	}
	return kerr.UnknownTopicOrPartition.Code
}

// propose applies metadata records and brings the hosted partitions in
// line with them.
func (b *Broker) propose(ctx context.Context, recs ...metadata.Record) error {
	err := b.meta.Propose(ctx, recs...)
	if rerr := b.reconcile(); rerr != nil {
		b.log.Error("applying metadata", "err", rerr)
	}
	return err
}

// housekeeping runs retention (every log.retention.check.interval.ms) and
// compaction (every log.cleaner.backoff.ms) until Close.
func (b *Broker) housekeeping() {
	defer b.wg.Done()
	every := time.Duration(b.cfg.LogRetentionCheck) * time.Millisecond
	if every <= 0 {
		every = 5 * time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	backoff := time.Duration(b.cfg.LogCleanerBackoffMs) * time.Millisecond
	if backoff <= 0 {
		backoff = 15 * time.Second
	}
	clean := time.NewTicker(backoff)
	defer clean.Stop()
	for {
		select {
		case <-b.quit:
			return
		case <-t.C:
			b.enforceRetention()
		case <-clean.C:
			b.compact()
		}
	}
}

// hosted returns the hosted partitions.
func (b *Broker) hosted() []*partition {
	b.mu.RLock()
	defer b.mu.RUnlock()
	parts := make([]*partition, 0, len(b.parts))
	for _, p := range b.parts {
		parts = append(parts, p)
	}
	return parts
}

// compact cleans the partitions whose cleanup.policy includes compact.
func (b *Broker) compact() {
	now := b.now()
	for _, p := range b.hosted() {
		if !strings.Contains(p.log.Config().CleanupPolicy, storage.PolicyCompact) {
			continue
		}
		st, err := p.log.Compact(now, p.highWatermark())
		if err != nil {
			if !errors.Is(err, storage.ErrClosed) {
				b.log.Warn("compaction", "topic", p.topic, "partition", p.index, "err", err)
			}
			continue
		}
		b.log.Debug("compacted", "topic", p.topic, "partition", p.index, "stats", fmt.Sprintf("%+v", st))
	}
}

// enforceRetention deletes expired segments of every hosted partition.
func (b *Broker) enforceRetention() {
	parts := b.hosted()
	now := b.now()
	cutoff := now.UnixMilli() - b.cfg.ProducerIDExpirationMs
	for _, p := range parts {
		p.appendMu.Lock()
		p.producers.Expire(cutoff)
		p.appendMu.Unlock()
		if n, err := p.log.EnforceRetention(now, p.highWatermark()); err != nil {
			if !errors.Is(err, storage.ErrClosed) {
				b.log.Warn("retention", "topic", p.topic, "partition", p.index, "err", err)
			}
		} else if n > 0 {
			b.log.Info("retention deleted segments", "topic", p.topic, "partition", p.index, "segments", n, "log_start_offset", p.log.LogStartOffset())
		}
	}
}

// Close is a controlled shutdown: the controller moves this node's
// leadership to other brokers first (for at most the session timeout),
// then background work stops and every log (flushed) and the metadata
// store are closed. Call it after the wire server has drained.
func (b *Broker) Close() error {
	b.controlledShutdown(2 * b.cfg.sessionTimeout())
	return b.stop()
}

// stop stops background work and closes everything, at once.
func (b *Broker) stop() error {
	var err error
	b.stopOnce.Do(func() {
		close(b.quit)
		b.stopGroups()
		if b.cp.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = b.cp.srv.Shutdown(ctx)
			cancel()
		}
		b.wg.Wait()
		err = b.closeAll()
	})
	return err
}

func (b *Broker) closeAll() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	errs = append(errs, closeLogs(slices.Collect(maps.Values(b.parts)))...)
	clear(b.parts)
	b.cp.closeLanes()
	errs = append(errs, b.meta.Close())
	return errors.Join(errs...)
}

// handlerFunc is the shape of every API handler.
type handlerFunc func(b *Broker, ctx context.Context, c *wire.Conn, h wire.Header, req kmsg.Request) (kmsg.Response, error)

type registration struct {
	min, max int16
	fn       handlerFunc
}

var handlers = map[int16]registration{}

// register is called from each handler file's init with the versions it
// serves.
func register(key, min, max int16, fn handlerFunc) {
	if _, dup := handlers[key]; dup {
		panic(fmt.Sprintf("broker: API %d registered twice", key))
	}
	handlers[key] = registration{min, max, fn}
}

// Versions implements wire.Handler from the registrations, for the client
// listener: the controller's APIs are served on the controller listener
// only.
func (b *Broker) Versions(key int16) (int16, int16, bool) {
	r, ok := handlers[key]
	return r.min, r.max, ok && !controllerOnly[key]
}

// Handle implements wire.Handler. A request that changes the metadata is
// forwarded to the active controller when this node is not it.
func (b *Broker) Handle(ctx context.Context, c *wire.Conn, h wire.Header, req kmsg.Request) (kmsg.Response, error) {
	r, ok := handlers[h.APIKey]
	if !ok || controllerOnly[h.APIKey] {
		return nil, fmt.Errorf("broker: no handler for API %d", h.APIKey)
	}
	if forwarded[h.APIKey] && !b.meta.IsLeader() {
		resp, err := b.forward(ctx, c, h, req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err // the client is gone
			}
			b.log.Warn("forwarding to the controller", "request", kmsg.NameForKey(h.APIKey), "err", err)
			return forwardFailed(req, err), nil
		}
		return resp, nil
	}
	return r.fn(b, ctx, c, h, req)
}

// apiKeys lists the APIs served to clients, sorted by key, for
// ApiVersions.
func apiKeys() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]int, 0, len(handlers))
	for k := range handlers {
		if !controllerOnly[k] {
			keys = append(keys, int(k))
		}
	}
	sort.Ints(keys)
	out := make([]kmsg.ApiVersionsResponseApiKey, 0, len(keys))
	for _, k := range keys {
		r := handlers[int16(k)]
		out = append(out, kmsg.ApiVersionsResponseApiKey{ApiKey: int16(k), MinVersion: r.min, MaxVersion: r.max})
	}
	return out
}

func (b *Broker) countError(api string, code int16) {
	if code != 0 && b.hooks.ErrorCode != nil {
		b.hooks.ErrorCode(api, code)
	}
}
