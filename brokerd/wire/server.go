package wire

import (
	"bufio"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var syscallEMFILE = syscall.EMFILE

// DefaultMaxRequestBytes is Kafka's socket.request.max.bytes default.
const DefaultMaxRequestBytes = 100 << 20

// Handler serves decoded requests. Handle is called from one goroutine per
// connection, one request at a time, in the order the requests arrived; its
// response is written before the next request of that connection is
// handled. A nil response with a nil error sends nothing (Produce with
// acks=0). A non-nil error closes the connection: use it only where Kafka
// would drop the client too; problems of a partition or group go back
// inside the response as Kafka error codes. A panic closes the connection
// too, and only it.
//
// The byte slices of a Produce request (its record batches, unknown
// tagged fields) point into a buffer that is reused once Handle returns
// without error: a handler must copy whatever of them it keeps (see
// frames.go). Strings are the request's own.
//
// The context passed to Handle is the connection's: it ends when the
// client disconnects (or sends something that closes the connection), when
// an earlier request closed the connection, and at Shutdown, so that long
// polls and group waits end with their client.
type Handler interface {
	// Versions returns the range of versions served for key; ok is false
	// for an API that is not served at all.
	Versions(key int16) (min, max int16, ok bool)
	// Handle serves one request. req has its version set.
	Handle(ctx context.Context, c *Conn, h Header, req kmsg.Request) (kmsg.Response, error)
}

// Hooks are optional callbacks for metrics. Nil fields are skipped. They
// run on connection goroutines and must not block.
type Hooks struct {
	ConnOpened func()
	ConnClosed func()
	// Request is called after each request with its handling time and the
	// error that closed the connection, if any.
	Request func(key, version int16, took time.Duration, err error)
	// Panic is called when handling a request panicked; the connection is
	// closed and Request is called too, with an ErrHandlerPanic error.
	Panic func(key, version int16)
}

// Server accepts Kafka protocol connections and dispatches their requests.
// Set the fields before Serve; do not change them afterwards.
type Server struct {
	Handler Handler
	Log     *slog.Logger
	Hooks   Hooks
	// MaxRequestBytes bounds a request frame, checked before the frame's
	// memory is allocated (socket.request.max.bytes); 0 means the default.
	MaxRequestBytes int32
	// IdleTimeout closes connections that send nothing for this long
	// (connections.max.idle.ms); 0 means never.
	IdleTimeout time.Duration
	// SendBufferBytes and ReceiveBufferBytes set each accepted TCP
	// connection's SO_SNDBUF and SO_RCVBUF (socket.send.buffer.bytes,
	// socket.receive.buffer.bytes); 0 or less leaves the kernel's
	// autotuned default. A bounded send buffer keeps a large fetch
	// response in the broker until the client reads, so the broker's
	// thread, not the client's, does the sending as the client drains.
	SendBufferBytes, ReceiveBufferBytes int

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*Conn]struct{}
	shutdown  atomic.Bool
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	once      sync.Once
}

func (s *Server) init() {
	s.once.Do(func() {
		s.listeners = map[net.Listener]struct{}{}
		s.conns = map[*Conn]struct{}{}
		s.ctx, s.cancel = context.WithCancel(context.Background())
		if s.Log == nil {
			s.Log = slog.New(slog.DiscardHandler)
		}
		if s.MaxRequestBytes <= 0 {
			s.MaxRequestBytes = DefaultMaxRequestBytes
		}
	})
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("wire: server closed")

// Serve accepts PLAINTEXT connections on ln until Shutdown. It always
// returns a non-nil error: ErrServerClosed after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	return s.ServeSecured(ln, Security{Listener: "PLAINTEXT"})
}

