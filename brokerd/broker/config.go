package broker

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"logpipe/brokerd/acl"
	"logpipe/brokerd/quorum"
	"logpipe/pipeline/config"
)

// Config is the broker part of brokerd.yml. Keys keep Kafka's names; the
// zero value is not usable, start from DefaultConfig.
type Config struct {
	NodeID int32 `yaml:"node.id"`
	// ProcessRoles is Kafka's KRaft process.roles: "broker,controller"
	// (the default) for a combined node, one of controller.quorum.voters;
	// "broker" for a broker-only node, which is not a voter: it follows
	// the metadata quorum without voting and is never the controller. A
	// controller-only node is not supported yet.
	ProcessRoles string `yaml:"process.roles"`
	// Listeners is Kafka's listener list, "NAME://host:port,…": brokerd
	// serves clients on every listener but the one
	// controller.listener.names names, which serves the metadata quorum.
	Listeners string `yaml:"listeners"`
	// ListenerSecurityProtocolMap maps listener names to PLAINTEXT, SSL,
	// SASL_PLAINTEXT or SASL_SSL ("CLIENT:SASL_SSL,BROKER:SSL"); unset,
	// each of those four names is its own protocol.
	ListenerSecurityProtocolMap string `yaml:"listener.security.protocol.map"`
	// ListenerOverrides are Kafka's per-listener security settings,
	// "listener.name.<listener in lower case>.<key>": by
	// "<listener>.<key>", the value that replaces the key's on that
	// listener (listener_overrides.go lists the keys).
	ListenerOverrides map[string]string `yaml:"listener.name"`
	// ControllerQuorumVoters lists the metadata quorum's members,
	// "1@host:9093,2@host:9193,3@host:9293", each a node.id and the
	// address of its controller listener. Empty: a quorum of one, this
	// node alone.
	ControllerQuorumVoters string `yaml:"controller.quorum.voters"`
	// ControllerListenerNames names the listener of the quorum (the first
	// name is used); default CONTROLLER.
	ControllerListenerNames string `yaml:"controller.listener.names"`
	// InterBrokerListenerName names the listener other brokers reach this
	// one on (their replica fetchers); default PLAINTEXT, or the first
	// client listener when none is called so.
	InterBrokerListenerName string `yaml:"inter.broker.listener.name"`
	// SecurityInterBrokerProtocol is Kafka's other way to name it: the
	// listener called after the protocol (SASL_SSL: the listener named
	// SASL_SSL). As in Kafka, it is not set together with
	// inter.broker.listener.name.
	SecurityInterBrokerProtocol string `yaml:"security.inter.broker.protocol"`
	// BrokerRack is the rack (or zone) of this node, for rack-aware
	// replica placement; shown to clients in Metadata.
	BrokerRack string `yaml:"broker.rack"`
	// BrokerSessionTimeoutMs: a broker the controller has not heard from
	// for this long is fenced and its partitions get new leaders.
	BrokerSessionTimeoutMs int64 `yaml:"broker.session.timeout.ms"`
	// BrokerHeartbeatIntervalMs is how often a broker heartbeats to the
	// controller (and how often the controller checks sessions).
	BrokerHeartbeatIntervalMs int64 `yaml:"broker.heartbeat.interval.ms"`
	// UncleanLeaderElection lets a replica outside the ISR lead when no
	// in-sync replica is alive, losing what only the ISR had.
	UncleanLeaderElection bool `yaml:"unclean.leader.election.enable"`
	// AutoLeaderRebalance moves leadership back to each partition's
	// preferred replica every leader.imbalance.check.interval.seconds.
	AutoLeaderRebalance         bool  `yaml:"auto.leader.rebalance.enable"`
	LeaderImbalanceCheckSeconds int64 `yaml:"leader.imbalance.check.interval.seconds"`
	// ReplicaLagTimeMaxMs: a follower that has not caught up with its
	// leader for this long leaves the ISR.
	ReplicaLagTimeMaxMs int64 `yaml:"replica.lag.time.max.ms"`
	// RequestTimeoutMs bounds a request between brokers.
	RequestTimeoutMs int64 `yaml:"request.timeout.ms"`
	// MetadataLogDir holds the metadata quorum's log and snapshots (in
	// __cluster_metadata-0); empty: the first of log.dirs.
	MetadataLogDir string `yaml:"metadata.log.dir"`
	// AdvertisedListeners is what clients are told to connect to; empty
	// means Listeners.
	AdvertisedListeners string   `yaml:"advertised.listeners"`
	LogDirs             []string `yaml:"log.dirs"`
	LogDir              string   `yaml:"log.dir"`

	NumPartitions            int32 `yaml:"num.partitions"`
	DefaultReplicationFactor int16 `yaml:"default.replication.factor"`
	AutoCreateTopics         bool  `yaml:"auto.create.topics.enable"`
	MinInsyncReplicas        int   `yaml:"min.insync.replicas"`
	DeleteTopicEnable        bool  `yaml:"delete.topic.enable"`

	LogRetentionHours   int64  `yaml:"log.retention.hours"`
	LogRetentionMinutes int64  `yaml:"log.retention.minutes"`
	LogRetentionMs      int64  `yaml:"log.retention.ms"`
	LogRetentionBytes   int64  `yaml:"log.retention.bytes"`
	LogSegmentBytes     int64  `yaml:"log.segment.bytes"`
	LogRollHours        int64  `yaml:"log.roll.hours"`
	LogRollMs           int64  `yaml:"log.roll.ms"`
	LogFlushMessages    int64  `yaml:"log.flush.interval.messages"`
	LogFlushMs          int64  `yaml:"log.flush.interval.ms"`
	LogCleanupPolicy    string `yaml:"log.cleanup.policy"`
	LogIndexInterval    int    `yaml:"log.index.interval.bytes"`
	LogDeleteRetention  int64  `yaml:"log.cleaner.delete.retention.ms"`
	LogRetentionCheck   int64  `yaml:"log.retention.check.interval.ms"`
	LogCleanerBackoffMs int64  `yaml:"log.cleaner.backoff.ms"`
	MessageMaxBytes     int    `yaml:"message.max.bytes"`
	LogTimestampType    string `yaml:"log.message.timestamp.type"`

	// LogMaxOpenFiles bounds the segment files kept open while idle, for
	// all partitions together: files are opened when appended to or read
	// and the least recently used idle ones are closed beyond it (and
	// after 10 minutes unused). Not a Kafka key; 0 means half of the
	// process's open-file limit (RLIMIT_NOFILE).
	LogMaxOpenFiles int `yaml:"log.max.open.files"`

	OffsetsTopicPartitions        int32 `yaml:"offsets.topic.num.partitions"`
	OffsetsTopicReplicationFactor int16 `yaml:"offsets.topic.replication.factor"`
	OffsetsRetentionMinutes       int64 `yaml:"offsets.retention.minutes"`
	GroupMinSessionTimeoutMs      int32 `yaml:"group.min.session.timeout.ms"`
	GroupMaxSessionTimeoutMs      int32 `yaml:"group.max.session.timeout.ms"`
	GroupInitialRebalanceDelayMs  int32 `yaml:"group.initial.rebalance.delay.ms"`
	GroupMaxSize                  int32 `yaml:"group.max.size"`
	OffsetMetadataMaxBytes        int32 `yaml:"offset.metadata.max.bytes"`
	ProducerIDExpirationMs        int64 `yaml:"producer.id.expiration.ms"`

	SocketRequestMaxBytes int32 `yaml:"socket.request.max.bytes"`
	ConnectionsMaxIdleMs  int64 `yaml:"connections.max.idle.ms"`
	// SocketSendBufferBytes and SocketReceiveBufferBytes are each client
	// connection's SO_SNDBUF and SO_RCVBUF, Kafka's 102400 by default;
	// -1 leaves the operating system's (autotuned) sizes.
	SocketSendBufferBytes    int `yaml:"socket.send.buffer.bytes"`
	SocketReceiveBufferBytes int `yaml:"socket.receive.buffer.bytes"`
	// FetchSessionCacheSlots is how many fetch sessions (KIP-227) the
	// node keeps for consumers and followers; 0 turns sessions off, so
	// every fetch is a full one.
	FetchSessionCacheSlots int `yaml:"max.incremental.fetch.session.cache.slots"`

	// AuthorizerClassName turns authorization on (authz.go):
	// org.apache.kafka.metadata.authorizer.StandardAuthorizer, or its
	// short name "standard". Empty: every request is allowed.
	AuthorizerClassName string `yaml:"authorizer.class.name"`
	// SuperUsers are allowed everything: principals separated by
	// semicolons ("User:admin;User:ANONYMOUS").
	SuperUsers string `yaml:"super.users"`
	// AllowEveryoneIfNoACLFound allows a request no ACL matches.
	AllowEveryoneIfNoACLFound bool `yaml:"allow.everyone.if.no.acl.found"`

	// ZooKeeperConnect is refused: brokerd keeps its metadata itself.
	ZooKeeperConnect string `yaml:"zookeeper.connect"`

	// Security is TLS and SASL (security.go).
	Security SecurityConfig `yaml:",inline"`
}

