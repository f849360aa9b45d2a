package group

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/storage"
)

// storageLog is a real partition log serving as __consumer_offsets-0.
type storageLog struct{ l *storage.Log }

func (s storageLog) Append(batch []byte) error {
	_, _, err := s.l.AppendAsLeader(batch, 0, time.Now())
	if err != nil {
		return fmt.Errorf("%w: %v", kerr.ErrorForCode(storage.ErrorCode(err)), err)
	}
	return nil
}

func (s storageLog) Read(offset int64, maxBytes int) ([]byte, error) {
	rr, err := s.l.Read(offset, maxBytes)
	if err != nil {
		return nil, err
	}
	defer rr.Close()
	return rr.Bytes()
}

func (s storageLog) StartOffset() int64 { return s.l.LogStartOffset() }

func openOffsetsLog(t *testing.T, dir string) *storage.Log {
	t.Helper()
	l, err := storage.Open(filepath.Join(dir, "__consumer_offsets-0"), storage.Config{CleanupPolicy: storage.PolicyCompact})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func newTestCoordinator(t *testing.T, l *storage.Log) *Coordinator {
	cfg := DefaultConfig()
	cfg.InitialRebalanceDelay = 0
	c := NewCoordinator(CoordinatorConfig{
		Group:      cfg,
		Partitions: func() int32 { return 1 },
		Open: func(p int32) PartitionLog {
			if p != 0 {
				return nil
			}
			return storageLog{l}
		},
	})
	t.Cleanup(c.Close)
	return c
}

func joinReq(group, member string) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = 9
	r.Group, r.MemberID = group, member
	r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = 30000, 60000
	r.ProtocolType = "consumer"
	r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: subscription("t")}}
	return r
}

// joinAs joins a new member and waits for the first generation.
func joinAs(t *testing.T, c *Coordinator, group string) (string, int32) {
	t.Helper()
	ctx := context.Background()
	r, err := c.Join(ctx, joinReq(group, ""), "cl", "/127.0.0.1")
	if err != nil || r.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("%v %+v", err, r)
	}
	r, err = c.Join(ctx, joinReq(group, r.MemberID), "cl", "/127.0.0.1")
	if err != nil || r.ErrorCode != 0 {
		t.Fatalf("%v %+v", err, r)
	}
	s := kmsg.NewPtrSyncGroupRequest()
	s.Group, s.MemberID, s.Generation = group, r.MemberID, r.Generation
	s.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: r.MemberID, MemberAssignment: []byte("all")}}
	if sr, err := c.Sync(ctx, s); err != nil || sr.ErrorCode != 0 {
		t.Fatalf("%v %+v", err, sr)
	}
	return r.MemberID, r.Generation
}

