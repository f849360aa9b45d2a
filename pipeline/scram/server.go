package scram

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrAuthFailed is the server's answer to a wrong password and to an
// unknown user alike: the client is not told which it was.
var ErrAuthFailed = errors.New("scram: authentication failed: invalid user name or password")

// ErrMalformed wraps the server's errors for messages that are not SCRAM.
var ErrMalformed = errors.New("scram: malformed message")

// ClientFirst is a parsed client-first-message.
type ClientFirst struct {
	// GS2Header is the message's prefix up to the bare part ("n,,"),
	// which the client-final message echoes base64-encoded.
	GS2Header string
	// Authzid is the authorization identity, unescaped; "" when absent.
	Authzid string
	// User is the user name, unescaped.
	User string
	// Nonce is the client's nonce.
	Nonce string
	// Bare is client-first-message-bare, part of the AuthMessage.
	Bare string
	// Extensions are the attributes after the nonce ("tokenauth=true").
	Extensions map[string]string
}

// printable reports whether s is a valid nonce: printable ASCII but ','.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == ',' {
			return false
		}
	}
	return s != ""
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// ParseClientFirst parses a client-first-message:
//
//	gs2-cbind-flag "," [ "a=" saslname ] "," [ "m=" ext "," ] "n=" saslname "," "r=" nonce [ "," extensions ]
//
// Channel binding ("p=") and the mandatory extension ("m=") are refused,
// as Kafka refuses them.
func ParseClientFirst(msg string) (ClientFirst, error) {
	var cf ClientFirst
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return cf, malformed("client-first message has no GS2 header")
	}
	switch {
	case flag == "n", flag == "y":
	case strings.HasPrefix(flag, "p="):
		return cf, malformed("channel binding is not supported")
	default:
		return cf, malformed("GS2 channel binding flag %q", flag)
	}
	authz, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return cf, malformed("client-first message has no authorization field")
	}
	if authz != "" {
		a, ok := strings.CutPrefix(authz, "a=")
		if !ok {
			return cf, malformed("authorization field %q", authz)
		}
		if cf.Authzid, ok = unescapeName(a); !ok || cf.Authzid == "" {
			return cf, malformed("authorization identity %q", a)
		}
	}
	cf.GS2Header = msg[:len(msg)-len(bare)]
	cf.Bare = bare
	attrs := strings.Split(bare, ",")
	if strings.HasPrefix(attrs[0], "m=") {
		return cf, malformed("mandatory extension %q is not supported", attrs[0])
	}
	if len(attrs) < 2 {
		return cf, malformed("client-first message needs n= and r=")
	}
	name, ok := strings.CutPrefix(attrs[0], "n=")
	if !ok {
		return cf, malformed("client-first message starts with %q, want n=", attrs[0])
	}
	if cf.User, ok = unescapeName(name); !ok || cf.User == "" {
		return cf, malformed("user name %q", name)
	}
	if cf.Nonce, ok = strings.CutPrefix(attrs[1], "r="); !ok || !printable(cf.Nonce) {
		return cf, malformed("client nonce %q", attrs[1])
	}
	for _, a := range attrs[2:] {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return cf, malformed("extension %q", a)
		}
		if cf.Extensions == nil {
			cf.Extensions = map[string]string{}
		}
		cf.Extensions[k] = v
	}
	return cf, nil
}

// ClientFinal is a parsed client-final-message.
type ClientFinal struct {
	// ChannelBinding is the decoded c= attribute: the GS2 header again.
	ChannelBinding string
	// Nonce is the combined nonce.
	Nonce string
	// Proof is the decoded client proof.
	Proof []byte
	// WithoutProof is client-final-message-without-proof, part of the
	// AuthMessage.
	WithoutProof string
}

// ParseClientFinal parses a client-final-message:
//
//	"c=" base64 "," "r=" nonce [ "," extensions ] "," "p=" base64
func ParseClientFinal(msg string) (ClientFinal, error) {
	var cf ClientFinal
	at := strings.LastIndex(msg, ",p=")
	if at < 0 {
		return cf, malformed("client-final message has no proof")
	}
	cf.WithoutProof = msg[:at]
	proof, err := base64.StdEncoding.DecodeString(msg[at+3:])
	if err != nil || len(proof) == 0 {
		return cf, malformed("client proof is not base64")
	}
	cf.Proof = proof
	attrs := strings.Split(cf.WithoutProof, ",")
	if len(attrs) < 2 {
		return cf, malformed("client-final message needs c= and r=")
	}
	cb, ok := strings.CutPrefix(attrs[0], "c=")
	if !ok {
		return cf, malformed("client-final message starts with %q, want c=", attrs[0])
	}
	b, err := base64.StdEncoding.DecodeString(cb)
	if err != nil {
		return cf, malformed("channel binding is not base64")
	}
	cf.ChannelBinding = string(b)
	if cf.Nonce, ok = strings.CutPrefix(attrs[1], "r="); !ok || !printable(cf.Nonce) {
		return cf, malformed("nonce %q", attrs[1])
	}
	return cf, nil
}