// ServeSecured is Serve for a listener protected as sec says.
func (s *Server) ServeSecured(ln net.Listener, sec Security) error {
	s.init()
	s.mu.Lock()
	if s.shutdown.Load() {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shutdown.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscallEMFILE) {
				// Out of descriptors or similar: wait and retry, as
				// net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.Log.Warn("accept failed; retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("wire: accept: %w", err)
		}
		backoff = 0
		s.setBuffers(nc)
		c := &Conn{srv: s, nc: nc, remote: nc.RemoteAddr().String(), sec: &sec}
		if sec.TLS != nil {
			c.nc = tls.Server(nc, sec.TLS)
		}
		c.ctx, c.cancel = context.WithCancel(s.ctx)
		s.mu.Lock()
		if s.shutdown.Load() {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

// setBuffers applies SendBufferBytes and ReceiveBufferBytes to nc when it
// is a TCP connection. A refusal is logged, not fatal: the connection
// works with the kernel's sizes.
func (s *Server) setBuffers(nc net.Conn) {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return
	}
	if n := s.SendBufferBytes; n > 0 {
		if err := tc.SetWriteBuffer(n); err != nil {
			s.Log.Warn("setting socket.send.buffer.bytes failed", "remote", nc.RemoteAddr(), "err", err)
		}
	}
	if n := s.ReceiveBufferBytes; n > 0 {
		if err := tc.SetReadBuffer(n); err != nil {
			s.Log.Warn("setting socket.receive.buffer.bytes failed", "remote", nc.RemoteAddr(), "err", err)
		}
	}
}

// Shutdown stops accepting connections, stops reading new requests, lets
// every connection finish the requests it has already read and write their
// responses, and closes the connections. Handlers see their context end so
// that long polls answer at once. If ctx ends first, connections are closed
// hard and ctx's error is returned. It is safe to call more than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	s.shutdown.Store(true)
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.stopReading()
	}
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// ErrHandlerPanic closes a connection whose request made the handler (or
// the writing of its response) panic.
var ErrHandlerPanic = errors.New("wire: handler panicked")

// Conn is one client connection. Handlers may read its identity.
type Conn struct {
	srv    *Server
	nc     net.Conn
	remote string
	closed atomic.Bool
	// ctx is given to the handler; cancel ends it when the connection
	// closes or stops reading.
	ctx    context.Context
	cancel context.CancelFunc
	// principal is who the client authenticated as; nil is Anonymous.
	principal atomic.Pointer[string]

	// sec is the listener's security (security.go).
	sec *Security
	// authenticated is set by the first SASL authentication.
	authenticated atomic.Bool
	// sessionEnd is when the SASL session expires (UnixNano), 0 never.
	sessionEnd atomic.Int64
	// rawTokens: the next frames are bare SASL tokens (SaslHandshake v0).
	rawTokens atomic.Bool
	// closeAfter: close once the current response is written.
	closeAfter atomic.Bool
	authMu     sync.Mutex
	authState  any

	// reqs queues decoded requests for the processing goroutine, which
	// runs only while requests are queued (procRunning, under procMu):
	// an idle connection keeps one goroutine, the reader.
	reqs        chan decoded
	procMu      sync.Mutex
	procRunning bool
	procs       sync.WaitGroup
}

// Anonymous is the principal of a connection that has not authenticated,
// as Kafka names it.
const Anonymous = "User:ANONYMOUS"

// Principal returns who the client is, in Kafka's "Type:name" form:
// Anonymous until SetPrincipal is called.
func (c *Conn) Principal() string {
	if p := c.principal.Load(); p != nil {
		return *p
	}
	return Anonymous
}

// SetPrincipal records who the client authenticated as ("User:alice").
func (c *Conn) SetPrincipal(p string) { c.principal.Store(&p) }

// RemoteAddr returns the client's address.
func (c *Conn) RemoteAddr() string { return c.remote }

// LocalAddr returns the address the client connected to.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

func (c *Conn) stopReading() {
	// A read deadline in the past makes the read loop return at once
	// without interrupting a response being written.
	_ = c.nc.SetReadDeadline(time.Unix(1, 0))
}

type decoded struct {
	h     Header
	req   kmsg.Request
	frame []byte // the raw frame, for requests answered specially
	// pooled is the frame's buffer, to give back once the request is
	// answered; nil when the frame is not pooled.
	pooled *[]byte
	// raw is a bare SASL token, wrapped in a SaslAuthenticate v0 request.
	raw bool
	// answered, when set, is closed once the request is answered (or
	// dropped): the read loop waits for it before reading on.
	answered chan struct{}
}

// serve runs the connection: a read loop in this goroutine feeding a
// processing goroutine that handles and answers requests in order, and
// that runs only while there are requests to handle; a Produce that
// finds nothing else pending is handled by the read loop itself
// (handledInline).
func (c *Conn) serve() {
	s := c.srv
	if s.Hooks.ConnOpened != nil {
		s.Hooks.ConnOpened()
	}
	c.reqs = make(chan decoded, 8)
	stopWatch := c.watchAuth()
	err := c.handshake()
	if err == nil {
		err = c.readLoop()
	}
	stopWatch()
	// Nothing more is read: whatever is still being handled or queued
	// sees its context end, as the client is gone or going.
	c.cancel()
	c.ensureProcessing()
	close(c.reqs)
	c.procs.Wait()
	c.nc.Close()
	if err != nil && !s.shutdown.Load() && !c.closed.Load() {
		s.Log.Info("closing connection", "remote", c.remote, "reason", err)
	}
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	if s.Hooks.ConnClosed != nil {
		s.Hooks.ConnClosed()
	}
	s.wg.Done()
}