// DefaultConfig returns Kafka's defaults, for a single local node on
// 127.0.0.1:9092 with data under ./data.
func DefaultConfig() Config {
	return Config{
		NodeID:                        1,
		Listeners:                     "PLAINTEXT://127.0.0.1:9092",
		LogDirs:                       []string{"./data"},
		NumPartitions:                 1,
		DefaultReplicationFactor:      1,
		AutoCreateTopics:              true,
		MinInsyncReplicas:             1,
		DeleteTopicEnable:             true,
		LogRetentionHours:             168,
		LogRetentionBytes:             -1,
		LogSegmentBytes:               1 << 30,
		LogRollHours:                  168,
		LogCleanupPolicy:              "delete",
		LogIndexInterval:              4096,
		LogDeleteRetention:            86400000,
		LogRetentionCheck:             300000,
		LogCleanerBackoffMs:           15000,
		MessageMaxBytes:               1048588,
		LogTimestampType:              "CreateTime",
		OffsetsTopicPartitions:        50,
		OffsetsTopicReplicationFactor: 3,
		OffsetsRetentionMinutes:       10080,
		GroupMinSessionTimeoutMs:      6000,
		GroupMaxSessionTimeoutMs:      1800000,
		GroupInitialRebalanceDelayMs:  3000,
		GroupMaxSize:                  1<<31 - 1,
		OffsetMetadataMaxBytes:        4096,
		ProducerIDExpirationMs:        86400000,
		SocketRequestMaxBytes:         100 << 20,
		ConnectionsMaxIdleMs:          600000,
		SocketSendBufferBytes:         102400,
		SocketReceiveBufferBytes:      102400,
		FetchSessionCacheSlots:        1000,
		BrokerSessionTimeoutMs:        2000,
		BrokerHeartbeatIntervalMs:     250,
		AutoLeaderRebalance:           true,
		LeaderImbalanceCheckSeconds:   300,
		RequestTimeoutMs:              30000,
		ReplicaLagTimeMaxMs:           30000,
		Security:                      defaultSecurity(),
	}
}

