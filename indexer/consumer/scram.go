package consumer

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

// scramClient is the client side of SCRAM (RFC 5802) with SHA-256 or
// SHA-512 (RFC 7677), as Kafka's SASL/SCRAM mechanisms use it. It
// implements sarama.SCRAMClient; sarama sends the messages.
type scramClient struct {
	hash  func() hash.Hash
	nonce func() string // the client nonce; replaced in tests

	user, pass, authz string
	clientNonce       string
	clientFirstBare   string
	serverSignature   []byte
	step              int
	done              bool
}

func newSCRAM(h func() hash.Hash) *scramClient {
	return &scramClient{hash: h, nonce: randomNonce}
}

func newSCRAMSHA256() *scramClient { return newSCRAM(sha256.New) }
func newSCRAMSHA512() *scramClient { return newSCRAM(sha512.New) }

func randomNonce() string {
	var b [24]byte
	rand.Read(b[:])
	return base64.RawStdEncoding.EncodeToString(b[:])
}

// saslName escapes ',' and '=' in a user name, as RFC 5802 asks.
func saslName(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

// Begin starts a conversation.
func (c *scramClient) Begin(user, pass, authz string) error {
	*c = scramClient{hash: c.hash, nonce: c.nonce, user: user, pass: pass, authz: authz}
	return nil
}

func (c *scramClient) gs2Header() string {
	if c.authz == "" {
		return "n,,"
	}
	return "n,a=" + saslName(c.authz) + ","
}

// Step takes the server's message and returns the client's next one.
func (c *scramClient) Step(challenge string) (string, error) {
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
				return "", fmt.Errorf("consumer: scram: the server refused: %s", e)
			}
			return "", errors.New("consumer: scram: malformed server-final message")
		}
		sig, err := base64.StdEncoding.DecodeString(v)
		if err != nil || !hmac.Equal(sig, c.serverSignature) {
			return "", errors.New("consumer: scram: the server's signature does not match")
		}
		c.done = true
		return "", nil
	}
	return "", errors.New("consumer: scram: conversation is over")
}

// Done reports whether the server has been authenticated.
func (c *scramClient) Done() bool { return c.done }

func (c *scramClient) hmacOf(key []byte, msg string) []byte {
	m := hmac.New(c.hash, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func (c *scramClient) final(serverFirst string) (string, error) {
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
			return "", errors.New("consumer: scram: the server asks for an extension this client lacks")
		}
	}
	if !strings.HasPrefix(nonce, c.clientNonce) || len(nonce) == len(c.clientNonce) {
		return "", errors.New("consumer: scram: the server's nonce does not extend the client's")
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil {
		return "", fmt.Errorf("consumer: scram: salt: %w", err)
	}
	n, err := strconv.Atoi(iters)
	if err != nil || n < 1 {
		return "", fmt.Errorf("consumer: scram: iteration count %q", iters)
	}
	salted, err := pbkdf2.Key(c.hash, c.pass, salt, n, c.hash().Size())
	if err != nil {
		return "", fmt.Errorf("consumer: scram: %w", err)
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