func TestCoordinatorPersistsAndReloads(t *testing.T) {
	dir := t.TempDir()
	l := openOffsetsLog(t, dir)
	c := newTestCoordinator(t, l)
	ctx := context.Background()

	// Several groups commit at once, from many goroutines.
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := 0; g < 4; g++ {
		group := fmt.Sprintf("g%d", g)
		member, gen := joinAs(t, c, group)
		for w := 0; w < 3; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 20; i++ {
					req := kmsg.NewPtrOffsetCommitRequest()
					req.Version = 8
					req.Group, req.MemberID, req.Generation = group, member, gen
					req.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "t", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: int32(w), Offset: int64(i + 1), LeaderEpoch: -1}}}}
					resp, err := c.Commit(ctx, req)
					if err == nil && resp.Topics[0].Partitions[0].ErrorCode != 0 {
						err = kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ls, err := c.List(ctx)
	if err != nil || len(ls) != 4 || ls[0].State != Stable {
		t.Fatalf("%v %+v", err, ls)
	}

	// A member waiting in JoinGroup is answered when the coordinator
	// goes away.
	member0 := ""
	if d, _ := c.Describe(ctx, "g0"); len(d.Members) == 1 {
		member0 = d.Members[0].MemberID
	}
	waiting := make(chan *kmsg.JoinGroupResponse, 1)
	go func() {
		r, _ := c.Join(ctx, joinReq("g0", ""), "cl", "/127.0.0.1")
		r, err := c.Join(ctx, joinReq("g0", r.MemberID), "cl", "/127.0.0.1")
		if err != nil {
			r = nil
		}
		waiting <- r
	}()
	// The join waits for member0, which learns of the rebalance by
	// heartbeat.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatal("the second join never started a rebalance")
		}
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Group, hb.MemberID, hb.Generation = "g0", member0, 1
		r, err := c.Heartbeat(ctx, hb)
		if err != nil {
			t.Fatal(err)
		}
		if r.ErrorCode == kerr.RebalanceInProgress.Code {
			break
		}
	}
	c.Close()
	if r := <-waiting; r == nil || r.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("waiting join got %+v", r)
	}
	if r, err := c.Heartbeat(ctx, kmsg.NewPtrHeartbeatRequest()); err != nil || r.ErrorCode != kerr.InvalidGroupID.Code {
		t.Fatalf("%v %+v", err, r)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	// A new coordinator on the same log finds every group and offset.
	l2 := openOffsetsLog(t, dir)
	defer l2.Close()
	c2 := newTestCoordinator(t, l2)
	if err := c2.LoadAll(ctx, []int32{0}); err != nil {
		t.Fatal(err)
	}
	for g := 0; g < 4; g++ {
		out, code, err := c2.FetchOffsets(ctx, fmt.Sprintf("g%d", g), nil)
		if err != nil || code != 0 || len(out) != 1 || len(out[0].Partitions) != 3 {
			t.Fatalf("%v %d %+v", err, code, out)
		}
		for _, p := range out[0].Partitions {
			if p.Offset != 20 {
				t.Fatalf("g%d partition %d at %d", g, p.Partition, p.Offset)
			}
		}
	}
	d, err := c2.Describe(ctx, "g0")
	if err != nil || d.State != "Stable" || len(d.Members) != 1 || d.Members[0].MemberID != member0 {
		t.Fatalf("%v %+v", err, d)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "g0", member0, 1
	if r, err := c2.Heartbeat(ctx, hb); err != nil || r.ErrorCode != 0 {
		t.Fatalf("%v %+v", err, r)
	}
	if d, _ := c2.Describe(ctx, "nope"); d.State != "Dead" {
		t.Fatalf("%+v", d)
	}
	if code, err := c2.Delete(ctx, "nope"); err != nil || code != kerr.GroupIDNotFound.Code {
		t.Fatal(code, err)
	}
}

func TestCoordinatorNotCoordinator(t *testing.T) {
	c := NewCoordinator(CoordinatorConfig{
		Group:      DefaultConfig(),
		Partitions: func() int32 { return 3 },
		Open:       func(int32) PartitionLog { return nil },
	})
	defer c.Close()
	ctx := context.Background()
	r, err := c.Join(ctx, joinReq("g", ""), "cl", "")
	if err != nil || r.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("%v %+v", err, r)
	}
	if _, code, _ := c.FetchOffsets(ctx, "g", nil); code != kerr.NotCoordinator.Code {
		t.Fatal(code)
	}
	if err := c.Load(ctx, 1); !errors.Is(err, kerr.NotCoordinator) {
		t.Fatal(err)
	}
}

// TestRequestCostDoesNotGrowWithGroups: with 200 stable groups in one
// shard, heartbeats of one group look at that group's deadlines, not at
// every group's (an operation count, not a time); and a member that stops
// heartbeating among them still has its session expire when due.
func TestRequestCostDoesNotGrowWithGroups(t *testing.T) {
	l := openOffsetsLog(t, t.TempDir())
	c := newTestCoordinator(t, l)
	c.cfg.Group.MinSessionTimeout = 100 * time.Millisecond
	ctx := context.Background()
	const groups = 200
	members := make([]string, groups)
	gens := make([]int32, groups)
	for i := range groups {
		members[i], gens[i] = joinAs(t, c, fmt.Sprintf("g%03d", i))
	}
	short := joinReq("short", "")
	short.SessionTimeoutMillis = 300
	r, err := c.Join(ctx, short, "cl", "/127.0.0.1")
	if err != nil || r.ErrorCode != kerr.MemberIDRequired.Code {
		t.Fatalf("%v %+v", err, r)
	}
	short.MemberID = r.MemberID
	if r, err = c.Join(ctx, short, "cl", "/127.0.0.1"); err != nil || r.ErrorCode != 0 {
		t.Fatalf("%v %+v", err, r)
	}
	before := deadlineChecks.Load()
	const ops = 50
	for i := range ops {
		hb := kmsg.NewPtrHeartbeatRequest()
		hb.Group, hb.MemberID, hb.Generation = "g007", members[7], gens[7]
		if r, err := c.Heartbeat(ctx, hb); err != nil || r.ErrorCode != 0 {
			t.Fatalf("heartbeat %d: %v %+v", i, err, r)
		}
	}
	if got := deadlineChecks.Load() - before; got > 3*ops {
		t.Errorf("%d heartbeats of one group among %d computed %d group deadlines, want at most %d", ops, groups, got, 3*ops)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		d, err := c.Describe(ctx, "short")
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Members) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the silent member of short is still there: %+v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d, _ := c.Describe(ctx, "g007"); d.State != Stable.String() || len(d.Members) != 1 {
		t.Errorf("g007 after short's member expired: %+v, want Stable with its member", d)
	}
}
