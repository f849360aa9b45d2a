package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"logpipe/indexer/console"
	"logpipe/indexer/consumer"
	"logpipe/indexer/document"
	"logpipe/indexer/route"
	"logpipe/indexer/setup"
	"logpipe/pipeline/config"
	"logpipe/pipeline/telemetry"
	"logpipe/pipeline/tlsconfig"
)

// settings is the indexer's YAML configuration; configs/indexer.yml
// documents every key.
type settings struct {
	telemetry.Config `yaml:",inline"`

	Kafka consumer.KafkaSettings `yaml:"kafka"`
	// Codec is json (the shipper's events) or plain (raw lines).
	Codec string         `yaml:"codec"`
	Parse parseSettings  `yaml:"parse"`
	Route []route.Spec   `yaml:"routes"`
	ES    esSettings     `yaml:"elasticsearch"`
	DLQ   dlqSettings    `yaml:"dead_letter"`
	Out   stdoutSettings `yaml:"stdout"`
	KB    kibanaSettings `yaml:"kibana"`
	Setup setupSettings  `yaml:"setup"`
}

type parseSettings struct {
	// HTTPD parses messages as httpd access and error lines.
	HTTPD bool `yaml:"httpd"`
	// Tags limits parsing to events with one of these tags.
	Tags []string `yaml:"tags"`
	// Timezone is the zone of error-log times, which carry none: an IANA
	// name, "UTC" or "Local".
	Timezone string `yaml:"timezone"`
}

type esSettings struct {
	Hosts    []string           `yaml:"hosts"`
	Username string             `yaml:"username"`
	Password string             `yaml:"password"`
	APIKey   string             `yaml:"api_key"`
	SSL      tlsconfig.Settings `yaml:"ssl"`

	// Workers, FlushBytes and FlushInterval are the bulk sink's (see
	// bulk.Config): FlushInterval bounds how long a partial request waits
	// while documents keep coming or requests are in flight; one goes at
	// once when no document is waiting and no request is in flight.
	Workers          int             `yaml:"workers"`
	FlushBytes       config.ByteSize `yaml:"flush_bytes"`
	FlushInterval    config.Duration `yaml:"flush_interval"`
	MaxInFlightBytes config.ByteSize `yaml:"max_in_flight_bytes"`
	Timeout          config.Duration `yaml:"timeout"`
	Backoff          struct {
		Init config.Duration `yaml:"init"`
		Max  config.Duration `yaml:"max"`
	} `yaml:"backoff"`
}

type dlqSettings struct {
	Index string `yaml:"index"`
}

type stdoutSettings struct {
	Enabled bool   `yaml:"enabled"`
	Codec   string `yaml:"codec"`
}

type kibanaSettings struct {
	URL      string             `yaml:"url"`
	Space    string             `yaml:"space"`
	Username string             `yaml:"username"`
	Password string             `yaml:"password"`
	APIKey   string             `yaml:"api_key"`
	SSL      tlsconfig.Settings `yaml:"ssl"`
}

type setupSettings struct {
	Template struct {
		// Enabled installs missing templates when the indexer starts.
		Enabled bool `yaml:"enabled"`
		// Settings are index settings for the indices the templates cover.
		Settings map[string]any `yaml:"settings"`
	} `yaml:"template"`
}

