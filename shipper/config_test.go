package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"logpipe/pipeline/config"
	"logpipe/shipper/lines"
)

// loadText writes text to shipper.yml in a fresh folder, loads it from
// there (so messages name "shipper.yml") and resolves it.
func loadText(t *testing.T, text string, overrides ...string) (*settings, *resolved, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "shipper.yml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	s := defaultSettings()
	if _, err := config.Load("shipper.yml", overrides, s); err != nil {
		return nil, nil, err
	}
	r, err := s.resolve()
	if err != nil {
		t.Fatalf("Load accepted what resolve refuses: %v", err)
	}
	return s, r, nil
}

// TestExampleConfigLoads keeps configs/shipper.yml in step with the config type.
func TestExampleConfigLoads(t *testing.T) {
	s := defaultSettings()
	if _, err := config.Load("../configs/shipper.yml", nil, s); err != nil {
		t.Fatal(err)
	}
	r, err := s.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Inputs) != 2 || r.Inputs[0].Tags[0] != "access" || r.Inputs[1].Multiline == nil {
		t.Fatalf("inputs = %+v", r.Inputs)
	}
}

// httpdConfig is a Filebeat configuration for httpd's access and error
// logs, verbatim as a user gave it (issue 4). e2e/shipper runs it too.
func httpdConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "httpd.yml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHTTPDConfigVerbatim(t *testing.T) {
	httpd := httpdConfig(t)
	for _, variant := range []struct{ name, text string }{
		{"prospectors", httpd},
		{"inputs filestream", strings.NewReplacer("filebeat.prospectors", "filebeat.inputs", "type: log", "type: filestream").Replace(httpd)},
	} {
		t.Run(variant.name, func(t *testing.T) {
			_, r, err := loadText(t, variant.text)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Inputs) != 2 {
				t.Fatalf("%d inputs", len(r.Inputs))
			}
			a, e := r.Inputs[0], r.Inputs[1]
			if !reflect.DeepEqual(a.Paths, []string{"/var/log/httpd/access_log"}) || !reflect.DeepEqual(a.Tags, []string{"access"}) {
				t.Fatalf("access input = %+v", a)
			}
			if !reflect.DeepEqual(e.Paths, []string{"/var/log/httpd/error_log"}) || !reflect.DeepEqual(e.Tags, []string{"error"}) {
				t.Fatalf("error input = %+v", e)
			}
			// The defaults.
			if a.MaxBytes != 10<<20 || a.CloseInactive != 5*time.Minute || a.ScanFrequency != 10*time.Second ||
				!a.CloseRemoved || a.CloseRenamed || !a.CleanRemoved || a.TailFiles || a.Encoding != lines.UTF8 {
				t.Fatalf("input defaults = %+v", a)
			}
			o := r.Output
			if !reflect.DeepEqual(o.Hosts, []string{"10.0.0.10:9092", "10.0.0.11:9092", "10.0.0.12:9092"}) {
				t.Fatalf("hosts = %v", o.Hosts)
			}
			if topic, ok := o.Topic.Static(); !ok || topic != "httpd" {
				t.Fatalf("topic = %v", o.Topic)
			}
			if o.RequiredAcks != sarama.WaitForAll || o.Partitioner != "hash" || o.MaxMessageBytes != 1000000 ||
				o.ClientID != "shipper" || o.BulkMaxSize != 2048 || o.Timeout != 30*time.Second {
				t.Fatalf("output defaults = %+v", o)
			}
			if r.DataPath != "data" || r.RegistryFlush != time.Second || r.ShutdownTimeout != 5*time.Second {
				t.Fatalf("top-level defaults = %+v", r)
			}
		})
	}
}