// Validate reports every setting brokerd cannot use.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) { errs = append(errs, config.Errorf(key, format, args...)) }
	if c.ZooKeeperConnect != "" {
		bad("zookeeper.connect", "brokerd needs no ZooKeeper: its nodes keep the cluster metadata in a Raft quorum (controller.quorum.voters); remove this key")
	}
	c.validateListeners(bad)
	c.Security.validate(bad)
	c.validateOverrides(bad)
	c.validateQuorum(bad)
	if len(c.Dirs()) == 0 {
		bad("log.dirs", "at least one directory is needed")
	}
	if c.NumPartitions < 1 {
		bad("num.partitions", "must be at least 1")
	}
	if c.DefaultReplicationFactor < 1 {
		bad("default.replication.factor", "must be at least 1")
	}
	if c.MinInsyncReplicas < 1 {
		bad("min.insync.replicas", "must be at least 1")
	}
	if c.OffsetsTopicPartitions < 1 {
		bad("offsets.topic.num.partitions", "must be at least 1")
	}
	if c.GroupMinSessionTimeoutMs < 1 || c.GroupMaxSessionTimeoutMs < c.GroupMinSessionTimeoutMs {
		bad("group.max.session.timeout.ms", "must be at least group.min.session.timeout.ms (%d), which must be positive", c.GroupMinSessionTimeoutMs)
	}
	if c.GroupInitialRebalanceDelayMs < 0 {
		bad("group.initial.rebalance.delay.ms", "must not be negative")
	}
	if c.GroupMaxSize < 1 {
		bad("group.max.size", "must be at least 1")
	}
	if c.OffsetMetadataMaxBytes < 1 {
		bad("offset.metadata.max.bytes", "must be at least 1")
	}
	if c.OffsetsRetentionMinutes < 1 {
		bad("offsets.retention.minutes", "must be at least 1")
	}
	if c.SocketSendBufferBytes == 0 || c.SocketSendBufferBytes < -1 {
		bad("socket.send.buffer.bytes", "must be positive, or -1 for the operating system's size")
	}
	if c.SocketReceiveBufferBytes == 0 || c.SocketReceiveBufferBytes < -1 {
		bad("socket.receive.buffer.bytes", "must be positive, or -1 for the operating system's size")
	}
	if c.FetchSessionCacheSlots < 0 {
		bad("max.incremental.fetch.session.cache.slots", "must not be negative (0 turns fetch sessions off)")
	}
	if c.LogMaxOpenFiles < 0 {
		bad("log.max.open.files", "must not be negative (0: half of the open-file limit)")
	}
	if c.LogSegmentBytes < 14 || c.LogSegmentBytes > 1<<31-1 {
		bad("log.segment.bytes", "must be between 14 and 2147483647")
	}
	switch c.LogTimestampType {
	case "CreateTime", "LogAppendTime":
	default:
		bad("log.message.timestamp.type", "want CreateTime or LogAppendTime, got %q", c.LogTimestampType)
	}
	for _, p := range strings.Split(c.LogCleanupPolicy, ",") {
		if p = strings.TrimSpace(p); p != "delete" && p != "compact" {
			bad("log.cleanup.policy", "want delete, compact or both, got %q", c.LogCleanupPolicy)
			break
		}
	}
	if _, err := c.authorizer(); err != nil {
		bad("authorizer.class.name", "%v", err)
	}
	if len(errs) == 0 {
		return nil
	}
	return joinErrors(errs)
}

