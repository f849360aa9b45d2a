package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

type testInput struct {
	Type    string            `yaml:"type"`
	Enabled bool              `yaml:"enabled"`
	Paths   []string          `yaml:"paths" config:"required"`
	Tags    []string          `yaml:"tags"`
	Fields  map[string]any    `yaml:"fields"`
	Labels  map[string]string `yaml:"labels"`
	Close   Duration          `yaml:"close_inactive"`
	MaxB    ByteSize          `yaml:"max_bytes"`
}

type testKafka struct {
	Hosts   []string `yaml:"hosts" config:"required"`
	Topic   string   `yaml:"topic"`
	Acks    int      `yaml:"required_acks"`
	Timeout Duration `yaml:"timeout"`
}

func (k *testKafka) Validate() error {
	if k.Acks < -1 || k.Acks > 1 {
		return Errorf("required_acks", "must be -1, 0 or 1, not %d", k.Acks)
	}
	return nil
}

type testConfig struct {
	Inputs []testInput `yaml:"filebeat.inputs"`
	Output struct {
		Kafka testKafka `yaml:"kafka"`
	} `yaml:"output"`
	NodeID   int      `yaml:"node.id"`
	LogDirs  []string `yaml:"log.dirs"`
	RetHours int      `yaml:"log.retention.hours"`
	Segment  ByteSize `yaml:"log.segment.bytes"`
	Shutdown Duration `yaml:"shutdown_timeout"`
	TLS      *struct {
		Enabled bool   `yaml:"enabled"`
		CA      string `yaml:"certificate_authorities"`
	} `yaml:"ssl"`
}

func defaults() testConfig {
	var c testConfig
	c.Output.Kafka.Hosts = []string{"127.0.0.1:9092"}
	c.Output.Kafka.Acks = -1
	c.RetHours = 168
	c.Segment = 1 << 30
	return c
}

func load(t *testing.T, text string, overrides ...string) (testConfig, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "test.yml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// Messages name the file as it was given: run from its folder.
	t.Chdir(dir)
	c := defaults()
	_, err := Load("test.yml", overrides, &c)
	return c, err
}

func TestDottedAndNestedKeysAreTheSame(t *testing.T) {
	dotted, err := load(t, `
output.kafka.hosts: ["a:9092", "b:9092"]
output.kafka.topic: httpd
node.id: 3
log.retention.hours: 24
log.dirs: [/data/a]
`)
	if err != nil {
		t.Fatal(err)
	}
	nested, err := load(t, `
output:
  kafka:
    hosts: ["a:9092", "b:9092"]
    topic: httpd
node:
  id: 3
log:
  retention:
    hours: 24
  dirs: [/data/a]
`)
	if err != nil {
		t.Fatal(err)
	}
	mixed, err := load(t, `
output.kafka:
  hosts: ["a:9092", "b:9092"]
  topic: httpd
node.id: 3
log:
  retention.hours: 24
  dirs: [/data/a]
`)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(dotted, nested) || !reflect.DeepEqual(dotted, mixed) {
		t.Fatalf("spellings differ:\n%+v\n%+v\n%+v", dotted, nested, mixed)
	}
	if dotted.NodeID != 3 || dotted.RetHours != 24 || dotted.Output.Kafka.Topic != "httpd" || len(dotted.Output.Kafka.Hosts) != 2 {
		t.Fatalf("values not set: %+v", dotted)
	}
	if dotted.Segment != 1<<30 || dotted.Output.Kafka.Acks != -1 {
		t.Fatalf("defaults lost: %+v", dotted)
	}
}

func TestInputsListAndMaps(t *testing.T) {
	c, err := load(t, `
filebeat.inputs:
- type: log
  enabled: true
  paths: [/var/log/httpd/access_log]
  tags: ["access"]
  fields: {env: prod, level: 3}
  fields.team: web
  labels:
    a.b: c
  close_inactive: 5m
  max_bytes: 10MiB
`)
	if err != nil {
		t.Fatal(err)
	}
	in := c.Inputs[0]
	if in.Close.D() != 5*time.Minute || in.MaxB != 10<<20 {
		t.Fatalf("duration/size: %v %v", in.Close, in.MaxB)
	}
	want := map[string]any{"env": "prod", "level": 3, "team": "web"}
	if !reflect.DeepEqual(in.Fields, want) {
		t.Fatalf("fields = %#v", in.Fields)
	}
	if in.Labels["a.b"] != "c" {
		t.Fatalf("map keys with dots must stay whole: %#v", in.Labels)
	}
}

