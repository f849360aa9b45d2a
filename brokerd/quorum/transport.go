package quorum

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// A Raft connection opens with a handshake, so that nodes of two clusters
// never mix their logs:
//
//	dialer:   0xFF 'L' 'R' version(1) len(1) cluster-id
//	acceptor: 0x00                                   (accepted)
//	          code len(2, big endian) message         (refused, then closed)
//
// with code 0x01 for another cluster and 0x02 for any other refusal.
//
// The first byte can never start a Kafka request (it would be a negative
// frame size), so the handshake also tells Raft streams from Kafka
// requests on a shared controller listener.
const (
	handshakeMagic   = 0xFF
	handshakeVersion = 1
	handshakeTimeout = 5 * time.Second

	refusedCluster = 0x01
	refusedOther   = 0x02
)

// ErrClusterMismatch is the reason a peer of another cluster is refused.
var ErrClusterMismatch = errors.New("quorum: cluster id mismatch")

// streamLayer is raft's StreamLayer over TCP with the handshake above.
type streamLayer struct {
	ln        net.Listener
	advertise net.Addr
	// clusterID returns the cluster this node belongs to, or "" if it has
	// none yet (a new node accepts and is accepted by any cluster).
	clusterID func() string
	// refused is told of every handshake refused, by either side.
	refused func(error)
	// dialTLS, when set, gives the TLS configuration Dial speaks to a
	// peer with (Config.DialTLS).
	dialTLS func(addr string) (*tls.Config, error)

	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newStreamLayer(ln net.Listener, advertise net.Addr, clusterID func() string, refused func(error)) *streamLayer {
	s := &streamLayer{ln: ln, advertise: advertise, clusterID: clusterID, refused: refused,
		conns: make(chan net.Conn), closed: make(chan struct{})}
	go s.acceptLoop()
	return s
}

func (s *streamLayer) acceptLoop() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.closed:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return // the listener was closed under it (a shared listener's other side)
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			time.Sleep(50 * time.Millisecond) // out of descriptors or similar
			continue
		}
		go s.admit(c)
	}
}

// admit runs the acceptor's side of the handshake and hands the
// connection to Raft.
func (s *streamLayer) admit(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	br := bufio.NewReader(c)
	var head [5]byte
	if _, err := io.ReadFull(br, head[:]); err != nil || head[0] != handshakeMagic || head[1] != 'L' || head[2] != 'R' {
		c.Close()
		return
	}
	theirs := make([]byte, head[4])
	if _, err := io.ReadFull(br, theirs); err != nil {
		c.Close()
		return
	}
	if head[3] != handshakeVersion {
		s.refuse(c, refusedOther, fmt.Sprintf("quorum: handshake version %d is not served (want %d)", head[3], handshakeVersion))
		return
	}
	if mine := s.clusterID(); mine != "" && len(theirs) > 0 && string(theirs) != mine {
		err := fmt.Errorf("%w: %s is in cluster %s, this node is in cluster %s", ErrClusterMismatch, c.RemoteAddr(), theirs, mine)
		s.refused(err)
		s.refuse(c, refusedCluster, err.Error())
		return
	}
	if _, err := c.Write([]byte{0}); err != nil {
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	conn := net.Conn(c)
	if br.Buffered() > 0 {
		conn = &bufferedConn{Conn: c, r: br}
	}
	select {
	case s.conns <- conn:
	case <-s.closed:
		c.Close()
	}
}

func (s *streamLayer) refuse(c net.Conn, code byte, msg string) {
	if len(msg) > 1<<15 {
		msg = msg[:1<<15]
	}
	b := []byte{code, 0, 0}
	binary.BigEndian.PutUint16(b[1:], uint16(len(msg)))
	_, _ = c.Write(append(b, msg...))
	c.Close()
}

// Accept implements net.Listener.
func (s *streamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.closed:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (s *streamLayer) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closed)
		err = s.ln.Close()
	})
	return err
}

// Addr implements net.Listener: the address the other voters know this
// node by.
func (s *streamLayer) Addr() net.Addr { return s.advertise }

// Dial implements raft.StreamLayer.
func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil {
		return nil, err
	}
	if s.dialTLS != nil {
		if c, err = s.secure(c, string(addr), timeout); err != nil {
			return nil, err
		}
	}
	id := s.clusterID()
	if len(id) > 255 {
		c.Close()
		return nil, fmt.Errorf("quorum: cluster id %q is too long", id)
	}
	_ = c.SetDeadline(time.Now().Add(max(timeout, handshakeTimeout)))
	msg := append([]byte{handshakeMagic, 'L', 'R', handshakeVersion, byte(len(id))}, id...)
	if _, err := c.Write(msg); err != nil {
		c.Close()
		return nil, fmt.Errorf("quorum: handshake with %s: %w", addr, err)
	}
	var status [1]byte
	if _, err := io.ReadFull(c, status[:]); err != nil {
		c.Close()
		err = fmt.Errorf("quorum: handshake with %s: %w", addr, err)
		if s.dialTLS != nil {
			// Under TLS 1.3 a peer refusing this node's certificate
			// says so here, at the first read.
			s.refused(err)
		}
		return nil, err
	}
	if status[0] != 0 {
		var n [2]byte
		var why []byte
		if _, err := io.ReadFull(c, n[:]); err == nil {
			why = make([]byte, binary.BigEndian.Uint16(n[:]))
			_, _ = io.ReadFull(c, why)
		}
		c.Close()
		err := fmt.Errorf("quorum: %s refused this node: %s", addr, why)
		if status[0] == refusedCluster {
			err = fmt.Errorf("%w: %s refused this node: %s", ErrClusterMismatch, addr, why)
		}
		s.refused(err)
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// secure runs the TLS handshake of a Raft stream dialed to addr, offering
// RaftALPN; a refusal is reported as the other handshake refusals are.
func (s *streamLayer) secure(c net.Conn, addr string, timeout time.Duration) (net.Conn, error) {
	cfg, err := s.dialTLS(addr)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("quorum: TLS configuration for %s: %w", addr, err)
	}
	cfg = cfg.Clone()
	cfg.NextProtos = []string{RaftALPN}
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		cfg.ServerName, _, _ = net.SplitHostPort(addr)
	}
	tc := tls.Client(c, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), max(timeout, handshakeTimeout))
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		err = fmt.Errorf("quorum: TLS handshake with %s: %w", addr, err)
		s.refused(err)
		return nil, err
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != RaftALPN {
		tc.Close()
		err := fmt.Errorf("quorum: %s does not take Raft streams over TLS (negotiated %q, want %q)", addr, p, RaftALPN)
		s.refused(err)
		return nil, err
	}
	return tc, nil
}

// bufferedConn is a connection whose first bytes were read ahead.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// tcpAddr is a net.Addr of a host:port as configured.
type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }
