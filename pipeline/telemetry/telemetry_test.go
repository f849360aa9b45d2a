package telemetry

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServer(t *testing.T) {
	s := NewServer()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "logpipe_test_lines_total", Help: "test"})
	s.Registry.MustRegister(c)
	c.Add(3)
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	base := "http://" + s.Addr()

	if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "logpipe_test_lines_total 3") || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("/metrics %d:\n%s", code, body)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Fatalf("/healthz %d", code)
	}
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz %d", code)
	}
	s.Readiness.Set("elasticsearch", errors.New("connection refused"))
	if code, body := get(t, base+"/readyz"); code != 503 || !strings.Contains(body, "elasticsearch: connection refused") {
		t.Fatalf("/readyz %d %q", code, body)
	}
	s.Readiness.Set("elasticsearch", nil)
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz after recovery %d", code)
	}
	if code, _ := get(t, base+"/debug/pprof/"); code != 404 {
		t.Fatalf("/debug/pprof/ served without EnablePprof: %d", code)
	}
}

func TestServerPprof(t *testing.T) {
	s := NewServer()
	s.EnablePprof()
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	if code, body := get(t, "http://"+s.Addr()+"/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile") {
		t.Fatalf("/debug/pprof/goroutine %d:\n%s", code, body)
	}
}

func TestLogger(t *testing.T) {
	var buf bytes.Buffer
	l, err := NewLogger(LogConfig{Level: "warn", Format: "json"}, "shipper", &buf)
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown", "file", "/a")
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("not one JSON record: %q", buf.String())
	}
	if m["msg"] != "shown" || m["service"] != "shipper" || m["file"] != "/a" {
		t.Fatalf("record %v", m)
	}
	if _, err := NewLogger(LogConfig{Level: "loud"}, "x", &buf); err == nil {
		t.Fatal("bad level accepted")
	}
	c := LogConfig{Format: "xml"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "format") {
		t.Fatalf("Validate = %v", err)
	}
}

// TestServerAppendText: with AppendText, /metrics answers in the text
// format whatever the scraper asks (protobuf, gzip), the registry's
// families first and then the appended lines, and the whole parses.
func TestServerAppendText(t *testing.T) {
	s := NewServer()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "logpipe_test_lines_total", Help: "test"})
	s.Registry.MustRegister(c)
	c.Add(3)
	s.AppendText(func(w *bufio.Writer) {
		w.WriteString("# HELP logpipe_test_extra An appended family.\n# TYPE logpipe_test_extra gauge\nlogpipe_test_extra{partition=\"0\",topic=\"t\"} 7\n")
	})
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	req, err := http.NewRequest("GET", "http://"+s.Addr()+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/plain") || resp.Header.Get("Content-Encoding") != "" {
		t.Fatalf("/metrics: %d, Content-Type %q, Content-Encoding %q; want 200, text/plain, none", resp.StatusCode, ct, resp.Header.Get("Content-Encoding"))
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	if got := mfs["logpipe_test_lines_total"].GetMetric()[0].GetCounter().GetValue(); got != 3 {
		t.Errorf("logpipe_test_lines_total: got %v, want 3", got)
	}
	if _, ok := mfs["go_goroutines"]; !ok {
		t.Error("go_goroutines is missing")
	}
	extra := mfs["logpipe_test_extra"].GetMetric()
	if len(extra) != 1 || extra[0].GetGauge().GetValue() != 7 {
		t.Errorf("logpipe_test_extra: got %v, want one series of 7", extra)
	}
}

// failingCollector fails every collection.
type failingCollector struct{ desc *prometheus.Desc }

func (c failingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c failingCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.NewInvalidMetric(c.desc, errors.New("the source is gone"))
}

// TestServerAppendTextCollectorFails: with AppendText, a collector that
// fails makes /metrics answer 500 naming the failure, as promhttp does,
// even though other families were gathered.
func TestServerAppendTextCollectorFails(t *testing.T) {
	s := NewServer()
	s.Registry.MustRegister(failingCollector{prometheus.NewDesc("logpipe_test_failing", "fails", nil, nil)})
	s.AppendText(func(w *bufio.Writer) { w.WriteString("logpipe_test_extra 1\n") })
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	if code, body := get(t, "http://"+s.Addr()+"/metrics"); code != http.StatusInternalServerError || !strings.Contains(body, "the source is gone") {
		t.Fatalf("/metrics with a failing collector: %d %q, want 500 naming the failure", code, body)
	}
}
