package output

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

// scramClient is the client side of SCRAM authentication (RFC 5802), as
// sarama's SCRAMClient: Begin, then Step with each server message until
// Done.
type scramClient struct {
	newHash func() hash.Hash
	nonce   string // the client nonce; random when empty at Begin

	user, password, authz string
	step                  int
	clientFirstBare       string
	serverSignature       []byte
	done                  bool
}

func newSCRAM(mechanism string) *scramClient {
	if mechanism == "SCRAM-SHA-512" {
		return &scramClient{newHash: sha512.New}
	}
	return &scramClient{newHash: sha256.New}
}

// Begin starts a conversation for user.
func (c *scramClient) Begin(user, password, authz string) error {
	c.user, c.password, c.authz = user, password, authz
	c.step, c.done = 0, false
	if c.nonce == "" {
		b := make([]byte, 24)
		if _, err := rand.Read(b); err != nil {
			return fmt.Errorf("output: scram nonce: %w", err)
		}
		c.nonce = base64.RawStdEncoding.EncodeToString(b)
	}
	return nil
}

// saslName escapes a name as SCRAM's messages need.
func saslName(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

func (c *scramClient) gs2Header() string {
	if c.authz == "" {
		return "n,,"
	}
	return "n,a=" + saslName(c.authz) + ","
}

// Step answers the server's message (empty for the first step).
func (c *scramClient) Step(challenge string) (string, error) {
	c.step++
	switch c.step {
	case 1:
		c.clientFirstBare = "n=" + saslName(c.user) + ",r=" + c.nonce
		return c.gs2Header() + c.clientFirstBare, nil
	case 2:
		return c.final(challenge)
	case 3:
		c.done = true
		attrs := scramAttrs(challenge)
		if e, ok := attrs["e"]; ok {
			return "", fmt.Errorf("output: scram: server refused: %s", e)
		}
		v, err := base64.StdEncoding.DecodeString(attrs["v"])
		if err != nil || !hmac.Equal(v, c.serverSignature) {
			return "", errors.New("output: scram: the server's signature is wrong")
		}
		return "", nil
	}
	return "", errors.New("output: scram: conversation already over")
}

// final builds the client-final message from the server-first one.
func (c *scramClient) final(serverFirst string) (string, error) {
	attrs := scramAttrs(serverFirst)
	nonce, salt64, iters := attrs["r"], attrs["s"], attrs["i"]
	if !strings.HasPrefix(nonce, c.nonce) || len(nonce) == len(c.nonce) {
		return "", errors.New("output: scram: the server's nonce does not extend ours")
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil {
		return "", fmt.Errorf("output: scram: bad salt: %w", err)
	}
	n, err := strconv.Atoi(iters)
	if err != nil || n < 1 {
		return "", fmt.Errorf("output: scram: bad iteration count %q", iters)
	}
	salted, err := pbkdf2.Key(c.newHash, c.password, salt, n, c.newHash().Size())
	if err != nil {
		return "", fmt.Errorf("output: scram: %w", err)
	}
	clientKey := c.hmac(salted, "Client Key")
	h := c.newHash()
	h.Write(clientKey)
	storedKey := h.Sum(nil)
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte(c.gs2Header())) + ",r=" + nonce
	authMessage := c.clientFirstBare + "," + serverFirst + "," + withoutProof
	signature := c.hmac(storedKey, authMessage)
	proof := make([]byte, len(clientKey))
	for i := range clientKey {
		proof[i] = clientKey[i] ^ signature[i]
	}
	c.serverSignature = c.hmac(c.hmac(salted, "Server Key"), authMessage)
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

func (c *scramClient) hmac(key []byte, msg string) []byte {
	m := hmac.New(c.newHash, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// Done reports whether the conversation is over.
func (c *scramClient) Done() bool { return c.done }

// scramAttrs splits "a=1,b=2" into its attributes.
func scramAttrs(s string) map[string]string {
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(part, "="); ok && len(k) == 1 {
			out[k] = v
		}
	}
	return out
}
