package main

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"logpipe/pipeline/cli"
	"logpipe/shipper/input"
	"logpipe/shipper/output"
	"logpipe/shipper/registry"
)

// metrics are the shipper's Prometheus metrics. They are registered on
// the telemetry server's registry when http.enabled, else on a private one
// nobody reads.
type metrics struct {
	linesRead   prometheus.Counter
	published   prometheus.Counter
	acked       prometheus.Counter
	retried     prometheus.Counter
	dropped     *prometheus.CounterVec
	harvesters  prometheus.Gauge
	bytesBehind *prometheus.GaugeVec
	regWrites   *prometheus.CounterVec
}

func newMetrics(env *cli.Env) *metrics {
	reg := prometheus.NewRegistry()
	if env.Telemetry != nil {
		reg = env.Telemetry.Registry
	}
	m := &metrics{
		linesRead: prometheus.NewCounter(prometheus.CounterOpts{Name: "shipper_lines_read_total",
			Help: "Lines read from log files."}),
		published: prometheus.NewCounter(prometheus.CounterOpts{Name: "shipper_events_published_total",
			Help: "Events handed to the Kafka producer, resends included."}),
		acked: prometheus.NewCounter(prometheus.CounterOpts{Name: "shipper_events_acked_total",
			Help: "Events acknowledged by the broker."}),
		retried: prometheus.NewCounter(prometheus.CounterOpts{Name: "shipper_events_retried_total",
			Help: "Events sent again after the producer gave up on them."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shipper_events_dropped_total",
			Help: "Events not sent, by reason: filter (include_lines/exclude_lines), topic (topic format names a missing field)."}, []string{"reason"}),
		harvesters: prometheus.NewGauge(prometheus.GaugeOpts{Name: "shipper_harvesters_open",
			Help: "Files open for reading."}),
		bytesBehind: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "shipper_file_bytes_behind",
			Help: "Per file being read: its size minus the offset the broker has acknowledged."}, []string{"path"}),
		regWrites: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shipper_registry_writes_total",
			Help: "Writes of the registry file, by result (ok, error)."}, []string{"result"}),
	}
	m.dropped.WithLabelValues("filter")
	m.dropped.WithLabelValues("topic")
	m.regWrites.WithLabelValues("ok")
	m.regWrites.WithLabelValues("error")
	reg.MustRegister(m.linesRead, m.published, m.acked, m.retried, m.dropped, m.harvesters, m.bytesBehind, m.regWrites)
	return m
}

// watch adds gauges that read the queue and the registry when scraped.
func (m *metrics) watch(env *cli.Env, q *output.Queue, r *registry.Registry) {
	if env.Telemetry == nil {
		return
	}
	env.Telemetry.Registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shipper_queue_events",
			Help: "Events read and not yet acknowledged."}, func() float64 { n, _ := q.Len(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shipper_queue_bytes",
			Help: "Bytes of events read and not yet acknowledged."}, func() float64 { _, b := q.Len(); return float64(b) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "shipper_registry_files",
			Help: "Files the registry knows."}, func() float64 { return float64(r.Len()) }),
	)
}

func (m *metrics) inputHooks() input.Hooks {
	return input.Hooks{
		LinesRead:  func(n int) { m.linesRead.Add(float64(n)) },
		Filtered:   func() { m.dropped.WithLabelValues("filter").Inc() },
		Harvesters: func(d int) { m.harvesters.Add(float64(d)) },
		BytesBehind: func(path string, n int64) {
			if n < 0 {
				m.bytesBehind.DeleteLabelValues(path)
				return
			}
			m.bytesBehind.WithLabelValues(path).Set(float64(n))
		},
	}
}

func (m *metrics) outputHooks(env *cli.Env) output.Hooks {
	return output.Hooks{
		Published: func(n int) { m.published.Add(float64(n)) },
		Acked:     func(n int) { m.acked.Add(float64(n)) },
		Retried:   func(n int) { m.retried.Add(float64(n)) },
		Dropped:   func(reason string) { m.dropped.WithLabelValues(reason).Inc() },
		Health:    func(err error) { env.Readiness.Set("kafka", err) },
	}
}

func (m *metrics) registryHooks() registry.Hooks {
	return registry.Hooks{Written: func(err error, _ time.Duration) {
		if err != nil {
			m.regWrites.WithLabelValues("error").Inc()
			return
		}
		m.regWrites.WithLabelValues("ok").Inc()
	}}
}
