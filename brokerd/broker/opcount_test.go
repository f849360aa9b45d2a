package broker_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/broker"
	"logpipe/brokerd/wire"
)

// opHandle runs one request through the broker's handler, as the wire
// server does for a connection, and fails on an error that would close
// the connection.
func opHandle(t testing.TB, b *broker.Broker, req kmsg.Request, v int16) kmsg.Response {
	t.Helper()
	req.SetVersion(v)
	resp, err := b.Handle(context.Background(), nil, wire.Header{APIKey: req.Key(), APIVersion: v}, req)
	if err != nil {
		t.Fatalf("%s v%d: %v", kmsg.NameForKey(req.Key()), v, err)
	}
	return resp
}

// opCreateTopics creates topics t<from>… t<to-1> with partitions each.
func opCreateTopics(t *testing.T, b *broker.Broker, from, to int, partitions int32) {
	t.Helper()
	for i := from; i < to; i++ {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = fmt.Sprintf("t%04d", i), partitions, 1
		req.Topics = append(req.Topics, rt)
		resp := opHandle(t, b, req, 5).(*kmsg.CreateTopicsResponse)
		if c := resp.Topics[0].ErrorCode; c != 0 {
			t.Fatalf("creating %s: got %v, want no error", rt.Topic, kerr.ErrorForCode(c))
		}
	}
}

// opCommitReq is an anonymous OffsetCommit of one partition of t0000.
func opCommitReq(group string, offset int64) *kmsg.OffsetCommitRequest {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation = group, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "t0000"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Offset = offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// opCreateGroups makes groups g<from>… g<to-1> exist by committing an
// offset for each.
func opCreateGroups(t *testing.T, b *broker.Broker, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		resp := opHandle(t, b, opCommitReq(fmt.Sprintf("g%04d", i), 1), 8).(*kmsg.OffsetCommitResponse)
		if c := resp.Topics[0].Partitions[0].ErrorCode; c != 0 {
			t.Fatalf("committing for g%04d: got %v, want no error", i, kerr.ErrorForCode(c))
		}
	}
}

