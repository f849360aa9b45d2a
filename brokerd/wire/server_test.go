package wire

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// echoHandler serves ApiVersions v0–v3, Metadata v0–v12 (an empty
// cluster of itself) and Produce v3–v8 (every partition answered without
// error), enough to drive the wire layer with real clients.
type echoHandler struct {
	addr    string
	handled atomic.Int64
	// finished counts the calls of Handle that returned.
	finished atomic.Int64
	block    chan struct{} // if set, Metadata waits for it or ctx
	// panicTopic, if set, makes a Metadata request naming it panic.
	panicTopic string
	// inline records, by correlation id, whether a Produce was handled
	// by the connection's read loop.
	inline sync.Map
}

func (h *echoHandler) Versions(key int16) (int16, int16, bool) {
	switch key {
	case 18:
		return 0, 3, true
	case 3:
		return 0, 12, true
	case 0:
		return 3, 8, true
	}
	return 0, 0, false
}

func (h *echoHandler) Handle(ctx context.Context, c *Conn, hd Header, req kmsg.Request) (kmsg.Response, error) {
	h.handled.Add(1)
	defer h.finished.Add(1)
	switch r := req.(type) {
	case *kmsg.ApiVersionsRequest:
		resp := r.ResponseKind().(*kmsg.ApiVersionsResponse)
		for _, k := range []int16{3, 18} {
			lo, hi, _ := h.Versions(k)
			resp.ApiKeys = append(resp.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: lo, MaxVersion: hi})
		}
		return resp, nil
	case *kmsg.ProduceRequest:
		stack := make([]byte, 8<<10)
		stack = stack[:runtime.Stack(stack, false)]
		h.inline.Store(hd.CorrelationID, bytes.Contains(stack, []byte("(*Conn).readLoop")))
		resp := r.ResponseKind().(*kmsg.ProduceResponse)
		for _, t := range r.Topics {
			rt := kmsg.ProduceResponseTopic{Topic: t.Topic}
			for _, p := range t.Partitions {
				rt.Partitions = append(rt.Partitions, kmsg.ProduceResponseTopicPartition{Partition: p.Partition})
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil
	case *kmsg.MetadataRequest:
		for _, t := range r.Topics {
			if h.panicTopic != "" && t.Topic != nil && *t.Topic == h.panicTopic {
				parts := make([]int32, len(r.Topics))
				_ = parts[len(r.Topics)] // out of range, like a stale partition number
			}
		}
		if h.block != nil {
			select {
			case <-h.block:
			case <-ctx.Done():
			}
		}
		resp := r.ResponseKind().(*kmsg.MetadataResponse)
		host, port, _ := net.SplitHostPort(h.addr)
		var p int32
		for _, ch := range port {
			p = p*10 + int32(ch-'0')
		}
		resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: 1, Host: host, Port: p}}
		resp.ControllerID = 1
		return resp, nil
	}
	return nil, errors.New("unexpected request")
}

func startServer(t *testing.T, h *echoHandler, max int32) (*Server, string) {
	t.Helper()
	s := &Server{Handler: h, MaxRequestBytes: max}
	return s, serveOn(t, s, h)
}

// serveOn starts s, whose handler is h, on a loopback port and shuts it
// down when the test ends. It returns the address.
func serveOn(t *testing.T, s *Server, h *echoHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	go s.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return h.addr
}

// frame encodes a request with header v1 or v2 as a client would.
func frame(req kmsg.Request, version int16, corr int32) []byte {
	req.SetVersion(version)
	b := []byte{0, 0, 0, 0}
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, 4)
	b = append(b, "test"...)
	if req.IsFlexible() {
		b = append(b, 0)
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// readResponse reads one response frame and returns its correlation id and
// body (after the header, whose tag byte is skipped when flexible).
func readResponse(t *testing.T, r io.Reader, flexibleHeader bool) (int32, []byte) {
	t.Helper()
	var sz [4]byte
	if _, err := io.ReadFull(r, sz[:]); err != nil {
		t.Fatalf("read size: %v", err)
	}
	buf := make([]byte, binary.BigEndian.Uint32(sz[:]))
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatalf("read frame: %v", err)
	}
	corr := int32(binary.BigEndian.Uint32(buf))
	body := buf[4:]
	if flexibleHeader {
		body = body[1:]
	}
	return corr, body
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

func TestRealClientTalks(t *testing.T) {
	_, addr := startServer(t, &echoHandler{}, 0)
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// franz-go negotiates with ApiVersions v3 (flexible request, v0 response
	// header), then sends Metadata at the highest common version (v12,
	// flexible, response header v1).
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Brokers) != 1 || resp.Brokers[0].NodeID != 1 || resp.GetVersion() != 12 {
		t.Fatalf("metadata response %+v", resp)
	}
}

