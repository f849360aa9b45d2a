package broker

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"logpipe/brokerd/storage"
)

// topicConfigDef describes one topic-level setting: its Kafka name, its
// type for DescribeConfigs, the broker setting that provides its default,
// and how a value is checked.
type topicConfigDef struct {
	name      string
	typ       int8 // kmsg ConfigType: 1 boolean, 2 string, 3 int, 4 short, 5 long, 6 double, 7 list
	brokerKey string
	def       func(c *Config) string
	check     func(v string) error
}

func checkLong(min int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", v)
		}
		if n < min {
			return fmt.Errorf("%d is below the minimum %d", n, min)
		}
		return nil
	}
}

func checkInt(min int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return fmt.Errorf("%q is not a 32-bit whole number", v)
		}
		if n < min {
			return fmt.Errorf("%d is below the minimum %d", n, min)
		}
		return nil
	}
}

func checkOneOf(allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return fmt.Errorf("%q is not one of %s", v, strings.Join(allowed, ", "))
	}
}

func checkPolicy(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != storage.PolicyDelete && p != storage.PolicyCompact {
			return fmt.Errorf("%q is not delete, compact or compact,delete", v)
		}
	}
	return nil
}

func i64(n int64) string { return strconv.FormatInt(n, 10) }

// topicConfigs lists every topic setting brokerd honours, in Kafka's
// names. Anything else is refused with INVALID_CONFIG rather than stored
// and ignored.
var topicConfigs = []topicConfigDef{
	{name: "cleanup.policy", typ: 7, brokerKey: "log.cleanup.policy", def: func(c *Config) string { return c.LogCleanupPolicy }, check: checkPolicy},
	{name: "compression.type", typ: 2, brokerKey: "compression.type", def: func(*Config) string { return "producer" },
		check: func(v string) error {
			if v != "producer" {
				return fmt.Errorf("brokerd keeps batches as the producer compressed them; only \"producer\" is supported")
			}
			return nil
		}},
	{name: "delete.retention.ms", typ: 5, brokerKey: "log.cleaner.delete.retention.ms", def: func(c *Config) string { return i64(c.LogDeleteRetention) }, check: checkLong(0)},
	{name: "flush.messages", typ: 5, brokerKey: "log.flush.interval.messages", def: func(c *Config) string {
		if c.LogFlushMessages <= 0 {
			return i64(math.MaxInt64)
		}
		return i64(c.LogFlushMessages)
	}, check: checkLong(1)},
	{name: "flush.ms", typ: 5, brokerKey: "log.flush.interval.ms", def: func(c *Config) string {
		if c.LogFlushMs <= 0 {
			return i64(math.MaxInt64)
		}
		return i64(c.LogFlushMs)
	}, check: checkLong(0)},
	{name: "index.interval.bytes", typ: 3, brokerKey: "log.index.interval.bytes", def: func(c *Config) string { return strconv.Itoa(c.LogIndexInterval) }, check: checkInt(0)},
	{name: "max.message.bytes", typ: 3, brokerKey: "message.max.bytes", def: func(c *Config) string { return strconv.Itoa(c.MessageMaxBytes) }, check: checkInt(0)},
	{name: "message.timestamp.type", typ: 2, brokerKey: "log.message.timestamp.type", def: func(c *Config) string { return c.LogTimestampType }, check: checkOneOf("CreateTime", "LogAppendTime")},
	{name: "message.timestamp.before.max.ms", typ: 5, def: func(*Config) string { return i64(math.MaxInt64) }, check: checkLong(0)},
	{name: "message.timestamp.after.max.ms", typ: 5, def: func(*Config) string { return i64(math.MaxInt64) }, check: checkLong(0)},
	{name: "min.compaction.lag.ms", typ: 5, def: func(*Config) string { return "0" }, check: checkLong(0)},
	{name: "min.insync.replicas", typ: 3, brokerKey: "min.insync.replicas", def: func(c *Config) string { return strconv.Itoa(c.MinInsyncReplicas) }, check: checkInt(1)},
	{name: "retention.bytes", typ: 5, brokerKey: "log.retention.bytes", def: func(c *Config) string { return i64(c.LogRetentionBytes) }, check: checkLong(-1)},
	{name: "retention.ms", typ: 5, brokerKey: "log.retention.ms", def: func(c *Config) string { return i64(c.retention().Milliseconds()) }, check: checkLong(-1)},
	{name: "segment.bytes", typ: 3, brokerKey: "log.segment.bytes", def: func(c *Config) string { return i64(c.LogSegmentBytes) }, check: checkInt(14)},
	{name: "segment.ms", typ: 5, brokerKey: "log.roll.ms", def: func(c *Config) string { return i64(c.roll().Milliseconds()) }, check: checkLong(1)},
	{name: "unclean.leader.election.enable", typ: 1, brokerKey: "unclean.leader.election.enable", def: func(c *Config) string { return strconv.FormatBool(c.UncleanLeaderElection) }, check: checkOneOf("true", "false")},
}