// defaultSettings reproduces the Logstash pipeline the indexer replaces:
// topic httpd as JSON, access events to httpd_access-%{+YYYY.MM.dd} and
// error events to httpd_error-%{+YYYY.MM.dd} on a local Elasticsearch.
func defaultSettings() *settings {
	s := &settings{
		Kafka: consumer.DefaultKafka(),
		Codec: "json",
		Parse: parseSettings{HTTPD: true, Timezone: "UTC"},
		Route: []route.Spec{
			{Tag: "access", Index: "httpd_access-%{+YYYY.MM.dd}"},
			{Tag: "error", Index: "httpd_error-%{+YYYY.MM.dd}"},
		},
		ES: esSettings{
			Hosts:         []string{"http://127.0.0.1:9200"},
			Workers:       2,
			FlushBytes:    5 << 20,
			FlushInterval: config.Duration(time.Second),
			Timeout:       config.Duration(90 * time.Second),
		},
		DLQ: dlqSettings{Index: "logpipe-dlq-%{+YYYY.MM.dd}"},
		Out: stdoutSettings{Codec: "rubydebug"},
	}
	s.Logging = telemetry.LogConfig{Level: "info", Format: "text"}
	s.HTTP.Host = "127.0.0.1"
	s.ES.Backoff.Init = config.Duration(time.Second)
	s.ES.Backoff.Max = config.Duration(60 * time.Second)
	s.Setup.Template.Enabled = true
	s.Setup.Template.Settings = map[string]any{"index.number_of_shards": 1}
	return s
}

// Validate checks what the sections' own Validate methods do not.
func (s *settings) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) { errs = append(errs, config.Errorf(key, format, args...)) }
	switch s.Codec {
	case "json", "plain":
	default:
		bad("codec", "want json or plain, got %q", s.Codec)
	}
	if _, err := loadLocation(s.Parse.Timezone); err != nil {
		bad("parse.timezone", "%v", err)
	}
	if len(s.Route) == 0 {
		bad("routes", "at least one route is needed, or every event would be dropped")
	}
	elses := 0
	for i, r := range s.Route {
		if r.Else {
			elses++
			if elses > 1 {
				bad(fmt.Sprintf("routes[%d].else", i), "only one route may be the else route")
			}
		}
	}
	if f, err := route.ParseFormat(s.DLQ.Index); err != nil {
		bad("dead_letter.index", "%v", err)
	} else if !f.Static() {
		bad("dead_letter.index", "may use date patterns only (%%{+...}), not fields: a dead letter must never fail for its index name")
	} else if err := route.CheckFormat(s.DLQ.Index); err != nil {
		bad("dead_letter.index", "%v", err)
	}
	switch s.Out.Codec {
	case "rubydebug", "json":
	default:
		bad("stdout.codec", "want rubydebug or json, got %q", s.Out.Codec)
	}
	if len(s.ES.Hosts) == 0 {
		bad("elasticsearch.hosts", "at least one host is needed")
	}
	for i, h := range s.ES.Hosts {
		if _, err := hostURL(h); err != nil {
			bad(fmt.Sprintf("elasticsearch.hosts[%d]", i), "%v", err)
		}
	}
	if s.ES.APIKey != "" && s.ES.Username != "" {
		bad("elasticsearch.api_key", "set api_key or username/password, not both")
	}
	if s.ES.Workers < 1 {
		bad("elasticsearch.workers", "must be at least 1")
	}
	if s.ES.FlushBytes < 1 {
		bad("elasticsearch.flush_bytes", "must be positive")
	}
	if s.ES.FlushInterval <= 0 {
		bad("elasticsearch.flush_interval", "must be positive")
	}
	if s.ES.MaxInFlightBytes != 0 && s.ES.MaxInFlightBytes < s.ES.FlushBytes {
		bad("elasticsearch.max_in_flight_bytes", "must be at least flush_bytes (%d)", s.ES.FlushBytes)
	}
	if s.ES.Timeout <= 0 {
		bad("elasticsearch.timeout", "must be positive")
	}
	if s.ES.Backoff.Init <= 0 || s.ES.Backoff.Max < s.ES.Backoff.Init {
		bad("elasticsearch.backoff", "want 0 < init <= max, got init %v and max %v", s.ES.Backoff.Init, s.ES.Backoff.Max)
	}
	if s.KB.URL != "" {
		if u, err := url.Parse(s.KB.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("kibana.url", "want http(s)://host:port, got %q", s.KB.URL)
		}
	}
	if s.KB.APIKey != "" && s.KB.Username != "" {
		bad("kibana.api_key", "set api_key or username/password, not both")
	}
	return errors.Join(errs...)
}

