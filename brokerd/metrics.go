package main

import (
	"bufio"
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/broker"
	"logpipe/brokerd/fetchsession"
	"logpipe/brokerd/wire"
	"logpipe/pipeline/cli"
)

// metrics are brokerd's Prometheus series, fed through the narrow hooks of
// the wire and broker packages.
type metrics struct {
	bytesIn, bytesOut, messagesIn *prometheus.CounterVec
	requests                      *prometheus.HistogramVec
	requestErrors, errorCodes     *prometheus.CounterVec
	requestPanics                 *prometheus.CounterVec
	connections                   prometheus.Gauge
	rebalances                    prometheus.Counter
	isrChanges                    *prometheus.CounterVec
}

func newMetrics(env *cli.Env) *metrics {
	m := &metrics{
		bytesIn:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "brokerd_bytes_in_total", Help: "Record batch bytes appended by producers."}, []string{"topic"}),
		messagesIn:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "brokerd_messages_in_total", Help: "Records appended by producers."}, []string{"topic"}),
		bytesOut:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "brokerd_bytes_out_total", Help: "Record batch bytes returned to fetchers."}, []string{"topic"}),
		requests:      prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "brokerd_request_duration_seconds", Help: "Time to handle a request, by API.", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}, []string{"api"}),
		requestErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "brokerd_requests_failed_total", Help: "Requests that closed their connection, by API."}, []string{"api"}),
		requestPanics: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "brokerd_request_panics_total", Help: "Requests whose handling panicked (the connection was closed; the stack is in the log), by API."}, []string{"api"}),
		errorCodes:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "brokerd_response_errors_total", Help: "Kafka error codes returned in responses, by API and code."}, []string{"api", "code"}),
		connections:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "brokerd_connections", Help: "Open client connections."}),
		rebalances:    prometheus.NewCounter(prometheus.CounterOpts{Name: "brokerd_group_rebalances_total", Help: "Completed consumer group rebalances."}),
		isrChanges:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "brokerd_isr_changes_total", Help: "ISR changes this node proposed as a partition leader, by kind (shrink, expand)."}, []string{"kind"}),
	}
	if env.Telemetry != nil {
		env.Telemetry.Registry.MustRegister(m.bytesIn, m.messagesIn, m.bytesOut, m.requests, m.requestErrors, m.requestPanics, m.errorCodes, m.connections, m.rebalances, m.isrChanges)
	}
	return m
}

func (m *metrics) wireHooks() wire.Hooks {
	return wire.Hooks{
		ConnOpened: m.connections.Inc,
		ConnClosed: m.connections.Dec,
		Request: func(key, _ int16, took time.Duration, err error) {
			api := kmsg.NameForKey(key)
			m.requests.WithLabelValues(api).Observe(took.Seconds())
			if err != nil {
				m.requestErrors.WithLabelValues(api).Inc()
			}
		},
		Panic: func(key, _ int16) { m.requestPanics.WithLabelValues(kmsg.NameForKey(key)).Inc() },
	}
}

func (m *metrics) brokerHooks() broker.Hooks {
	return broker.Hooks{
		BytesIn: func(topic string, bytes, records int64) {
			m.bytesIn.WithLabelValues(topic).Add(float64(bytes))
			m.messagesIn.WithLabelValues(topic).Add(float64(records))
		},
		BytesOut: func(topic string, bytes int64) { m.bytesOut.WithLabelValues(topic).Add(float64(bytes)) },
		ErrorCode: func(api string, code int16) {
			m.errorCodes.WithLabelValues(api, kerrName(code)).Inc()
		},
		Rebalanced: func(string) { m.rebalances.Inc() },
		ISRChange: func(shrink bool) {
			kind := "expand"
			if shrink {
				kind = "shrink"
			}
			m.isrChanges.WithLabelValues(kind).Inc()
		},
	}
}

func kerrName(code int16) string {
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return e.Message
	}
	return "UNKNOWN"
}

// partitionCollector reports the cluster, group, fetch session and file
// gauges at scrape time; the partitions' own are written as text by
// writePartitionSeries.
type partitionCollector struct {
	b                              *broker.Broker
	groups, offline                *prometheus.Desc
	raftRole, raftTerm, raftCommit *prometheus.Desc
	activeController               *prometheus.Desc
	sessions, sessionParts         *prometheus.Desc
	evictions, fetches             *prometheus.Desc
	openFiles, fileOpens, unopened *prometheus.Desc
}

