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
// with code 0x01 for another cluster, 0x03 for a failed authentication
// and 0x02 for any other refusal. On a listener whose Raft streams
// authenticate with SASL (StreamAuth) the dialer sends version 2 and,
// after the cluster id, len(1) mechanism len(2, big endian) token: one
// token, so mechanisms of one step (PLAIN). The acceptor refuses a
// version 1 handshake there, and a version 2 one anywhere else.
//
// The first byte can never start a Kafka request (it would be a negative
// frame size), so the handshake also tells Raft streams from Kafka
// requests on a shared controller listener.
const (
	handshakeMagic   = 0xFF
	handshakeVersion = 1
	// handshakeSASL is the version of a handshake carrying a SASL token.
	handshakeSASL    = 2
	handshakeTimeout = 5 * time.Second

	refusedCluster = 0x01
	refusedOther   = 0x02
	refusedAuth    = 0x03
)

// StreamAuth authenticates Raft streams with SASL, for a controller
// listener that is SASL_PLAINTEXT or SASL_SSL (see the handshake above).
type StreamAuth struct {
	// Token returns the mechanism and the token this node sends to the
	// peer at addr, host:port.
	Token func(addr string) (mechanism string, token []byte, err error)
	// Check authenticates and authorizes the mechanism and token a peer
	// at remote sent; an error refuses the stream.
	Check func(remote net.Addr, mechanism string, token []byte) error
}

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
	// auth, when set, authenticates the streams both ways
	// (Config.StreamAuth).
	auth *StreamAuth

	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

// newStreamLayer makes the stream layer of ln, which accepts nothing
// until start; auth is fixed before then, since every accepted stream
// reads it.
func newStreamLayer(ln net.Listener, advertise net.Addr, clusterID func() string, refused func(error), auth *StreamAuth) *streamLayer {
	return &streamLayer{ln: ln, advertise: advertise, clusterID: clusterID, refused: refused, auth: auth,
		conns: make(chan net.Conn), closed: make(chan struct{})}
}

// start accepts on the listener: once clusterID says what this node's
// data holds, since each handshake is checked against it.
func (s *streamLayer) start() { go s.acceptLoop() }

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
	want := byte(handshakeVersion)
	if s.auth != nil {
		want = handshakeSASL
	}
	switch {
	case head[3] == want:
	case s.auth != nil && head[3] == handshakeVersion:
		s.refused(fmt.Errorf("quorum: Raft stream from %s refused: it did not authenticate with SASL", c.RemoteAddr()))
		s.refuse(c, refusedAuth, "quorum: this listener takes Raft streams authenticated with SASL only")
		return
	case s.auth == nil && head[3] == handshakeSASL:
		s.refuse(c, refusedOther, "quorum: this listener does not take SASL on Raft streams")
		return
	default:
		s.refuse(c, refusedOther, fmt.Sprintf("quorum: handshake version %d is not served (want %d)", head[3], want))
		return
	}
	var mech, token []byte
	if s.auth != nil {
		var err error
		if mech, token, err = readSASL(br); err != nil {
			c.Close()
			return
		}
	}
	if mine := s.clusterID(); mine != "" && len(theirs) > 0 && string(theirs) != mine {
		err := fmt.Errorf("%w: %s is in cluster %s, this node is in cluster %s", ErrClusterMismatch, c.RemoteAddr(), theirs, mine)
		s.refused(err)
		s.refuse(c, refusedCluster, err.Error())
		return
	}
	if s.auth != nil {
		if err := s.auth.Check(c.RemoteAddr(), string(mech), token); err != nil {
			s.refused(fmt.Errorf("quorum: Raft stream from %s refused: %w", c.RemoteAddr(), err))
			s.refuse(c, refusedAuth, fmt.Sprintf("quorum: SASL %s authentication failed or not authorized", mech))
			return
		}
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
	if s.auth != nil {
		mech, token, err := s.auth.Token(string(addr))
		if err == nil && (len(mech) > 255 || len(token) > 1<<16-1) {
			err = errors.New("mechanism or token too long")
		}
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("quorum: SASL token for %s: %w", addr, err)
		}
		msg[3] = handshakeSASL
		msg = append(append(msg, byte(len(mech))), mech...)
		msg = append(binary.BigEndian.AppendUint16(msg, uint16(len(token))), token...)
	}
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

// readSASL reads the mechanism and token of a version 2 handshake.
func readSASL(r io.Reader) (mech, token []byte, err error) {
	var n [2]byte
	if _, err = io.ReadFull(r, n[:1]); err != nil {
		return nil, nil, err
	}
	mech = make([]byte, n[0])
	if _, err = io.ReadFull(r, mech); err != nil {
		return nil, nil, err
	}
	if _, err = io.ReadFull(r, n[:]); err != nil {
		return nil, nil, err
	}
	token = make([]byte, binary.BigEndian.Uint16(n[:]))
	_, err = io.ReadFull(r, token)
	return mech, token, err
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
