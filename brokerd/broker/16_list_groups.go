package broker

import (
	"context"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
)

// ListGroups v0–v4: the groups this broker coordinates, filtered by state
// (v4, names compared ignoring case) when a filter is given: all of them
// for a sender allowed DESCRIBE on the cluster, else those it may
// DESCRIBE.
func init() { register(16, 0, 4, handleListGroups) }

func handleListGroups(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	gs, err := b.groups.coord.List(ctx)
	if err != nil {
		return nil, err
	}
	everyGroup := b.allowedCluster(ctx, c, opDescribe)
	for _, g := range gs {
		if !everyGroup && !b.allowed(ctx, c, opDescribe, resGroup, g.Group) {
			continue
		}
		if len(req.StatesFilter) > 0 && !slices.ContainsFunc(req.StatesFilter, func(f string) bool { return strings.EqualFold(f, g.State.String()) }) {
			continue
		}
		lg := kmsg.NewListGroupsResponseGroup()
		lg.Group, lg.ProtocolType, lg.GroupState = g.Group, g.ProtocolType, g.State.String()
		resp.Groups = append(resp.Groups, lg)
	}
	return resp, nil
}
