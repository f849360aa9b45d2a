package broker

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/sasl"
	"logpipe/brokerd/wire"
)

// SaslAuthenticate v0–v2 (KIP-152): one token of the exchange the
// handshake began. A finished exchange makes the connection's principal
// User:<name>; v1+ tell the client how long its session lasts
// (connections.max.reauth.ms, KIP-368). A re-authentication must be as
// the same user. A failed login gets SASL_AUTHENTICATION_FAILED, after
// connection.failed.authentication.delay.ms, with a message that does not
// say whether the user or the password was wrong, is logged with the
// client's address and user, and closes the connection.
func init() { register(36, 0, 2, handleSASLAuthenticate) }

func handleSASLAuthenticate(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.SASLAuthenticateRequest)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	if c == nil || !c.SASL() {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return resp, nil
	}
	st, _ := c.AuthState().(*saslExchange)
	if st == nil {
		return nil, errNoExchange
	}
	reply, err := st.ex.Step(req.SASLAuthBytes)
	if err == nil && st.ex.Done() {
		principal := "User:" + st.ex.User()
		if c.Authenticated() && principal != c.Principal() {
			err = errors.New("broker: re-authentication as another principal is not allowed")
		} else {
			c.SetAuthState(nil)
			lifetime := time.Duration(b.sec.of(c.Listener()).cfg.ConnectionsMaxReauthMs) * time.Millisecond
			c.SetAuthenticated(principal, lifetime)
			resp.SessionLifetimeMillis = lifetime.Milliseconds()
			b.log.Debug("SASL authenticated", "remote", c.RemoteAddr(), "listener", c.Listener(), "mechanism", st.ex.Mechanism(), "principal", principal)
		}
	}
	if err != nil {
		b.loginFailed(ctx, c, st.ex, err, resp)
		return resp, nil
	}
	resp.SASLAuthBytes = reply
	return resp, nil
}

// loginFailed answers a failed login: logged, delayed, refused in terms
// that do not tell the user from the password, and the connection closed
// after the answer.
func (b *Broker) loginFailed(ctx context.Context, c *wire.Conn, ex *sasl.Exchange, err error, resp *kmsg.SASLAuthenticateResponse) {
	b.log.Warn("SASL authentication failed", "remote", c.RemoteAddr(), "listener", c.Listener(), "mechanism", ex.Mechanism(), "user", ex.User(), "reason", err)
	c.SetAuthState(nil)
	c.CloseAfterResponse()
	if d := time.Duration(b.sec.base.cfg.ConnectionFailedAuthenticationDelayMs) * time.Millisecond; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
	msg := "Authentication failed: invalid user name or password (mechanism " + ex.Mechanism() + ")"
	if !errors.Is(err, sasl.ErrAuthFailed) {
		msg = "Authentication failed: " + err.Error()
	}
	resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
	resp.ErrorMessage = &msg
}
