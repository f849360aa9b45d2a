package wire

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/pipeline/scram"
)

// Client is one connection to a Kafka-protocol server, sending one request
// at a time: what brokers use to talk to the controller and to each
// other. It is not safe for concurrent use.
type Client struct {
	conn net.Conn
	r    *bufio.Reader
	f    *kmsg.RequestFormatter
	corr int32
	buf  []byte
	// MaxResponseBytes bounds a response frame; 0 means
	// DefaultMaxRequestBytes.
	MaxResponseBytes int32
}

// Dial connects to addr within timeout; clientID names this side in the
// request headers.
func Dial(addr, clientID string, timeout time.Duration) (*Client, error) {
	return DialSecured(addr, clientID, timeout, ClientSecurity{})
}

// ClientSecurity is how a Client reaches a listener that is not
// PLAINTEXT; the zero value is PLAINTEXT.
type ClientSecurity struct {
	// TLS makes the connection speak TLS with this configuration.
	TLS *tls.Config
	// SASLMechanism, SASLUser and SASLPassword log in with SASL after
	// connecting: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; "" for none.
	SASLMechanism, SASLUser, SASLPassword string
}

// ErrAuthentication wraps DialSecured's failures of the TLS handshake and
// of the SASL exchange.
var ErrAuthentication = errors.New("wire: authentication failed")

// DialSecured is Dial for a listener protected as sec says: the TLS
// handshake and the SASL exchange are done within timeout.
func DialSecured(addr, clientID string, timeout time.Duration, sec ClientSecurity) (*Client, error) {
	deadline := time.Now().Add(timeout)
	nc, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	if sec.TLS != nil {
		cfg := sec.TLS
		if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
			cfg = cfg.Clone()
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tc := tls.Client(nc, cfg)
		_ = tc.SetDeadline(deadline)
		if err := tc.Handshake(); err != nil {
			nc.Close()
			return nil, fmt.Errorf("%w: TLS handshake with %s: %w", ErrAuthentication, addr, err)
		}
		nc = tc
	}
	c := &Client{conn: nc, r: bufio.NewReader(nc), f: kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID))}
	if sec.SASLMechanism != "" {
		if err := c.authenticate(sec, deadline); err != nil {
			c.Close()
			return nil, fmt.Errorf("%w: SASL %s with %s: %w", ErrAuthentication, sec.SASLMechanism, addr, err)
		}
	}
	return c, nil
}

// authenticate runs SaslHandshake v1 and SaslAuthenticate v1 as sec's user.
func (c *Client) authenticate(sec ClientSecurity, deadline time.Time) error {
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.SetVersion(1)
	hs.Mechanism = sec.SASLMechanism
	resp, err := c.Request(hs, deadline)
	if err != nil {
		return err
	}
	if err := kerr.ErrorForCode(resp.(*kmsg.SASLHandshakeResponse).ErrorCode); err != nil {
		return err
	}
	send := func(token []byte) ([]byte, error) {
		auth := kmsg.NewPtrSASLAuthenticateRequest()
		auth.SetVersion(1)
		auth.SASLAuthBytes = token
		resp, err := c.Request(auth, deadline)
		if err != nil {
			return nil, err
		}
		r := resp.(*kmsg.SASLAuthenticateResponse)
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			if r.ErrorMessage != nil {
				return nil, fmt.Errorf("%w: %s", err, *r.ErrorMessage)
			}
			return nil, err
		}
		return r.SASLAuthBytes, nil
	}
	if sec.SASLMechanism == "PLAIN" {
		_, err := send([]byte("\x00" + sec.SASLUser + "\x00" + sec.SASLPassword))
		return err
	}
	sc := scram.ForMechanism(sec.SASLMechanism)
	if sc == nil {
		return fmt.Errorf("mechanism %q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", sec.SASLMechanism)
	}
	_ = sc.Begin(sec.SASLUser, sec.SASLPassword, "")
	msg, err := sc.Step("")
	for err == nil && !sc.Done() {
		var reply []byte
		if reply, err = send([]byte(msg)); err == nil {
			msg, err = sc.Step(string(reply))
		}
	}
	return err
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Request sends req (its version set by the caller) and reads the
// response, both before deadline. Any error leaves the connection
// unusable: close it.
func (c *Client) Request(req kmsg.Request, deadline time.Time) (kmsg.Response, error) {
	resp, _, err := c.roundTrip(req, deadline, false)
	return resp, err
}

// RequestPooled is Request with the response frame read into a buffer of
// the pool Produce request frames use (frames.go): a follower's Fetch
// responses are megabytes at a time, and zeroing a new buffer for each
// took 7 to 8 % of every node's CPU in a replicated cluster taking
// produce at full speed. The response's byte slices (record batches,
// unknown tags) alias that buffer: the caller calls release once it no
// longer reads them, and must not keep them. release is never nil.
func (c *Client) RequestPooled(req kmsg.Request, deadline time.Time) (resp kmsg.Response, release func(), err error) {
	resp, p, err := c.roundTrip(req, deadline, true)
	if err != nil {
		putFrame(p)
		return nil, func() {}, err
	}
	return resp, func() { putFrame(p) }, nil
}

// roundTrip sends req and reads its response; with pooled, the frame
// comes from getFrame and its handle is returned, error or not.
func (c *Client) roundTrip(req kmsg.Request, deadline time.Time, pooled bool) (kmsg.Response, *[]byte, error) {
	_ = c.conn.SetDeadline(deadline)
	c.corr++
	c.buf = c.f.AppendRequest(c.buf[:0], req, c.corr)
	if _, err := c.conn.Write(c.buf); err != nil {
		return nil, nil, fmt.Errorf("wire: sending %s: %w", kmsg.NameForKey(req.Key()), err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c.r, size[:]); err != nil {
		return nil, nil, fmt.Errorf("wire: reading the %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	limit := c.MaxResponseBytes
	if limit <= 0 {
		limit = DefaultMaxRequestBytes
	}
	if n < 4 || n > limit {
		return nil, nil, fmt.Errorf("wire: %s response frame of %d bytes", kmsg.NameForKey(req.Key()), n)
	}
	var frame []byte
	var handle *[]byte
	if pooled {
		frame, handle = getFrame(int(n))
	} else {
		frame = make([]byte, n)
	}
	if _, err := io.ReadFull(c.r, frame); err != nil {
		return nil, handle, fmt.Errorf("wire: reading the %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	if got := int32(binary.BigEndian.Uint32(frame)); got != c.corr {
		return nil, handle, fmt.Errorf("wire: response correlation id %d, want %d", got, c.corr)
	}
	resp, err := decodeResponseBody(req, frame[4:])
	return resp, handle, err
}

// skipTags skips a tagged-field section.
func skipTags(b []byte) ([]byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, ErrShortHeader
	}
	b = b[k:]
	for ; n > 0; n-- {
		_, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, ErrShortHeader
		}
		b = b[k:]
		size, k := binary.Uvarint(b)
		if k <= 0 || size > uint64(len(b)-k) {
			return nil, ErrShortHeader
		}
		b = b[k+int(size):]
	}
	return b, nil
}
