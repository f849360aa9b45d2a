package broker

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
)

// DescribeUserScramCredentials v0 (KIP-554): the mechanisms and iteration
// counts of the users' SCRAM credentials (all users when none is named),
// never the keys. It needs DESCRIBE on the cluster
// (CLUSTER_AUTHORIZATION_FAILED for the whole request, as Kafka).
func init() { register(50, 0, 0, handleDescribeUserSCRAMCredentials) }

func handleDescribeUserSCRAMCredentials(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	if !b.allowedCluster(ctx, c, opDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		b.countError("DescribeUserScramCredentials", resp.ErrorCode)
		return resp, nil
	}
	img := b.meta.Image()
	users := img.SCRAMUsers()
	named := req.Users != nil
	if named {
		users = nil
		for _, u := range req.Users {
			users = append(users, u.Name)
		}
	}
	for i, user := range users {
		r := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		r.User = user
		creds, ok := img.SCRAM[user]
		switch {
		case named && slices.Contains(users[:i], user):
			r.ErrorCode = kerr.DuplicateResource.Code
			msg := "the user is named more than once"
			r.ErrorMessage = &msg
		case !ok:
			r.ErrorCode = kerr.ResourceNotFound.Code
			msg := "the user has no SCRAM credential"
			r.ErrorMessage = &msg
		default:
			for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512"} {
				if c, ok := creds[mech]; ok {
					info := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
					info.Mechanism, info.Iterations = scramCode(mech), c.Iterations
					r.CredentialInfos = append(r.CredentialInfos, info)
				}
			}
		}
		b.countError("DescribeUserScramCredentials", r.ErrorCode)
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}
