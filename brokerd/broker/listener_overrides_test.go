package broker_test

import (
	"strings"
	"testing"
	"time"

	"logpipe/brokerd/broker"
	"logpipe/brokerd/wire"
)

// TestPerListenerClientAuth runs a node whose ssl.client.auth is none but
// whose SSL controller listener overrides it to required
// (listener.name.controller.ssl.client.auth): a TLS client without a
// certificate is served on the SASL_SSL and SSL client listeners and
// refused on the controller listener, where one with the CA's
// certificate is served.
func TestPerListenerClientAuth(t *testing.T) {
	ctl := freeAddr(t)
	sb := startSecureBroker(t, func(c *broker.Config) {
		c.NodeID = 1
		c.Listeners += ",CONTROLLER://" + ctl
		c.ControllerQuorumVoters = "1@" + ctl
		c.ListenerSecurityProtocolMap = "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:SSL"
		c.Security.SSLClientAuth = "none"
		c.ListenerOverrides = map[string]string{"controller.ssl.client.auth": "required"}
	})
	ask := func(addr string, cert bool) error {
		cl, err := wire.DialSecured(addr, "t", 10*time.Second, wire.ClientSecurity{TLS: sb.tlsConfig(cert)})
		if err != nil {
			return err
		}
		defer cl.Close()
		// TLS 1.3 reports the server's refusal of the client
		// certificate at the first read.
		_, err = cl.Request(apiVersions(), time.Now().Add(10*time.Second))
		return err
	}
	for _, l := range []string{"SASL_SSL", "SSL"} {
		if err := ask(sb.addrs[l], false); err != nil {
			t.Errorf("%s listener, no client certificate: got %v, want served (ssl.client.auth none)", l, err)
		}
	}
	if err := ask(ctl, false); err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("controller listener, no client certificate: got %v, want the \"certificate required\" alert", err)
	}
	if err := ask(ctl, true); err != nil {
		t.Errorf("controller listener, the CA's client certificate: got %v, want served", err)
	}
}

// TestListenerOverridesApply checks which settings each listener ends up
// with: the base's, replaced key by key by its overrides, a keystore
// override replacing the whole keystore, and Kafka's
// <mechanism>.sasl.jaas.config spelling taken as sasl.jaas.config.
func TestListenerOverridesApply(t *testing.T) {
	c := broker.DefaultConfig()
	c.Listeners = "SASL_SSL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
	c.Security.SSLKeystoreLocation = "base.pem"
	c.Security.SASLEnabledMechanisms = "PLAIN,SCRAM-SHA-512"
	c.ListenerOverrides = map[string]string{
		"controller.ssl.keystore.certificate.chain": "ctl.crt",
		"controller.ssl.keystore.key":               "ctl.key",
		"controller.ssl.client.auth":                "required",
		"controller.plain.sasl.jaas.config":         `x required username="node" password="pw";`,
		"sasl_ssl.sasl.enabled.mechanisms":          "SCRAM-SHA-512",
		"sasl_ssl.connections.max.reauth.ms":        "60000",
	}
	ctl, client := broker.ListenerSecurity(&c, "CONTROLLER"), broker.ListenerSecurity(&c, "SASL_SSL")
	for _, check := range []struct {
		what      string
		got, want any
	}{
		{"controller keystore location", ctl.SSLKeystoreLocation, ""},
		{"controller keystore chain", ctl.SSLKeystoreCertificateChain, "ctl.crt"},
		{"controller client auth", ctl.SSLClientAuth, "required"},
		{"controller JAAS", ctl.SASLJaasConfig, `x required username="node" password="pw";`},
		{"controller mechanisms", ctl.SASLEnabledMechanisms, "PLAIN,SCRAM-SHA-512"},
		{"client keystore location", client.SSLKeystoreLocation, "base.pem"},
		{"client client auth", client.SSLClientAuth, "none"},
		{"client mechanisms", client.SASLEnabledMechanisms, "SCRAM-SHA-512"},
		{"client reauth", client.ConnectionsMaxReauthMs, int64(60000)},
	} {
		if check.got != check.want {
			t.Errorf("%s: got %v, want %v", check.what, check.got, check.want)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("got %v, want the overrides accepted", err)
	}
}