func TestEnvExpansion(t *testing.T) {
	t.Setenv("LP_TEST_HOST", "k1:9092")
	t.Setenv("LP_TEST_ID", "7")
	c, err := load(t, `
output.kafka.hosts: ["${LP_TEST_HOST}", "${LP_TEST_UNSET:k2:9093}"]
output.kafka.topic: "t-$${literal}"
node.id: ${LP_TEST_ID}
`)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Output.Kafka.Hosts; !reflect.DeepEqual(got, []string{"k1:9092", "k2:9093"}) {
		t.Fatalf("hosts = %v", got)
	}
	if c.NodeID != 7 {
		t.Fatalf("node.id = %d", c.NodeID)
	}
	if c.Output.Kafka.Topic != "t-${literal}" {
		t.Fatalf("topic = %q", c.Output.Kafka.Topic)
	}
}

func TestOverrides(t *testing.T) {
	c, err := load(t, "output.kafka.topic: a\n", "output.kafka.topic=b", `output.kafka.hosts=["x:1","y:2"]`, "ssl.enabled=true", "log.segment.bytes=1MiB")
	if err != nil {
		t.Fatal(err)
	}
	if c.Output.Kafka.Topic != "b" || len(c.Output.Kafka.Hosts) != 2 || c.TLS == nil || !c.TLS.Enabled || c.Segment != 1<<20 {
		t.Fatalf("overrides not applied: %+v", c)
	}
	_, err = load(t, "", "output.kafka.topicz=b")
	if err == nil || err.Error() != `-E: output.kafka.topicz: unknown key; did you mean "output.kafka.topic"?` {
		t.Fatalf("err = %v", err)
	}
}

// TestBadInput checks that each kind of mistake fails with one line naming
// the file, line, column and key.
func TestBadInput(t *testing.T) {
	cases := []struct {
		name, text, want string
	}{
		{"unknown key", "output.kafka:\n  hosts: [a]\n  topik: x\n",
			`test.yml:3:3: output.kafka.topik: unknown key; did you mean "output.kafka.topic"?`},
		{"unknown nested key", "filebeat.inputs:\n- paths: [a]\n  tagz: [x]\n",
			`test.yml:3:3: filebeat.inputs[0].tagz: unknown key; did you mean "filebeat.inputs[0].tags"?`},
		{"unknown top key far from any", "zzzzzzzzzz: 1\n",
			`test.yml:1:1: zzzzzzzzzz: unknown key (known here: filebeat, log, node, output, shutdown_timeout, ssl)`},
		{"wrong type", "node.id: abc\n",
			`test.yml:1:10: node.id: want an integer, got str "abc"`},
		{"wrong type list", "output.kafka.hosts: {a: b}\n",
			`test.yml:1:21: output.kafka.hosts: want a list, got a mapping`},
		{"bad duration", "shutdown_timeout: 10 parsecs\n",
			`test.yml:1:19: shutdown_timeout: cannot parse "10 parsecs" as a duration (want e.g. 500ms, 10s, 5m, 1h)`},
		{"duration without unit", "shutdown_timeout: 10\n",
			`test.yml:1:19: shutdown_timeout: duration "10" needs a unit, such as 10s`},
		{"bad size", "log.segment.bytes: lots\n",
			`test.yml:1:20: log.segment.bytes: cannot parse "lots" as a size (want e.g. 1048576, 512KiB, 10MiB, 1GB)`},
		{"missing required", "filebeat.inputs:\n- type: log\n  tags: [x]\n",
			`test.yml:2:3: filebeat.inputs[0].paths: required key is missing`},
		{"validate", "output.kafka.required_acks: 5\n",
			`test.yml:1:1: output.kafka.required_acks: must be -1, 0 or 1, not 5`},
		{"unset env", "output.kafka.topic: ${LP_TEST_NOPE}\n",
			`test.yml:1:21: environment variable LP_TEST_NOPE is not set and has no default (write ${LP_TEST_NOPE:default})`},
		{"scalar under value", "node.id.x: 1\n",
			`test.yml:1:1: node.id: is a single value, so "x" cannot be set below it`},
		{"syntax", "a: [\n",
			`test.yml:1:1: invalid YAML: did not find expected node content`},
		{"top level not a map", "- a\n", `test.yml:1:1: the top level must be a mapping of keys to values`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, tc.text)
			if err == nil {
				t.Fatalf("no error, want %s", tc.want)
			}
			if got := err.Error(); got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans lines: %q", err)
			}
		})
	}
}

