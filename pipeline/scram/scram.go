// Package scram is the client side of SCRAM (RFC 5802) with SHA-256 or
// SHA-512 (RFC 7677), as Kafka's SASL/SCRAM mechanisms use it. Client
// implements sarama.SCRAMClient, for the shipper's and the indexer's
// Kafka connections; sarama sends the messages.
package scram

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// Client is one SCRAM conversation; Begin starts it again.
type Client struct {
	hash  func() hash.Hash
	nonce func() string // the client nonce; replaced in tests

	user, pass, authz string
	clientNonce       string
	clientFirstBare   string
	serverSignature   []byte
	step              int
	done              bool
}

// New returns a client using hash h.
func New(h func() hash.Hash) *Client {
	return &Client{hash: h, nonce: randomNonce}
}

// ForMechanism returns a client for Kafka's mechanism name, SCRAM-SHA-256
// or SCRAM-SHA-512, or nil for another name.
func ForMechanism(mechanism string) *Client {
	switch mechanism {
	case "SCRAM-SHA-256":
		return New(sha256.New)
	case "SCRAM-SHA-512":
		return New(sha512.New)
	}
	return nil
}

func randomNonce() string {
	var b [24]byte
	rand.Read(b[:])
	return base64.RawStdEncoding.EncodeToString(b[:])
}

// saslName escapes ',' and '=' in a user name, as RFC 5802 asks.
func saslName(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

// Begin starts a conversation (sarama.SCRAMClient).
func (c *Client) Begin(user, pass, authz string) error {
	*c = Client{hash: c.hash, nonce: c.nonce, user: user, pass: pass, authz: authz}
	return nil
}

func (c *Client) gs2Header() string {
	if c.authz == "" {
		return "n,,"
	}
	return "n,a=" + saslName(c.authz) + ","
}

// Step takes the server's message and returns the client's next one.
func (c *Client) Step(challenge string) (string, error) {
	c.step++
	switch c.step {
	case 1:
		c.clientNonce = c.nonce()
		c.clientFirstBare = "n=" + saslName(c.user) + ",r=" + c.clientNonce
		return c.gs2Header() + c.clientFirstBare, nil
	case 2:
		return c.final(challenge)
	case 3:
		v, ok := strings.CutPrefix(challenge, "v=")
		if !ok {
			if e, isErr := strings.CutPrefix(challenge, "e="); isErr {
				return "", fmt.Errorf("scram: the server refused: %s", e)
			}
			return "", errors.New("scram: malformed server-final message")
		}
		sig, err := base64.StdEncoding.DecodeString(v)
		if err != nil || !hmac.Equal(sig, c.serverSignature) {
			return "", errors.New("scram: the server's signature does not match")
		}
		c.done = true
		return "", nil
	}
	return "", errors.New("scram: conversation is over")
}

// Done reports whether the server has been authenticated.
func (c *Client) Done() bool { return c.done }

func (c *Client) hmacOf(key []byte, msg string) []byte {
	m := hmac.New(c.hash, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func (c *Client) final(serverFirst string) (string, error) {
	var nonce, salt64, iters string
	for _, attr := range strings.Split(serverFirst, ",") {
		switch {
		case strings.HasPrefix(attr, "r="):
			nonce = attr[2:]
		case strings.HasPrefix(attr, "s="):
			salt64 = attr[2:]
		case strings.HasPrefix(attr, "i="):
			iters = attr[2:]
		case strings.HasPrefix(attr, "m="):
			return "", errors.New("scram: the server asks for an extension this client lacks")
		}
	}
	if !strings.HasPrefix(nonce, c.clientNonce) || len(nonce) == len(c.clientNonce) {
		return "", errors.New("scram: the server's nonce does not extend the client's")
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil {
		return "", fmt.Errorf("scram: salt: %w", err)
	}
	n, err := strconv.Atoi(iters)
	if err != nil || n < 1 {
		return "", fmt.Errorf("scram: iteration count %q", iters)
	}
	salted, err := pbkdf2.Key(c.hash, c.pass, salt, n, c.hash().Size())
	if err != nil {
		return "", fmt.Errorf("scram: %w", err)
	}
	clientKey := c.hmacOf(salted, "Client Key")
	h := c.hash()
	h.Write(clientKey)
	storedKey := h.Sum(nil)
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte(c.gs2Header())) + ",r=" + nonce
	authMessage := c.clientFirstBare + "," + serverFirst + "," + withoutProof
	clientSig := c.hmacOf(storedKey, authMessage)
	proof := make([]byte, len(clientKey))
	for i := range clientKey {
		proof[i] = clientKey[i] ^ clientSig[i]
	}
	c.serverSignature = c.hmacOf(c.hmacOf(salted, "Server Key"), authMessage)
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}
