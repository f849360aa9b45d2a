package output

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"logpipe/pipeline/config"
	"logpipe/pipeline/tlsconfig"
)

// defaultBulkFlushFrequency is how long a batch may wait to fill while
// events keep coming and its partition has a request in flight: under load
// batches fill long before, and a quiet file's line does not wait for it.
const defaultBulkFlushFrequency = 5 * time.Millisecond

// Config is the `output.kafka` section, with Filebeat's key names. Zero
// values mean the documented defaults.
type Config struct {
	// Enabled must not be false: Kafka is the shipper's only output.
	Enabled *bool `yaml:"enabled"`
	// Hosts are the bootstrap brokers, host:port.
	Hosts []string `yaml:"hosts"`
	// Topic is a format string: literal text and %{[field.path]} references
	// to event fields, such as '%{[fields.log_topic]}'; %{[field]:default}
	// gives a value for events without the field.
	Topic string `yaml:"topic"`
	// Key is a format string for the record key (empty: no key).
	Key string `yaml:"key"`
	// Partition picks the partitioner: hash (the default) or round_robin.
	Partition Partition `yaml:"partition"`
	// RequiredAcks is -1 (all in-sync replicas, the default, with the
	// idempotent producer), 1 (the leader) or 0 (none).
	RequiredAcks *int `yaml:"required_acks"`
	// Compression is none, gzip (the default, as in Filebeat), snappy, lz4
	// or zstd; CompressionLevel applies to gzip and zstd.
	Compression      string `yaml:"compression"`
	CompressionLevel *int   `yaml:"compression_level"`
	// MaxMessageBytes is the largest record sent (default 1000000); a
	// longer event has its message cut to fit and is flagged "truncated".
	MaxMessageBytes config.ByteSize `yaml:"max_message_bytes"`
	// Version is the Kafka protocol version to speak (default 2.1.0).
	Version string `yaml:"version"`
	// ClientID names the client to the brokers (default "shipper").
	ClientID string `yaml:"client_id"`
	// BulkMaxSize is the most events in one partition's record batch
	// (default 2048).
	BulkMaxSize int `yaml:"bulk_max_size"`
	// BulkFlushFrequency is the longest a batch waits to fill before it is
	// sent (default 5ms). A batch is sent sooner once it holds nearly
	// max_message_bytes or bulk_max_size events, and as soon as no event
	// is waiting to be placed while its partition has nothing in flight:
	// so it waits only while events keep coming and an earlier request of
	// its partition has not been answered. 0 sends every batch as soon as
	// the broker can take it, however small, which costs CPU under load.
	BulkFlushFrequency *config.Duration `yaml:"bulk_flush_frequency"`
	// Timeout bounds network round trips to the brokers (default 30s).
	Timeout config.Duration `yaml:"timeout"`
	// BrokerTimeout is how long the broker may wait for replicas before
	// answering a produce request (default 10s).
	BrokerTimeout config.Duration `yaml:"broker_timeout"`
	// KeepAlive is the TCP keep-alive period (default 0: the system's).
	KeepAlive config.Duration `yaml:"keep_alive"`
	// ChannelBufferSize is accepted for Filebeat configs and has no
	// effect: the producer has no queue per broker besides Queue.
	ChannelBufferSize int `yaml:"channel_buffer_size"`
	// Backoff is the wait before sending failed events again: it starts at
	// Init (default 1s) and doubles up to Max (default 60s).
	Backoff struct {
		Init config.Duration `yaml:"init"`
		Max  config.Duration `yaml:"max"`
	} `yaml:"backoff"`
	// MaxRetries is accepted for Filebeat configs, but events are retried
	// until they are delivered whatever it says: they are never dropped.
	MaxRetries *int `yaml:"max_retries"`
	// Metadata controls the cluster metadata refresh.
	Metadata struct {
		RefreshFrequency config.Duration `yaml:"refresh_frequency"`
		Full             bool            `yaml:"full"`
		Retry            struct {
			Max     *int            `yaml:"max"`
			Backoff config.Duration `yaml:"backoff"`
		} `yaml:"retry"`
	} `yaml:"metadata"`
	// SSL is the TLS client setup (ssl.*).
	SSL tlsconfig.Settings `yaml:"ssl"`
	// Username and Password turn SASL on, with Mechanism PLAIN (the
	// default), SCRAM-SHA-256 or SCRAM-SHA-512.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	SASL     struct {
		Mechanism string `yaml:"mechanism"`
	} `yaml:"sasl"`
}

