package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/IBM/sarama"

	"logpipe/pipeline/config"
)

// TestExampleConfigLoads keeps configs/indexer.yml in step with the config
// type, and checks that it states the defaults.
func TestExampleConfigLoads(t *testing.T) {
	c := defaultSettings()
	if _, err := config.Load("../configs/indexer.yml", nil, c); err != nil {
		t.Fatal(err)
	}
	// Compared as printed: an empty list in the file is an empty slice,
	// where the default is nil.
	if fmt.Sprintf("%+v", c) != fmt.Sprintf("%+v", defaultSettings()) {
		t.Errorf("configs/indexer.yml differs from the defaults:\n%+v\n%+v", c, defaultSettings())
	}
	if err := defaultSettings().Validate(); err != nil {
		t.Fatal(err)
	}
}

func load(t *testing.T, yml string, overrides ...string) (*settings, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "indexer.yml")
	if err := os.WriteFile(path, []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	s := defaultSettings()
	_, err := config.Load(path, overrides, s)
	return s, err
}

func TestConfigValues(t *testing.T) {
	s, err := load(t, `
kafka.hosts: ["k1:9092", "k2:9092"]
kafka:
  topics: [web]
  version: 2.3.0
  group_instance_id: indexer-1.a_b
  auto_offset_reset: earliest
  decorate_events: true
  sasl.mechanism: SCRAM-SHA-512
  username: u
  password: p
codec: plain
routes:
  - field: log.level
    equals: 404
    index: "a-%{+YYYY}"
  - else: true
    index: other
elasticsearch:
  hosts: [es1:9200, "https://es2:9200"]
  flush_bytes: 1MiB
  workers: 4
  backoff.max: 5s
setup.template.settings:
  index.number_of_replicas: 0
`, "stdout.enabled=true", "stdout.codec=json")
	if err != nil {
		t.Fatal(err)
	}
	if s.Kafka.GroupID != "indexer" || s.Kafka.Topics[0] != "web" || !s.Kafka.DecorateEvents || s.Codec != "plain" {
		t.Errorf("kafka %+v codec %q", s.Kafka, s.Codec)
	}
	if len(s.Route) != 2 || *s.Route[0].Equals != "404" || !s.Route[1].Else {
		t.Errorf("routes %+v", s.Route)
	}
	if s.ES.FlushBytes != 1<<20 || s.ES.Workers != 4 || s.ES.Backoff.Max.D().Seconds() != 5 || s.ES.Backoff.Init.D().Seconds() != 1 {
		t.Errorf("elasticsearch %+v", s.ES)
	}
	if !s.Out.Enabled || s.Out.Codec != "json" {
		t.Errorf("stdout %+v", s.Out)
	}
	if s.Setup.Template.Settings["index.number_of_replicas"] != 0 || s.Setup.Template.Settings["index.number_of_shards"] != 1 {
		t.Errorf("template settings %v", s.Setup.Template.Settings)
	}
	sc, err := s.Kafka.Sarama()
	if err != nil {
		t.Fatal(err)
	}
	if sc.Consumer.Offsets.AutoCommit.Enable || sc.Consumer.Offsets.Initial != -2 || !sc.Net.SASL.Enable || sc.Net.SASL.SCRAMClientGeneratorFunc == nil {
		t.Errorf("sarama config: autocommit %v initial %d sasl %v", sc.Consumer.Offsets.AutoCommit.Enable, sc.Consumer.Offsets.Initial, sc.Net.SASL.Enable)
	}
	if sc.Consumer.Group.InstanceId != "indexer-1.a_b" || !sc.Version.IsAtLeast(sarama.V2_3_0_0) {
		t.Errorf("sarama config: instance id %q version %v", sc.Consumer.Group.InstanceId, sc.Version)
	}
	if _, err := s.esClient(); err != nil {
		t.Fatal(err)
	}
	r, err := s.router()
	if err != nil {
		t.Fatal(err)
	}
	tc := s.templateConfig(r)
	if !reflect.DeepEqual(tc.Patterns, []string{"a-*", "other"}) || tc.DeadLetterPattern != "logpipe-dlq-*" {
		t.Errorf("template config %+v", tc)
	}
}

