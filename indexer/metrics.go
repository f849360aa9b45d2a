package main

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"logpipe/indexer/bulk"
	"logpipe/indexer/consumer"
	"logpipe/indexer/document"
	"logpipe/indexer/httpdlog"
	"logpipe/pipeline/cli"
)

// metrics are the indexer's Prometheus series. With http.enabled false
// they are kept but never served.
type metrics struct {
	consumed     *prometheus.CounterVec
	documents    *prometheus.CounterVec
	retried      prometheus.Counter
	unrouted     *prometheus.CounterVec
	parsed       *prometheus.CounterVec
	bulkDuration prometheus.Histogram
	bulkBytes    prometheus.Histogram
	bulkRequests *prometheus.CounterVec
	lag          *prometheus.GaugeVec
	committed    *prometheus.GaugeVec
	unroutedSeen atomic.Bool

	// Counters the hot path increments once per record or document.
	consumedBy  counterCache
	documentsBy counterCache
	parsedBy    counterCache
}

// counterCache remembers the counter of each label value of a one-label
// vector, so that the per-document path skips the vector's label hashing
// and locking. A series appears on first use, as with WithLabelValues.
type counterCache struct {
	vec *prometheus.CounterVec
	m   sync.Map // label value → prometheus.Counter
}

func (c *counterCache) inc(label string) {
	if v, ok := c.m.Load(label); ok {
		v.(prometheus.Counter).Inc()
		return
	}
	ctr := c.vec.WithLabelValues(label)
	c.m.Store(label, ctr)
	ctr.Inc()
}

func newMetrics(env *cli.Env, sink func() *bulk.Sink) *metrics {
	m := &metrics{
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logpipe_indexer_records_consumed_total", Help: "Kafka records read.",
		}, []string{"topic"}),
		documents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logpipe_indexer_documents_total",
			Help: "Documents settled, by result: indexed, duplicate (already there, 409), dead_lettered, failed (dead letter refused too), abandoned (partition let go first; read again later).",
		}, []string{"result"}),
		retried: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "logpipe_indexer_documents_retried_total", Help: "Documents sent again after a 429, a 5xx or a failed bulk request.",
		}),
		unrouted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logpipe_indexer_events_unrouted_total", Help: "Events that matched no route and were dropped.",
		}, []string{"topic"}),
		parsed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logpipe_indexer_events_parsed_total", Help: "Events by what their message was parsed as: access, error, or none (tagged _httpdparsefailure).",
		}, []string{"kind"}),
		bulkDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "logpipe_indexer_bulk_request_duration_seconds", Help: "Duration of bulk requests.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		bulkBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "logpipe_indexer_bulk_request_bytes", Help: "Size of bulk request bodies.",
			Buckets: prometheus.ExponentialBuckets(1024, 4, 10),
		}),
		bulkRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "logpipe_indexer_bulk_requests_total", Help: "Bulk requests, by result: ok (Elasticsearch answered 200) or error.",
		}, []string{"result"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "logpipe_indexer_consumer_lag", Help: "Records of a claimed partition not yet committed: its high watermark less the committable offset (unread records plus those read and not yet in Elasticsearch).",
		}, []string{"topic", "partition"}),
		committed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "logpipe_indexer_committed_offset", Help: "The offset last marked for commit: every record below it is in Elasticsearch.",
		}, []string{"topic", "partition"}),
	}
	m.consumedBy.vec, m.documentsBy.vec, m.parsedBy.vec = m.consumed, m.documents, m.parsed
	if env.Telemetry != nil {
		reg := env.Telemetry.Registry
		reg.MustRegister(m.consumed, m.documents, m.retried, m.unrouted, m.parsed, m.bulkDuration, m.bulkBytes, m.bulkRequests, m.lag, m.committed)
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "logpipe_indexer_in_flight_documents", Help: "Documents handed to the bulk sink and not yet settled.",
		}, func() float64 {
			if s := sink(); s != nil {
				n, _ := s.InFlight()
				return float64(n)
			}
			return 0
		}))
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "logpipe_indexer_in_flight_bytes", Help: "Bytes of documents held by the bulk sink (bounded by elasticsearch.max_in_flight_bytes).",
		}, func() float64 {
			if s := sink(); s != nil {
				_, b := s.InFlight()
				return float64(b)
			}
			return 0
		}))
	}
	return m
}

func (m *metrics) sinkHooks(reachable func(error)) bulk.Hooks {
	return bulk.Hooks{
		Request: func(bytes, _ int, d time.Duration, err error) {
			m.bulkDuration.Observe(d.Seconds())
			m.bulkBytes.Observe(float64(bytes))
			if err != nil {
				m.bulkRequests.WithLabelValues("error").Inc()
			} else {
				m.bulkRequests.WithLabelValues("ok").Inc()
			}
		},
		Retry:     func(n int) { m.retried.Add(float64(n)) },
		Settled:   func(res bulk.Result, _ bool) { m.documentsBy.inc(res.String()) },
		Reachable: reachable,
	}
}

func (m *metrics) consumerHooks(onUnrouted func()) consumer.Hooks {
	part := func(p int32) string { return strconv.Itoa(int(p)) }
	return consumer.Hooks{
		Consumed: func(topic string, _ int32) { m.consumedBy.inc(topic) },
		Parsed: func(d *document.Doc) {
			if !d.Parsed {
				return
			}
			kind := d.Kind.String()
			if d.Kind == httpdlog.KindNone {
				kind = "none"
			}
			m.parsedBy.inc(kind)
		},
		Unrouted: func(topic string, _ int32) {
			m.unrouted.WithLabelValues(topic).Inc()
			if !m.unroutedSeen.Swap(true) {
				onUnrouted()
			}
		},
		Lag: func(topic string, p int32, lag int64) { m.lag.WithLabelValues(topic, part(p)).Set(float64(lag)) },
		Released: func(topic string, p int32) {
			m.lag.DeleteLabelValues(topic, part(p))
			m.committed.DeleteLabelValues(topic, part(p))
		},
		Committed: func(topic string, p int32, off int64) { m.committed.WithLabelValues(topic, part(p)).Set(float64(off)) },
	}
}