func TestEveryInputKey(t *testing.T) {
	_, r, err := loadText(t, `
filebeat.inputs:
- type: log
  id: web
  enabled: true
  paths: ["/var/log/**/access_log*", "/srv/*.log"]
  exclude_files: ['\.gz$']
  tags: [access, web]
  fields: {log_topic: httpd_access, env: prod}
  fields.team: web
  fields_under_root: true
  include_lines: ['^GET', '^POST']
  exclude_lines: ['healthcheck']
  multiline:
    pattern: '^[[:space:]]'
    negate: false
    match: after
    max_lines: 100
    timeout: 2s
  encoding: latin1
  max_bytes: 1MiB
  ignore_older: 24h
  close_inactive: 1m
  close_removed: false
  close_renamed: true
  close_eof: false
  clean_removed: false
  clean_inactive: 48h
  scan_frequency: 1s
  harvester_limit: 10
  tail_files: true
- type: filestream
  id: errors
  paths: [/var/log/httpd/error_log]
  parsers:
    - multiline: {pattern: '^\[', negate: true, match: after}
  prospector.scanner.check_interval: 2s
  prospector.scanner.exclude_files: ['\.1$']
  close.on_state_change.inactive: 30s
  close.on_state_change.removed: false
  close.on_state_change.renamed: true
  message_max_bytes: 2MiB
  enabled: true
- type: log
  enabled: false
  paths: [/nowhere]
output.kafka:
  hosts: ["127.0.0.1:9092"]
  topic: '%{[fields.log_topic]}'
  key: '%{[host.name]}'
  partition.round_robin:
    reachable_only: false
    group_events: 4
  required_acks: 1
  compression: zstd
  max_message_bytes: 2MB
  version: "3.6.0"
  client_id: web-1
  bulk_max_size: 500
  timeout: 10s
  broker_timeout: 5s
  backoff.init: 100ms
  backoff.max: 5s
  max_retries: -1
  ssl.enabled: true
  ssl.certificate_authorities: [/etc/ca.pem]
  ssl.verification_mode: certificate
  ssl.cipher_suites: [ECDHE-RSA-AES-256-GCM-SHA384, ECDHE-RSA-CHACHA20-POLY1205]
  ssl.curve_types: [X25519]
  username: shipper
  password: secret
  sasl.mechanism: SCRAM-SHA-512
path.data: /var/lib/shipper
registry.flush: 250ms
shutdown_timeout: 20s
queue.mem.events: 1000
logging.level: debug
http.enabled: true
http.port: 5066
`)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Inputs) != 2 {
		t.Fatalf("want the two enabled inputs, got %d", len(r.Inputs))
	}
	a := r.Inputs[0]
	if a.ID != "web" || len(a.Paths) != 2 || len(a.ExcludeFiles) != 1 || !a.FieldsUnderRoot ||
		a.Fields["team"] != "web" || a.Fields["log_topic"] != "httpd_access" ||
		len(a.IncludeLines) != 2 || len(a.ExcludeLines) != 1 || a.Multiline.MaxLines != 100 ||
		a.Multiline.Timeout.D() != 2*time.Second || a.Encoding != lines.Latin1 || a.MaxBytes != 1<<20 ||
		a.IgnoreOlder != 24*time.Hour || a.CloseInactive != time.Minute || a.CloseRemoved || !a.CloseRenamed ||
		a.CleanRemoved || a.CleanInactive != 48*time.Hour || a.ScanFrequency != time.Second ||
		a.HarvesterLimit != 10 || !a.TailFiles {
		t.Fatalf("log input = %+v", a)
	}
	f := r.Inputs[1]
	if f.Type != "filestream" || f.Multiline == nil || !f.Multiline.Negate || f.ScanFrequency != 2*time.Second ||
		len(f.ExcludeFiles) != 1 || f.CloseInactive != 30*time.Second || f.CloseRemoved || !f.CloseRenamed || f.MaxBytes != 2<<20 {
		t.Fatalf("filestream input = %+v", f)
	}
	o := r.Output
	if o.Partitioner != "round_robin" || o.GroupEvents != 4 || o.RequiredAcks != sarama.WaitForLocal ||
		o.Compression != sarama.CompressionZSTD || o.MaxMessageBytes != 2000000 || o.Version != sarama.V3_6_0_0 ||
		o.ClientID != "web-1" || o.BulkMaxSize != 500 || o.Timeout != 10*time.Second || o.BrokerTimeout != 5*time.Second ||
		o.BackoffInit != 100*time.Millisecond || o.BackoffMax != 5*time.Second || o.TLS == nil ||
		o.Username != "shipper" || o.SASLMechanism != sarama.SASLTypeSCRAMSHA512 || o.Key == nil ||
		len(o.TLS.CipherSuites) != 2 || len(o.TLS.CurveTypes) != 1 {
		t.Fatalf("output = %+v", o)
	}
	if r.DataPath != "/var/lib/shipper" || r.RegistryFlush != 250*time.Millisecond || r.ShutdownTimeout != 20*time.Second || r.QueueEvents != 1000 ||
		r.MemoryLimit != 2*defaultQueueBytes+16<<20 {
		t.Fatalf("top level = %+v", r)
	}
}

func TestMemoryLimit(t *testing.T) {
	for _, c := range []struct {
		text string
		want int64
	}{
		{"queue.mem.bytes: 32MiB\n", 80 << 20},
		{"memory_limit: 100MiB\n", 100 << 20},
		{"memory_limit: 0\n", 0},
	} {
		_, r, err := loadText(t, "filebeat.inputs: [{paths: [/a]}]\n"+c.text)
		if err != nil {
			t.Fatal(err)
		}
		if r.MemoryLimit != c.want {
			t.Errorf("%q: memory limit %d, want %d", c.text, r.MemoryLimit, c.want)
		}
	}
}