func TestPipelinedResponsesInOrder(t *testing.T) {
	_, addr := startServer(t, &echoHandler{}, 0)
	c := dial(t, addr)
	var out []byte
	for i := int32(0); i < 50; i++ {
		if i%2 == 0 {
			out = append(out, frame(kmsg.NewPtrApiVersionsRequest(), 3, i)...)
		} else {
			out = append(out, frame(kmsg.NewPtrMetadataRequest(), int16(i%13), i)...)
		}
	}
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for i := int32(0); i < 50; i++ {
		flexible := i%2 == 1 && i%13 >= 9
		corr, body := readResponse(t, br, flexible)
		if corr != i {
			t.Fatalf("response %d has correlation id %d", i, corr)
		}
		var resp kmsg.Response
		if i%2 == 0 {
			resp = kmsg.NewPtrApiVersionsResponse()
			resp.SetVersion(3)
		} else {
			resp = kmsg.NewPtrMetadataResponse()
			resp.SetVersion(int16(i % 13))
		}
		if err := resp.ReadFrom(body); err != nil {
			t.Fatalf("response %d does not decode: %v", i, err)
		}
	}
}

// produceFrame is a Produce v7 request for one partition, acks=1.
func produceFrame(corr int32) []byte {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = 1
	req.TimeoutMillis = 1000
	req.Topics = []kmsg.ProduceRequestTopic{{Topic: "t", Partitions: []kmsg.ProduceRequestTopicPartition{{Partition: corr % 3}}}}
	return frame(req, 7, corr)
}

// TestProduceHandledByReadLoop checks where a Produce is handled: by the
// read loop itself when nothing else is pending, by the processing
// goroutine when it is queued behind another request, and answered in
// order either way.
func TestProduceHandledByReadLoop(t *testing.T) {
	// A client of a server with handler h, and what it reads with.
	type client struct {
		h  *echoHandler
		c  net.Conn
		br *bufio.Reader
	}
	connect := func(h *echoHandler) client {
		_, addr := startServer(t, h, 0)
		c := dial(t, addr)
		return client{h, c, bufio.NewReader(c)}
	}
	inline := func(cl client, corr int32) bool {
		t.Helper()
		v, ok := cl.h.inline.Load(corr)
		if !ok {
			t.Fatalf("Produce %d was not handled", corr)
		}
		return v.(bool)
	}
	expect := func(cl client, corr int32, resp kmsg.Response, version int16) {
		t.Helper()
		got, body := readResponse(t, cl.br, false)
		if got != corr {
			t.Fatalf("response with correlation id %d, want %d", got, corr)
		}
		resp.SetVersion(version)
		if err := resp.ReadFrom(body); err != nil {
			t.Fatalf("response %d does not decode: %v", corr, err)
		}
	}

	// Alone on an idle connection: the read loop handles it.
	a := connect(&echoHandler{})
	a.c.Write(produceFrame(1))
	pr := kmsg.NewPtrProduceResponse()
	expect(a, 1, pr, 7)
	if len(pr.Topics) != 1 || pr.Topics[0].Topic != "t" || len(pr.Topics[0].Partitions) != 1 || pr.Topics[0].Partitions[0].Partition != 1 {
		t.Fatalf("Produce response %+v", pr)
	}
	if !inline(a, 1) {
		t.Error("a Produce on an idle connection was handed to the processing goroutine")
	}

	// A pipelined mix: every response in order.
	var out []byte
	for i := int32(10); i < 70; i++ {
		switch i % 3 {
		case 0:
			out = append(out, produceFrame(i)...)
		case 1:
			out = append(out, frame(kmsg.NewPtrMetadataRequest(), 7, i)...)
		default:
			out = append(out, frame(kmsg.NewPtrApiVersionsRequest(), 2, i)...)
		}
	}
	a.c.Write(out)
	for i := int32(10); i < 70; i++ {
		switch i % 3 {
		case 0:
			expect(a, i, kmsg.NewPtrProduceResponse(), 7)
		case 1:
			expect(a, i, kmsg.NewPtrMetadataResponse(), 7)
		default:
			expect(a, i, kmsg.NewPtrApiVersionsResponse(), 2)
		}
	}

	// Behind a Metadata request that waits: queued, not answered first.
	b := connect(&echoHandler{block: make(chan struct{})})
	b.c.Write(append(frame(kmsg.NewPtrMetadataRequest(), 7, 2), produceFrame(3)...))
	b.c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := b.br.Peek(1); err == nil {
		t.Fatal("a response arrived while the first request was still being handled")
	}
	b.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	close(b.h.block)
	expect(b, 2, kmsg.NewPtrMetadataResponse(), 7)
	expect(b, 3, kmsg.NewPtrProduceResponse(), 7)
	if inline(b, 3) {
		t.Error("a Produce queued behind another request was handled by the read loop")
	}
}