func newPartitionCollector(b *broker.Broker) *partitionCollector {
	return &partitionCollector{
		b:                b,
		groups:           prometheus.NewDesc("brokerd_groups", "Consumer groups this broker coordinates, by state.", []string{"state"}, nil),
		offline:          prometheus.NewDesc("brokerd_offline_partitions", "Partitions without a leader (reported by the active controller only).", nil, nil),
		raftRole:         prometheus.NewDesc("brokerd_raft_role", "1 for this node's role in the metadata quorum.", []string{"role"}, nil),
		raftTerm:         prometheus.NewDesc("brokerd_raft_term", "The metadata quorum's current term.", nil, nil),
		raftCommit:       prometheus.NewDesc("brokerd_raft_commit_index", "The metadata log's commit index as known here.", nil, nil),
		activeController: prometheus.NewDesc("brokerd_active_controller", "1 if this node is the active controller.", nil, nil),
		sessions:         prometheus.NewDesc("brokerd_incremental_fetch_sessions", "Fetch sessions (KIP-227) cached (Kafka's NumIncrementalFetchSessions).", nil, nil),
		sessionParts:     prometheus.NewDesc("brokerd_incremental_fetch_partitions_cached", "Partitions of the cached fetch sessions (Kafka's NumIncrementalFetchPartitionsCached).", nil, nil),
		evictions:        prometheus.NewDesc("brokerd_incremental_fetch_session_evictions_total", "Fetch sessions evicted to admit others (Kafka's IncrementalFetchSessionEvictionsPerSec).", nil, nil),
		openFiles:        prometheus.NewDesc("brokerd_log_open_files", "Segment files open now (log.max.open.files bounds those idle), by state: in use or idle.", []string{"state"}, nil),
		fileOpens:        prometheus.NewDesc("brokerd_log_file_events_total", "Segment file events: opened, evicted (closed at the bound or when idle), retried (an open that ran out of descriptors and was tried again after idle files were closed), exhausted (one that failed all the same).", []string{"event"}, nil),
		unopened:         prometheus.NewDesc("brokerd_partitions_unopened", "Partitions assigned to this node whose logs could not be opened (out of descriptors, an unreadable folder); they are retried and not served meanwhile.", nil, nil),
		fetches:          prometheus.NewDesc("brokerd_fetch_requests_total", "Fetch requests by fetcher (consumer, follower) and by how their session served them (sessionless, full, incremental, failed: refused for their session id or epoch).", []string{"fetcher", "session"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *partitionCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.groups, c.offline, c.raftRole, c.raftTerm, c.raftCommit, c.activeController,
		c.sessions, c.sessionParts, c.evictions, c.fetches, c.openFiles, c.fileOpens, c.unopened} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *partitionCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if counts, err := c.b.GroupCounts(ctx); err == nil {
		for state, n := range counts {
			ch <- prometheus.MustNewConstMetric(c.groups, prometheus.GaugeValue, float64(n), state)
		}
	}
	cs := c.b.Cluster()
	ch <- prometheus.MustNewConstMetric(c.raftRole, prometheus.GaugeValue, 1, cs.RaftRole)
	ch <- prometheus.MustNewConstMetric(c.raftTerm, prometheus.GaugeValue, float64(cs.RaftTerm))
	ch <- prometheus.MustNewConstMetric(c.raftCommit, prometheus.GaugeValue, float64(cs.CommitIndex))
	ch <- prometheus.MustNewConstMetric(c.activeController, prometheus.GaugeValue, boolGauge(cs.ActiveController))
	ch <- prometheus.MustNewConstMetric(c.offline, prometheus.GaugeValue, float64(cs.OfflinePartitions))
	c.collectFetchSessions(ch)
	c.collectFiles(ch)
}

// partitionFamilies are the per-partition gauges, one series per hosted
// partition labelled partition and topic. They are written as text by
// writePartitionSeries, not through the registry, whose objects for each
// series made a scrape of 10,000 partitions leave tens of MiB behind.
var partitionFamilies = []struct {
	name, help string
	value      func(p *broker.PartitionStats) (int64, bool)
}{
	{"brokerd_log_size_bytes", "Bytes in a partition's log segments.", func(p *broker.PartitionStats) (int64, bool) { return p.SizeBytes, true }},
	{"brokerd_log_segments", "Segments of a partition's log.", func(p *broker.PartitionStats) (int64, bool) { return int64(p.Segments), true }},
	{"brokerd_log_start_offset", "A partition's log start offset.", func(p *broker.PartitionStats) (int64, bool) { return p.LogStartOffset, true }},
	{"brokerd_log_end_offset", "A partition's log end offset.", func(p *broker.PartitionStats) (int64, bool) { return p.LogEndOffset, true }},
	{"brokerd_idempotent_producers", "Idempotent producers tracked on a partition.", func(p *broker.PartitionStats) (int64, bool) { return int64(p.Producers), true }},
	{"brokerd_high_watermark", "A partition's high watermark (records below it are in every ISR member).", func(p *broker.PartitionStats) (int64, bool) { return p.HighWatermark, true }},
	{"brokerd_isr_size", "A partition's in-sync replicas.", func(p *broker.PartitionStats) (int64, bool) { return int64(p.ISR), true }},
	{"brokerd_replica_fetch_lag", "On a follower: how many records its log was behind the leader's high watermark at its last fetch.", func(p *broker.PartitionStats) (int64, bool) { return p.FetchLag, !p.Leader }},
}

// writePartitionSeries writes, from one reading of the hosted partitions
// ps, their counts (brokerd_partitions, brokerd_leader_partitions,
// brokerd_under_replicated_partitions) and partitionFamilies in
// Prometheus's text format, labels in the order the registry's encoder
// gives them.
func writePartitionSeries(w *bufio.Writer, ps []broker.PartitionStats) {
	var line []byte
	leaders, under := 0, 0
	for i := range ps {
		if ps[i].Leader {
			leaders++
		}
		if ps[i].UnderReplicated {
			under++
		}
	}
	for _, g := range []struct {
		name, help string
		n          int
	}{
		{"brokerd_partitions", "Partitions hosted by this broker.", len(ps)},
		{"brokerd_leader_partitions", "Partitions this broker leads.", leaders},
		{"brokerd_under_replicated_partitions", "Partitions this broker leads whose ISR lacks replicas.", under},
	} {
		writeGaugeHeader(w, g.name, g.help)
		line = append(append(line[:0], g.name...), ' ')
		line = append(strconv.AppendInt(line, int64(g.n), 10), '\n')
		w.Write(line)
	}
	for _, f := range partitionFamilies {
		seen := false
		for i := range ps {
			v, ok := f.value(&ps[i])
			if !ok {
				continue
			}
			if !seen {
				seen = true
				writeGaugeHeader(w, f.name, f.help)
			}
			line = append(line[:0], f.name...)
			line = append(line, `{partition="`...)
			line = strconv.AppendInt(line, int64(ps[i].Partition), 10)
			line = append(line, `",topic="`...)
			line = appendLabelValue(line, ps[i].Topic)
			line = append(line, `"} `...)
			line = strconv.AppendInt(line, v, 10)
			line = append(line, '\n')
			w.Write(line)
		}
	}
}

// writeGaugeHeader writes the HELP and TYPE lines of a gauge family.
func writeGaugeHeader(w *bufio.Writer, name, help string) {
	for _, s := range []string{"# HELP ", name, " ", help, "\n# TYPE ", name, " gauge\n"} {
		w.WriteString(s)
	}
}

// appendLabelValue appends v escaped as a label value of the text format
// (Kafka's topic names never need it, but a name is not trusted).
func appendLabelValue(b []byte, v string) []byte {
	for i := 0; i < len(v); i++ {
		switch c := v[i]; c {
		case '\\', '"':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		default:
			b = append(b, c)
		}
	}
	return b
}

// collectFetchSessions reports the fetch session cache's figures.
func (c *partitionCollector) collectFetchSessions(ch chan<- prometheus.Metric) {
	st := c.b.FetchSessions()
	ch <- prometheus.MustNewConstMetric(c.sessions, prometheus.GaugeValue, float64(st.Sessions))
	ch <- prometheus.MustNewConstMetric(c.sessionParts, prometheus.GaugeValue, float64(st.Partitions))
	ch <- prometheus.MustNewConstMetric(c.evictions, prometheus.CounterValue, float64(st.Evictions))
	for fetcher, counts := range map[string]fetchsession.Counts{"consumer": st.Consumers, "follower": st.Followers} {
		for _, kind := range fetchsession.Kinds {
			ch <- prometheus.MustNewConstMetric(c.fetches, prometheus.CounterValue, float64(counts.Of(kind)), fetcher, kind.String())
		}
	}
}

// collectFiles reports the segment file cache and the partitions whose
// logs could not be opened.
func (c *partitionCollector) collectFiles(ch chan<- prometheus.Metric) {
	st := c.b.OpenFiles()
	ch <- prometheus.MustNewConstMetric(c.openFiles, prometheus.GaugeValue, float64(st.InUse), "in_use")
	ch <- prometheus.MustNewConstMetric(c.openFiles, prometheus.GaugeValue, float64(st.Open-st.InUse), "idle")
	for event, n := range map[string]uint64{"opened": st.Opened, "evicted": st.Evicted, "retried": st.Retried, "exhausted": st.Exhausted} {
		ch <- prometheus.MustNewConstMetric(c.fileOpens, prometheus.CounterValue, float64(n), event)
	}
	ch <- prometheus.MustNewConstMetric(c.unopened, prometheus.GaugeValue, float64(len(c.b.OpenFailures())))
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
