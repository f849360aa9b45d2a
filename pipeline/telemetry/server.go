package telemetry

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"
)

// HTTPConfig is the `http` section of every binary's config, as Filebeat
// names it: where /metrics, /healthz and /readyz are served.
type HTTPConfig struct {
	// Enabled turns the server on.
	Enabled bool `yaml:"enabled"`
	// Host is the address to listen on (default 127.0.0.1).
	Host string `yaml:"host"`
	// Port is the TCP port; 0 picks a free one.
	Port int `yaml:"port"`
	// Pprof also serves Go's profiler under /debug/pprof/ (off by default:
	// profiles expose internals, so only turn it on for a diagnosis).
	Pprof bool `yaml:"pprof"`
}

// Addr returns host:port.
func (c HTTPConfig) Addr() string {
	h := c.Host
	if h == "" {
		h = "127.0.0.1"
	}
	return net.JoinHostPort(h, strconv.Itoa(c.Port))
}

// Readiness collects named readiness conditions. The zero value is ready;
// a condition set to a non-nil error makes it not ready until cleared.
// It is safe for concurrent use.
type Readiness struct {
	mu   sync.Mutex
	errs map[string]error
}

// Set records the state of one condition; nil means fine.
func (r *Readiness) Set(name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		delete(r.errs, name)
		return
	}
	if r.errs == nil {
		r.errs = map[string]error{}
	}
	r.errs[name] = err
}

// Err returns nil when ready, else one error naming every failed condition.
func (r *Readiness) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) == 0 {
		return nil
	}
	names := make([]string, 0, len(r.errs))
	for n := range r.errs {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + ": " + r.errs[n].Error()
	}
	return errors.New(strings.Join(parts, "; "))
}

// Server serves /metrics from a Prometheus registry, /healthz (200 while the
// process runs) and /readyz (200 when Readiness is ready, else 503 with the
// reasons).
type Server struct {
	// Registry holds the binary's metrics, plus Go runtime and process
	// collectors registered by NewServer.
	Registry  *prometheus.Registry
	Readiness *Readiness

	srv   *http.Server
	mux   *http.ServeMux
	ln    net.Listener
	extra atomic.Pointer[func(w *bufio.Writer)]
}

// NewServer returns a server with a fresh registry; call Start to listen.
func NewServer() *Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Server{Registry: reg, Readiness: &Readiness{}}
	mux := http.NewServeMux()
	prom := promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		if extra := s.extra.Load(); extra != nil {
			s.serveText(w, *extra)
			return
		}
		prom.ServeHTTP(w, r)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := s.Readiness.Err(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	s.mux = mux
	return s
}

// AppendText has /metrics write more series after the registry's, with
// write, in Prometheus's text format (which /metrics then always answers
// in). It is for families of one series per partition or so, which would
// cost the registry several objects per series on every scrape: write
// appends its lines to a buffer and allocates next to nothing.
func (s *Server) AppendText(write func(w *bufio.Writer)) { s.extra.Store(&write) }

// serveText answers /metrics in the text format: the registry's families,
// then what extra writes.
func (s *Server) serveText(w http.ResponseWriter, extra func(w *bufio.Writer)) {
	// As promhttp's default: a collector's failure fails the scrape,
	// rather than go unseen behind the series that were gathered.
	mfs, err := s.Registry.Gather()
	if err != nil {
		http.Error(w, "gathering metrics: "+err.Error(), http.StatusInternalServerError)
		return
	}
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	w.Header().Set("Content-Type", string(format))
	bw := bufio.NewWriterSize(w, 64<<10)
	enc := expfmt.NewEncoder(bw, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return
		}
	}
	extra(bw)
	_ = bw.Flush()
}

// EnablePprof serves net/http/pprof's profiles under /debug/pprof/. Call it
// before Start.
func (s *Server) EnablePprof() {
	s.mux.HandleFunc("/debug/pprof/", pprof.Index)
	s.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

// Start listens on addr and serves in the background.
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("telemetry: listen %s: %w", addr, err)
	}
	s.ln = ln
	go func() { _ = s.srv.Serve(ln) }()
	return nil
}

// Addr returns the address the server listens on, after Start.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops accepting requests and waits for those in flight, until
// ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.srv.Shutdown(ctx)
}
