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
// with PLAIN and credentials on a voter; SSL is refused without a
// keystore, SASL without credentials or with SCRAM.
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
			c.Security.SASLPlainUsersFile = "users.yml"
		}, "", ""},
		{"sasl_plaintext", func(c *broker.Config) {
			c.ListenerSecurityProtocolMap = "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"
			c.Security.SASLJaasConfig = jaas
			c.Security.SASLPlainUsersFile = "users.yml"
		}, "", ""},
		// The other voters' Raft streams log in with PLAIN: without the
		// users to check them against, the quorum could never form.
		{"sasl without plain users", func(c *broker.Config) {
			c.ListenerSecurityProtocolMap = "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"
			c.Security.SASLJaasConfig = jaas
		}, "sasl.plain.users.file", "other nodes' Raft streams"},
		{"sasl without plain users, a single voter", func(c *broker.Config) {
			c.ListenerSecurityProtocolMap = "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"
			c.Security.SASLJaasConfig = jaas
			c.ControllerQuorumVoters = "1@127.0.0.1:9093"
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

// TestBrokerOnlyControllerProtocols checks which controller listener
// protocols a broker-only node takes, with which inter-broker listener:
// any with PLAINTEXT or SASL_PLAINTEXT (whose Raft streams come
// unencrypted), only an SSL or SASL_SSL inter-broker listener with SSL or
// SASL_SSL (the streams come over TLS), the refusal naming the keys;
// with SASL the PLAIN users to check the leader's login; and the
// controller listener's settings under listener.name.controller., though
// it is not in listeners.
func TestBrokerOnlyControllerProtocols(t *testing.T) {
	const jaas = `org.apache.kafka.common.security.plain.PlainLoginModule required username="node" password="pw";`
	// node sets up broker-only node 4 whose inter-broker listener BROKER
	// is ib and whose controller listener is ctl, with a keystore, client
	// certificates required, the nodes' login and PLAIN users.
	node := func(c *broker.Config, ib, ctl string) {
		c.NodeID, c.ProcessRoles = 4, "broker"
		c.Listeners, c.InterBrokerListenerName = "BROKER://10.0.0.4:9092", "BROKER"
		c.ListenerSecurityProtocolMap = "BROKER:" + ib + ",CONTROLLER:" + ctl
		c.ControllerQuorumVoters = "1@10.0.0.1:9093,2@10.0.0.2:9093,3@10.0.0.3:9093"
		c.LogDirs = []string{t.TempDir()}
		c.Security.SSLKeystoreCertificateChain, c.Security.SSLKeystoreKey = "chain.pem", "key.pem"
		c.Security.SSLClientAuth = "required"
		c.Security.SASLJaasConfig = jaas
		c.Security.SASLPlainUsersFile = "users.yml"
	}
	for _, tc := range []struct {
		name, ib, ctl string
		change        func(*broker.Config)
		badKey        string   // "" for a valid config
		says          []string // what the refusal says
	}{
		{"plaintext controller, plaintext inter-broker", "PLAINTEXT", "PLAINTEXT", nil, "", nil},
		{"plaintext controller, sasl_ssl inter-broker", "SASL_SSL", "PLAINTEXT", nil, "", nil},
		{"sasl_plaintext controller, plaintext inter-broker", "PLAINTEXT", "SASL_PLAINTEXT", nil, "", nil},
		{"sasl_plaintext controller, ssl inter-broker", "SSL", "SASL_PLAINTEXT", nil, "", nil},
		{"ssl controller, ssl inter-broker", "SSL", "SSL", nil, "", nil},
		{"ssl controller, sasl_ssl inter-broker", "SASL_SSL", "SSL", nil, "", nil},
		{"sasl_ssl controller, ssl inter-broker", "SSL", "SASL_SSL", nil, "", nil},
		{"sasl_ssl controller, sasl_ssl inter-broker", "SASL_SSL", "SASL_SSL", nil, "", nil},
		{"ssl controller, plaintext inter-broker", "PLAINTEXT", "SSL", nil,
			"listener.security.protocol.map", []string{"inter.broker.listener.name", "controller.listener.names", "BROKER", "SSL or SASL_SSL"}},
		{"sasl_ssl controller, sasl_plaintext inter-broker", "SASL_PLAINTEXT", "SASL_SSL", nil,
			"listener.security.protocol.map", []string{"inter.broker.listener.name", "CONTROLLER (controller.listener.names) is SASL_SSL", "is SASL_PLAINTEXT"}},
		{"sasl_ssl controller without PLAIN users", "SASL_SSL", "SASL_SSL", func(c *broker.Config) { c.Security.SASLPlainUsersFile = "" },
			"sasl.plain.users.file", []string{"Raft streams"}},
		{"sasl_plaintext controller without PLAIN users", "PLAINTEXT", "SASL_PLAINTEXT", func(c *broker.Config) { c.Security.SASLPlainUsersFile = "" },
			"sasl.plain.users.file", []string{"Raft streams"}},
		{"sasl_ssl controller without credentials", "SASL_SSL", "SASL_SSL", func(c *broker.Config) { c.Security.SASLJaasConfig = "" },
			"sasl.jaas.config", []string{"logs in there"}},
		{"ssl controller without client certificates", "SSL", "SSL", func(c *broker.Config) { c.Security.SSLClientAuth = "none" },
			"ssl.client.auth", []string{"set ssl.client.auth to required"}},
		{"ssl controller without a keystore", "SSL", "SSL", func(c *broker.Config) {
			c.Security.SSLKeystoreCertificateChain, c.Security.SSLKeystoreKey = "", ""
		}, "ssl.keystore.location", nil},
		// The clients' listener asks for no certificate, the
		// controller's settings (the Raft streams', the controller
		// requests') do.
		{"the controller listener's settings apart", "SASL_SSL", "SSL", func(c *broker.Config) {
			c.Security.SSLClientAuth = "none"
			c.ListenerOverrides = map[string]string{"controller.ssl.client.auth": "required", "controller.ssl.keystore.location": "controller.pem"}
		}, "", nil},
		{"settings of a listener it has not", "SASL_SSL", "SSL", func(c *broker.Config) {
			c.ListenerOverrides = map[string]string{"client.ssl.client.auth": "required"}
		}, "listener.name.client.ssl.client.auth", []string{"CLIENT is not in listeners (BROKER), nor the controller listener CONTROLLER"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := broker.DefaultConfig()
			node(&c, tc.ib, tc.ctl)
			if tc.change != nil {
				tc.change(&c)
			}
			err := c.Validate()
			if tc.badKey == "" {
				if err != nil {
					t.Fatalf("got %v, want a valid config", err)
				}
				return
			}
			if keys := keysOf(err); !slices.Equal(keys, []string{tc.badKey}) {
				t.Fatalf("keys refused: got %v (%v), want [%s]", keys, err, tc.badKey)
			}
			for _, w := range tc.says {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the refusal: got %q, want it to say %q", err, w)
				}
			}
		})
	}
}
