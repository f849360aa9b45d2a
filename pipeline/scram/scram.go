// Package scram is SCRAM (RFC 5802) with SHA-256 or SHA-512 (RFC 7677),
// as Kafka's SASL/SCRAM mechanisms use it. Client is the client side and
// implements sarama.SCRAMClient, for the shipper's and the indexer's Kafka
// connections (sarama sends the messages); Server is the server side, for
// brokerd. Both are built on the primitives of keys.go.
package scram

import (
	"crypto/hmac"
	"crypto/rand"
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
	if m, ok := MechanismByName(mechanism); ok {
		return New(m.Hash)
	}
	return nil
}

func randomNonce() string {
	var b [24]byte
	rand.Read(b[:])
	return base64.RawStdEncoding.EncodeToString(b[:])
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
	salted, err := SaltedPassword(c.hash, c.pass, salt, n)
	if err != nil {
		return "", err
	}
	clientKey := ClientKey(c.hash, salted)
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte(c.gs2Header())) + ",r=" + nonce
	authMessage := c.clientFirstBare + "," + serverFirst + "," + withoutProof
	proof := xor(clientKey, HMAC(c.hash, StoredKey(c.hash, clientKey), authMessage))
	c.serverSignature = HMAC(c.hash, ServerKey(c.hash, salted), authMessage)
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}
