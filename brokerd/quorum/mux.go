package quorum

import (
	"bufio"
	"net"
	"sync"
	"time"
)

// SplitListener shares one listener between the quorum's Raft streams and
// Kafka requests (the controller APIs): a connection whose first byte is
// the Raft handshake's goes to raft, any other to kafka. Closing either
// closes ln. A connection that sends nothing within the handshake timeout
// is dropped.
func SplitListener(ln net.Listener) (raft, kafka net.Listener) {
	m := &mux{ln: ln, closed: make(chan struct{})}
	r := &subListener{m: m, conns: make(chan net.Conn)}
	k := &subListener{m: m, conns: make(chan net.Conn)}
	go m.run(r, k)
	return r, k
}

type mux struct {
	ln     net.Listener
	closed chan struct{}
	once   sync.Once
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
