package consumer

import (
	"errors"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"logpipe/pipeline/config"
	"logpipe/pipeline/kafkaname"
	"logpipe/pipeline/scram"
	"logpipe/pipeline/tlsconfig"
)

// KafkaSettings is the `kafka` section of the indexer's configuration,
// with the names of Logstash's kafka input where it has one.
type KafkaSettings struct {
	// Hosts are the bootstrap brokers, host:port (Logstash's
	// bootstrap_servers).
	Hosts []string `yaml:"hosts"`
	// Topics are read by the group.
	Topics []string `yaml:"topics"`
	// GroupID names the consumer group (default indexer).
	GroupID string `yaml:"group_id"`
	// GroupInstanceID makes this indexer a static member of the group
	// (KIP-345; Logstash's group_instance_id): restarted under the same id
	// within the session timeout, after a crash or a stop, it takes its
	// partitions back without a rebalance; and it does not leave the group
	// when it stops, so its partitions wait for it that long. Each indexer
	// of a group needs its own. Needs Version 2.3.0 or later.
	GroupInstanceID string `yaml:"group_instance_id"`
	// ClientID is sent to the brokers (default indexer).
	ClientID string `yaml:"client_id"`
	// AutoOffsetReset is where a group with no committed offset starts:
	// latest (the default, as in Logstash) or earliest.
	AutoOffsetReset string `yaml:"auto_offset_reset"`
	// Version is the Kafka protocol version to speak (default 2.1.0).
	Version string `yaml:"version"`
	// DecorateEvents adds kafka.topic, partition, offset, key, timestamp and
	// consumer_group to every document.
	DecorateEvents bool `yaml:"decorate_events"`
	// SessionTimeout, HeartbeatInterval and RebalanceTimeout are the group
	// membership timers (defaults 10s, 3s, 60s). Heartbeats run on their own
	// goroutine, so a long Elasticsearch outage does not end the membership;
	// RebalanceTimeout bounds how long a rebalance waits for this member to
	// let go of its partitions.
	SessionTimeout    config.Duration `yaml:"session_timeout"`
	HeartbeatInterval config.Duration `yaml:"heartbeat_interval"`
	RebalanceTimeout  config.Duration `yaml:"rebalance_timeout"`
	// Assignor is how partitions are shared out: range (the default),
	// roundrobin or sticky.
	Assignor string `yaml:"partition_assignment_strategy"`
	// CommitInterval is how often acknowledged offsets are committed
	// (default 1s). Offsets are also committed when a partition is let go.
	CommitInterval config.Duration `yaml:"commit_interval"`
	// DrainTimeout bounds the wait, when partitions are let go (rebalance
	// or shutdown), for their documents in flight to be acknowledged before
	// the last commit (default 30s; keep it below RebalanceTimeout). Records
	// still unacknowledged then are not committed and will be read again.
	DrainTimeout config.Duration `yaml:"drain_timeout"`
	// SSL configures TLS to the brokers.
	SSL tlsconfig.Settings `yaml:"ssl"`
	// Username and Password turn SASL on.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	SASL     struct {
		// Mechanism is PLAIN (default), SCRAM-SHA-256 or SCRAM-SHA-512.
		Mechanism string `yaml:"mechanism"`
	} `yaml:"sasl"`
}

// DefaultKafka returns the defaults: a local broker, topic httpd, group
// indexer, starting at the latest offset.
func DefaultKafka() KafkaSettings {
	return KafkaSettings{
		Hosts:             []string{"127.0.0.1:9092"},
		Topics:            []string{"httpd"},
		GroupID:           "indexer",
		ClientID:          "indexer",
		AutoOffsetReset:   "latest",
		Version:           "2.1.0",
		SessionTimeout:    config.Duration(10 * time.Second),
		HeartbeatInterval: config.Duration(3 * time.Second),
		RebalanceTimeout:  config.Duration(60 * time.Second),
		Assignor:          "range",
		CommitInterval:    config.Duration(time.Second),
		DrainTimeout:      config.Duration(30 * time.Second),
	}
}