// readerPool holds the read buffers of connections that are reading a
// request: a connection waiting for its next request with nothing
// buffered holds none.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

// readLoop reads frames until EOF, an error, or shutdown. It returns nil for
// a clean end.
func (c *Conn) readLoop() error {
	s := c.srv
	var br *bufio.Reader
	defer func() {
		if br != nil {
			br.Reset(nil)
			readerPool.Put(br)
		}
	}()
	var sizeBuf [4]byte
	for {
		if s.IdleTimeout > 0 && !s.shutdown.Load() {
			_ = c.nc.SetReadDeadline(time.Now().Add(s.IdleTimeout))
			if s.shutdown.Load() {
				c.stopReading() // Shutdown raced with the line above
			}
		}
		// Waiting for a request with nothing buffered: the read buffer
		// goes back to the pool, and the size is read from the socket.
		src := io.Reader(c.nc)
		if br != nil && br.Buffered() == 0 {
			br.Reset(nil)
			readerPool.Put(br)
			br = nil
		} else if br != nil {
			src = br
		}
		if _, err := io.ReadFull(src, sizeBuf[:]); err != nil {
			if errors.Is(err, io.EOF) || s.shutdown.Load() || c.closed.Load() {
				return nil
			}
			return err
		}
		size := int32(binary.BigEndian.Uint32(sizeBuf[:]))
		gated, raw := c.gated(), c.rawTokens.Load()
		switch {
		case raw && size < 0, !raw && size < 8:
			return fmt.Errorf("wire: frame size %d is too small for a request header", size)
		case size > s.MaxRequestBytes:
			return fmt.Errorf("wire: frame size %d exceeds socket.request.max.bytes %d", size, s.MaxRequestBytes)
		case gated && size > c.sec.maxPreAuth():
			return fmt.Errorf("wire: frame size %d before SASL authentication exceeds %d", size, c.sec.maxPreAuth())
		}
		if br == nil {
			br = readerPool.Get().(*bufio.Reader)
			br.Reset(c.nc)
		}
		var frame []byte
		var pooled *[]byte
		// A request is at least 8 bytes, so its API key can be peeked at;
		// a bare SASL token may be shorter and is never pooled.
		if raw {
			frame = make([]byte, size)
		} else if key, err := br.Peek(2); err == nil && pooledFrame(int16(binary.BigEndian.Uint16(key))) {
			frame, pooled = getFrame(int(size))
		} else {
			frame = make([]byte, size)
		}
		if _, err := io.ReadFull(br, frame); err != nil {
			if s.shutdown.Load() || c.closed.Load() {
				return nil
			}
			return fmt.Errorf("wire: reading a %d-byte frame: %w", size, err)
		}
		var d decoded
		if raw {
			d = rawToken(frame)
		} else {
			if gated && len(frame) >= 2 {
				if err := c.admit(int16(binary.BigEndian.Uint16(frame))); err != nil {
					return err
				}
			}
			var err error
			d, err = c.decode(frame)
			if err != nil {
				return err
			}
			d.pooled = pooled
		}
		if gated || raw {
			d.answered = make(chan struct{})
		}
		if d.answered == nil && handledInline(d) && c.idle() {
			var out *outBuffers
			c.handle(d, &out)
			if out != nil {
				out.put() // not flushed: the connection is closed
			}
			if c.closed.Load() {
				return nil
			}
			continue
		}
		select {
		case c.reqs <- d:
		case <-s.ctx.Done():
			// Shutting down: stop reading, but hand over what was read.
			c.reqs <- d
			c.ensureProcessing()
			return nil
		}
		c.ensureProcessing()
		if d.answered != nil {
			<-d.answered
		}
		if c.closed.Load() {
			return nil
		}
	}
}

