package brokerd_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/e2e/checker"
	"logpipe/internal/await"
)

// TestReassignmentUnderLoad moves a partition from node 1 alone to nodes
// 2 and 3 while a producer writes to it (AlterPartitionReassignments, as
// kafka-reassign-partitions.sh sends it): while node 3 is paused the move
// is listed in progress with the adding and removing replicas; once it
// caught up, the partition lives on [2 3] alone, node 1's copy is
// deleted, and every acknowledged record is there in order. A second move
// is cancelled and goes back to where it was.
func TestReassignmentUnderLoad(t *testing.T) {
	c := newCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c.waitMeta(ctx, 0, "three brokers", func(m kadm.Metadata) bool { return len(m.Brokers) == 3 })
	c.createAssigned(ctx, "moved", [][]int32{{1}, {1}}, nil)
	c.partitionState(ctx, "moved", 0, "led by 1", func(p kadm.PartitionDetail) bool { return p.Leader == 1 })

	// A producer writes to partition 0 all along.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addrs...), kgo.DefaultProduceTopic("moved"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var (
		mu    sync.Mutex
		acked []string
		stop  = make(chan struct{})
		done  = make(chan error, 1)
	)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			v := fmt.Sprintf("r%06d", i)
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
				done <- fmt.Errorf("producing %s: %w", v, err)
				return
			}
			mu.Lock()
			acked = append(acked, v)
			mu.Unlock()
		}
	}()
	ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	await.Eventually(t, "records acknowledged before the move", func() error {
		if n := ackedCount(); n < 200 {
			return await.NotYet(fmt.Sprint(n), "200")
		}
		return nil
	})

	signal(t, c.nodes[2], syscall.SIGSTOP)
	// Node 3 may have been the active controller: wait until node 1 names
	// another, then ask through a client that learns the controller from
	// node 1. (A client that cached node 3 as controller would keep
	// sending to it: the paused node accepts connections but never
	// answers, and franz-go forgets a controller only on NOT_CONTROLLER
	// or failed dials.)
	c.waitMeta(ctx, 0, "a controller other than the paused node 3", func(m kadm.Metadata) bool {
		return m.Controller > 0 && m.Controller != 3
	})
	adm := c.admin(0)
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("moved", 0, []int32{2, 3})
	req.Assign("moved", 1, []int32{1, 3})
	if rs, err := adm.AlterPartitionAssignments(ctx, req); err != nil || rs.Error() != nil {
		t.Fatalf("reassigning: %v %v", err, rs.Error())
	}
	listed, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"moved": {0: {}, 1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	p0, p1 := listed["moved"][0], listed["moved"][1]
	if !slices.Equal(p0.Replicas, []int32{2, 3, 1}) || !slices.Equal(p0.AddingReplicas, []int32{2, 3}) || !slices.Equal(p0.RemovingReplicas, []int32{1}) {
		t.Errorf("moved-0 in progress: %+v; want replicas [2 3 1], adding [2 3], removing [1]", p0)
	}
	if !slices.Equal(p1.Replicas, []int32{1, 3}) || !slices.Equal(p1.AddingReplicas, []int32{3}) || len(p1.RemovingReplicas) != 0 {
		t.Errorf("moved-1 in progress: %+v; want replicas [1 3], adding [3]", p1)
	}
	described, err := exec.CommandContext(ctx, brokerdBin, "topics", "--describe", "--topic", "moved", "--bootstrap-server", c.addrs[0]).CombinedOutput()
	// Node 2 may have caught up and joined the ISR already; node 3, stopped,
	// has not.
	if err != nil || !regexp.MustCompile(`Partition: 0\s+Leader: 1\s+Replicas: 2,3,1\s+Isr: 1(,2)?\s+Adding Replicas: 2,3\s+Removing Replicas: 1`).Match(described) {
		t.Errorf("brokerd topics --describe during the move (%v):\n%s", err, described)
	}
	var undo kadm.AlterPartitionAssignmentsReq
	undo.CancelAssign("moved", 1)
	if rs, err := adm.AlterPartitionAssignments(ctx, undo); err != nil || rs.Error() != nil {
		t.Fatalf("cancelling: %v %v", err, rs.Error())
	}
	signal(t, c.nodes[2], syscall.SIGCONT)

	p := c.partitionState(ctx, "moved", 0, "the move done", func(p kadm.PartitionDetail) bool {
		return slices.Equal(p.Replicas, []int32{2, 3}) && len(p.ISR) == 2 && p.Leader >= 2
	})
	c.partitionState(ctx, "moved", 1, "the cancelled move back on [1]", func(p kadm.PartitionDetail) bool {
		return slices.Equal(p.Replicas, []int32{1}) && p.Leader == 1
	})
	if listed, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"moved": {0: {}, 1: {}}}); err != nil || len(listed["moved"]) != 0 {
		t.Errorf("reassignments after the move: %+v (%v), want none", listed, err)
	}
	before := ackedCount()
	err = await.Poll(ctx, 50*time.Millisecond, func(context.Context) error {
		select {
		case err := <-done:
			return await.Stop(fmt.Errorf("the producer stopped: %v", err))
		default:
		}
		if n := ackedCount(); n < before+200 {
			return await.NotYet(fmt.Sprint(n), fmt.Sprint(before+200))
		}
		return nil
	})
	if err != nil {
		for i, n := range c.nodes {
			t.Logf("node %d:\n%s", i+1, n.proc.Tail(3000))
		}
		t.Fatalf("records acknowledged by the new leader (%+v): %v", p, err)
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	await.Eventually(t, "node 1's copy of moved-0 deleted", func() error {
		if _, err := os.Stat(filepath.Join(c.dirs[0], "moved-0")); !os.IsNotExist(err) {
			return await.NotYet(fmt.Sprintf("stat: %v", err), "no such folder")
		}
		return nil
	})
	mu.Lock()
	want := slices.Clone(acked)
	mu.Unlock()
	// The acknowledged records are compared with what was read below; the
	// history only serves the read.
	got := readChecked(ctx, t, checker.New(), c.addrs[1:], "moved", len(want))
	if !slices.Equal(got[:len(want)], want) {
		t.Fatalf("moved-0 after the move led by %d: %d records, want the %d acknowledged in order", p.Leader, len(got), len(want))
	}
}