func TestUnsupportedApiVersionsAnswersV0(t *testing.T) {
	_, addr := startServer(t, &echoHandler{}, 0)
	c := dial(t, addr)
	// A newer client asks with ApiVersions v9, which is not served.
	c.Write(frame(kmsg.NewPtrApiVersionsRequest(), 4, 7))
	corr, body := readResponse(t, c, false)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	if err := resp.ReadFrom(body); err != nil || corr != 7 {
		t.Fatalf("corr %d err %v", corr, err)
	}
	if resp.ErrorCode != 35 || len(resp.ApiKeys) != 3 || resp.ApiKeys[2].ApiKey != 18 || resp.ApiKeys[2].MaxVersion != 3 {
		t.Fatalf("response %+v", resp)
	}
	// The connection stays usable.
	c.Write(frame(kmsg.NewPtrApiVersionsRequest(), 3, 8))
	if corr, _ := readResponse(t, c, false); corr != 8 {
		t.Fatalf("corr %d", corr)
	}
}

func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	if _, err := c.Read(b[:]); err == nil {
		t.Fatal("connection still open")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("connection not closed")
	}
}

func TestBadFramesCloseOnlyThatConnection(t *testing.T) {
	h := &echoHandler{}
	_, addr := startServer(t, h, 1<<20)
	good := dial(t, addr)
	cases := map[string][]byte{
		"oversized":        {0x00, 0x20, 0x00, 0x00, 0, 3},
		"negative size":    {0xff, 0xff, 0xff, 0xf0},
		"tiny":             {0, 0, 0, 2, 0, 3},
		"unknown api":      frame(kmsg.NewPtrLeaderAndISRRequest(), 0, 1),
		"unsupported ver":  frame(kmsg.NewPtrMetadataRequest(), 12, 1)[:0],
		"bad client id":    {0, 0, 0, 10, 0, 3, 0, 1, 0, 0, 0, 1, 0x7f, 0},
		"truncated body":   append([]byte{0, 0, 0, 14, 0, 3, 0, 1, 0, 0, 0, 1, 0, 0}, 0, 0, 0, 5),
		"garbage metadata": {0, 0, 0, 16, 0, 3, 0, 4, 0, 0, 0, 1, 0, 0, 0x7f, 0xff, 0xff, 0xff, 1, 2},
	}
	// Metadata v13 does not exist for this handler.
	cases["unsupported ver"] = frame(kmsg.NewPtrMetadataRequest(), 12, 1)
	binary.BigEndian.PutUint16(cases["unsupported ver"][6:], 13)
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			c := dial(t, addr)
			c.Write(b)
			expectClosed(t, c)
		})
	}
	// The untouched connection still works.
	good.Write(frame(kmsg.NewPtrMetadataRequest(), 1, 99))
	if corr, _ := readResponse(t, good, false); corr != 99 {
		t.Fatalf("corr %d", corr)
	}
}

// TestHugeTagCountRefused sends a Metadata v12 request whose body ends
// in a tagged-field count of 2^32-1 with nothing after it. kmsg before
// v1.15.1 looped that many times after the input ran out (seconds, longer
// than expectClosed waits under the race detector); now it stops there,
// so the request is refused as soon as it is read and the connection
// closed, while another connection is served.
func TestHugeTagCountRefused(t *testing.T) {
	h := &echoHandler{}
	s := &Server{Handler: h}
	serveOn(t, s, h)
	// Header v2: key 3, version 12, correlation 1, null client id, no
	// tags; body: topics (compact array, null), allow auto create, include
	// authorized ops, then the body's tag count, the largest uvarint.
	body := []byte{0, 3, 0, 12, 0, 0, 0, 1, 0xff, 0xff, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}
	bad := dial(t, h.addr)
	bad.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...))
	expectClosed(t, bad)
	if n := h.handled.Load(); n != 0 {
		t.Fatalf("%d requests handled; the truncated one must not be", n)
	}
	good := dial(t, h.addr)
	good.Write(frame(kmsg.NewPtrApiVersionsRequest(), 3, 2))
	if corr, _ := readResponse(t, good, false); corr != 2 {
		t.Fatalf("corr %d", corr)
	}
}

