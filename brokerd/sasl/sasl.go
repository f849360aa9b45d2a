// Package sasl is the server side of brokerd's SASL mechanisms: PLAIN
// (RFC 4616) against a file of bcrypt hashes, and SCRAM-SHA-256 and
// SCRAM-SHA-512 (RFC 5802, RFC 7677) against credentials kept in the
// cluster metadata. The Kafka framing (SaslHandshake, SaslAuthenticate) is
// the broker's; this package only runs one exchange of tokens.
package sasl

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"logpipe/pipeline/scram"
)

// Plain is the PLAIN mechanism's name; the SCRAM ones are scram.SHA256.Name
// and scram.SHA512.Name.
const Plain = "PLAIN"

// Mechanisms lists every mechanism this package serves.
var Mechanisms = []string{Plain, scram.SHA256.Name, scram.SHA512.Name}

// Errors of an exchange. ErrAuthFailed is the same for an unknown user and
// a wrong password.
var (
	ErrUnsupportedMechanism = errors.New("sasl: mechanism not enabled")
	ErrAuthFailed           = errors.New("sasl: authentication failed: invalid user name or password")
	ErrMalformed            = errors.New("sasl: malformed token")
)

// Authenticator starts exchanges with the enabled mechanisms.
type Authenticator struct {
	// Enabled are the mechanisms clients may use (sasl.enabled.mechanisms).
	Enabled []string
	// Plain checks PLAIN passwords; nil refuses every PLAIN login.
	Plain *PlainUsers
	// SCRAM finds a user's credential for a SCRAM mechanism; nil refuses
	// every SCRAM login.
	SCRAM func(m scram.Mechanism, user string) (scram.Credential, bool)
}

// Start begins an exchange with mechanism, which must be enabled.
func (a *Authenticator) Start(mechanism string) (*Exchange, error) {
	if !slices.Contains(a.Enabled, mechanism) {
		return nil, fmt.Errorf("%w: %q (enabled: %v)", ErrUnsupportedMechanism, mechanism, a.Enabled)
	}
	e := &Exchange{mech: mechanism, plain: a.Plain}
	if m, ok := scram.MechanismByName(mechanism); ok {
		e.scram = scram.NewServer(m, func(user string) (scram.Credential, bool) {
			if a.SCRAM == nil {
				return scram.Credential{}, false
			}
			return a.SCRAM(m, user)
		})
	}
	return e, nil
}

// Exchange is one client's authentication: Step takes its tokens until
// Done. It is not safe for concurrent use.
type Exchange struct {
	mech  string
	plain *PlainUsers
	scram *scram.Server
	user  string
	done  bool
}

// Mechanism returns the exchange's mechanism.
func (e *Exchange) Mechanism() string { return e.mech }

// User returns the user name the client gave, once it gave one (for logs,
// and once Done, for the principal).
func (e *Exchange) User() string { return e.user }

// Done reports whether the client has authenticated.
func (e *Exchange) Done() bool { return e.done }

// Step takes the client's next token and returns the server's answer. An
// error ends the exchange: ErrAuthFailed for wrong credentials, an
// ErrMalformed error for a token that breaks the mechanism's rules.
func (e *Exchange) Step(token []byte) ([]byte, error) {
	if e.done {
		return nil, fmt.Errorf("%w: the exchange is already over", ErrMalformed)
	}
	if e.scram == nil {
		authz, user, pass, err := ParsePlain(token)
		if err != nil {
			return nil, err
		}
		e.user = user
		if authz != "" && authz != user {
			return nil, fmt.Errorf("%w: authorization identity %q differs from the user name", ErrMalformed, authz)
		}
		if e.plain == nil || !e.plain.Check(user, pass) {
			return nil, ErrAuthFailed
		}
		e.done = true
		return []byte{}, nil
	}
	reply, err := e.scram.Step(string(token))
	e.user = e.scram.User()
	switch {
	case errors.Is(err, scram.ErrAuthFailed):
		return nil, ErrAuthFailed
	case errors.Is(err, scram.ErrMalformed):
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	case err != nil:
		return nil, err
	}
	e.done = e.scram.Done()
	return []byte(reply), nil
}

// ParsePlain parses a PLAIN message, [authzid] NUL authcid NUL passwd
// (RFC 4616), refusing an empty user name or password.
func ParsePlain(msg []byte) (authzid, user, pass string, err error) {
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 {
		return "", "", "", fmt.Errorf("%w: a PLAIN message has three NUL-separated fields, got %d", ErrMalformed, len(parts))
	}
	if len(parts[1]) == 0 || len(parts[2]) == 0 {
		return "", "", "", fmt.Errorf("%w: PLAIN user name and password must not be empty", ErrMalformed)
	}
	return string(parts[0]), string(parts[1]), string(parts[2]), nil
}
