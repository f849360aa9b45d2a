package quorum

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"slices"
	"sync"
	"time"
)

// RaftALPN is the TLS application protocol a Raft stream dialer offers,
// which tells Raft streams from Kafka requests on a controller listener
// that speaks TLS (Kafka clients offer none).
const RaftALPN = "logpipe-raft"

// ErrRaftNeedsCertificate is why a TLS connection asking for RaftALPN
// without a verified client certificate is refused.
var ErrRaftNeedsCertificate = errors.New("quorum: a Raft stream over TLS needs a client certificate signed by the cluster's CA")

// SplitListener shares one listener between the quorum's Raft streams and
// Kafka requests (the controller APIs): a connection whose first byte is
// the Raft handshake's goes to raft, any other to kafka. Closing either
// closes ln. A connection that sends nothing within the handshake timeout
// is dropped.
func SplitListener(ln net.Listener) (raft, kafka net.Listener) {
	return split(&mux{ln: ln, closed: make(chan struct{})})
}

// SplitTLSListener is SplitListener for a listener that speaks TLS only:
// it runs every connection's TLS handshake with cfg (whose
// GetConfigForClient, if set, gives the configuration, as
// pipeline/tlsconfig's servers do), within timeout, and hands a
// connection that negotiated RaftALPN to raft and any other to kafka, as
// the *tls.Conn with its handshake done. A failed handshake (a plain
// connection, an unknown certificate authority, no client certificate
// where one is required) is passed to refused and the connection closed.
func SplitTLSListener(ln net.Listener, cfg *tls.Config, timeout time.Duration, refused func(remote net.Addr, err error)) (raft, kafka net.Listener) {
	return split(&mux{ln: ln, closed: make(chan struct{}), tls: withRaftALPN(cfg), timeout: timeout, refused: refused})
}

// SplitSASLTLSListener is SplitTLSListener for a SASL_SSL listener: a
// Raft stream needs no client certificate there, as it authenticates with
// SASL in its handshake (Config.StreamAuth).
func SplitSASLTLSListener(ln net.Listener, cfg *tls.Config, timeout time.Duration, refused func(remote net.Addr, err error)) (raft, kafka net.Listener) {
	return split(&mux{ln: ln, closed: make(chan struct{}), tls: withRaftALPN(cfg), timeout: timeout, refused: refused, raftSASL: true})
}

// SplitSharedTLSListener is SplitTLSListener for a listener that serves
// Kafka clients with TLS settings of their own, as a broker-only node's
// inter-broker listener does, where the quorum's leader sends it the
// metadata log: a connection whose TLS ClientHello offers RaftALPN is
// served with raftCfg (the controller listener's settings) and, once its
// handshake negotiated RaftALPN, goes to raft; any other is served with
// kafkaCfg, left as it is (offering no application protocol), and goes
// to kafka. Both configurations may set GetConfigForClient. With
// raftSASL a Raft stream needs no client certificate, as with
// SplitSASLTLSListener.
func SplitSharedTLSListener(ln net.Listener, raftCfg, kafkaCfg *tls.Config, raftSASL bool, timeout time.Duration, refused func(remote net.Addr, err error)) (raft, kafka net.Listener) {
	raftCfg = withRaftALPN(raftCfg)
	byHello := &tls.Config{GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		cfg := kafkaCfg
		if slices.Contains(hello.SupportedProtos, RaftALPN) {
			cfg = raftCfg
		}
		if get := cfg.GetConfigForClient; get != nil {
			if c, err := get(hello); c != nil || err != nil {
				return c, err
			}
		}
		return cfg, nil
	}}
	return split(&mux{ln: ln, closed: make(chan struct{}), tls: byHello, timeout: timeout, refused: refused, raftSASL: raftSASL})
}

// withRaftALPN returns cfg offering RaftALPN, also in the configurations
// its GetConfigForClient returns.
func withRaftALPN(cfg *tls.Config) *tls.Config {
	cfg = cfg.Clone()
	cfg.NextProtos = []string{RaftALPN}
	if get := cfg.GetConfigForClient; get != nil {
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			c, err := get(hello)
			if c == nil || err != nil {
				return c, err
			}
			c = c.Clone()
			c.NextProtos = []string{RaftALPN}
			return c, nil
		}
	}
	return cfg
}

func split(m *mux) (raft, kafka net.Listener) {
	r := &subListener{m: m, conns: make(chan net.Conn)}
	k := &subListener{m: m, conns: make(chan net.Conn)}
	go m.run(r, k)
	return r, k
}

type mux struct {
	ln     net.Listener
	closed chan struct{}
	once   sync.Once

	// tls, timeout and refused are SplitTLSListener's; tls is nil for a
	// plaintext listener.
	tls     *tls.Config
	timeout time.Duration
	refused func(net.Addr, error)
	// raftSASL lets a Raft stream in without a client certificate.
	raftSASL bool
}

func (m *mux) close() error {
	var err error
	m.once.Do(func() {
		close(m.closed)
		err = m.ln.Close()
	})
	return err
}

func (m *mux) run(raft, kafka *subListener) {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.closed:
				return
			default:
			}
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if m.tls != nil {
			go m.admitTLS(c, raft, kafka)
			continue
		}
		go func() {
			_ = c.SetReadDeadline(time.Now().Add(handshakeTimeout))
			br := bufio.NewReader(c)
			first, err := br.Peek(1)
			if err != nil {
				c.Close()
				return
			}
			_ = c.SetReadDeadline(time.Time{})
			to := kafka
			if first[0] == handshakeMagic {
				to = raft
			}
			select {
			case to.conns <- &bufferedConn{Conn: c, r: br}:
			case <-m.closed:
				c.Close()
			}
		}()
	}
}

// admitTLS runs a connection's TLS handshake and hands it on by the
// protocol it negotiated.
func (m *mux) admitTLS(c net.Conn, raft, kafka *subListener) {
	tc := tls.Server(c, m.tls)
	ctx, cancel := context.WithTimeout(context.Background(), m.timeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	if err != nil {
		if m.refused != nil {
			m.refused(c.RemoteAddr(), err)
		}
		c.Close()
		return
	}
	to := kafka
	if st := tc.ConnectionState(); st.NegotiatedProtocol == RaftALPN {
		// Only a peer whose certificate the cluster's CA signed may
		// speak Raft, whatever ssl.client.auth lets Kafka clients do.
		if len(st.VerifiedChains) == 0 && !m.raftSASL {
			if m.refused != nil {
				m.refused(c.RemoteAddr(), ErrRaftNeedsCertificate)
			}
			c.Close()
			return
		}
		to = raft
	}
	select {
	case to.conns <- tc:
	case <-m.closed:
		c.Close()
	}
}

type subListener struct {
	m     *mux
	conns chan net.Conn
}

func (l *subListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.m.closed:
		return nil, net.ErrClosed
	}
}

func (l *subListener) Close() error   { return l.m.close() }
func (l *subListener) Addr() net.Addr { return l.m.ln.Addr() }
