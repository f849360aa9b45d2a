package wire

import (
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/internal/syncbuf"
)

// waitUntil polls cond every few milliseconds until it holds, failing the
// test with what after within.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", within, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestHandlerPanicClosesOnlyItsConnection makes the handler panic on one
// connection's request: that connection is closed without an answer (nor
// one for the request pipelined after it), the panic is counted and logged
// once with its stack, and other connections, old and new, are served.
func TestHandlerPanicClosesOnlyItsConnection(t *testing.T) {
	h := &echoHandler{panicTopic: "boom"}
	var logs syncbuf.Buffer
	var panics, panicErrors atomic.Int64
	s := &Server{
		Handler: h,
		Log:     slog.New(slog.NewTextHandler(&logs, nil)),
		Hooks: Hooks{
			Panic: func(key, version int16) {
				if key == 3 && version == 1 {
					panics.Add(1)
				}
			},
			Request: func(_, _ int16, _ time.Duration, err error) {
				if errors.Is(err, ErrHandlerPanic) {
					panicErrors.Add(1)
				}
			},
		},
	}
	addr := serveOn(t, s, h)
	good := dial(t, addr)
	good.Write(frame(kmsg.NewPtrMetadataRequest(), 1, 1))
	if corr, _ := readResponse(t, good, false); corr != 1 {
		t.Fatalf("before the panic: correlation id %d, want 1", corr)
	}

	bad := dial(t, addr)
	req := kmsg.NewPtrMetadataRequest()
	topic := "boom"
	req.Topics = []kmsg.MetadataRequestTopic{{Topic: &topic}}
	bad.Write(append(frame(req, 1, 2), frame(kmsg.NewPtrApiVersionsRequest(), 3, 3)...))
	expectClosed(t, bad)
	if got := panics.Load(); got != 1 {
		t.Fatalf("Panic hook called %d times, want 1", got)
	}
	if got := panicErrors.Load(); got != 1 {
		t.Fatalf("Request hook saw ErrHandlerPanic %d times, want 1", got)
	}

	good.Write(frame(kmsg.NewPtrMetadataRequest(), 1, 4))
	if corr, _ := readResponse(t, good, false); corr != 4 {
		t.Fatalf("after the panic: correlation id %d, want 4", corr)
	}
	fresh := dial(t, addr)
	fresh.Write(frame(kmsg.NewPtrApiVersionsRequest(), 3, 5))
	if corr, _ := readResponse(t, fresh, false); corr != 5 {
		t.Fatalf("new connection after the panic: correlation id %d, want 5", corr)
	}

	out := logs.String()
	if got := strings.Count(out, "panicked"); got != 1 {
		t.Fatalf("the panic is logged %d times, want once; log:\n%s", got, out)
	}
	if got := strings.Count(out, "(*echoHandler).Handle"); got != 1 {
		t.Fatalf("the handler's frame appears %d times in the log, want once (in the stack); log:\n%s", got, out)
	}
}

// TestDisconnectEndsHandlerContext: a client that disconnects while its
// request waits (as a long poll or a JoinGroup does) ends the handler's
// context, so the handler returns instead of waiting on for nobody.
func TestDisconnectEndsHandlerContext(t *testing.T) {
	h := &echoHandler{block: make(chan struct{})} // never closed
	_, addr := startServer(t, h, 0)
	c := dial(t, addr)
	c.Write(frame(kmsg.NewPtrMetadataRequest(), 1, 1))
	waitUntil(t, 10*time.Second, "the request never reached the handler", func() bool { return h.handled.Load() == 1 })
	c.Close()
	waitUntil(t, 10*time.Second, "the handler is still waiting after its client disconnected", func() bool { return h.finished.Load() == 1 })

	// Another connection's handler context is unaffected: its request
	// waits until its own client goes.
	other := dial(t, addr)
	other.Write(frame(kmsg.NewPtrMetadataRequest(), 1, 2))
	waitUntil(t, 10*time.Second, "the second request never reached the handler", func() bool { return h.handled.Load() == 2 })
	third := dial(t, addr)
	third.Write(frame(kmsg.NewPtrApiVersionsRequest(), 3, 3))
	if corr, _ := readResponse(t, third, false); corr != 3 {
		t.Fatalf("correlation id %d, want 3", corr)
	}
	if got := h.finished.Load(); got != 2 {
		t.Fatalf("%d handler calls finished, want 2 (the first and the ApiVersions; the second still waits)", got)
	}
}
