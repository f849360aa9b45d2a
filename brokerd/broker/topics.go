package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/controller"
	"logpipe/brokerd/metadata"
	"logpipe/brokerd/quorum"
)

// apiError is a Kafka error code with a message for the client.
type apiError struct {
	err *kerr.Error
	msg string
}

func (e *apiError) Error() string { return e.err.Message + ": " + e.msg }

func newAPIError(err *kerr.Error, format string, args ...any) *apiError {
	return &apiError{err: err, msg: fmt.Sprintf(format, args...)}
}

// codeOf returns the Kafka error code and message of err (0 for nil).
func codeOf(err error) (int16, *string) {
	if err == nil {
		return 0, nil
	}
	var ae *apiError
	if errors.As(err, &ae) {
		m := ae.msg
		return ae.err.Code, &m
	}
	m := err.Error()
	switch {
	case errors.Is(err, metadata.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code, &m
	case errors.Is(err, metadata.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition.Code, &m
	case errors.Is(err, metadata.ErrInvalidPartitions):
		return kerr.InvalidPartitions.Code, &m
	case errors.Is(err, quorum.ErrNotLeader):
		return kerr.NotController.Code, &m
	}
	return kerr.UnknownServerError.Code, &m
}

// topicSpec is what a CreateTopics entry (or an automatic creation) asks.
type topicSpec struct {
	name       string
	partitions int32 // -1: num.partitions
	rf         int16 // -1: default.replication.factor
	assignment map[int32][]int32
	configs    map[string]string
}

// liveBrokers returns the unfenced brokers, which new replicas go to.
func liveBrokers(img *metadata.Image) []metadata.Broker {
	var out []metadata.Broker
	for _, id := range img.LiveBrokerIDs() {
		out = append(out, img.Brokers[id])
	}
	return out
}

// planTopic checks a spec against the current metadata and returns the
// topic to create.
func (b *Broker) planTopic(s topicSpec) (*metadata.Topic, error) {
	if err := checkTopicName(s.name); err != nil {
		return nil, newAPIError(kerr.InvalidTopicException, "%v", err)
	}
	img := b.meta.Image()
	if img.Topic(s.name) != nil {
		return nil, newAPIError(kerr.TopicAlreadyExists, "topic %q already exists", s.name)
	}
	if err := checkTopicConfigs(s.configs); err != nil {
		return nil, newAPIError(kerr.InvalidConfig, "%v", err)
	}
	brokers := liveBrokers(img)
	var assign [][]int32
	if len(s.assignment) > 0 {
		if s.partitions != -1 || s.rf != -1 {
			return nil, newAPIError(kerr.InvalidRequest, "give either a replica assignment or partitions and replication factor, not both")
		}
		assign = make([][]int32, len(s.assignment))
		for p, rs := range s.assignment {
			if p < 0 || int(p) >= len(assign) {
				return nil, newAPIError(kerr.InvalidReplicaAssignment, "partitions must be numbered 0..%d", len(assign)-1)
			}
			if len(rs) == 0 {
				return nil, newAPIError(kerr.InvalidReplicaAssignment, "partition %d has no replicas", p)
			}
			seen := map[int32]bool{}
			for _, r := range rs {
				if _, ok := img.Brokers[r]; !ok || seen[r] {
					return nil, newAPIError(kerr.InvalidReplicaAssignment, "partition %d: broker %d is unknown or repeated", p, r)
				}
				seen[r] = true
			}
			assign[p] = append([]int32(nil), rs...)
		}
	} else {
		n, rf := s.partitions, s.rf
		if n == -1 {
			n = b.cfg.NumPartitions
		}
		if rf == -1 {
			rf = b.cfg.DefaultReplicationFactor
		}
		if n <= 0 {
			return nil, newAPIError(kerr.InvalidPartitions, "partition count must be at least 1, got %d", n)
		}
		if rf <= 0 {
			return nil, newAPIError(kerr.InvalidReplicationFactor, "replication factor must be at least 1, got %d", rf)
		}
		if int(rf) > len(brokers) {
			return nil, newAPIError(kerr.InvalidReplicationFactor, "replication factor %d is larger than the %d available brokers", rf, len(brokers))
		}
		assign = controller.Place(brokers, s.name, 0, n, int(rf))
	}
	return &metadata.Topic{Name: s.name, ID: metadata.NewUUID(), Partitions: controller.Partitions(assign), Configs: s.configs}, nil
}

// createTopic plans and, unless validateOnly, creates a topic: here on
// the active controller, else by asking it (a topic created automatically
// or __consumer_offsets), waiting until this node applied the creation.
func (b *Broker) createTopic(ctx context.Context, s topicSpec, validateOnly bool) (*metadata.Topic, error) {
	if !b.meta.IsLeader() {
		return b.createTopicAtController(ctx, s, validateOnly)
	}
	t, err := b.planTopic(s)
	if err != nil || validateOnly {
		return t, err
	}
	if err := b.propose(ctx, metadata.Record{CreateTopic: t}); err != nil {
		return nil, err
	}
	b.log.Info("created topic", "topic", t.Name, "partitions", len(t.Partitions), "replication_factor", len(t.Partitions[0].Replicas), "configs", t.Configs)
	return b.meta.Image().Topic(t.Name), nil
}

// autoCreate creates a topic with the broker defaults if
// auto.create.topics.enable allows it. It returns the topic (nil if it
// does not exist and was not created) and the error code for the client.
func (b *Broker) autoCreate(ctx context.Context, name string, allowed bool) (*metadata.Topic, error) {
	if t := b.meta.Image().Topic(name); t != nil {
		return t, nil
	}
	if err := checkTopicName(name); err != nil {
		return nil, newAPIError(kerr.InvalidTopicException, "%v", err)
	}
	if !allowed || !b.cfg.AutoCreateTopics {
		return nil, newAPIError(kerr.UnknownTopicOrPartition, "topic %q does not exist", name)
	}
	t, err := b.createTopic(ctx, topicSpec{name: name, partitions: -1, rf: -1}, false)
	// Another request created it meanwhile: that is what was wanted.
	var ae *apiError
	if errors.Is(err, metadata.ErrTopicExists) || errors.As(err, &ae) && ae.err == kerr.TopicAlreadyExists {
		if t := b.meta.Image().Topic(name); t != nil {
			return t, nil
		}
	}
	return t, err
}

func (b *Broker) createTopicAtController(ctx context.Context, s topicSpec, validateOnly bool) (*metadata.Topic, error) {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.ValidateOnly = validateOnly
	req.TimeoutMillis = int32(b.cfg.requestTimeout() / time.Millisecond)
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = s.name, s.partitions, s.rf
	for p, rs := range s.assignment {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = p, rs
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	for k, v := range s.configs {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = k, &v
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	kresp, err := b.toController(ctx, req)
	if err != nil {
		return nil, err
	}
	resp := kresp.(*kmsg.CreateTopicsResponse)
	if len(resp.Topics) != 1 {
		return nil, newAPIError(kerr.UnknownServerError, "the controller answered %d topics for one", len(resp.Topics))
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		msg := err.Error()
		if m := resp.Topics[0].ErrorMessage; m != nil {
			msg = *m
		}
		return nil, &apiError{err: err.(*kerr.Error), msg: msg}
	}
	if validateOnly {
		return &metadata.Topic{Name: s.name, ID: metadata.UUID(resp.Topics[0].TopicID)}, nil
	}
	for {
		changed := b.meta.Changed()
		if t := b.meta.Image().Topic(s.name); t != nil {
			return t, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, newAPIError(kerr.RequestTimedOut, "topic %q was created but this node has not seen it yet", s.name)
		}
	}
}