func TestAllErrorsReported(t *testing.T) {
	_, err := load(t, "node.id: x\nfoo: 1\nshutdown_timeout: 1\n")
	var es Errors
	if !errors.As(err, &es) || len(es) != 3 {
		t.Fatalf("want 3 errors, got %v", err)
	}
	var ke *KeyError
	if !errors.As(err, &ke) || ke.Line != 1 || ke.Key != "node.id" {
		t.Fatalf("errors.As KeyError = %+v", ke)
	}
}

func TestParseByteSize(t *testing.T) {
	cases := map[string]int64{
		"0": 0, "1000000": 1000000, "10MiB": 10 << 20, "10mib": 10 << 20, "1KB": 1000,
		"1.5KiB": 1536, "2GB": 2e9, "1GiB": 1 << 30, "512 KiB": 512 << 10, "7b": 7,
	}
	for in, want := range cases {
		got, err := ParseByteSize(in)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1", "MiB", "1XB", "1e400GiB", "NaNKiB"} {
		if _, err := ParseByteSize(bad); err == nil {
			t.Errorf("ParseByteSize(%q) accepted", bad)
		}
	}
}

func TestCommaList(t *testing.T) {
	for in, want := range map[string][]string{
		"": nil, " , ": nil, "a": {"a"}, "a,b": {"a", "b"}, " broker , controller,,": {"broker", "controller"},
	} {
		if got := CommaList(in); !slices.Equal(got, want) {
			t.Errorf("CommaList(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestExpand(t *testing.T) {
	env := map[string]string{"A": "1", "EMPTY": ""}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cases := []struct{ in, out, missing string }{
		{"plain", "plain", ""},
		{"${A}", "1", ""},
		{"x${A}y${A}", "x1y1", ""},
		{"${EMPTY:def}", "", ""},
		{"${B:def}", "def", ""},
		{"${B:}", "", ""},
		{"${B}", "", "B"},
		{"$${A}", "${A}", ""},
		{"${unterminated", "${unterminated", ""},
	}
	for _, c := range cases {
		out, missing := Expand(c.in, lookup)
		if out != c.out || missing != c.missing {
			t.Errorf("Expand(%q) = %q, %q; want %q, %q", c.in, out, missing, c.out, c.missing)
		}
	}
}

func TestEmptyAndNoFile(t *testing.T) {
	c := defaults()
	if _, err := Load("", nil, &c); err != nil {
		t.Fatal(err)
	}
	if c.RetHours != 168 {
		t.Fatal("defaults lost")
	}
	if _, err := load(t, "# only a comment\n"); err != nil {
		t.Fatal(err)
	}
	_, err := Load(filepath.Join(t.TempDir(), "nope.yml"), nil, &c)
	if err == nil || !strings.Contains(err.Error(), "nope.yml") {
		t.Fatalf("missing file error = %v", err)
	}
}

func FuzzLoad(f *testing.F) {
	f.Add([]byte("output.kafka.hosts: [a]\nnode.id: 1\n"))
	f.Add([]byte("filebeat.inputs:\n- paths: [a]\n  fields: {a: 1}\n"))
	f.Add([]byte("log: {retention: {hours: x}}\n"))
	f.Add([]byte("a: &x [1]\nb: *x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c := defaults()
		_, err := LoadBytes("fuzz.yml", data, nil, &c)
		if err != nil && err.Error() == "" {
			t.Fatal("empty error message")
		}
	})
}

type inlinePart struct {
	Port int `yaml:"port"`
}

func (p *inlinePart) Validate() error {
	if p.Port < 0 {
		return Errorf("port", "must not be negative")
	}
	return nil
}

func TestInlineValidate(t *testing.T) {
	var c struct {
		Part inlinePart `yaml:",inline"`
	}
	_, err := LoadBytes("x.yml", []byte("a: 1\n"), nil, &c)
	if err == nil {
		t.Fatal("unknown key accepted")
	}
	_, err = LoadBytes("x.yml", []byte("port: -1\n"), nil, &c)
	if err == nil || err.Error() != "x.yml:1:1: port: must not be negative" {
		t.Fatalf("inline Validate not called: %v", err)
	}
}
