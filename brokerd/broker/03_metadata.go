package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/metadata"
	"logpipe/brokerd/wire"
)

// Metadata v0–v12. Topics may be named or (v10+) given by id; a null list
// (v1+) or an empty one (v0) means every topic. Unknown topics are created
// when auto.create.topics.enable and the request (v4+) allow it. Topics
// the sender may not DESCRIBE are left out of "every topic" and answer
// TOPIC_AUTHORIZATION_FAILED when named, before their existence is
// checked; creating one needs CREATE on the cluster or on the topic.
func init() { register(3, 0, 12, handleMetadata) }

func handleMetadata(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	allowCreate := req.Version < 4 || req.AllowAutoTopicCreation

	img := b.meta.Image()
	for _, id := range img.LiveBrokerIDs() {
		br := img.Brokers[id]
		host, port, ok := endpoint(c, br)
		if !ok {
			continue // not reachable on this client's listener
		}
		mb := kmsg.NewMetadataResponseBroker()
		mb.NodeID, mb.Host, mb.Port = br.ID, host, port
		if br.Rack != "" {
			rack := br.Rack
			mb.Rack = &rack
		}
		resp.Brokers = append(resp.Brokers, mb)
	}
	cluster := img.ClusterID
	resp.ClusterID = &cluster
	resp.ControllerID = b.meta.Leader()

	var topics []*metadata.Topic
	all := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	if all {
		for _, name := range img.TopicNames() {
			if b.allowed(ctx, c, opDescribe, resTopic, name) {
				topics = append(topics, img.Topic(name))
			}
		}
	}
	denied := newAPIError(kerr.TopicAuthorizationFailed, "describing a topic needs DESCRIBE on it")
	for _, rt := range req.Topics {
		if all {
			break
		}
		var t *metadata.Topic
		var err error
		switch {
		case rt.Topic != nil && !b.allowed(ctx, c, opDescribe, resTopic, *rt.Topic):
			err = denied
		case rt.Topic != nil && allowCreate && b.cfg.AutoCreateTopics && b.meta.Image().Topic(*rt.Topic) == nil &&
			!b.allowedCluster(ctx, c, opCreate) && !b.allowed(ctx, c, opCreate, resTopic, *rt.Topic):
			err = newAPIError(kerr.TopicAuthorizationFailed, "creating a topic needs CREATE on the cluster or on the topic")
		case rt.Topic != nil:
			t, err = b.autoCreate(ctx, *rt.Topic, allowCreate)
		case rt.TopicID != [16]byte{}:
			if t = b.meta.Image().TopicByID(metadata.UUID(rt.TopicID)); t == nil {
				err = newAPIError(kerr.UnknownTopicID, "no topic with this id")
			} else if !b.allowed(ctx, c, opDescribe, resTopic, t.Name) {
				t, err = nil, denied
			}
		default:
			err = newAPIError(kerr.InvalidRequest, "topic has neither name nor id")
		}
		if err != nil {
			mt := kmsg.NewMetadataResponseTopic()
			mt.Topic = rt.Topic
			mt.TopicID = rt.TopicID
			mt.ErrorCode, _ = codeOf(err)
			b.countError("Metadata", mt.ErrorCode)
			resp.Topics = append(resp.Topics, mt)
			continue
		}
		topics = append(topics, t)
	}
	for _, t := range topics {
		mt := metadataTopic(t)
		if req.IncludeTopicAuthorizedOperations {
			mt.AuthorizedOperations = b.operations(ctx, c, resTopic, t.Name)
		}
		resp.Topics = append(resp.Topics, mt)
	}
	if req.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = b.clusterOperations(ctx, c)
	}
	return resp, nil
}

// metadataTopic is a topic as Metadata answers it. The replica and ISR
// lists are the image's own, not copies: an image is never modified and
// the response is only encoded, so a Metadata for every topic allocates
// per topic, not per partition.
func metadataTopic(t *metadata.Topic) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	mt.Topic = &t.Name
	mt.TopicID = t.ID
	mt.IsInternal = isInternal(t.Name)
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, len(t.Partitions))
	for i, p := range t.Partitions {
		mp := &mt.Partitions[i]
		mp.Default()
		mp.Partition = int32(i)
		mp.Leader = p.Leader
		mp.LeaderEpoch = p.LeaderEpoch
		mp.Replicas = p.Replicas
		mp.ISR = p.ISR
		if p.Leader < 0 {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
	}
	return mt
}
