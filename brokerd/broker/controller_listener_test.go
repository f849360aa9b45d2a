package broker_test

import (
	"slices"
	"strings"
	"testing"

	"logpipe/brokerd/broker"
)

// TestControllerListenerProtocols checks which security protocols the
// controller listener takes: PLAINTEXT, SSL with a keystore and client
// certificates (asked for globally or on that listener only), and SASL
// with PLAIN and credentials on a voter; SSL is refused on a broker-only
// node or without a keystore, SASL without credentials or with SCRAM.
func TestControllerListenerProtocols(t *testing.T) {
	const jaas = `org.apache.kafka.common.security.plain.PlainLoginModule required username="node" password="pw";`
	voter := func(c *broker.Config) {
		c.NodeID = 1
		c.Listeners = "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
		c.ControllerQuorumVoters = "1@127.0.0.1:9093,2@127.0.0.2:9093,3@127.0.0.3:9093"
		c.LogDirs = []string{t.TempDir()}
	}
	// An SSL controller listener needs client certificates; keystore sets
	// them required unless the case chose.
	keystore := func(c *broker.Config) {
		c.Security.SSLKeystoreCertificateChain, c.Security.SSLKeystoreKey = "chain.pem", "key.pem"
		if c.Security.SSLClientAuth == "none" {
			c.Security.SSLClientAuth = "required"
		}
	}
	for _, tc := range []struct {
		name    string
		change  func(*broker.Config)
		badKey  string // "" for a valid config
		message string
	}{
		{"plaintext", func(c *broker.Config) { c.ListenerSecurityProtocolMap = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT" }, "", ""},
		{"ssl", func(c *broker.Config) {
			c.ListenerSecurityProtocolMap = "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL"
			keystore(c)
		}, "", ""},
		{"ssl with client certificates requested", func(c *broker.Config) {
			c.ListenerSecurityProtocolMap = "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL"
			c.Security.SSLClientAuth = "requested"
			keystore(c)
		}, "", ""},
		{"ssl without client certificates", func(c *broker.Config) {
			c.ListenerSecurityProtocolMap = "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL"
			keystore(c)
			c.Security.SSLClientAuth = "none"
		}, "ssl.client.auth", "set ssl.client.auth to required"},
		{"ssl without a keystore", func(c *broker.Config) { c.ListenerSecurityProtocolMap = "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL" }, "ssl.keystore.location", "CONTROLLER is SSL"},
		{"sasl_ssl", func(c *broker.Config) {
			c.ListenerSecurityProtocolMap = "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_SSL"
			keystore(c)
			c.Security.SSLClientAuth = "none"
			c.ListenerOverrides = map[string]string{"controller.plain.sasl.jaas.config": jaas}
		}, "", ""},
		{"sasl_plaintext", func(c *broker.Config) {
			c.ListenerSecurityProtocolMap = "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"
			c.Security.SASLJaasConfig = jaas
		}, "", ""},
		{"sasl without credentials", func(c *broker.Config) {
			c.ListenerSecurityProtocolMap = "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"
		}, "sasl.jaas.config", "logs in there"},
		{"sasl with scram", func(c *broker.Config) {
			c.ListenerSecurityProtocolMap = "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"
			c.Security.SASLJaasConfig = jaas
			c.Security.SASLMechanismControllerProtocol = "SCRAM-SHA-512"
		}, "sasl.mechanism.controller.protocol", "PLAIN only"},
		{"sasl without plain enabled there", func(c *broker.Config) {
			c.ListenerSecurityProtocolMap = "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"
			c.Security.SASLJaasConfig = jaas
			c.ListenerOverrides = map[string]string{"controller.sasl.enabled.mechanisms": "SCRAM-SHA-512"}
		}, "sasl.enabled.mechanisms", "lacks"},
		{"ssl with client certificates required there only", func(c *broker.Config) {
			c.ListenerSecurityProtocolMap = "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL"
			keystore(c)
			c.Security.SSLClientAuth = "none"
			c.ListenerOverrides = map[string]string{"controller.ssl.client.auth": "required"}
		}, "", ""},
		{"ssl on a broker-only node", func(c *broker.Config) {
			c.NodeID, c.ProcessRoles, c.Listeners = 4, "broker", "PLAINTEXT://10.0.0.4:9092"
			c.ListenerSecurityProtocolMap = "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL"
			keystore(c)
		}, "listener.security.protocol.map", "broker-only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := broker.DefaultConfig()
			voter(&c)
			tc.change(&c)
			err := c.Validate()
			if tc.badKey == "" {
				if err != nil {
					t.Fatalf("got %v, want a valid config", err)
				}
				return
			}
			if keys := keysOf(err); !slices.Contains(keys, tc.badKey) || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("got %v (keys %v), want an error on %s saying %q", err, keys, tc.badKey, tc.message)
			}
		})
	}
}
