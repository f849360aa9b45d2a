package wire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
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
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	return &Client{conn: c, r: bufio.NewReader(c), f: kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID))}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Request sends req (its version set by the caller) and reads the
// response, both before deadline. Any error leaves the connection
// unusable: close it.
func (c *Client) Request(req kmsg.Request, deadline time.Time) (kmsg.Response, error) {
	_ = c.conn.SetDeadline(deadline)
	c.corr++
	c.buf = c.f.AppendRequest(c.buf[:0], req, c.corr)
	if _, err := c.conn.Write(c.buf); err != nil {
		return nil, fmt.Errorf("wire: sending %s: %w", kmsg.NameForKey(req.Key()), err)
	}
	var size [4]byte
	if _, err := io.ReadFull(c.r, size[:]); err != nil {
		return nil, fmt.Errorf("wire: reading the %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	limit := c.MaxResponseBytes
	if limit <= 0 {
		limit = DefaultMaxRequestBytes
	}
	if n < 4 || n > limit {
		return nil, fmt.Errorf("wire: %s response frame of %d bytes", kmsg.NameForKey(req.Key()), n)
	}
	frame := make([]byte, n)
	if _, err := io.ReadFull(c.r, frame); err != nil {
		return nil, fmt.Errorf("wire: reading the %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	if got := int32(binary.BigEndian.Uint32(frame)); got != c.corr {
		return nil, fmt.Errorf("wire: response correlation id %d, want %d", got, c.corr)
	}
	return decodeResponseBody(req, frame[4:])
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