func TestShutdownFinishesInFlight(t *testing.T) {
	h := &echoHandler{block: make(chan struct{})}
	s, addr := startServer(t, h, 0)
	c := dial(t, addr)
	c.Write(frame(kmsg.NewPtrMetadataRequest(), 1, 5))
	deadline := time.Now().Add(10 * time.Second)
	for h.handled.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	done := make(chan error)
	go func() { done <- s.Shutdown(context.Background()) }()
	// The blocked handler sees its context end and answers; the answer
	// reaches the client before the connection closes.
	if corr, _ := readResponse(t, c, false); corr != 5 {
		t.Fatalf("corr %d", corr)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	expectClosed(t, c)
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("still accepting after shutdown")
	}
}

// TestManyIdleConnections opens 2000 connections, each of which has had a
// request answered, and checks that they are cheap while idle: write and
// encoding buffers go back to a pool, so each costs the server well under
// the 32 KiB write buffer it uses while busy.
func TestManyIdleConnections(t *testing.T) {
	_, addr := startServer(t, &echoHandler{}, 0)
	const n = 2000
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse
	}
	before := heap()
	conns := make([]net.Conn, 0, n)
	for i := 0; i < n; i++ {
		c := dial(t, addr)
		c.Write(frame(kmsg.NewPtrApiVersionsRequest(), 3, int32(i)))
		if corr, _ := readResponse(t, c, false); corr != int32(i) {
			t.Fatalf("connection %d: correlation id %d", i, corr)
		}
		conns = append(conns, c)
	}
	// Both ends of every connection are in this process, so this is an
	// upper bound on the server's share.
	perConn := (int64(heap()) - int64(before)) / n
	t.Logf("heap per idle connection (client and server side): %d bytes", perConn)
	if perConn > 16<<10 {
		t.Fatalf("each idle connection holds %d bytes of heap; want well under the 32 KiB write buffer", perConn)
	}
	last := conns[len(conns)-1]
	last.Write(frame(kmsg.NewPtrApiVersionsRequest(), 3, 1))
	if corr, _ := readResponse(t, last, false); corr != 1 {
		t.Fatal("no answer with many idle connections open")
	}
}

// TestSocketBuffers: SendBufferBytes and ReceiveBufferBytes are set on
// every accepted connection (Linux reports twice the size asked for), and
// without them the kernel's sizes stay.
func TestSocketBuffers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		snd, rcv int
	}{{"set", 102400, 50000}, {"kernel's", 0, -1}} {
		t.Run(tc.name, func(t *testing.T) {
			h := &echoHandler{}
			s := &Server{Handler: h, SendBufferBytes: tc.snd, ReceiveBufferBytes: tc.rcv}
			c := dial(t, serveOn(t, s, h))
			c.Write(frame(kmsg.NewPtrApiVersionsRequest(), 3, 1))
			readResponse(t, c, false)
			s.mu.Lock()
			var snd, rcv int
			for sc := range s.conns {
				raw, err := sc.nc.(*net.TCPConn).SyscallConn()
				if err != nil {
					t.Fatal(err)
				}
				raw.Control(func(fd uintptr) {
					snd, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
					rcv, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
				})
			}
			s.mu.Unlock()
			if tc.snd > 0 && (snd != 2*tc.snd || rcv != 2*tc.rcv) {
				t.Fatalf("SO_SNDBUF %d, SO_RCVBUF %d; want %d and %d", snd, rcv, 2*tc.snd, 2*tc.rcv)
			}
			if tc.snd <= 0 && (snd == 0 || rcv == 0 || snd == 2*102400 || rcv == 2*50000) {
				t.Fatalf("SO_SNDBUF %d, SO_RCVBUF %d: not the kernel's defaults", snd, rcv)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(frame(kmsg.NewPtrApiVersionsRequest(), 3, 1)[4:])
	f.Add(frame(kmsg.NewPtrMetadataRequest(), 12, 1)[4:])
	f.Add(frame(kmsg.NewPtrMetadataRequest(), 0, 1)[4:])
	f.Add([]byte{0, 3, 0, 9, 0, 0, 0, 1, 0, 0, 1, 2, 3})
	c := &Conn{srv: &Server{Handler: &echoHandler{}}}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := c.decode(b)
		if err == nil && d.req == nil && d.h.APIKey != apiVersionsKey {
			t.Fatal("accepted a request without decoding it")
		}
	})
}
