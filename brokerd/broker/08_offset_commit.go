package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
)

// OffsetCommit v0–v8. Commits naming a member and generation (v1+) must
// come from the current generation; anonymous ones (generation -1, no
// member, and every v0 commit) only while the group has no members. The
// answer comes once the offsets are appended to __consumer_offsets.
// Retention times of v2–v4 are honoured per offset.
func init() { register(8, 0, 8, handleOffsetCommit) }

func handleOffsetCommit(b *Broker, ctx context.Context, _ *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	resp, err := b.groups.coord.Commit(ctx, kreq.(*kmsg.OffsetCommitRequest))
	if err != nil {
		return nil, err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			b.countError("OffsetCommit", p.ErrorCode)
		}
	}
	return resp, nil
}