// Partition is the `partition` section: at most one of its keys.
type Partition struct {
	// Hash sends events with the same hash to the same partition. Without
	// Fields the hash is of the record key when Key is set, else of the
	// file's identity, so each file's lines stay in order. With Random,
	// an event lacking one of Fields goes to a random partition.
	Hash *struct {
		Fields        []string `yaml:"hash"`
		Random        bool     `yaml:"random"`
		ReachableOnly bool     `yaml:"reachable_only"`
	} `yaml:"hash"`
	// RoundRobin spreads events over the partitions in turn, GroupEvents
	// (default 1) at a time. ReachableOnly, here and in the others, picks
	// only among partitions that have a leader; by default an event for a
	// partition without one waits for it.
	RoundRobin *struct {
		ReachableOnly bool `yaml:"reachable_only"`
		GroupEvents   int  `yaml:"group_events"`
	} `yaml:"round_robin"`
	// Random picks a partition at random, GroupEvents (default 1) events
	// at a time.
	Random *struct {
		ReachableOnly bool `yaml:"reachable_only"`
		GroupEvents   int  `yaml:"group_events"`
	} `yaml:"random"`
}

// Settings are the output's effective settings, defaults applied.
type Settings struct {
	Hosts              []string
	Topic              *Format
	Key                *Format
	Partitioner        string // "hash", "round_robin" or "random"
	HashFields         []string
	HashRandom         bool // events lacking HashFields go to a random partition
	ReachableOnly      bool // only partitions with a leader are picked
	GroupEvents        int
	RequiredAcks       sarama.RequiredAcks
	Compression        sarama.CompressionCodec
	CompressionLevel   int
	MaxMessageBytes    int
	Version            sarama.KafkaVersion
	ClientID           string
	BulkMaxSize        int
	BulkFlushFrequency time.Duration
	Timeout            time.Duration
	BrokerTimeout      time.Duration
	KeepAlive          time.Duration
	BackoffInit        time.Duration
	BackoffMax         time.Duration
	MetadataRefresh    time.Duration
	MetadataFull       bool
	MetadataRetryMax   int
	MetadataRetryWait  time.Duration
	TLS                *tlsconfig.Settings // nil when off
	Username           string
	Password           string
	SASLMechanism      string
}

// Validate checks the section; every problem is reported.
func (c *Config) Validate() error {
	_, err := c.Resolve()
	return err
}