// Lookup finds a user's credential for a mechanism; ok is false for a user
// that has none.
type Lookup func(user string) (cred Credential, ok bool)

// Server is the server side of one SCRAM conversation: Step takes the
// client-first message, then the client-final one. It is not safe for
// concurrent use.
type Server struct {
	mech   Mechanism
	lookup Lookup

	step        int
	first       ClientFirst
	cred        Credential
	known       bool
	serverFirst string
	nonce       string
	done        bool
}

// NewServer starts a conversation with mechanism m, finding credentials
// with lookup.
func NewServer(m Mechanism, lookup Lookup) *Server { return &Server{mech: m, lookup: lookup} }

// User returns the user name the client gave, once it sent its first
// message.
func (s *Server) User() string { return s.first.User }

// Done reports whether the client proved it knows the password.
func (s *Server) Done() bool { return s.done }

// Step takes the client's next message and returns the server's answer.
// An error ends the conversation: ErrAuthFailed for a wrong password or
// an unknown user, an ErrMalformed error for a message that is not SCRAM.
func (s *Server) Step(msg string) (string, error) {
	s.step++
	switch s.step {
	case 1:
		return s.first1(msg)
	case 2:
		return s.final(msg)
	}
	return "", errors.New("scram: the conversation is over")
}

func (s *Server) first1(msg string) (string, error) {
	cf, err := ParseClientFirst(msg)
	if err != nil {
		return "", err
	}
	if cf.Authzid != "" && cf.Authzid != cf.User {
		// Kafka lets no user act for another.
		return "", fmt.Errorf("%w: authorization identity %q differs from the user name", ErrMalformed, cf.Authzid)
	}
	s.first = cf
	s.cred, s.known = s.lookup(cf.User)
	if !s.known {
		// Go on with a made-up credential that no proof matches, so an
		// unknown user fails where a wrong password does.
		s.cred = decoyCredential(s.mech, cf.User)
	}
	var n [24]byte
	_, _ = rand.Read(n[:])
	s.nonce = cf.Nonce + base64.RawStdEncoding.EncodeToString(n[:])
	s.serverFirst = "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(s.cred.Salt) + ",i=" + strconv.Itoa(s.cred.Iterations)
	return s.serverFirst, nil
}

func (s *Server) final(msg string) (string, error) {
	cf, err := ParseClientFinal(msg)
	if err != nil {
		return "", err
	}
	if cf.ChannelBinding != s.first.GS2Header {
		return "", fmt.Errorf("%w: channel binding does not repeat the GS2 header", ErrMalformed)
	}
	// librdkafka before 2.6.1 sends the client's nonce twice; Kafka 3.9
	// accepts it, and so does this server, but nothing else.
	if cf.Nonce != s.nonce && cf.Nonce != s.first.Nonce+s.nonce {
		return "", fmt.Errorf("%w: the nonce is not the server's", ErrMalformed)
	}
	h := s.mech.Hash
	authMessage := s.first.Bare + "," + s.serverFirst + "," + cf.WithoutProof
	sig := HMAC(h, s.cred.StoredKey, authMessage)
	if len(cf.Proof) != len(sig) {
		return "", ErrAuthFailed
	}
	if !hmac.Equal(StoredKey(h, xor(cf.Proof, sig)), s.cred.StoredKey) || !s.known {
		return "", ErrAuthFailed
	}
	s.done = true
	return "v=" + base64.StdEncoding.EncodeToString(HMAC(h, s.cred.ServerKey, authMessage)), nil
}

// decoySecret keys the salts of users that do not exist, so the same
// unknown name always gets the same salt from this process.
var decoySecret = func() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}()

func decoyCredential(m Mechanism, user string) Credential {
	keys := make([]byte, m.Hash().Size())
	_, _ = rand.Read(keys)
	return Credential{Salt: HMAC(m.Hash, decoySecret, user)[:32], Iterations: MinIterations, StoredKey: keys, ServerKey: keys}
}