type joined []error

func (j joined) Error() string {
	parts := make([]string, len(j))
	for i, e := range j {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}
func (j joined) Unwrap() []error { return j }

func joinErrors(errs []error) error { return joined(errs) }

// authorizer returns the authorizer the settings ask for, nil for none.
func (c *Config) authorizer() (*acl.Authorizer, error) {
	return acl.New(acl.Config{ClassName: c.AuthorizerClassName, SuperUsers: c.SuperUsers, AllowIfNoACL: c.AllowEveryoneIfNoACLFound})
}

// Dirs returns the log directories (log.dirs, else log.dir).
func (c *Config) Dirs() []string {
	if len(c.LogDirs) == 1 && strings.Contains(c.LogDirs[0], ",") {
		// Kafka writes log.dirs as one comma-separated string.
		var out []string
		for _, d := range strings.Split(c.LogDirs[0], ",") {
			if d = strings.TrimSpace(d); d != "" {
				out = append(out, d)
			}
		}
		return out
	}
	if len(c.LogDirs) > 0 {
		return c.LogDirs
	}
	if c.LogDir != "" {
		return []string{c.LogDir}
	}
	return nil
}

// namedListener returns host and port of the entry called name.
func namedListener(list, name string) (string, int32, error) {
	for _, l := range strings.Split(list, ",") {
		if l = strings.TrimSpace(l); strings.HasPrefix(strings.ToUpper(l), name+"://") {
			return splitListener(l)
		}
	}
	return "", 0, fmt.Errorf("no %s listener in %q", name, list)
}

func splitListener(first string) (string, int32, error) {
	_, addr, ok := strings.Cut(first, "://")
	if !ok {
		return "", 0, fmt.Errorf("listener %q is not NAME://host:port", first)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("listener %q: %v", first, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", 0, fmt.Errorf("listener %q: bad port", first)
	}
	return host, int32(p), nil
}

// ListenAddr returns where the inter-broker listener listens.
func (c *Config) ListenAddr() (string, int32, error) {
	l, err := c.interBrokerListener()
	return l.Host, l.Port, err
}

// AdvertisedAddr returns the inter-broker listener's advertised address,
// where other brokers reach this one.
func (c *Config) AdvertisedAddr() (string, int32, error) {
	l, err := c.interBrokerListener()
	return l.AdvHost, l.AdvPort, err
}

// controllerListener is the name of the quorum's listener, upper case.
func (c *Config) controllerListener() string {
	first, _, _ := strings.Cut(c.ControllerListenerNames, ",")
	if first = strings.ToUpper(strings.TrimSpace(first)); first == "" {
		return "CONTROLLER"
	}
	return first
}

// ControllerAddr returns where the metadata quorum listens; ok is false
// for a quorum of one, which needs no listener, and for a broker-only
// node, which has none (its Raft connections come on its inter-broker
// listener).
func (c *Config) ControllerAddr() (host string, port int32, ok bool, err error) {
	if strings.TrimSpace(c.ControllerQuorumVoters) == "" || c.brokerOnly() {
		return "", 0, false, nil
	}
	host, port, err = namedListener(c.Listeners, c.controllerListener())
	return host, port, err == nil, err
}

// Voters returns controller.quorum.voters parsed (nil for a quorum of
// one).
func (c *Config) Voters() ([]quorum.Voter, error) {
	return quorum.ParseVoters(c.ControllerQuorumVoters)
}

// metadataDir is where the quorum keeps its log.
func (c *Config) metadataDir() string {
	d := c.MetadataLogDir
	if d == "" {
		d = c.Dirs()[0]
	}
	return filepath.Join(d, "__cluster_metadata-0")
}

func (c *Config) sessionTimeout() time.Duration {
	return time.Duration(c.BrokerSessionTimeoutMs) * time.Millisecond
}

func (c *Config) heartbeatInterval() time.Duration {
	return time.Duration(c.BrokerHeartbeatIntervalMs) * time.Millisecond
}

func (c *Config) replicaLagMax() time.Duration {
	return time.Duration(c.ReplicaLagTimeMaxMs) * time.Millisecond
}

func (c *Config) requestTimeout() time.Duration {
	return time.Duration(c.RequestTimeoutMs) * time.Millisecond
}

// roles returns process.roles as a set.
func (c *Config) roles() map[string]bool {
	roles := map[string]bool{}
	for _, r := range config.CommaList(c.ProcessRoles) {
		roles[r] = true
	}
	return roles
}

// brokerOnly reports whether this is a broker-only node (process.roles:
// broker): not a voter of the metadata quorum.
func (c *Config) brokerOnly() bool {
	roles := c.roles()
	return len(roles) == 1 && roles["broker"]
}

// validateQuorum checks the KRaft keys.
func (c *Config) validateQuorum(bad func(key, format string, args ...any)) {
	roles := c.roles()
	switch {
	case len(roles) == 0, len(roles) == 2 && roles["broker"] && roles["controller"], c.brokerOnly():
	case len(roles) == 1 && roles["controller"]:
		bad("process.roles", "%q: controller-only nodes are not supported yet; use \"broker,controller\" (or \"broker\" for a node that is not a voter)", c.ProcessRoles)
	default:
		bad("process.roles", "want broker,controller or broker, got %q", c.ProcessRoles)
	}
	if c.BrokerHeartbeatIntervalMs < 1 || c.BrokerSessionTimeoutMs < 2*c.BrokerHeartbeatIntervalMs {
		bad("broker.session.timeout.ms", "must be at least twice broker.heartbeat.interval.ms (%d), which must be positive", c.BrokerHeartbeatIntervalMs)
	}
	if c.LeaderImbalanceCheckSeconds < 1 {
		bad("leader.imbalance.check.interval.seconds", "must be at least 1")
	}
	if c.ReplicaLagTimeMaxMs < 1 {
		bad("replica.lag.time.max.ms", "must be positive")
	}
	if c.RequestTimeoutMs < 1 {
		bad("request.timeout.ms", "must be positive")
	}
	voters, err := c.Voters()
	if err != nil {
		bad("controller.quorum.voters", "%v", err)
		return
	}
	if c.brokerOnly() {
		c.validateBrokerOnly(voters, bad)
		return
	}
	if len(voters) == 0 {
		return
	}
	if !slices.ContainsFunc(voters, func(v quorum.Voter) bool { return v.ID == c.NodeID }) {
		bad("controller.quorum.voters", "node.id %d is not one of the voters (a node that is not a voter needs process.roles: broker)", c.NodeID)
	}
	host, port, _, err := c.ControllerAddr()
	if err != nil {
		bad("listeners", "%v (controller.listener.names names it; the voters reach this node there)", err)
		return
	}
	for _, v := range voters {
		if v.ID != c.NodeID {
			continue
		}
		vh, vp, _ := net.SplitHostPort(v.Addr)
		if vp != strconv.Itoa(int(port)) || host != "" && host != "0.0.0.0" && host != "::" && vh != host {
			bad("controller.quorum.voters", "node %d's voter address %s is not its controller listener %s", c.NodeID, v.Addr, net.JoinHostPort(host, strconv.Itoa(int(port))))
		}
	}
}

// validateBrokerOnly checks what a broker-only node needs: the voters to
// find the controller, a node.id that is none of theirs, no controller
// listener of its own, and an advertised address the controllers can
// reach, since they send it the metadata log there.
func (c *Config) validateBrokerOnly(voters []quorum.Voter, bad func(key, format string, args ...any)) {
	if len(voters) == 0 {
		bad("controller.quorum.voters", "a broker-only node (process.roles: broker) finds the controllers here: list the voters as id@host:port")
	}
	if slices.ContainsFunc(voters, func(v quorum.Voter) bool { return v.ID == c.NodeID }) {
		bad("node.id", "%d is one of controller.quorum.voters; a broker-only node (process.roles: broker) needs a node.id of its own", c.NodeID)
	}
	if _, _, err := namedListener(c.Listeners, c.controllerListener()); err == nil {
		bad("listeners", "a broker-only node (process.roles: broker) has no %s listener; it reaches the controllers through controller.quorum.voters", c.controllerListener())
	}
	host, _, err := c.AdvertisedAddr()
	if ip := net.ParseIP(host); err == nil && (host == "" || ip != nil && ip.IsUnspecified()) {
		bad("advertised.listeners", "%q is not an address the controllers can reach; a broker-only node receives the metadata log on its advertised inter-broker listener", host)
	}
}

// replicationAddr is host:port where the leader of the metadata quorum
// reaches a broker-only node: its advertised inter-broker listener, which
// carries the Raft connections too, protected as the controller
// listener's protocol says (splitInterBrokerListener).
func (c *Config) replicationAddr() string {
	host, port, _ := c.AdvertisedAddr()
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}

func (c *Config) retention() time.Duration {
	switch {
	case c.LogRetentionMs != 0:
		return time.Duration(c.LogRetentionMs) * time.Millisecond
	case c.LogRetentionMinutes != 0:
		return time.Duration(c.LogRetentionMinutes) * time.Minute
	default:
		return time.Duration(c.LogRetentionHours) * time.Hour
	}
}

func (c *Config) roll() time.Duration {
	if c.LogRollMs != 0 {
		return time.Duration(c.LogRollMs) * time.Millisecond
	}
	return time.Duration(c.LogRollHours) * time.Hour
}
