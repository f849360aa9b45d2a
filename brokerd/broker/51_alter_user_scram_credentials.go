package broker

import (
	"context"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/metadata"
	"logpipe/brokerd/wire"
	"logpipe/pipeline/scram"
)

// AlterUserScramCredentials v0 (KIP-554), forwarded to the controller:
// adds, replaces and deletes users' SCRAM credentials. The client sends
// the salted password (never the password); the controller keeps the
// salt, the iterations, StoredKey and ServerKey derived from it, in the
// replicated metadata. As in Kafka, a request changes a user's
// credentials once at most: a user named twice gets DUPLICATE_RESOURCE.
// It needs ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED for every
// user).
func init() { register(51, 0, 0, handleAlterUserSCRAMCredentials) }

// scramMechanisms are the mechanisms by their code in the SCRAM APIs.
var scramMechanisms = map[int8]scram.Mechanism{1: scram.SHA256, 2: scram.SHA512}

func scramCode(name string) int8 {
	for code, m := range scramMechanisms {
		if m.Name == name {
			return code
		}
	}
	return 0
}

func handleAlterUserSCRAMCredentials(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.AlterUserSCRAMCredentialsRequest)
	resp := req.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
	if !b.allowedCluster(ctx, c, opAlter) {
		users := map[string]bool{}
		for _, d := range req.Deletions {
			users[d.Name] = true
		}
		for _, u := range req.Upsertions {
			users[u.Name] = true
		}
		for _, user := range slices.Sorted(maps.Keys(users)) {
			r := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
			r.User, r.ErrorCode = user, kerr.ClusterAuthorizationFailed.Code
			resp.Results = append(resp.Results, r)
			b.countError("AlterUserScramCredentials", r.ErrorCode)
		}
		return resp, nil
	}
	var order []string
	failed := map[string]*apiError{}
	recs := map[string][]metadata.Record{}
	fail := func(user string, err *kerr.Error, msg string) {
		if failed[user] == nil {
			failed[user] = &apiError{err: err, msg: msg}
		}
	}
	// check validates what every change names and returns its credential
	// key; ok is false when the change was refused.
	check := func(user string, code int8) (metadata.SCRAMUser, scram.Mechanism, bool) {
		m, known := scramMechanisms[code]
		key := metadata.SCRAMUser{User: user, Mechanism: m.Name}
		switch {
		case slices.Contains(order, user):
			fail(user, kerr.DuplicateResource, "a user's credentials may be changed once per request")
		case user == "":
			fail(user, kerr.UnacceptableCredential, "the user name must not be empty")
		case !known:
			fail(user, kerr.UnsupportedSaslMechanism, "unknown SCRAM mechanism")
		}
		if !slices.Contains(order, user) {
			order = append(order, user)
		}
		return key, m, failed[user] == nil
	}
	img := b.meta.Image()
	for _, d := range req.Deletions {
		key, _, ok := check(d.Name, d.Mechanism)
		if !ok {
			continue
		}
		if _, exists := img.SCRAM[key.User][key.Mechanism]; !exists {
			fail(d.Name, kerr.ResourceNotFound, "the user has no credential for "+key.Mechanism)
			continue
		}
		recs[d.Name] = append(recs[d.Name], metadata.Record{DeleteSCRAM: &key})
	}
	for _, u := range req.Upsertions {
		key, m, ok := check(u.Name, u.Mechanism)
		if !ok {
			continue
		}
		switch {
		case u.Iterations < scram.MinIterations || u.Iterations > scram.MaxIterations:
			fail(u.Name, kerr.UnacceptableCredential, "iterations must be between 4096 and 16384")
			continue
		case len(u.Salt) == 0 || len(u.SaltedPassword) == 0:
			fail(u.Name, kerr.UnacceptableCredential, "the salt and the salted password must not be empty")
			continue
		}
		cred := metadata.SCRAMCredential{SCRAMUser: key, Salt: u.Salt, Iterations: u.Iterations,
			StoredKey: scram.StoredKey(m.Hash, scram.ClientKey(m.Hash, u.SaltedPassword)), ServerKey: scram.ServerKey(m.Hash, u.SaltedPassword)}
		recs[u.Name] = append(recs[u.Name], metadata.Record{SetSCRAM: &cred})
	}
	for _, user := range order {
		r := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
		r.User = user
		var err error
		if f := failed[user]; f != nil {
			err = f
		} else {
			err = b.propose(ctx, recs[user]...)
		}
		r.ErrorCode, r.ErrorMessage = codeOf(err)
		b.countError("AlterUserScramCredentials", r.ErrorCode)
		resp.Results = append(resp.Results, r)
	}
	return resp, nil
}
