package broker

import (
	"strings"
	"testing"
)

// TestSecurityInterBrokerProtocol checks Kafka's older way to name the
// inter-broker listener: the listener called after the protocol, in
// place of the default PLAINTEXT one.
func TestSecurityInterBrokerProtocol(t *testing.T) {
	c := DefaultConfig()
	c.Listeners = "PLAINTEXT://127.0.0.1:9092,SASL_SSL://127.0.0.1:9093"
	if l, err := c.interBrokerListener(); err != nil || l.Name != "PLAINTEXT" {
		t.Fatalf("default: %+v, %v; want PLAINTEXT", l, err)
	}
	c.SecurityInterBrokerProtocol = "sasl_ssl"
	if l, err := c.interBrokerListener(); err != nil || l.Name != "SASL_SSL" || l.Protocol != "SASL_SSL" {
		t.Fatalf("security.inter.broker.protocol sasl_ssl: %+v, %v; want the SASL_SSL listener", l, err)
	}
	c.Listeners = "PLAINTEXT://127.0.0.1:9092"
	if _, err := c.interBrokerListener(); err == nil || !strings.Contains(err.Error(), "security.inter.broker.protocol SASL_SSL is not one of the client listeners") {
		t.Fatalf("no SASL_SSL listener: got %v", err)
	}
}
