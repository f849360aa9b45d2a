package wire

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Security is how a listener protects its connections: TLS, SASL
// authentication, or both (Kafka's SSL, SASL_PLAINTEXT and SASL_SSL); the
// zero value is PLAINTEXT.
type Security struct {
	// Listener is the listener's name (PLAINTEXT, SASL_SSL, CLIENT…), which
	// handlers read with Conn.Listener to tell clients the addresses of
	// the same listener on the other brokers.
	Listener string
	// TLS makes the listener speak TLS with this configuration.
	TLS *tls.Config
	// CertPrincipal names the principal of a client that presented a
	// verified certificate on a TLS listener without SASL; nil leaves
	// such clients Anonymous. An error closes the connection.
	CertPrincipal func(*x509.Certificate) (string, error)
	// SASL makes clients authenticate (SaslHandshake, SaslAuthenticate)
	// before anything but ApiVersions is served; the Handler runs the
	// exchange and calls Conn.SetAuthenticated.
	SASL bool
	// MaxPreAuthBytes bounds a request frame before authentication, as
	// Kafka's sasl.server.max.receive.size does; 0 means
	// DefaultMaxPreAuthBytes.
	MaxPreAuthBytes int32
	// AuthTimeout closes a connection that has not finished its TLS
	// handshake, or on a SASL listener authenticated, within this long
	// of connecting; 0 means DefaultAuthTimeout.
	AuthTimeout time.Duration
}

// DefaultMaxPreAuthBytes is Kafka's sasl.server.max.receive.size default.
const DefaultMaxPreAuthBytes = 512 << 10

// DefaultAuthTimeout bounds the TLS handshake and the SASL exchange of a
// new connection.
const DefaultAuthTimeout = 10 * time.Second

// The APIs of SASL authentication, which the server treats specially.
const (
	saslHandshakeKey    = 17
	saslAuthenticateKey = 36
)

func (sec *Security) maxPreAuth() int32 {
	if sec.MaxPreAuthBytes > 0 {
		return sec.MaxPreAuthBytes
	}
	return DefaultMaxPreAuthBytes
}

func (sec *Security) authTimeout() time.Duration {
	if sec.AuthTimeout > 0 {
		return sec.AuthTimeout
	}
	return DefaultAuthTimeout
}

// handshake runs a TLS listener's handshake within the auth timeout and
// takes the principal from the client's certificate; a plaintext
// connection passes through.
func (c *Conn) handshake() error {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.sec.authTimeout())
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("wire: TLS handshake on listener %s: %w", c.sec.Listener, err)
	}
	st := tc.ConnectionState()
	if !c.sec.SASL && c.sec.CertPrincipal != nil && len(st.PeerCertificates) > 0 {
		p, err := c.sec.CertPrincipal(st.PeerCertificates[0])
		if err != nil {
			return fmt.Errorf("wire: client certificate on listener %s: %w", c.sec.Listener, err)
		}
		c.SetPrincipal(p)
	}
	return nil
}

// Listener returns the name of the listener the client connected to.
func (c *Conn) Listener() string { return c.sec.Listener }

// TLS reports whether the connection is encrypted.
func (c *Conn) TLS() bool { _, ok := c.nc.(*tls.Conn); return ok }

// SASL reports whether the client must authenticate with SASL.
func (c *Conn) SASL() bool { return c.sec.SASL }

// Authenticated reports whether the client has authenticated with SASL
// (always false on a listener without SASL).
func (c *Conn) Authenticated() bool { return c.authenticated.Load() }

// SetAuthenticated records a finished SASL exchange: the client is
// principal ("User:alice") until lifetime has passed (KIP-368's
// connections.max.reauth.ms; 0 means for the whole connection). After that
// it must authenticate again, as the same principal, before anything else
// is served. It also ends the unframed tokens of SaslHandshake v0.
func (c *Conn) SetAuthenticated(principal string, lifetime time.Duration) {
	var end int64
	if lifetime > 0 {
		end = time.Now().Add(lifetime).UnixNano()
	}
	c.SetPrincipal(principal)
	c.sessionEnd.Store(end)
	c.rawTokens.Store(false)
	c.authenticated.Store(true)
}

// sessionExpired reports whether the client must authenticate again.
func (c *Conn) sessionExpired() bool {
	end := c.sessionEnd.Load()
	return end != 0 && time.Now().UnixNano() >= end
}