// Validate checks the section.
func (k *KafkaSettings) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) { errs = append(errs, config.Errorf(key, format, args...)) }
	if len(k.Hosts) == 0 {
		bad("hosts", "at least one broker is needed")
	}
	if len(k.Topics) == 0 {
		bad("topics", "at least one topic is needed")
	}
	for _, t := range k.Topics {
		if err := kafkaname.Check("topic name", t); err != nil {
			bad("topics", "%v", err)
		}
	}
	if k.GroupID == "" {
		bad("group_id", "must not be empty")
	}
	if id := k.GroupInstanceID; id != "" {
		if err := kafkaname.Check("the id", id); err != nil {
			bad("group_instance_id", "%v", err)
		}
		if v, err := sarama.ParseKafkaVersion(k.Version); err == nil && !v.IsAtLeast(sarama.V2_3_0_0) {
			bad("group_instance_id", "static membership needs version 2.3.0 or later (kafka.version is %q)", k.Version)
		}
	}
	switch strings.ToLower(k.AutoOffsetReset) {
	case "latest", "earliest":
	default:
		bad("auto_offset_reset", "want latest or earliest, got %q", k.AutoOffsetReset)
	}
	if v, err := sarama.ParseKafkaVersion(k.Version); err != nil {
		bad("version", "unknown Kafka version %q", k.Version)
	} else if !v.IsAtLeast(sarama.V0_11_0_0) {
		bad("version", "must be at least 0.11.0 (record batches, the group protocol the indexer uses), got %q", k.Version)
	}
	switch strings.ToLower(k.Assignor) {
	case "range", "roundrobin", "sticky":
	default:
		bad("partition_assignment_strategy", "want range, roundrobin or sticky, got %q", k.Assignor)
	}
	if k.HeartbeatInterval <= 0 || k.SessionTimeout <= 0 || k.HeartbeatInterval.D() >= k.SessionTimeout.D() {
		bad("heartbeat_interval", "must be positive and below session_timeout (%v)", k.SessionTimeout)
	}
	if k.RebalanceTimeout <= 0 {
		bad("rebalance_timeout", "must be positive")
	}
	if k.CommitInterval <= 0 {
		bad("commit_interval", "must be positive")
	}
	if k.DrainTimeout <= 0 || k.DrainTimeout.D() >= k.RebalanceTimeout.D() {
		bad("drain_timeout", "must be positive and below rebalance_timeout (%v), or the group drops this member while it drains", k.RebalanceTimeout)
	}
	switch strings.ToUpper(k.SASL.Mechanism) {
	case "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		bad("sasl.mechanism", "want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, got %q", k.SASL.Mechanism)
	}
	if k.SASL.Mechanism != "" && k.Username == "" {
		bad("username", "sasl.mechanism needs a username")
	}
	return errors.Join(errs...)
}

// Sarama returns the sarama configuration of the consumer group. Auto
// commit is off: the consumer marks and commits only offsets whose records
// Elasticsearch has acknowledged.
func (k *KafkaSettings) Sarama() (*sarama.Config, error) {
	c := sarama.NewConfig()
	v, err := sarama.ParseKafkaVersion(k.Version)
	if err != nil {
		return nil, err
	}
	c.Version = v
	c.ClientID = k.ClientID
	c.Consumer.Return.Errors = true
	c.Consumer.Offsets.AutoCommit.Enable = false
	c.Consumer.Offsets.Initial = sarama.OffsetNewest
	if strings.EqualFold(k.AutoOffsetReset, "earliest") {
		c.Consumer.Offsets.Initial = sarama.OffsetOldest
	}
	c.Consumer.Group.InstanceId = k.GroupInstanceID
	c.Consumer.Group.Session.Timeout = k.SessionTimeout.D()
	c.Consumer.Group.Heartbeat.Interval = k.HeartbeatInterval.D()
	c.Consumer.Group.Rebalance.Timeout = k.RebalanceTimeout.D()
	switch strings.ToLower(k.Assignor) {
	case "roundrobin":
		c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRoundRobin()}
	case "sticky":
		c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategySticky()}
	default:
		c.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{sarama.NewBalanceStrategyRange()}
	}
	if k.SSL.On(false) {
		tc, err := k.SSL.Config()
		if err != nil {
			return nil, err
		}
		c.Net.TLS.Enable = true
		c.Net.TLS.Config = tc
	}
	if k.Username != "" {
		c.Net.SASL.Enable = true
		c.Net.SASL.User = k.Username
		c.Net.SASL.Password = k.Password
		switch strings.ToUpper(k.SASL.Mechanism) {
		case "SCRAM-SHA-256":
			c.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA256
			c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return scram.ForMechanism("SCRAM-SHA-256") }
		case "SCRAM-SHA-512":
			c.Net.SASL.Mechanism = sarama.SASLTypeSCRAMSHA512
			c.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return scram.ForMechanism("SCRAM-SHA-512") }
		default:
			c.Net.SASL.Mechanism = sarama.SASLTypePlaintext
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}
