package admin

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// topicsOpts is the parsed command line of `brokerd topics`.
type topicsOpts struct {
	*flagSet
	create, list, describe, alter, del bool
	topic                              string
	partitions                         int
	replicationFactor                  int
	configs                            listFlag
	deleteConfigs                      listFlag
	ifExists, ifNotExists              bool
	excludeInternal                    bool
	timeoutMs                          int
}

func runTopics(e *env, args []string) error {
	o := &topicsOpts{}
	o.flagSet = newFlagSet(e, "manage topics (a Kafka client; works against Apache Kafka too)",
		"--create --topic TOPIC [--partitions N] [--replication-factor R] [--config key=value]... [--if-not-exists]",
		"--list [--topic REGEX] [--exclude-internal]",
		"--describe [--topic REGEX] [--exclude-internal]",
		"--alter --topic TOPIC [--partitions N] [--config key=value]... [--delete-config key]...",
		"--delete --topic TOPIC [--if-exists]",
	)
	fs := o.flagSet
	fs.BoolVar(&o.create, "create", false, "create a topic")
	fs.BoolVar(&o.list, "list", false, "list topic names")
	fs.BoolVar(&o.describe, "describe", false, "describe topics: partitions, leaders, replicas, in-sync replicas and config overrides")
	fs.BoolVar(&o.alter, "alter", false, "add partitions to a topic and/or change its config overrides")
	fs.BoolVar(&o.del, "delete", false, "delete a topic")
	fs.StringVar(&o.topic, "topic", "", "the `TOPIC`; for --list and --describe a regular expression matched against whole names")
	fs.IntVar(&o.partitions, "partitions", 0, "`N` partitions (--create: default the broker's num.partitions; --alter: the new total)")
	fs.IntVar(&o.replicationFactor, "replication-factor", 0, "`R` replicas per partition for --create (default the broker's default.replication.factor)")
	fs.Var(&o.configs, "config", "a topic config override as `key=value` for --create or --alter (repeatable)")
	fs.Var(&o.deleteConfigs, "delete-config", "remove the override of config `key` with --alter (repeatable)")
	fs.BoolVar(&o.ifExists, "if-exists", false, "with --alter or --delete: do nothing if the topic does not exist")
	fs.BoolVar(&o.ifNotExists, "if-not-exists", false, "with --create: do nothing if the topic exists already")
	fs.BoolVar(&o.excludeInternal, "exclude-internal", false, "leave internal topics such as __consumer_offsets out of --list and --describe")
	fs.IntVar(&o.timeoutMs, "timeout", 30000, "give up after this many `milliseconds`")
	if err := fs.parse(e, args); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return err
	}

	adm, ctx, done, err := newAdmin(e, fs, "brokerd-topics", o.timeoutMs)
	if err != nil {
		return err
	}
	defer done()
	adm.SetTimeoutMillis(int32(min(o.timeoutMs, 1<<30)))

	switch {
	case o.create:
		return o.runCreate(ctx, e, adm)
	case o.list:
		return o.runList(ctx, e, adm)
	case o.describe:
		return o.runDescribe(ctx, e, adm)
	case o.alter:
		return o.runAlter(ctx, e, adm)
	default:
		return o.runDelete(ctx, e, adm)
	}
}

func (o *topicsOpts) check() error {
	n := 0
	for _, b := range []bool{o.create, o.list, o.describe, o.alter, o.del} {
		if b {
			n++
		}
	}
	if n != 1 {
		return usagef("exactly one of --create, --list, --describe, --alter, --delete is required")
	}
	if (o.create || o.alter || o.del) && o.topic == "" {
		return usagef("--topic is required")
	}
	if o.given("partitions") && o.partitions < 1 {
		return usagef("--partitions must be at least 1")
	}
	if o.given("replication-factor") && (o.replicationFactor < 1 || o.replicationFactor > 32767) {
		return usagef("--replication-factor must be between 1 and 32767")
	}
	if o.given("replication-factor") && !o.create {
		return usagef("--replication-factor goes with --create only")
	}
	if o.given("partitions") && !o.create && !o.alter {
		return usagef("--partitions goes with --create or --alter")
	}
	if len(o.configs) > 0 && !o.create && !o.alter {
		return usagef("--config goes with --create or --alter")
	}
	if len(o.deleteConfigs) > 0 && !o.alter {
		return usagef("--delete-config goes with --alter only")
	}
	if o.alter && !o.given("partitions") && len(o.configs) == 0 && len(o.deleteConfigs) == 0 {
		return usagef("--alter needs --partitions, --config or --delete-config")
	}
	if o.ifExists && !o.alter && !o.del {
		return usagef("--if-exists goes with --alter or --delete")
	}
	if o.ifNotExists && !o.create {
		return usagef("--if-not-exists goes with --create")
	}
	if o.timeoutMs <= 0 {
		return usagef("--timeout must be positive")
	}
	if _, err := keyValues("config", o.configs); err != nil {
		return err
	}
	return nil
}