// ExpectRawTokens makes the connection read the next frames as bare SASL
// tokens, as a client does after SaslHandshake v0: each is handed to the
// Handler as a SaslAuthenticate v0 request, and the AuthBytes of its
// response are written back as a bare frame. A response with an error code
// closes the connection, since v0 has no way to carry one. SetAuthenticated
// ends this.
func (c *Conn) ExpectRawTokens() { c.rawTokens.Store(true) }

// CloseAfterResponse makes the connection close once the response to the
// request being handled is written, as Kafka closes a connection whose
// SASL authentication failed after telling the client why.
func (c *Conn) CloseAfterResponse() { c.closeAfter.Store(true) }

// errCloseAfterResponse ends a connection a handler asked to close.
var errCloseAfterResponse = errors.New("wire: closed after the response, as the handler asked")

// RawTokens reports whether the connection exchanges bare SASL tokens
// (SaslHandshake v0).
func (c *Conn) RawTokens() bool { return c.rawTokens.Load() }

// AuthState returns what the Handler kept of the connection's SASL
// exchange with SetAuthState.
func (c *Conn) AuthState() any {
	c.authMu.Lock()
	defer c.authMu.Unlock()
	return c.authState
}

// SetAuthState keeps v, the Handler's state of a SASL exchange, with the
// connection.
func (c *Conn) SetAuthState(v any) {
	c.authMu.Lock()
	defer c.authMu.Unlock()
	c.authState = v
}

// gated reports whether the connection may only authenticate: a SASL
// listener's client before its first authentication or after its session
// expired. Gated requests are read one at a time, each answered before the
// next is read, so the state a request leaves applies to the next one.
func (c *Conn) gated() bool {
	return c.sec.SASL && (!c.authenticated.Load() || c.sessionExpired())
}

// admit checks a gated request's API: before the first authentication
// ApiVersions, SaslHandshake and SaslAuthenticate, after a session expired
// only a new SaslHandshake and SaslAuthenticate (KIP-368).
func (c *Conn) admit(key int16) error {
	switch {
	case key == saslHandshakeKey, key == saslAuthenticateKey:
		return nil
	case key == apiVersionsKey && !c.authenticated.Load():
		return nil
	case c.authenticated.Load():
		return fmt.Errorf("wire: request for API %d after the SASL session expired; closing as Kafka does", key)
	}
	return fmt.Errorf("wire: request for API %d before SASL authentication; closing as Kafka does", key)
}

// watchAuth closes the connection if it has not authenticated within the
// listener's auth timeout; the returned function stops the watch.
func (c *Conn) watchAuth() (stop func()) {
	if !c.sec.SASL {
		return func() {}
	}
	t := time.AfterFunc(c.sec.authTimeout(), func() {
		if c.authenticated.Load() {
			return
		}
		c.closed.Store(true)
		c.cancel()
		c.nc.Close()
		c.srv.Log.Info("closing connection", "remote", c.remote, "listener", c.sec.Listener,
			"reason", fmt.Sprintf("wire: no SASL authentication within %s", c.sec.authTimeout()))
	})
	return func() { t.Stop() }
}

// rawToken wraps a bare SASL token as a SaslAuthenticate v0 request.
func rawToken(frame []byte) decoded {
	req := kmsg.NewPtrSASLAuthenticateRequest()
	req.SetVersion(0)
	req.SASLAuthBytes = frame
	return decoded{h: Header{APIKey: saslAuthenticateKey}, req: req, raw: true}
}

// writeRawToken writes the AuthBytes of the answer to a bare token as a
// bare frame; an error code in it closes the connection.
func writeRawToken(o *outBuffers, resp kmsg.Response) error {
	r, ok := resp.(*kmsg.SASLAuthenticateResponse)
	if !ok {
		return fmt.Errorf("wire: a bare SASL token was answered with %T", resp)
	}
	if r.ErrorCode != 0 {
		msg := ""
		if r.ErrorMessage != nil {
			msg = *r.ErrorMessage
		}
		return fmt.Errorf("wire: SASL authentication failed (error %d: %s); closing, as a v0 handshake cannot be told", r.ErrorCode, msg)
	}
	o.buf = binary.BigEndian.AppendUint32(o.buf[:0], uint32(len(r.SASLAuthBytes)))
	o.buf = append(o.buf, r.SASLAuthBytes...)
	_, err := o.bw.Write(o.buf)
	return err
}
