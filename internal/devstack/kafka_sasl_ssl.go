package devstack

import (
	"fmt"
	"slices"
	"strings"
)

// KafkaTLS is the server certificate of a Kafka SASL_SSL listener.
type KafkaTLS struct {
	// CertPEM is the certificate chain in PEM, the node's own first.
	CertPEM []byte
	// KeyPEM is its private key, unencrypted PKCS#8 in PEM ("PRIVATE
	// KEY"), the form Kafka's PEM keystore reads without a password.
	KeyPEM []byte
}

// kafkaSASLSSLListener is the name of the optional SASL_SSL listener in
// server.properties, lower-case as listener-scoped settings take it.
const kafkaSASLSSLListener = "sasl_ssl"

// SASLSSLAddrs returns the SASL_SSL host:port of every node, index i for
// node i, or nil if the cluster was started without KafkaOptions.SASLSSL.
// The listener admits the SCRAM accounts of KafkaSASLUsers, and any SCRAM
// credential added later, over TLS 1.2 or 1.3.
func (k *Kafka) SASLSSLAddrs() []string {
	if k.saslSSL == nil {
		return nil
	}
	return k.eachNode(func(n *kafkaNode) string { return fmt.Sprintf("127.0.0.1:%d", n.sslPort) })
}

// SASLSSLBootstrap returns SASLSSLAddrs joined by commas.
func (k *Kafka) SASLSSLBootstrap() string { return strings.Join(k.SASLSSLAddrs(), ",") }

// addSASLSSLPorts gives every node a port for its SASL_SSL listener when
// the cluster has one.
func (k *Kafka) addSASLSSLPorts() error {
	if k.saslSSL == nil {
		return nil
	}
	var taken []int
	for _, n := range k.nodes {
		taken = append(taken, n.port, n.saslPort, n.ctrlPort)
	}
	ports, err := kafkaFreePorts(len(taken) + len(k.nodes))
	if err != nil {
		return err
	}
	i := 0
	for _, n := range k.nodes {
		for slices.Contains(taken, ports[i]) {
			i++
		}
		n.sslPort = ports[i]
		i++
	}
	return nil
}

// addSASLSSLProperties adds node's SASL_SSL listener to props, the
// server.properties StartKafka writes, when the cluster has one: the
// listener beside the others, its PEM keystore inline, and SCRAM-SHA-512
// and SCRAM-SHA-256 with credentials from the cluster metadata.
func (k *Kafka) addSASLSSLProperties(node *kafkaNode, props map[string]string) {
	if k.saslSSL == nil {
		return
	}
	addr := fmt.Sprintf("SASL_SSL://127.0.0.1:%d", node.sslPort)
	props["listeners"] += "," + addr
	props["advertised.listeners"] += "," + addr
	props["listener.security.protocol.map"] += ",SASL_SSL:SASL_SSL"
	pre := "listener.name." + kafkaSASLSSLListener + "."
	props[pre+"sasl.enabled.mechanisms"] = "SCRAM-SHA-512,SCRAM-SHA-256"
	props[pre+"scram-sha-512.sasl.jaas.config"] = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
	props[pre+"scram-sha-256.sasl.jaas.config"] = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
	props[pre+"ssl.keystore.type"] = "PEM"
	props[pre+"ssl.keystore.certificate.chain"] = string(k.saslSSL.CertPEM)
	props[pre+"ssl.keystore.key"] = string(k.saslSSL.KeyPEM)
	props[pre+"ssl.enabled.protocols"] = "TLSv1.2,TLSv1.3"
}