// TestRequestAllocationsDoNotGrowWithWhatIsHeld: the allocations of
// Metadata for one topic, OffsetCommit and OffsetFetch of one partition,
// DescribeGroups of one group and FindCoordinator are the same with 10
// topics and groups held as with 250 (an allocation count, not a time);
// Metadata for every topic and ListGroups allocate a bounded amount per
// topic and per group, and Metadata nothing per partition.
func TestRequestAllocationsDoNotGrowWithWhatIsHeld(t *testing.T) {
	tb := startBroker(t, "", "", func(c *broker.Config) { c.OffsetsTopicPartitions = 4 })
	b := tb.b
	find := kmsg.NewPtrFindCoordinatorRequest()
	find.CoordinatorKey = "g0001"
	if r := opHandle(t, b, find, 3).(*kmsg.FindCoordinatorResponse); r.ErrorCode != 0 {
		t.Fatalf("FindCoordinator: got %v, want no error", kerr.ErrorForCode(r.ErrorCode))
	}
	const partitions = 4
	single := []struct {
		name string
		run  func()
	}{
		{"Metadata of one topic", func() {
			req := kmsg.NewPtrMetadataRequest()
			rt := kmsg.NewMetadataRequestTopic()
			name := "t0001"
			rt.Topic = &name
			req.Topics = append(req.Topics, rt)
			if r := opHandle(t, b, req, 12).(*kmsg.MetadataResponse); len(r.Topics) != 1 || len(r.Topics[0].Partitions) != partitions {
				t.Fatalf("Metadata of t0001: got %+v, want one topic of %d partitions", r.Topics, partitions)
			}
		}},
		{"OffsetCommit of one partition", func() {
			r := opHandle(t, b, opCommitReq("g0001", 2), 8).(*kmsg.OffsetCommitResponse)
			if c := r.Topics[0].Partitions[0].ErrorCode; c != 0 {
				t.Fatalf("OffsetCommit: got %v, want no error", kerr.ErrorForCode(c))
			}
		}},
		{"OffsetFetch of one partition", func() {
			req := kmsg.NewPtrOffsetFetchRequest()
			req.Group = "g0001"
			req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "t0000", Partitions: []int32{0}}}
			r := opHandle(t, b, req, 7).(*kmsg.OffsetFetchResponse)
			if r.ErrorCode != 0 || r.Topics[0].Partitions[0].Offset != 2 {
				t.Fatalf("OffsetFetch: got %+v, want offset 2", r)
			}
		}},
		{"DescribeGroups of one group", func() {
			req := kmsg.NewPtrDescribeGroupsRequest()
			req.Groups = []string{"g0001"}
			if r := opHandle(t, b, req, 5).(*kmsg.DescribeGroupsResponse); r.Groups[0].ErrorCode != 0 || r.Groups[0].State != "Empty" {
				t.Fatalf("DescribeGroups: got %+v, want g0001 Empty", r.Groups[0])
			}
		}},
		{"FindCoordinator", func() {
			if r := opHandle(t, b, find, 3).(*kmsg.FindCoordinatorResponse); r.ErrorCode != 0 {
				t.Fatalf("FindCoordinator: got %v, want no error", kerr.ErrorForCode(r.ErrorCode))
			}
		}},
	}
	held := 0
	metadataAll := func() float64 {
		return testing.AllocsPerRun(20, func() {
			r := opHandle(t, b, kmsg.NewPtrMetadataRequest(), 12).(*kmsg.MetadataResponse)
			if len(r.Topics) != held+1 { // and __consumer_offsets
				t.Fatalf("Metadata of every topic: got %d topics, want %d", len(r.Topics), held+1)
			}
		})
	}
	listGroups := func() float64 {
		return testing.AllocsPerRun(20, func() {
			if r := opHandle(t, b, kmsg.NewPtrListGroupsRequest(), 4).(*kmsg.ListGroupsResponse); len(r.Groups) != held {
				t.Fatalf("ListGroups: got %d groups, want %d", len(r.Groups), held)
			}
		})
	}
	grow := func(to int) {
		opCreateTopics(t, b, held, to, partitions)
		opCreateGroups(t, b, held, to)
		held = to
	}
	grow(10)
	small := make([]float64, len(single))
	for i, op := range single {
		op.run() // warm up: the first commit stores, the first fetch finds
		small[i] = testing.AllocsPerRun(50, op.run)
	}
	smallMeta, smallList := metadataAll(), listGroups()

	grow(250)
	for i, op := range single {
		// A few allocations of slack for what the broker's background
		// work (heartbeats to the controller) allocates meanwhile.
		got := testing.AllocsPerRun(50, op.run)
		t.Logf("%s: %.0f allocations with 10 topics and groups, %.0f with %d", op.name, small[i], got, held)
		if got > small[i]+4 {
			t.Errorf("%s allocates %.0f times with %d topics and groups held, want at most %.0f+4 as with 10", op.name, got, held, small[i])
		}
	}
	// Per topic: its entry and its partition list; growing the response's
	// topic list adds a few more in all.
	gotMeta, gotList := metadataAll(), listGroups()
	t.Logf("Metadata of every topic: %.0f allocations with 10 topics, %.0f with %d; ListGroups: %.0f with 10 groups, %.0f with %d", smallMeta, gotMeta, held, smallList, gotList, held)
	if got, want := gotMeta, smallMeta+2*float64(held-10)+30; got > want {
		t.Errorf("Metadata of every topic allocates %.0f times for %d topics of %d partitions, want at most %.0f (%.0f for 10 topics, and 2 per topic more)", got, held, partitions, want, smallMeta)
	}
	if got, want := gotList, smallList+2*float64(held-10)+30; got > want {
		t.Errorf("ListGroups allocates %.0f times for %d groups, want at most %.0f (%.0f for 10 groups, and 2 per group more)", got, held, want, smallList)
	}
}