// decode parses the header and body of a frame. A request for an API or
// version that is not served is passed on with req nil, so the processor
// can answer in order (ApiVersions) or close.
func (c *Conn) decode(frame []byte) (decoded, error) {
	h, rest, err := parseFixed(frame)
	if err != nil {
		return decoded{}, err
	}
	lo, hi, ok := c.srv.Handler.Versions(h.APIKey)
	req := kmsg.RequestForKey(h.APIKey)
	if !ok || req == nil || h.APIVersion < lo || h.APIVersion > hi {
		if h.APIKey == apiVersionsKey {
			// The client id may be in a header we cannot decode; answer
			// anyway, as Kafka does, so the client can pick a version.
			return decoded{h: h, frame: frame}, nil
		}
		return decoded{}, fmt.Errorf("wire: unsupported request %s (%s); closing as Kafka does", h, kmsg.NameForKey(h.APIKey))
	}
	req.SetVersion(h.APIVersion)
	body, err := parseRest(&h, rest, req.IsFlexible())
	if err != nil {
		return decoded{}, err
	}
	if err := req.ReadFrom(body); err != nil {
		return decoded{}, fmt.Errorf("wire: malformed %s v%d request body: %w", kmsg.NameForKey(h.APIKey), h.APIVersion, err)
	}
	return decoded{h: h, req: req}, nil
}

// ensureProcessing starts the processing goroutine if requests are
// queued and none runs. Only the reader calls it, after queueing.
func (c *Conn) ensureProcessing() {
	c.procMu.Lock()
	defer c.procMu.Unlock()
	if c.procRunning || len(c.reqs) == 0 {
		return
	}
	c.procRunning = true
	c.procs.Add(1)
	go func() {
		defer c.procs.Done()
		c.process()
	}()
}

// handledInline says whether the read loop handles d itself when no
// other request is queued or being handled: a Produce, the request a
// connection sends most. Handing it to the processing goroutine (one
// started, its stack grown, another thread woken) had cost more CPU than
// a small produce's own handling; handled by the read loop, a steady
// produce of 20,000 records/s took a third less of brokerd's CPU per
// request. The next request is read once this one is answered, as Kafka
// reads a connection's next request only after answering the last. A
// Fetch (its long poll) and the group requests that wait for a rebalance
// keep the processing goroutine, so that a client gone meanwhile is
// noticed; a Produce with acks=all waits for the ISR without noticing,
// at most for its timeout.
func handledInline(d decoded) bool {
	return d.req != nil && d.h.APIKey == produceKey
}

// idle reports whether no request is queued or being handled; only the
// reader, which alone queues requests, may rely on the answer.
func (c *Conn) idle() bool {
	c.procMu.Lock()
	defer c.procMu.Unlock()
	return !c.procRunning
}

// next returns the next queued request, or false once none is queued (or
// the queue is closed), in which case the goroutine must return: it is no
// longer counted as running, and the reader starts another for the next
// request.
func (c *Conn) next() (decoded, bool) {
	for {
		select {
		case d, ok := <-c.reqs:
			if !ok {
				c.procMu.Lock()
				c.procRunning = false
				c.procMu.Unlock()
			}
			return d, ok
		default:
		}
		c.procMu.Lock()
		if len(c.reqs) == 0 {
			c.procRunning = false
			c.procMu.Unlock()
			return decoded{}, false
		}
		c.procMu.Unlock()
	}
}

// process handles queued requests in order and writes their responses,
// until none is queued.
func (c *Conn) process() {
	// The write buffer and the encoding buffer are taken from a pool for
	// a run of requests and given back when none is queued, so an idle
	// connection holds neither.
	var out *outBuffers
	defer func() {
		if out != nil {
			if !c.closed.Load() {
				_ = out.bw.Flush()
			}
			out.put()
		}
	}()
	for {
		d, ok := c.next()
		if !ok {
			return
		}
		c.handle(d, &out)
	}
}

// handle handles d and writes its response into *out (taking buffers
// from the pool if it has none), flushing it when no other request is
// queued. An error closes the connection.
func (c *Conn) handle(d decoded, out **outBuffers) {
	s := c.srv
	if c.closed.Load() {
		answered(d) // drain without handling
		putFrame(d.pooled)
		return
	}
	start := time.Now()
	err := c.respond(d, out)
	if err == nil && c.closeAfter.Load() {
		if *out != nil {
			err = (*out).bw.Flush()
		}
		err = cmp.Or(err, errCloseAfterResponse)
	}
	if err == nil && *out != nil && len(c.reqs) == 0 {
		// Flush when nothing else is queued; pipelined requests
		// share a write.
		err = (*out).bw.Flush()
		(*out).put()
		*out = nil
	}
	if s.Hooks.Request != nil {
		s.Hooks.Request(d.h.APIKey, d.h.APIVersion, time.Since(start), err)
	}
	if err == nil {
		// After an error (a panic, a context ended mid-request) the
		// handler may not be done with the frame: leave it to the
		// garbage collector.
		putFrame(d.pooled)
	}
	if err != nil {
		if !s.shutdown.Load() && !errors.Is(err, ErrHandlerPanic) && !errors.Is(err, errCloseAfterResponse) {
			s.Log.Info("closing connection", "remote", c.remote, "request", d.h.String(), "reason", err)
		}
		c.closed.Store(true)
		c.cancel()
		c.nc.Close()
	}
	answered(d)
}