// TestConfigErrors checks that each mistake is reported as
// FILE:LINE:COL: KEY: message, and that all of a file's mistakes are
// reported together.
func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name, text string
		want       []string
	}{
		{"typo in an input key", "filebeat.inputs:\n- paths: [/a]\n  close_inactiv: 1m\n",
			[]string{`shipper.yml:3:3: filebeat.inputs[0].close_inactiv: unknown key; did you mean "filebeat.inputs[0].close_inactive"?`}},
		{"typo in the output", "output.kafka:\n  hosts: [a:1]\n  topik: x\n",
			[]string{`shipper.yml:3:3: output.kafka.topik: unknown key; did you mean "output.kafka.topic"?`}},
		{"bad values", `filebeat.inputs:
- paths: [/a]
  multiline: {pattern: '(', match: sideways}
  include_lines: ['[']
  encoding: ebcdic
output.kafka:
  hosts: [a:1]
  topic: x
  compression: brotli
  required_acks: 2
`, []string{
			"shipper.yml:3:15: filebeat.inputs[0].multiline.pattern: multiline: bad pattern",
			"shipper.yml:3:29: filebeat.inputs[0].multiline.match: want after or before",
			"shipper.yml:4:19: filebeat.inputs[0].include_lines[0]: bad regular expression",
			"shipper.yml:5:3: filebeat.inputs[0].encoding: lines: unsupported encoding",
			"shipper.yml:9:3: output.kafka.compression: want none, gzip, snappy, lz4 or zstd",
			"shipper.yml:10:3: output.kafka.required_acks: want -1",
		}},
		{"missing paths", "filebeat.inputs:\n- type: log\n  tags: [x]\n",
			[]string{"shipper.yml:2:3: filebeat.inputs[0].paths: required key is missing"}},
		{"unsupported type", "filebeat.inputs:\n- type: stdin\n  paths: [/a]\n",
			[]string{`shipper.yml:2:3: filebeat.inputs[0].type: unsupported input type "stdin"`}},
		{"clean_inactive too short", "filebeat.inputs:\n- paths: [/a]\n  ignore_older: 1h\n  clean_inactive: 1h\n",
			[]string{"shipper.yml:4:3: filebeat.inputs[0].clean_inactive: must be greater than ignore_older + scan_frequency"}},
		{"both spellings", "filebeat.inputs:\n- paths: [/a]\n  max_bytes: 1KiB\n  message_max_bytes: 2KiB\n",
			[]string{"shipper.yml:4:3: filebeat.inputs[0].message_max_bytes: is the filestream spelling of max_bytes"}},
		{"output disabled", "output.kafka.enabled: false\n",
			[]string{"shipper.yml:1:1: output.kafka.enabled: the Kafka output is the shipper's only output"}},
		{"bad topic format", "output.kafka.topic: '%{fields.x}'\n",
			[]string{"shipper.yml:1:1: output.kafka.topic: output: format"}},
		{"negative memory limit", "memory_limit: -1\n",
			[]string{`shipper.yml:1:15: memory_limit: size "-1" is negative`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := loadText(t, c.text)
			if err == nil {
				t.Fatal("no error")
			}
			got := strings.Split(err.Error(), "\n")
			if len(got) != len(c.want) {
				t.Fatalf("want %d problems, got %d:\n%v", len(c.want), len(got), err)
			}
			for _, w := range c.want {
				found := false
				for _, g := range got {
					if strings.HasPrefix(g, w) {
						found = true
					}
				}
				if !found {
					t.Errorf("no problem starting %q in:\n%v", w, err)
				}
			}
		})
	}
}

func TestOverridesAndLegacySpellings(t *testing.T) {
	_, r, err := loadText(t, "filebeat.registry.flush: 3s\nfilebeat.shutdown_timeout: 7s\nfilebeat.inputs: [{paths: [/a]}]\n",
		"output.kafka.hosts=[b:2]", "filebeat.inputs=[{paths: [/b], tags: [x]}]")
	if err != nil {
		t.Fatal(err)
	}
	if r.RegistryFlush != 3*time.Second || r.ShutdownTimeout != 7*time.Second {
		t.Fatalf("legacy spellings: %+v", r)
	}
	if len(r.Inputs) != 1 || r.Inputs[0].Paths[0] != "/b" || r.Output.Hosts[0] != "b:2" {
		t.Fatalf("overrides: %+v %+v", r.Inputs, r.Output)
	}
}

func TestPartitionKeys(t *testing.T) {
	for _, c := range []struct {
		text              string
		partitioner       string
		group             int
		random, reachable bool
		hashFields        int
	}{
		{"{}", "hash", 1, false, false, 0},
		{"{partition.hash: {hash: [fields.a, fields.b], random: true, reachable_only: true}}", "hash", 1, true, true, 2},
		{"{partition.round_robin: {group_events: 5}}", "round_robin", 5, false, false, 0},
		{"{partition.random: {group_events: 3, reachable_only: true}}", "random", 3, false, true, 0},
	} {
		_, r, err := loadText(t, "filebeat.inputs: [{paths: [/a]}]\noutput.kafka: "+c.text+"\n")
		if err != nil {
			t.Fatalf("%s: %v", c.text, err)
		}
		o := r.Output
		if o.Partitioner != c.partitioner || o.GroupEvents != c.group || o.HashRandom != c.random ||
			o.ReachableOnly != c.reachable || len(o.HashFields) != c.hashFields {
			t.Errorf("%s: got partitioner %s, group_events %d, random %t, reachable_only %t, hash fields %v",
				c.text, o.Partitioner, o.GroupEvents, o.HashRandom, o.ReachableOnly, o.HashFields)
		}
	}
}
