package devstack

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// The accounts of every devstack Kafka's SASL_PLAINTEXT listener: one per
// mechanism, each allowed only that mechanism. A client that logs in with
// another mechanism than the account's is refused, so a test that passes
// with an account shows the client really spoke its mechanism.
const (
	// KafkaPlainUser and KafkaPlainPassword log in with SASL/PLAIN. The
	// listener's JAAS configuration holds them.
	KafkaPlainUser     = "logpipe-plain"
	KafkaPlainPassword = "plain-pw-4f81c2"
	// KafkaSCRAM256User and KafkaSCRAM256Password log in with
	// SASL/SCRAM-SHA-256. Their credential is written into the cluster
	// metadata when the storage is formatted.
	KafkaSCRAM256User     = "logpipe-scram256"
	KafkaSCRAM256Password = "scram256-pw-9a07d3"
	// KafkaSCRAM512User and KafkaSCRAM512Password log in with
	// SASL/SCRAM-SHA-512, set up as the SCRAM-SHA-256 account is.
	KafkaSCRAM512User     = "logpipe-scram512"
	KafkaSCRAM512Password = "scram512-pw-e62b5a"
)

// kafkaSASLListener is the name of the SASL listener in server.properties;
// listener-scoped settings take its lower-case form as their prefix.
const kafkaSASLListener = "sasl_plaintext"

// KafkaSASLUser is an account of the SASL_PLAINTEXT listener and the one
// mechanism it may log in with.
type KafkaSASLUser struct {
	// Mechanism is Kafka's name for it: PLAIN, SCRAM-SHA-256 or
	// SCRAM-SHA-512.
	Mechanism string
	Name      string
	Password  string
}

// KafkaSASLUsers returns the accounts every devstack Kafka admits on its
// SASL_PLAINTEXT listener, PLAIN first, then SCRAM-SHA-256 and
// SCRAM-SHA-512. The slice is new on every call.
func KafkaSASLUsers() []KafkaSASLUser {
	return []KafkaSASLUser{
		{Mechanism: "PLAIN", Name: KafkaPlainUser, Password: KafkaPlainPassword},
		{Mechanism: "SCRAM-SHA-256", Name: KafkaSCRAM256User, Password: KafkaSCRAM256Password},
		{Mechanism: "SCRAM-SHA-512", Name: KafkaSCRAM512User, Password: KafkaSCRAM512Password},
	}
}

// SASL returns the account's name and password in u's mechanism for a
// franz-go client (kgo.SASL). It is a client independent of the sarama and
// SCRAM code of logpipe's binaries, so tests can use it to check the broker.
func (u KafkaSASLUser) SASL() sasl.Mechanism {
	switch u.Mechanism {
	case "PLAIN":
		return plain.Auth{User: u.Name, Pass: u.Password}.AsMechanism()
	case "SCRAM-SHA-256":
		return scram.Auth{User: u.Name, Pass: u.Password}.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		return scram.Auth{User: u.Name, Pass: u.Password}.AsSha512Mechanism()
	}
	panic(fmt.Sprintf("devstack: unknown SASL mechanism %q", u.Mechanism))
}

// kafkaSASLProperties returns the server.properties settings of the
// SASL_PLAINTEXT listener: the three mechanisms, the PLAIN account in the
// PLAIN login module's options, and the SCRAM login module, which finds
// credentials in the cluster metadata. Inter-broker and controller traffic
// stay on their own plaintext listeners.
func kafkaSASLProperties() map[string]string {
	pre := "listener.name." + kafkaSASLListener + "."
	return map[string]string{
		pre + "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
		pre + "plain.sasl.jaas.config": fmt.Sprintf(
			"org.apache.kafka.common.security.plain.PlainLoginModule required user_%s=%q;", KafkaPlainUser, KafkaPlainPassword),
		pre + "scram-sha-256.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
		pre + "scram-sha-512.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
	}
}

// kafkaSCRAMFormatArgs returns the storage tool's arguments that put the
// SCRAM accounts into the cluster's bootstrap metadata, so they exist from
// the first start with no admin request to wait for.
func kafkaSCRAMFormatArgs() []string {
	var args []string
	for _, u := range KafkaSASLUsers() {
		if u.Mechanism == "PLAIN" {
			continue
		}
		args = append(args, "--add-scram", fmt.Sprintf("%s=[name=%s,password=%s]", u.Mechanism, u.Name, u.Password))
	}
	return args
}
