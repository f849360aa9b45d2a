package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/group"
	"logpipe/brokerd/wire"
)

// OffsetCommit v0–v8. Commits naming a member and generation (v1+) must
// come from the current generation; anonymous ones (generation -1, no
// member, and every v0 commit) only while the group has no members. The
// answer comes once the offsets are appended to __consumer_offsets.
// Retention times of v2–v4 are honoured per offset. It needs READ on the
// group (GROUP_AUTHORIZATION_FAILED for every partition) and READ on each
// topic (TOPIC_AUTHORIZATION_FAILED for its partitions).
func init() { register(8, 0, 8, handleOffsetCommit) }

func handleOffsetCommit(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.OffsetCommitRequest)
	if !b.allowed(ctx, c, opRead, resGroup, req.Group) {
		resp := group.CommitError(req, kerr.GroupAuthorizationFailed.Code)
		b.countError("OffsetCommit", kerr.GroupAuthorizationFailed.Code)
		return resp, nil
	}
	allowed, denied := *req, *req
	allowed.Topics, denied.Topics = nil, nil
	for _, rt := range req.Topics {
		if b.allowed(ctx, c, opRead, resTopic, rt.Topic) {
			allowed.Topics = append(allowed.Topics, rt)
		} else {
			denied.Topics = append(denied.Topics, rt)
		}
	}
	resp := group.CommitError(&allowed, 0)
	if len(allowed.Topics) > 0 {
		var err error
		if resp, err = b.groups.coord.Commit(ctx, &allowed); err != nil {
			return nil, err
		}
	}
	resp.Topics = append(resp.Topics, group.CommitError(&denied, kerr.TopicAuthorizationFailed.Code).Topics...)
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			b.countError("OffsetCommit", p.ErrorCode)
		}
	}
	return resp, nil
}
