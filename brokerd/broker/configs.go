package broker

import (
	"context"
	"sort"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/metadata"
)

// Config resource types of the *Configs APIs.
const (
	resourceTopic  = 2
	resourceBroker = 4
)

// brokerConfigs lists the broker settings DescribeConfigs shows for a
// broker resource, with their values. They are read-only: brokerd has no
// dynamic broker configs.
func (b *Broker) brokerConfigs() map[string]string {
	c := &b.cfg
	return map[string]string{
		"node.id":                          strconv.Itoa(int(c.NodeID)),
		"broker.id":                        strconv.Itoa(int(c.NodeID)),
		"listeners":                        c.Listeners,
		"advertised.listeners":             c.AdvertisedListeners,
		"num.partitions":                   strconv.Itoa(int(c.NumPartitions)),
		"default.replication.factor":       strconv.Itoa(int(c.DefaultReplicationFactor)),
		"auto.create.topics.enable":        strconv.FormatBool(c.AutoCreateTopics),
		"delete.topic.enable":              strconv.FormatBool(c.DeleteTopicEnable),
		"min.insync.replicas":              strconv.Itoa(c.MinInsyncReplicas),
		"log.retention.ms":                 strconv.FormatInt(c.retention().Milliseconds(), 10),
		"log.retention.bytes":              strconv.FormatInt(c.LogRetentionBytes, 10),
		"log.segment.bytes":                strconv.FormatInt(c.LogSegmentBytes, 10),
		"log.roll.ms":                      strconv.FormatInt(c.roll().Milliseconds(), 10),
		"log.cleanup.policy":               c.LogCleanupPolicy,
		"message.max.bytes":                strconv.Itoa(c.MessageMaxBytes),
		"log.message.timestamp.type":       c.LogTimestampType,
		"offsets.topic.num.partitions":     strconv.Itoa(int(c.OffsetsTopicPartitions)),
		"group.initial.rebalance.delay.ms": strconv.Itoa(int(c.GroupInitialRebalanceDelayMs)),
		"group.min.session.timeout.ms":     strconv.Itoa(int(c.GroupMinSessionTimeoutMs)),
		"group.max.session.timeout.ms":     strconv.Itoa(int(c.GroupMaxSessionTimeoutMs)),
		"group.max.size":                   strconv.Itoa(int(c.GroupMaxSize)),
		"offset.metadata.max.bytes":        strconv.Itoa(int(c.OffsetMetadataMaxBytes)),
		"offsets.retention.minutes":        strconv.FormatInt(c.OffsetsRetentionMinutes, 10),
		"socket.request.max.bytes":         strconv.Itoa(int(c.SocketRequestMaxBytes)),
		"socket.send.buffer.bytes":         strconv.Itoa(c.SocketSendBufferBytes),
		"socket.receive.buffer.bytes":      strconv.Itoa(c.SocketReceiveBufferBytes),
		"offsets.topic.replication.factor": strconv.Itoa(int(c.OffsetsTopicReplicationFactor)),
		// The cluster's settings, as this node runs them (defaults
		// filled in).
		"process.roles":                             c.ProcessRoles,
		"controller.quorum.voters":                  c.ControllerQuorumVoters,
		"controller.listener.names":                 c.ControllerListenerNames,
		"inter.broker.listener.name":                c.InterBrokerListenerName,
		"broker.rack":                               c.BrokerRack,
		"metadata.log.dir":                          c.metadataDir(),
		"broker.session.timeout.ms":                 strconv.FormatInt(c.sessionTimeout().Milliseconds(), 10),
		"broker.heartbeat.interval.ms":              strconv.FormatInt(c.heartbeatInterval().Milliseconds(), 10),
		"replica.lag.time.max.ms":                   strconv.FormatInt(c.replicaLagMax().Milliseconds(), 10),
		"request.timeout.ms":                        strconv.FormatInt(c.requestTimeout().Milliseconds(), 10),
		"unclean.leader.election.enable":            strconv.FormatBool(c.UncleanLeaderElection),
		"auto.leader.rebalance.enable":              strconv.FormatBool(c.AutoLeaderRebalance),
		"leader.imbalance.check.interval.seconds":   strconv.FormatInt(c.LeaderImbalanceCheckSeconds, 10),
		"max.incremental.fetch.session.cache.slots": strconv.Itoa(c.FetchSessionCacheSlots),
		"log.max.open.files":                        strconv.Itoa(c.LogMaxOpenFiles),
	}
}

