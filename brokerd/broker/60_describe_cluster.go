package broker

import (
	"context"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
)

// DescribeCluster v0–v1: the registered brokers, the cluster id and the
// controller. As on Kafka's brokers it needs no permission; the cluster's
// authorized operations, when asked for, are those of the sender (none
// without DESCRIBE on the cluster).
func init() { register(60, 0, 1, handleDescribeCluster) }

func handleDescribeCluster(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.DescribeClusterRequest)
	resp := req.ResponseKind().(*kmsg.DescribeClusterResponse)
	img := b.meta.Image()
	resp.ClusterID = img.ClusterID
	resp.ControllerID = b.meta.Leader()
	resp.EndpointType = 1 // brokers
	resp.ClusterAuthorizedOperations = math.MinInt32
	if req.IncludeClusterAuthorizedOperations {
		resp.ClusterAuthorizedOperations = b.clusterOperations(ctx, c)
	}
	for _, id := range img.LiveBrokerIDs() {
		br := img.Brokers[id]
		host, port, ok := endpoint(c, br)
		if !ok {
			continue
		}
		rb := kmsg.NewDescribeClusterResponseBroker()
		rb.NodeID, rb.Host, rb.Port = br.ID, host, port
		if br.Rack != "" {
			r := br.Rack
			rb.Rack = &r
		}
		resp.Brokers = append(resp.Brokers, rb)
	}
	return resp, nil
}