// Resolve returns the effective settings, or every problem found as
// config KeyErrors.
func (c *Config) Resolve() (*Settings, error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, config.Errorf(key, format, args...))
	}
	s := &Settings{
		Hosts:              c.Hosts,
		RequiredAcks:       sarama.WaitForAll,
		MaxMessageBytes:    int(c.MaxMessageBytes),
		ClientID:           c.ClientID,
		BulkMaxSize:        c.BulkMaxSize,
		BulkFlushFrequency: defaultBulkFlushFrequency,
		Timeout:            c.Timeout.D(),
		BrokerTimeout:      c.BrokerTimeout.D(),
		KeepAlive:          c.KeepAlive.D(),
		BackoffInit:        c.Backoff.Init.D(),
		BackoffMax:         c.Backoff.Max.D(),
		MetadataRefresh:    c.Metadata.RefreshFrequency.D(),
		MetadataFull:       c.Metadata.Full,
		MetadataRetryMax:   3,
		MetadataRetryWait:  c.Metadata.Retry.Backoff.D(),
		Username:           c.Username,
		Password:           c.Password,
		GroupEvents:        1,
	}
	if c.Enabled != nil && !*c.Enabled {
		bad("enabled", "the Kafka output is the shipper's only output and cannot be disabled")
	}
	if len(c.Hosts) == 0 {
		bad("hosts", "required key is missing: list the bootstrap brokers as host:port")
	}
	for i, h := range c.Hosts {
		if !strings.Contains(h, ":") {
			bad(fmt.Sprintf("hosts[%d]", i), "want host:port, got %q", h)
		}
	}
	if c.Topic == "" {
		bad("topic", "required key is missing: name the topic (a format string such as '%%{[fields.log_topic]}' may pick it per event)")
	} else if f, err := ParseFormat(c.Topic); err != nil {
		bad("topic", "%v", err)
	} else {
		s.Topic = f
	}
	if c.Key != "" {
		if f, err := ParseFormat(c.Key); err != nil {
			bad("key", "%v", err)
		} else {
			s.Key = f
		}
	}

	s.Partitioner = "hash"
	n := 0
	if p := c.Partition.Hash; p != nil {
		n++
		s.HashFields = p.Fields
		s.HashRandom = p.Random
		s.ReachableOnly = p.ReachableOnly
		for i, f := range p.Fields {
			if _, err := ParseFormat("%{[" + f + "]}"); err != nil {
				bad(fmt.Sprintf("partition.hash.hash[%d]", i), "%v", err)
			}
		}
	}
	if p := c.Partition.RoundRobin; p != nil {
		n++
		s.Partitioner = "round_robin"
		s.ReachableOnly = p.ReachableOnly
		if p.GroupEvents > 0 {
			s.GroupEvents = p.GroupEvents
		}
	}
	if p := c.Partition.Random; p != nil {
		n++
		s.Partitioner = "random"
		s.ReachableOnly = p.ReachableOnly
		if p.GroupEvents > 0 {
			s.GroupEvents = p.GroupEvents
		}
	}
	if n > 1 {
		bad("partition", "set only one of hash, round_robin and random")
	}

	if c.RequiredAcks != nil {
		switch *c.RequiredAcks {
		case -1:
		case 0:
			s.RequiredAcks = sarama.NoResponse
		case 1:
			s.RequiredAcks = sarama.WaitForLocal
		default:
			bad("required_acks", "want -1 (all replicas), 1 (leader) or 0 (none), got %d", *c.RequiredAcks)
		}
	}
	switch strings.ToLower(c.Compression) {
	case "", "gzip":
		s.Compression = sarama.CompressionGZIP
	case "none":
		s.Compression = sarama.CompressionNone
	case "snappy":
		s.Compression = sarama.CompressionSnappy
	case "lz4":
		s.Compression = sarama.CompressionLZ4
	case "zstd":
		s.Compression = sarama.CompressionZSTD
	default:
		bad("compression", "want none, gzip, snappy, lz4 or zstd, got %q", c.Compression)
	}
	s.CompressionLevel = sarama.CompressionLevelDefault
	if c.CompressionLevel != nil {
		s.CompressionLevel = *c.CompressionLevel
		if s.Compression == sarama.CompressionGZIP && (s.CompressionLevel < 0 || s.CompressionLevel > 9) {
			bad("compression_level", "gzip levels are 0 to 9, got %d", s.CompressionLevel)
		}
	} else if s.Compression == sarama.CompressionGZIP {
		s.CompressionLevel = 4 // Filebeat's default
	}
	ver := c.Version
	if ver == "" {
		ver = "2.1.0"
	}
	if v, err := sarama.ParseKafkaVersion(ver); err != nil {
		bad("version", "unknown Kafka version %q", c.Version)
	} else if !v.IsAtLeast(sarama.V0_11_0_0) {
		bad("version", "must be at least 0.11.0 (record batches, idempotent producer), got %q", c.Version)
	} else {
		s.Version = v
	}
	if s.MaxMessageBytes == 0 {
		s.MaxMessageBytes = 1000000
	} else if s.MaxMessageBytes < 1024 {
		bad("max_message_bytes", "must be at least 1024, got %d", s.MaxMessageBytes)
	}
	if s.ClientID == "" {
		s.ClientID = "shipper"
	}
	if s.BulkMaxSize == 0 {
		s.BulkMaxSize = 2048
	} else if s.BulkMaxSize < 0 {
		bad("bulk_max_size", "must not be negative")
	}
	if s.Timeout == 0 {
		s.Timeout = 30 * time.Second
	}
	if s.BrokerTimeout == 0 {
		s.BrokerTimeout = 10 * time.Second
	}
	if c.BulkFlushFrequency != nil {
		s.BulkFlushFrequency = c.BulkFlushFrequency.D()
		if s.BulkFlushFrequency < 0 {
			bad("bulk_flush_frequency", "must not be negative")
		}
	}
	if s.BackoffInit == 0 {
		s.BackoffInit = time.Second
	}
	if s.BackoffMax == 0 {
		s.BackoffMax = 60 * time.Second
	}
	if s.BackoffMax < s.BackoffInit {
		bad("backoff.max", "must not be less than backoff.init (%v)", s.BackoffInit)
	}
	if s.MetadataRefresh == 0 {
		s.MetadataRefresh = 10 * time.Minute
	}
	if c.Metadata.Retry.Max != nil {
		s.MetadataRetryMax = *c.Metadata.Retry.Max
	}
	if s.MetadataRetryWait == 0 {
		s.MetadataRetryWait = 250 * time.Millisecond
	}
	// The ssl section checks itself (tlsconfig.Settings.Validate).
	if c.SSL.On(false) {
		t := c.SSL
		s.TLS = &t
	}
	mech := strings.ToUpper(c.SASL.Mechanism)
	switch mech {
	case "", sarama.SASLTypePlaintext, sarama.SASLTypeSCRAMSHA256, sarama.SASLTypeSCRAMSHA512:
		if mech == "" {
			mech = sarama.SASLTypePlaintext
		}
		s.SASLMechanism = mech
	default:
		bad("sasl.mechanism", "want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", c.SASL.Mechanism)
	}
	if c.Password != "" && c.Username == "" {
		bad("username", "a password is set but no username")
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}