// TestConfigErrors checks that each mistake is reported at its file, line
// and key.
func TestConfigErrors(t *testing.T) {
	cases := []struct {
		yml  string
		want []string
	}{
		{"codec: xml\n", []string{":1:1: codec: want json or plain"}},
		{"kafka:\n  auto_offset_reset: oldest\n", []string{":2:3: kafka.auto_offset_reset: want latest or earliest"}},
		{"kafka:\n  version: 0.10.2.0\n", []string{":2:3: kafka.version: must be at least 0.11.0"}},
		{"kafka:\n  version: 9.x\n", []string{":2:3: kafka.version: unknown Kafka version"}},
		{"kafka:\n  group_instance_id: indexer-1\n", []string{":2:3: kafka.group_instance_id: static membership needs version 2.3.0 or later (kafka.version is \"2.1.0\")"}},
		{"kafka:\n  version: 3.0.0\n  group_instance_id: indexer 1\n", []string{":3:3: kafka.group_instance_id: the id \"indexer 1\" has a character other than ASCII letters"}},
		{"kafka:\n  hosts: []\n  topics: []\n", []string{":2:3: kafka.hosts: at least one broker", ":3:3: kafka.topics: at least one topic"}},
		{"kafka:\n  topics: [httpd, \"web logs\"]\n", []string{":2:3: kafka.topics: topic name \"web logs\" has a character other than ASCII letters"}},
		{"kafka.drain_timeout: 90s\n", []string{":1:1: kafka.drain_timeout: must be positive and below rebalance_timeout"}},
		{"kafka.sasl.mechanism: GSSAPI\n", []string{"kafka.sasl.mechanism: want PLAIN"}},
		{"kafka.ssl.verification_mode: maybe\n", []string{":1:1: kafka.ssl.verification_mode: want full, certificate or none"}},
		{"elasticsearch.ssl.cipher_suites: [ECDHE-RSA-AES-128-GCM-SHA256, RSA-RC4-128-SHA]\n", []string{"elasticsearch.ssl.cipher_suites[1]: RSA-RC4-128-SHA (TLS_RSA_WITH_RC4_128_SHA) is insecure"}},
		{"kafka.ssl.curve_types: [P-224]\n", []string{"kafka.ssl.curve_types[0]: unknown curve \"P-224\""}},
		{"routes:\n  - tag: access\n    index: Httpd-%{+YYYY}\n", []string{":3:5: routes[0].index: makes names such as \"Httpd-2026\", which Elasticsearch refuses: the name must be lowercase"}},
		{"routes:\n  - tag: access\n    else: true\n    index: a\n", []string{":2:5: routes[0]: a route has exactly one condition"}},
		{"routes:\n  - field: a\n    index: a\n", []string{":2:5: routes[0].field: a field condition needs exactly one of equals, contains or exists"}},
		{"routes:\n  - tag: x\n    index: a-%{+YYYY.qq}\n", []string{":3:5: routes[0].index: route: \"a-%{+YYYY.qq}\": date pattern \"YYYY.qq\": unknown letter 'q'"}},
		{"routes: []\n", []string{":1:1: routes: at least one route is needed"}},
		{"routes:\n  - else: true\n    index: a\n  - else: true\n    index: b\n", []string{"routes[1].else: only one route may be the else route"}},
		{"routes:\n  - tag: x\n    indx: a\n", []string{`:3:5: routes[0].indx: unknown key; did you mean "routes[0].index"?`}},
		{"dead_letter.index: dlq-%{[host.name]}\n", []string{":1:1: dead_letter.index: may use date patterns only"}},
		{"dead_letter:\n  index: _dlq\n", []string{":2:3: dead_letter.index: makes names such as \"_dlq\""}},
		{"elasticsearch:\n  hosts: [\"ftp://x\"]\n", []string{":2:11: elasticsearch.hosts[0]: want host:port or http(s)://host:port"}},
		{"elasticsearch:\n  username: u\n  api_key: k\n", []string{":3:3: elasticsearch.api_key: set api_key or username/password, not both"}},
		{"elasticsearch:\n  backoff:\n    init: 10s\n    max: 1s\n", []string{":2:3: elasticsearch.backoff: want 0 < init <= max"}},
		{"elasticsearch.workers: 0\n", []string{":1:1: elasticsearch.workers: must be at least 1"}},
		{"elasticsearch.flush_interval: 5\n", []string{":1:31: elasticsearch.flush_interval: duration \"5\" needs a unit"}},
		{"stdout:\n  codec: yaml\n", []string{":2:3: stdout.codec: want rubydebug or json"}},
		{"kibana.url: kibana:5601\n", []string{":1:1: kibana.url: want http(s)://host:port"}},
		{"parse.timezone: Mars/Olympus\n", []string{":1:1: parse.timezone: unknown time zone"}},
	}
	for _, c := range cases {
		_, err := load(t, c.yml)
		if err == nil {
			t.Errorf("%q accepted", c.yml)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q:\n%v\nwant %q", c.yml, err, w)
			}
		}
	}
}

func TestAPIKeyForms(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		// Filebeat's and Logstash's form, id:api_key.
		{"VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw", "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="},
		// Elasticsearch's "encoded" field, passed as it is.
		{"VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==", "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="},
	} {
		if got := apiKey(c.in); got != c.want {
			t.Errorf("apiKey(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