func topicConfigDefByName(name string) *topicConfigDef {
	for i := range topicConfigs {
		if topicConfigs[i].name == name {
			return &topicConfigs[i]
		}
	}
	return nil
}

// checkTopicConfigs validates a set of topic overrides.
func checkTopicConfigs(cfgs map[string]string) error {
	names := make([]string, 0, len(cfgs))
	for k := range cfgs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		d := topicConfigDefByName(k)
		if d == nil {
			return fmt.Errorf("unknown topic config %q", k)
		}
		if err := d.check(cfgs[k]); err != nil {
			return fmt.Errorf("invalid value for %s: %v", k, err)
		}
	}
	return nil
}

// effectiveTopicConfig returns the value of name for a topic with the
// given overrides, and whether it came from an override.
func (b *Broker) effectiveTopicConfig(overrides map[string]string, name string) (string, bool) {
	if v, ok := overrides[name]; ok {
		return v, true
	}
	d := topicConfigDefByName(name)
	if d == nil {
		return "", false
	}
	return d.def(&b.cfg), false
}

func parseMs(v string) time.Duration {
	n, _ := strconv.ParseInt(v, 10, 64)
	if n >= math.MaxInt64/int64(time.Millisecond) {
		return 0
	}
	return time.Duration(n) * time.Millisecond
}

// storageConfig turns a topic's overrides and the broker defaults into the
// log settings of its partitions.
func (b *Broker) storageConfig(overrides map[string]string) storage.Config {
	get := func(name string) string { v, _ := b.effectiveTopicConfig(overrides, name); return v }
	atoi := func(name string) int64 { n, _ := strconv.ParseInt(get(name), 10, 64); return n }
	sc := storage.Config{
		SegmentBytes:       atoi("segment.bytes"),
		SegmentAge:         parseMs(get("segment.ms")),
		RetentionBytes:     atoi("retention.bytes"),
		IndexIntervalBytes: int(atoi("index.interval.bytes")),
		MaxMessageBytes:    int(atoi("max.message.bytes")),
		CleanupPolicy:      get("cleanup.policy"),
		DeleteRetention:    parseMs(get("delete.retention.ms")),
		MinCompactionLag:   parseMs(get("min.compaction.lag.ms")),
		LogAppendTime:      get("message.timestamp.type") == "LogAppendTime",
		TimestampBeforeMax: parseMs(get("message.timestamp.before.max.ms")),
		TimestampAfterMax:  parseMs(get("message.timestamp.after.max.ms")),
	}
	if r := atoi("retention.ms"); r < 0 {
		sc.Retention = -1
	} else {
		sc.Retention = parseMs(get("retention.ms"))
	}
	if n := atoi("flush.messages"); n != math.MaxInt64 {
		sc.FlushMessages = n
	}
	sc.FlushInterval = parseMs(get("flush.ms"))
	if sc.IndexIntervalBytes == 0 {
		sc.IndexIntervalBytes = 1
	}
	return sc
}
