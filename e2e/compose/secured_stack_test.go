package compose_test

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
)

// TestSecuredComposeStack runs docker-compose.yml with
// docker-compose.secured.yml (and without Kibana) on the Docker engine:
// the certificates are made, the brokers form their quorum over SASL_SSL,
// the SCRAM users and their ACLs are set, and the shipper and the indexer,
// logged in as those users, bring every line httpd logs to Elasticsearch
// exactly once. Inside the stack's network, a client without TLS and
// SASL, a wrong password, the shipper reading the topic and the indexer
// writing it are each refused.
func TestSecuredComposeStack(t *testing.T) {
	passwords := map[string]string{}
	for k := range securedPasswords {
		passwords[k] = rand.Text()
	}
	files := []string{"docker-compose.yml", "docker-compose.secured.yml", "deploy/compose/without-kibana.yml"}
	s, _, ports := upStack(t, "logpipe-e2e-secured", files, passwords)
	es := &esClient{t: t, url: fmt.Sprintf("http://127.0.0.1:%d", ports[1])}
	site := fmt.Sprintf("http://127.0.0.1:%d", ports[0])

	// The super user broker sees the topic the admin made.
	out, err := s.brokerdAs("PLAIN", "broker", passwords["LOGPIPE_BROKER_PASSWORD"], "topics", "--describe", "--topic", "httpd", "--timeout", "15000")
	if err != nil || strings.Count(out, "Partition:") != 3 {
		t.Fatalf("topics --describe --topic httpd as broker: %v\n%s\nwant its 3 partitions", err, out)
	}

	for _, c := range []struct {
		what string
		args []string
		user []string // mechanism, user, password; none for a client without TLS and SASL
		want string   // in the refusal's output
	}{
		{"a client without TLS and SASL listing topics", []string{"topics", "--list", "--timeout", "10000"}, nil, ""},
		{"the shipper with a wrong password listing topics", []string{"topics", "--list", "--timeout", "15000"},
			[]string{"SCRAM-SHA-512", "shipper", "not-" + passwords["LOGPIPE_SHIPPER_PASSWORD"]}, "SASL_AUTHENTICATION_FAILED"},
		{"the shipper reading httpd", []string{"console-consumer", "--topic", "httpd", "--partition", "0", "--offset", "earliest", "--max-messages", "1", "--timeout-ms", "15000"},
			[]string{"SCRAM-SHA-512", "shipper", passwords["LOGPIPE_SHIPPER_PASSWORD"]}, "TOPIC_AUTHORIZATION_FAILED"},
		// acks=1 without idempotence, so that the refusal is the topic's
		// (an idempotent producer needs IDEMPOTENT_WRITE on the cluster
		// first, which the indexer lacks too).
		{"the indexer writing httpd", []string{"console-producer", "--topic", "httpd", "--request-required-acks", "1"},
			[]string{"SCRAM-SHA-512", "indexer", passwords["LOGPIPE_INDEXER_PASSWORD"]}, "TOPIC_AUTHORIZATION_FAILED"},
	} {
		var out string
		var err error
		if c.user == nil {
			out, err = s.run(append([]string{"exec", "-T", "brokerd-1", "brokerd"}, append(c.args, "--bootstrap-server", "brokerd-1:9092")...)...)
		} else {
			out, err = s.brokerdAs(c.user[0], c.user[1], c.user[2], c.args...)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v\n%s\nwant a refusal naming %q", c.what, err, out, c.want)
		}
	}

	checkGeneratorTraffic(t, es)
	snd := startSending(t, site, "s")
	snd.waitSent(sendStep / 2)
	s.must("stop", "traffic")
	snd.waitSent(snd.count() + sendStep/4)
	s.checkExact(es, snd.finish())
}

// brokerdAs runs one of brokerd's admin commands in brokerd-1's container
// against the secured cluster, logged in with SASL mechanism as user,
// trusting the stack's CA. Records for console-producer are one line on
// its standard input.
func (s *stack) brokerdAs(mechanism, user, password string, args ...string) (string, error) {
	s.t.Helper()
	module := "org.apache.kafka.common.security.plain.PlainLoginModule"
	if strings.HasPrefix(mechanism, "SCRAM") {
		module = "org.apache.kafka.common.security.scram.ScramLoginModule"
	}
	props := fmt.Sprintf("security.protocol=SASL_SSL\nsasl.mechanism=%s\nsasl.jaas.config=%s required username=\"%s\" password=\"%s\";\nssl.truststore.type=PEM\nssl.truststore.location=/etc/logpipe-security/ca.crt\n",
		mechanism, module, user, password)
	script := `umask 077; f=$(mktemp); printf '%s' "$PROPS" >"$f"; echo secured-stack-test | brokerd "$@" --bootstrap-server brokerd-1:9092 --command-config "$f"; rc=$?; rm -f "$f"; exit $rc`
	return s.run(append([]string{"exec", "-T", "-e", "PROPS=" + props, "brokerd-1", "sh", "-c", script, "sh"}, args...)...)
}