// describeTopicConfigs answers DescribeConfigs for one topic.
func (b *Broker) describeTopicConfigs(req *kmsg.DescribeConfigsRequest, rr kmsg.DescribeConfigsRequestResource, sr *kmsg.DescribeConfigsResponseResource) {
	t := b.meta.Image().Topic(rr.ResourceName)
	if t == nil {
		sr.ErrorCode = kerr.UnknownTopicOrPartition.Code
		m := "topic " + strconv.Quote(rr.ResourceName) + " does not exist"
		sr.ErrorMessage = &m
		return
	}
	want := wanted(rr.ConfigNames)
	for _, d := range topicConfigs {
		if want != nil && !want[d.name] {
			continue
		}
		v, override := b.effectiveTopicConfig(t.Configs, d.name)
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name = d.name
		c.Value = &v
		c.ConfigType = kmsg.ConfigType(d.typ)
		c.IsDefault = !override
		c.Source = kmsg.ConfigSourceDefaultConfig
		if override {
			c.Source = kmsg.ConfigSourceDynamicTopicConfig
		}
		if req.IncludeSynonyms {
			if override {
				s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				s.Name, s.Value, s.Source = d.name, &v, kmsg.ConfigSourceDynamicTopicConfig
				c.ConfigSynonyms = append(c.ConfigSynonyms, s)
			}
			if d.brokerKey != "" {
				dv := d.def(&b.cfg)
				s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
				s.Name, s.Value, s.Source = d.brokerKey, &dv, kmsg.ConfigSourceDefaultConfig
				c.ConfigSynonyms = append(c.ConfigSynonyms, s)
			}
		}
		sr.Configs = append(sr.Configs, c)
	}
}

func (b *Broker) describeBrokerConfigs(rr kmsg.DescribeConfigsRequestResource, sr *kmsg.DescribeConfigsResponseResource) {
	if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(b.cfg.NodeID)) {
		sr.ErrorCode = kerr.InvalidRequest.Code
		m := "this is broker " + strconv.Itoa(int(b.cfg.NodeID))
		sr.ErrorMessage = &m
		return
	}
	want := wanted(rr.ConfigNames)
	all := b.brokerConfigs()
	names := make([]string, 0, len(all))
	for k := range all {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if want != nil && !want[k] {
			continue
		}
		v := all[k]
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name, c.Value, c.ReadOnly = k, &v, true
		c.Source = kmsg.ConfigSourceStaticBrokerConfig
		sr.Configs = append(sr.Configs, c)
	}
}

func wanted(names []string) map[string]bool {
	if names == nil {
		return nil
	}
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

// alterTopicConfigs checks and applies a change of a topic's overrides.
func (b *Broker) alterTopicConfigs(ctx context.Context, ac metadata.AlterConfigs, validateOnly bool) error {
	t := b.meta.Image().Topic(ac.Topic)
	if t == nil {
		return newAPIError(kerr.UnknownTopicOrPartition, "topic %q does not exist", ac.Topic)
	}
	if err := checkTopicConfigs(ac.Set); err != nil {
		return newAPIError(kerr.InvalidConfig, "%v", err)
	}
	for _, k := range ac.Delete {
		if topicConfigDefByName(k) == nil {
			return newAPIError(kerr.InvalidConfig, "unknown topic config %q", k)
		}
	}
	if validateOnly {
		return nil
	}
	if err := b.propose(ctx, metadata.Record{AlterConfigs: &ac}); err != nil {
		return err
	}
	b.log.Info("altered topic configs", "topic", ac.Topic, "set", ac.Set, "deleted", ac.Delete, "replace", ac.Replace)
	return nil
}
