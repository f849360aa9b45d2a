package benchkit

import (
	"context"

	"logpipe/internal/devstack"
)

// StartBrokerdSASLSSL is StartBrokerd with a second client listener,
// SASL_SSL, on a free loopback port, whose address it returns beside the
// broker. Its certificate and SASL settings are brokerd.yml keys in
// overrides (ssl.keystore.location, sasl.enabled.mechanisms, …).
func StartBrokerdSASLSSL(ctx context.Context, bin string, overrides map[string]string) (*Brokerd, string, error) {
	return startBrokerd(ctx, bin, overrides, "SASL_SSL")
}

// StartKafkaSASLSSL is StartKafka with a SASL_SSL listener beside the
// PLAINTEXT one, serving cert, that admits SCRAM credentials; it returns
// the broker and that listener's address.
func StartKafkaSASLSSL(ctx context.Context, heapMB int, properties map[string]string, cert devstack.KafkaTLS) (*Kafka, string, error) {
	k, err := startKafka(ctx, devstack.KafkaOptions{Nodes: 1, HeapMB: heapMB, Properties: properties, SASLSSL: &cert})
	if err != nil {
		return nil, "", err
	}
	return k, k.k.SASLSSLBootstrap(), nil
}
