package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/sasl"
	"logpipe/brokerd/wire"
)

// SaslHandshake v0–v1: a client on a SASL listener picks its mechanism.
// With v1 the tokens then travel in SaslAuthenticate requests (KIP-152);
// with v0, as bare frames (the wire layer wraps them). A mechanism that
// is not enabled is refused with the list of those that are, and the
// connection closed, as Kafka does. On an authenticated connection it
// starts a re-authentication (KIP-368, v1 only).
func init() { register(17, 0, 1, handleSASLHandshake) }

// saslExchange is a connection's SASL exchange in progress.
type saslExchange struct {
	ex *sasl.Exchange
}

func handleSASLHandshake(b *Broker, _ context.Context, c *wire.Conn, h wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	if c == nil || !c.SASL() {
		resp.SupportedMechanisms = b.sec.base.auth.Enabled
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return resp, nil
	}
	if c.Authenticated() && h.APIVersion == 0 {
		return nil, errors.New("broker: SaslHandshake v0 on an authenticated connection: re-authentication needs v1")
	}
	auth := b.sec.of(c.Listener()).auth
	resp.SupportedMechanisms = auth.Enabled
	ex, err := auth.Start(req.Mechanism)
	if err != nil {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		if errors.Is(err, sasl.ErrUnsupportedMechanism) {
			b.log.Info("SASL mechanism refused", "remote", c.RemoteAddr(), "listener", c.Listener(), "mechanism", req.Mechanism)
		}
		c.SetAuthState(nil)
		c.CloseAfterResponse()
		return resp, nil
	}
	c.SetAuthState(&saslExchange{ex: ex})
	if h.APIVersion == 0 {
		c.ExpectRawTokens()
	}
	return resp, nil
}

// errNoExchange closes a connection that sends a token without a
// mechanism.
var errNoExchange = fmt.Errorf("broker: SaslAuthenticate without a SaslHandshake first; closing as Kafka does")