// answered releases the read loop waiting for d, if it does.
func answered(d decoded) {
	if d.answered != nil {
		close(d.answered)
	}
}

// respond handles one request and writes its response into *out, taking
// buffers from the pool if it has none. A panic on the way is recovered,
// logged with its stack, counted, and returned as an ErrHandlerPanic
// error, which closes the connection.
func (c *Conn) respond(d decoded, out **outBuffers) (err error) {
	s := c.srv
	var resp kmsg.Response
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if sr, ok := resp.(*SplicedResponse); ok {
			sr.release(false)
		}
		err = fmt.Errorf("%w: %v", ErrHandlerPanic, v)
		s.Log.Error("request panicked; closing the connection", "remote", c.remote, "request", d.h.String(), "panic", v, "stack", string(debug.Stack()))
		if s.Hooks.Panic != nil {
			s.Hooks.Panic(d.h.APIKey, d.h.APIVersion)
		}
	}()
	if d.req == nil {
		resp = c.unsupportedAPIVersions()
	} else {
		resp, err = s.Handler.Handle(c.ctx, c, d.h, d.req)
	}
	if err != nil || resp == nil {
		if sr, ok := resp.(*SplicedResponse); ok {
			sr.release(false)
		}
		return err
	}
	if d.req != nil {
		resp.SetVersion(d.h.APIVersion)
	}
	if *out == nil {
		*out = getOutBuffers(c.nc)
	}
	o := *out
	if d.raw {
		return writeRawToken(o, resp)
	}
	buf := appendResponseHeader(o.buf[:0], d.h.APIKey, d.h.CorrelationID, resp.IsFlexible())
	buf = resp.AppendTo(buf)
	buf = finishFrame(buf, 0)
	o.buf = buf
	if sr, ok := resp.(*SplicedResponse); ok {
		var pieces []piece
		if pieces, err = splitSpliced(buf, sr.Splices, resp.IsFlexible()); err == nil {
			// sendfile(2) cannot encrypt: under TLS the splices are
			// copied through the TLS connection's buffer instead.
			sock := io.Writer(c.nc)
			if c.TLS() {
				sock = o.bw
			}
			err = writeSpliced(o.bw, sock, pieces)
		}
		sr.release(err == nil)
		return err
	}
	_, err = o.bw.Write(buf)
	return err
}

// outBuffers are a connection's write buffer and response encoding buffer
// while it has responses to write.
type outBuffers struct {
	bw  *bufio.Writer
	buf []byte
}

var outPool = sync.Pool{New: func() any { return &outBuffers{bw: bufio.NewWriterSize(nil, 32<<10)} }}

func getOutBuffers(w io.Writer) *outBuffers {
	o := outPool.Get().(*outBuffers)
	o.bw.Reset(w)
	return o
}

// put gives the buffers back to the pool, dropping an encoding buffer
// grown past 1 MiB so that one large response does not stay pinned.
func (o *outBuffers) put() {
	o.bw.Reset(nil)
	if cap(o.buf) > 1<<20 {
		o.buf = nil
	}
	outPool.Put(o)
}

// unsupportedAPIVersions answers an ApiVersions request of a version the
// broker does not serve: version 0 of the response, UNSUPPORTED_VERSION, and
// the ranges it does serve, so the client can retry with one of them.
func (c *Conn) unsupportedAPIVersions() kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	resp.ErrorCode = 35 // UNSUPPORTED_VERSION
	for key := int16(0); key < 100; key++ {
		if lo, hi, ok := c.srv.Handler.Versions(key); ok {
			resp.ApiKeys = append(resp.ApiKeys, kmsg.ApiVersionsResponseApiKey{ApiKey: key, MinVersion: lo, MaxVersion: hi})
		}
	}
	return resp
}
