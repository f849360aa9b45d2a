package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/metadata"
	"logpipe/brokerd/wire"
)

// DeleteTopics v0–v6 (v6 may name topics by id). Deleting removes the
// topic from the metadata and its partition folders from disk. Each topic
// needs DELETE (TOPIC_AUTHORIZATION_FAILED, checked before its existence;
// one named by id answers without its name unless the sender may
// DESCRIBE it).
func init() { register(20, 0, 6, handleDeleteTopics) }

func handleDeleteTopics(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if req.Version >= 6 {
		for _, t := range req.Topics {
			targets = append(targets, target{t.Topic, t.TopicID})
		}
	} else {
		for _, n := range req.TopicNames {
			n := n
			targets = append(targets, target{name: &n})
		}
	}
	for _, tg := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = tg.name, tg.id
		img := b.meta.Image()
		var t *metadata.Topic
		if tg.name != nil {
			t = img.Topic(*tg.name)
		} else {
			t = img.TopicByID(metadata.UUID(tg.id))
		}
		var err error
		denied := newAPIError(kerr.TopicAuthorizationFailed, "deleting a topic needs DELETE on it")
		switch {
		case tg.name != nil && !b.allowed(ctx, c, opDelete, resTopic, *tg.name):
			err = denied
		case tg.name == nil && t != nil && !b.allowed(ctx, c, opDelete, resTopic, t.Name):
			if b.allowed(ctx, c, opDescribe, resTopic, t.Name) {
				st.Topic = &t.Name
			}
			err = denied
		case !b.cfg.DeleteTopicEnable:
			err = newAPIError(kerr.TopicDeletionDisabled, "delete.topic.enable is false")
		case t == nil && tg.name == nil:
			err = newAPIError(kerr.UnknownTopicID, "no topic with this id")
		case t == nil:
			err = newAPIError(kerr.UnknownTopicOrPartition, "topic %q does not exist", *tg.name)
		default:
			name := t.Name
			st.Topic, st.TopicID = &name, t.ID
			err = b.propose(ctx, metadata.Record{DeleteTopic: &name})
			if err == nil {
				b.log.Info("deleted topic", "topic", name)
			}
		}
		if err != nil {
			st.ErrorCode, st.ErrorMessage = codeOf(err)
			b.countError("DeleteTopics", st.ErrorCode)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