// topicID renders a topic id the way Kafka's tools print it (URL-safe
// base64 without padding); the all-zero id of a broker without topic ids
// is empty.
func topicID(id kadm.TopicID) string {
	if id == (kadm.TopicID{}) {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// createdTopic is the JSON answer of --create.
type createdTopic struct {
	Topic             string            `json:"topic"`
	TopicID           string            `json:"topic_id,omitempty"`
	Created           bool              `json:"created"`
	Partitions        int32             `json:"partitions"`
	ReplicationFactor int16             `json:"replication_factor"`
	Configs           map[string]string `json:"configs"`
}

func (o *topicsOpts) runCreate(ctx context.Context, e *env, adm *kadm.Client) error {
	kv, _ := keyValues("config", o.configs)
	configs := make(map[string]*string, len(kv))
	for k, v := range kv {
		configs[k] = kadm.StringPtr(v)
	}
	parts, rf := int32(-1), int16(-1)
	if o.given("partitions") {
		parts = int32(o.partitions)
	}
	if o.given("replication-factor") {
		rf = int16(o.replicationFactor)
	}
	resps, err := adm.CreateTopics(ctx, parts, rf, configs, o.topic)
	if err != nil {
		return errorf("create topic %q: %w", o.topic, err)
	}
	r, ok := resps[o.topic]
	if !ok {
		return errorf("create topic %q: the broker's answer does not mention the topic", o.topic)
	}
	out := createdTopic{Topic: o.topic, TopicID: topicID(r.ID), Created: true, Partitions: r.NumPartitions, ReplicationFactor: r.ReplicationFactor, Configs: kv}
	if r.Err != nil {
		if !(o.ifNotExists && errors.Is(r.Err, kerr.TopicAlreadyExists)) {
			return errorf("create topic %q: %w", o.topic, withMessage(r.Err, r.ErrMessage))
		}
		out = createdTopic{Topic: o.topic, Configs: map[string]string{}}
	}
	if o.json() {
		return writeJSON(e.stdout, out)
	}
	if out.Created {
		fmt.Fprintf(e.stdout, "Created topic %s.\n", o.topic)
	} else {
		fmt.Fprintf(e.stdout, "Topic %s exists already.\n", o.topic)
	}
	return nil
}

// matchTopics fetches every topic's metadata (never naming one, so that
// nothing is created automatically) and keeps those --topic selects.
func (o *topicsOpts) matchTopics(ctx context.Context, adm *kadm.Client) ([]kadm.TopicDetail, error) {
	var match *regexp.Regexp
	if o.topic != "" {
		re, err := regexp.Compile("^(?:" + o.topic + ")$")
		if err != nil {
			return nil, usagef("--topic is not a valid regular expression: %v", err)
		}
		match = re
	}
	all, err := adm.ListTopicsWithInternal(ctx)
	if err != nil {
		return nil, errorf("list topics: %w", err)
	}
	var out []kadm.TopicDetail
	for _, t := range all.Sorted() {
		if o.excludeInternal && t.IsInternal {
			continue
		}
		if match != nil && !match.MatchString(t.Topic) {
			continue
		}
		out = append(out, t)
	}
	if o.topic != "" && len(out) == 0 {
		return nil, errorf("topic %q does not exist", o.topic)
	}
	return out, nil
}

// listedTopic is one element of the JSON answer of --list.
type listedTopic struct {
	Name       string `json:"name"`
	Partitions int    `json:"partitions"`
	Internal   bool   `json:"internal"`
}

func (o *topicsOpts) runList(ctx context.Context, e *env, adm *kadm.Client) error {
	topics, err := o.matchTopics(ctx, adm)
	if err != nil {
		return err
	}
	if o.json() {
		out := make([]listedTopic, 0, len(topics))
		for _, t := range topics {
			out = append(out, listedTopic{Name: t.Topic, Partitions: len(t.Partitions), Internal: t.IsInternal})
		}
		return writeJSON(e.stdout, out)
	}
	for _, t := range topics {
		fmt.Fprintln(e.stdout, t.Topic)
	}
	return nil
}

// describedTopic is one element of the JSON answer of --describe.
type describedTopic struct {
	Name              string               `json:"name"`
	TopicID           string               `json:"topic_id,omitempty"`
	Internal          bool                 `json:"internal"`
	PartitionCount    int                  `json:"partition_count"`
	ReplicationFactor int                  `json:"replication_factor"`
	Configs           map[string]string    `json:"configs"`
	Partitions        []describedPartition `json:"partitions"`
	Error             string               `json:"error,omitempty"`
}

// describedPartition is one partition in describedTopic.
type describedPartition struct {
	Partition       int32   `json:"partition"`
	Leader          int32   `json:"leader"`
	LeaderEpoch     int32   `json:"leader_epoch"`
	Replicas        []int32 `json:"replicas"`
	ISR             []int32 `json:"isr"`
	OfflineReplicas []int32 `json:"offline_replicas"`
	// AddingReplicas and RemovingReplicas are set while the partition is
	// being reassigned.
	AddingReplicas   []int32 `json:"adding_replicas,omitempty"`
	RemovingReplicas []int32 `json:"removing_replicas,omitempty"`
	Error            string  `json:"error,omitempty"`
}

func (o *topicsOpts) runDescribe(ctx context.Context, e *env, adm *kadm.Client) error {
	topics, err := o.matchTopics(ctx, adm)
	if err != nil {
		return err
	}
	overrides := map[string]map[string]string{}
	var names []string
	for _, t := range topics {
		if t.Err == nil {
			names = append(names, t.Topic)
		}
	}
	if len(names) > 0 {
		rcs, err := adm.DescribeTopicConfigs(ctx, names...)
		if err != nil {
			return errorf("describe topic configs: %w", err)
		}
		for _, rc := range rcs {
			if rc.Err != nil {
				return errorf("describe configs of topic %q: %w", rc.Name, withMessage(rc.Err, rc.ErrMessage))
			}
			m := map[string]string{}
			for _, c := range rc.Configs {
				if c.Source == kmsg.ConfigSourceDynamicTopicConfig {
					if c.Sensitive {
						m[c.Key] = "(sensitive)"
					} else {
						m[c.Key] = c.MaybeValue()
					}
				}
			}
			overrides[rc.Name] = m
		}
	}

	moving := kadm.ListPartitionReassignmentsResponses{}
	if len(names) > 0 {
		set := kadm.TopicsSet{}
		for _, t := range topics {
			for _, p := range t.Partitions {
				set.Add(t.Topic, p.Partition)
			}
		}
		if moving, err = adm.ListPartitionReassignments(ctx, set); err != nil {
			return errorf("list partition reassignments: %w", err)
		}
	}

	out := make([]describedTopic, 0, len(topics))
	for _, t := range topics {
		d := describedTopic{
			Name: t.Topic, TopicID: topicID(t.ID), Internal: t.IsInternal,
			PartitionCount: len(t.Partitions), ReplicationFactor: t.Partitions.NumReplicas(),
			Configs: overrides[t.Topic], Partitions: []describedPartition{},
		}
		if d.Configs == nil {
			d.Configs = map[string]string{}
		}
		if t.Err != nil {
			d.Error = t.Err.Error()
		}
		for _, p := range t.Partitions.Sorted() {
			dp := describedPartition{
				Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
				Replicas: nonNil(p.Replicas), ISR: nonNil(p.ISR), OfflineReplicas: nonNil(p.OfflineReplicas),
			}
			if r, ok := moving[t.Topic][p.Partition]; ok {
				dp.AddingReplicas, dp.RemovingReplicas = r.AddingReplicas, r.RemovingReplicas
			}
			if p.Err != nil {
				dp.Error = p.Err.Error()
			}
			d.Partitions = append(d.Partitions, dp)
		}
		out = append(out, d)
	}
	if o.json() {
		return writeJSON(e.stdout, out)
	}
	for _, d := range out {
		var cfg []string
		for _, k := range sortedKeys(d.Configs) {
			cfg = append(cfg, k+"="+d.Configs[k])
		}
		head := []string{"Topic: " + d.Name}
		if d.TopicID != "" {
			head = append(head, "TopicId: "+d.TopicID)
		}
		head = append(head, fmt.Sprintf("PartitionCount: %d", d.PartitionCount),
			fmt.Sprintf("ReplicationFactor: %d", d.ReplicationFactor),
			"Configs: "+strings.Join(cfg, ","))
		if d.Error != "" {
			head = append(head, "Error: "+d.Error)
		}
		fmt.Fprintln(e.stdout, strings.Join(head, "  "))
		tb := newTable(e.stdout)
		for _, p := range d.Partitions {
			leader := "none"
			if p.Leader >= 0 {
				leader = fmt.Sprint(p.Leader)
			}
			cells := []string{"    Topic: " + d.Name, fmt.Sprintf("Partition: %d", p.Partition), "Leader: " + leader,
				"Replicas: " + joinInt32s(p.Replicas), "Isr: " + joinInt32s(p.ISR)}
			if len(p.AddingReplicas)+len(p.RemovingReplicas) > 0 {
				cells = append(cells, "Adding Replicas: "+joinInt32s(p.AddingReplicas), "Removing Replicas: "+joinInt32s(p.RemovingReplicas))
			}
			if len(p.OfflineReplicas) > 0 {
				cells = append(cells, "Offline: "+joinInt32s(p.OfflineReplicas))
			}
			if p.Error != "" {
				cells = append(cells, "Error: "+p.Error)
			}
			tb.row(cells...)
		}
		if err := tb.flush(); err != nil {
			return err
		}
	}
	return nil
}

func nonNil(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return s
}

// alteredTopic is the JSON answer of --alter.
type alteredTopic struct {
	Topic          string            `json:"topic"`
	Exists         bool              `json:"exists"`
	Partitions     *int              `json:"partitions,omitempty"`
	ConfigsSet     map[string]string `json:"configs_set"`
	ConfigsDeleted []string          `json:"configs_deleted"`
}

func (o *topicsOpts) runAlter(ctx context.Context, e *env, adm *kadm.Client) error {
	kv, _ := keyValues("config", o.configs)
	out := alteredTopic{Topic: o.topic, Exists: true, ConfigsSet: kv, ConfigsDeleted: append([]string{}, o.deleteConfigs...)}
	missing := func(err error) bool { return o.ifExists && errors.Is(err, kerr.UnknownTopicOrPartition) }
	var texts []string
	if o.given("partitions") {
		resps, err := adm.UpdatePartitions(ctx, o.partitions, o.topic)
		if err != nil {
			return errorf("alter partitions of topic %q: %w", o.topic, err)
		}
		r, ok := resps[o.topic]
		switch {
		case !ok:
			return errorf("alter partitions of topic %q: the broker's answer does not mention the topic", o.topic)
		case missing(r.Err):
			return o.reportMissing(e)
		case r.Err != nil:
			return errorf("alter partitions of topic %q: %w", o.topic, withMessage(r.Err, r.ErrMessage))
		}
		out.Partitions = &o.partitions
		texts = append(texts, fmt.Sprintf("Topic %s now has %d partitions.", o.topic, o.partitions))
	}
	if len(kv) > 0 || len(o.deleteConfigs) > 0 {
		var alters []kadm.AlterConfig
		var done []string
		for _, k := range sortedKeys(kv) {
			alters = append(alters, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(kv[k])})
			done = append(done, "set "+k+"="+kv[k])
		}
		for _, k := range o.deleteConfigs {
			alters = append(alters, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k})
			done = append(done, "deleted "+k)
		}
		resps, err := adm.AlterTopicConfigs(ctx, alters, o.topic)
		if err != nil {
			return errorf("alter configs of topic %q: %w", o.topic, err)
		}
		r, err := resps.On(o.topic, nil)
		switch {
		case err != nil:
			return errorf("alter configs of topic %q: the broker's answer does not mention the topic", o.topic)
		case missing(r.Err):
			return o.reportMissing(e)
		case r.Err != nil:
			return errorf("alter configs of topic %q: %w", o.topic, withMessage(r.Err, r.ErrMessage))
		}
		texts = append(texts, fmt.Sprintf("Updated configs of topic %s: %s.", o.topic, strings.Join(done, ", ")))
	}
	if o.json() {
		return writeJSON(e.stdout, out)
	}
	for _, t := range texts {
		fmt.Fprintln(e.stdout, t)
	}
	return nil
}

// reportMissing answers --if-exists for a topic that is not there.
func (o *topicsOpts) reportMissing(e *env) error {
	if o.json() {
		return writeJSON(e.stdout, map[string]any{"topic": o.topic, "exists": false})
	}
	fmt.Fprintf(e.stdout, "Topic %s does not exist; nothing done.\n", o.topic)
	return nil
}

func (o *topicsOpts) runDelete(ctx context.Context, e *env, adm *kadm.Client) error {
	r, err := adm.DeleteTopic(ctx, o.topic)
	if err != nil && r.Err == nil {
		return errorf("delete topic %q: %w", o.topic, err)
	}
	switch {
	case o.ifExists && errors.Is(r.Err, kerr.UnknownTopicOrPartition):
		return o.reportMissing(e)
	case r.Err != nil:
		return errorf("delete topic %q: %w", o.topic, withMessage(r.Err, r.ErrMessage))
	}
	if o.json() {
		return writeJSON(e.stdout, map[string]any{"topic": o.topic, "exists": true, "deleted": true})
	}
	fmt.Fprintf(e.stdout, "Deleted topic %s.\n", o.topic)
	return nil
}
