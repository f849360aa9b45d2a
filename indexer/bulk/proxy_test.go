package bulk

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// faultProxy stands in front of the real Elasticsearch node and injects
// faults: refused connections, connections cut before an answer, whole
// requests answered with a status, or bulk items whose real result is
// replaced by a 429. Faults apply to _bulk requests only.
type faultProxy struct {
	t    *testing.T
	addr string
	rp   *httputil.ReverseProxy

	mu sync.Mutex
	ln net.Listener
	// fault is "" (pass), "cut", or a status code for whole requests.
	fault string
	// faultsLeft is how many requests get the fault; -1 means all.
	faultsLeft int
	// itemStatus, when set, rewrites the first item of each passed bulk
	// response to this status, itemFaultsLeft times.
	itemStatus     int
	itemFaultsLeft int
	// maxBody answers 413 to bulk requests larger than this, when > 0.
	maxBody int
	srv     *http.Server
	bulks   int // bulk requests that reached the node
	// gate, when set, holds every bulk request that is to reach the node
	// until the test takes its item count from gate and answers on it.
	gate chan gated
}

// gated is a bulk request held at the gate: its number of items, and the
// channel on which the test lets it through.
type gated struct {
	items int
	pass  chan struct{}
}

func newFaultProxy(t *testing.T, target string) *faultProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{t: t, addr: ln.Addr().String(), ln: ln}
	p.rp = &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		r.Out.Host = r.In.Host
		// Answers are read and rewritten here, so ask the node for
		// plain ones.
		r.Out.Header.Del("Accept-Encoding")
	}}
	p.rp.ModifyResponse = p.modify
	p.srv = &http.Server{Handler: p}
	go p.srv.Serve(ln)
	t.Cleanup(func() { p.srv.Close() })
	return p
}

func (p *faultProxy) URL() string { return "http://" + p.addr }

// set installs a fault for the next n bulk requests (-1: until changed).
func (p *faultProxy) set(fault string, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fault, p.faultsLeft = fault, n
}

func (p *faultProxy) setItemFault(status, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.itemStatus, p.itemFaultsLeft = status, n
}

// hold makes every bulk request wait at the returned gate until the test
// lets it through (see next).
func (p *faultProxy) hold() chan gated {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gate = make(chan gated)
	return p.gate
}

// release lets bulk requests through without holding them again, those
// waiting at the gate now included.
func (p *faultProxy) release() {
	p.mu.Lock()
	gate := p.gate
	p.gate = nil
	p.mu.Unlock()
	if gate == nil {
		return
	}
	go func() {
		for {
			select {
			case g := <-gate:
				close(g.pass)
			case <-p.t.Context().Done():
				return
			}
		}
	}()
}

// next returns the next bulk request held at gate; the test lets it
// through by closing its pass.
func (p *faultProxy) next(t *testing.T, gate chan gated) gated {
	t.Helper()
	select {
	case g := <-gate:
		return g
	case <-time.After(waitTime):
		t.Fatalf("no bulk request reached the proxy within %v", waitTime)
		return gated{}
	}
}

// down closes the listener: connections are refused until up.
func (p *faultProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.srv.Close()
}

func (p *faultProxy) up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy cannot listen again on %s: %v", p.addr, err)
	}
	p.ln = ln
	p.srv = &http.Server{Handler: p}
	go p.srv.Serve(ln)
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/_bulk") {
		p.rp.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	p.mu.Lock()
	fault := ""
	if p.faultsLeft != 0 {
		fault = p.fault
		if p.faultsLeft > 0 {
			p.faultsLeft--
		}
	}
	if p.maxBody > 0 && len(body) > p.maxBody {
		fault = "413"
	}
	if fault == "" {
		p.bulks++
	}
	gate := p.gate
	p.mu.Unlock()
	if fault == "" && gate != nil {
		g := gated{items: bytes.Count(body, []byte("\n")) / 2, pass: make(chan struct{})}
		select {
		case gate <- g:
			<-g.pass
		case <-r.Context().Done():
			return
		}
	}
	switch fault {
	case "":
		p.rp.ServeHTTP(w, r)
	case "cut":
		hj, ok := w.(http.Hijacker)
		if !ok {
			p.t.Error("proxy: cannot hijack")
			return
		}
		c, _, err := hj.Hijack()
		if err == nil {
			c.Close()
		}
	default:
		code, _ := strconv.Atoi(fault)
		w.Header().Set("X-Elastic-Product", "Elasticsearch")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		w.Write([]byte(`{"error":{"type":"injected","reason":"fault injected by the test proxy"},"status":` + fault + `}`))
	}
}

// modify rewrites the first item of a bulk answer when an item fault is set.
func (p *faultProxy) modify(resp *http.Response) error {
	if !strings.HasSuffix(resp.Request.URL.Path, "/_bulk") || resp.StatusCode != 200 {
		return nil
	}
	p.mu.Lock()
	status := 0
	if p.itemFaultsLeft != 0 {
		status = p.itemStatus
		if p.itemFaultsLeft > 0 {
			p.itemFaultsLeft--
		}
	}
	p.mu.Unlock()
	if status == 0 {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return err
	}
	items, _ := m["items"].([]any)
	if len(items) > 0 {
		items[0] = map[string]any{"create": map[string]any{"status": status, "error": map[string]any{"type": "es_rejected_execution_exception", "reason": "injected"}}}
		m["errors"] = true
	}
	body, _ = json.Marshal(m)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}