func loadLocation(name string) (*time.Location, error) {
	switch name {
	case "", "UTC":
		return time.UTC, nil
	case "Local":
		return time.Local, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", name)
	}
	return loc, nil
}

// hostURL returns an Elasticsearch host as a URL, http:// when it names no
// scheme.
func hostURL(h string) (string, error) {
	if !strings.Contains(h, "://") {
		h = "http://" + h
	}
	u, err := url.Parse(h)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", fmt.Errorf("want host:port or http(s)://host:port, got %q", h)
	}
	return strings.TrimRight(h, "/"), nil
}

// esClient returns the Elasticsearch client, its own retries off: the sink
// and setup retry in their own way.
func (s *settings) esClient() (*elasticsearch.Client, error) {
	var hosts []string
	https := false
	for _, h := range s.ES.Hosts {
		u, err := hostURL(h)
		if err != nil {
			return nil, fmt.Errorf("indexer: elasticsearch.hosts: %w", err)
		}
		https = https || strings.HasPrefix(u, "https://")
		hosts = append(hosts, u)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = s.ES.Workers + 2
	if s.ES.SSL.On(https) {
		tc, err := s.ES.SSL.Config()
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = tc
	}
	c, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses:    hosts,
		Username:     s.ES.Username,
		Password:     s.ES.Password,
		APIKey:       apiKey(s.ES.APIKey),
		Transport:    tr,
		DisableRetry: true,
	})
	if err != nil {
		return nil, fmt.Errorf("indexer: elasticsearch client: %w", err)
	}
	return c, nil
}

// kibana returns the Kibana API client, or nil without kibana.url.
func (s *settings) kibana() (*setup.Kibana, error) {
	if s.KB.URL == "" {
		return nil, nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if s.KB.SSL.On(strings.HasPrefix(s.KB.URL, "https://")) {
		tc, err := s.KB.SSL.Config()
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = tc
	}
	return &setup.Kibana{
		URL: s.KB.URL, Space: s.KB.Space,
		Username: s.KB.Username, Password: s.KB.Password, APIKey: apiKey(s.KB.APIKey),
		Client: &http.Client{Transport: tr, Timeout: 30 * time.Second},
	}, nil
}

// apiKey returns an api_key setting as the Authorization header's ApiKey
// credentials: Filebeat's and Logstash's form "id:api_key" is encoded in
// base64, which is what Elasticsearch's "encoded" field already holds (the
// base64 alphabet has no colon, so the two cannot be confused).
func apiKey(v string) string {
	if strings.Contains(v, ":") {
		return base64.StdEncoding.EncodeToString([]byte(v))
	}
	return v
}

// router compiles the routes.
func (s *settings) router() (*route.Router, error) { return route.New(s.Route) }

// templateConfig returns what setup installs: a template per route index
// pattern and one for the dead-letter pattern.
func (s *settings) templateConfig(r *route.Router) setup.Config {
	var patterns []string
	seen := map[string]bool{}
	for _, f := range r.Formats() {
		p := f.Pattern()
		if f.Prefix() == "" || seen[p] {
			continue // a pattern of "*" would cover every index
		}
		seen[p] = true
		patterns = append(patterns, p)
	}
	dlq, _ := route.ParseFormat(s.DLQ.Index)
	return setup.Config{Patterns: patterns, DeadLetterPattern: dlq.Pattern(), Settings: s.Setup.Template.Settings}
}

func (s *settings) buildOptions() (document.Options, error) {
	loc, err := loadLocation(s.Parse.Timezone)
	if err != nil {
		return document.Options{}, err
	}
	return document.Options{
		ParseHTTPD: s.Parse.HTTPD,
		ParseTags:  s.Parse.Tags,
		Location:   loc,
		Decorate:   s.Kafka.DecorateEvents,
	}, nil
}

func (s *settings) codec() document.Codec {
	if s.Codec == "plain" {
		return document.Plain
	}
	return document.JSON
}

func (s *settings) consoleCodec() console.Codec {
	if s.Out.Codec == "json" {
		return console.JSONLines
	}
	return console.RubyDebug
}
