package devstack

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"logpipe/indexer/httpdlog"
)

// TestHTTPDLogParses checks the generated lines against the indexer's own
// parser: access lines are combined-format lines at the given time with the
// marker in the URL, error lines 2.4 lines at that time with the marker in
// the message, and a trace's first line is such an error line while the
// others do not start with "[".
func TestHTTPDLogParses(t *testing.T) {
	g := NewHTTPDLog(1)
	zone := time.FixedZone("", -7*3600)
	at := time.Date(2031, 3, 9, 23, 59, 58, 123456000, time.UTC)
	for i := range 2000 {
		marker := fmt.Sprintf("lp%06d", i)
		line := g.Access(at.In(zone), marker)
		var a httpdlog.Access
		if err := httpdlog.ParseAccess(line, &a); err != nil {
			t.Fatalf("access line %q: %v", line, err)
		}
		if a.Format != httpdlog.Combined || !a.Timestamp.Equal(at.Truncate(time.Second)) || !strings.Contains(a.URL, "/"+marker) ||
			a.Method == "" || a.StatusCode < 100 || a.SourceIP == "" {
			t.Fatalf("access line %q: got %+v, want a combined line at %v with %s in its URL", line, a, at, marker)
		}

		line = g.Error(at, marker)
		var e httpdlog.Error
		if err := httpdlog.ParseError(line, time.UTC, &e); err != nil {
			t.Fatalf("error line %q: %v", line, err)
		}
		if e.Format != httpdlog.Error24 || !e.Timestamp.Equal(at) || !strings.Contains(e.Message, "/"+marker) ||
			e.Level == "" || e.PID == 0 || e.SourceIP == "" {
			t.Fatalf("error line %q: got %+v, want a 2.4 line at %v with %s in its message", line, e, at, marker)
		}

		trace := strings.Split(g.ErrorTrace(at, marker), "\n")
		if err := httpdlog.ParseError(trace[0], time.UTC, &e); err != nil || len(trace) < 3 {
			t.Fatalf("trace %q: first line %v, %d lines, want an error line and at least two more", trace, err, len(trace))
		}
		for _, l := range trace[1:] {
			if strings.HasPrefix(l, "[") {
				t.Fatalf("trace %q: continuation line %q starts with [", trace, l)
			}
		}
	}
}

// TestFreePortBlock checks that blocks are consecutive, listenable, and
// never overlap each other or FreePort's ports.
func TestFreePortBlock(t *testing.T) {
	given := map[int]bool{}
	for range 50 {
		single, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		given[single] = true
		base, err := FreePortBlock(6)
		if err != nil {
			t.Fatal(err)
		}
		for p := base; p < base+6; p++ {
			if given[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			given[p] = true
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				t.Fatalf("port %d of block %d: %v", p, base, err)
			}
			l.Close()
		}
	}
	if _, err := FreePortBlock(0); err == nil {
		t.Error("FreePortBlock(0): got no error, want one")
	}
}
