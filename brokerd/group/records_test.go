package group

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/recordbatch"
)

// storedBatches lays the records written so far out as a log would hold
// them: batches with offsets assigned.
func storedBatches(t *testing.T, recs []Record, now time.Time) []byte {
	var log []byte
	var next int64
	for i := 0; i < len(recs); i += 3 {
		end := min(i+3, len(recs))
		b := BuildBatch(recs[i:end], now)
		if _, err := recordbatch.Verify(b); err != nil {
			t.Fatal(err)
		}
		recordbatch.SetBaseOffset(b, next)
		next += int64(end - i)
		log = append(log, b...)
	}
	return log
}

func TestLoadRestoresGroupsAndOffsets(t *testing.T) {
	e := newEnv(t, nil)
	ids, gen := e.stable(2, withSubscription("t1"))
	e.commit("c", ids[0], gen, map[TopicPartition]int64{{"t1", 0}: 10, {"t1", 1}: 20})
	e.commit("c2", ids[1], gen, map[TopicPartition]int64{{"t1", 1}: 21})

	// A second group that only stores offsets, and a deleted third one.
	other := New("simple", &e.cfg, &e.out)
	other.Commit(e.now, "c3", &kmsg.OffsetCommitRequest{Group: "simple", Generation: -1, Topics: []kmsg.OffsetCommitRequestTopic{{Topic: "t1", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 3, LeaderEpoch: -1}}}}})
	e.settle()
	e.take("c3")
	gone := New("gone", &e.cfg, &e.out)
	gone.Commit(e.now, "c4", &kmsg.OffsetCommitRequest{Group: "gone", Generation: -1, Topics: []kmsg.OffsetCommitRequestTopic{{Topic: "t1", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 3}}}}})
	e.settle()
	gone.Delete()
	e.settle()

	l := NewLoader()
	next, err := l.AddBatches(storedBatches(t, e.stored, e.now))
	if err != nil {
		t.Fatal(err)
	}
	if next != int64(len(e.stored)) {
		t.Fatalf("next offset %d, want %d", next, len(e.stored))
	}
	later := e.now.Add(time.Minute)
	var out Outbox
	gs := l.Groups(later, &e.cfg, &out)
	if len(gs) != 2 || gs["gone"] != nil {
		t.Fatalf("groups %v", gs)
	}
	g := gs["g"]
	if g.State() != Stable || g.Generation() != gen || g.Leader() != ids[0] || g.Protocol() != "range" || len(g.MemberIDs()) != 2 {
		t.Fatalf("restored %v gen %d leader %s members %v", g.State(), g.Generation(), g.Leader(), g.MemberIDs())
	}
	if o, _ := g.CommittedOffset(TopicPartition{"t1", 1}); o.Offset != 21 || o.LeaderEpoch != -1 {
		t.Fatalf("offset %+v", o)
	}
	// Members carry on: heartbeats of the restored generation succeed,
	// and the assignment is still there.
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "g", ids[1], gen
	if r := g.Heartbeat(later, hb); r.ErrorCode != 0 {
		t.Fatalf("heartbeat after load: %d", r.ErrorCode)
	}
	sr := kmsg.NewPtrSyncGroupRequest()
	sr.Group, sr.MemberID, sr.Generation = "g", ids[1], gen
	if r := g.Sync(later, "s", sr); r == nil || string(r.MemberAssignment) != "a-"+ids[1] {
		t.Fatalf("%+v", r)
	}
	// A member that never comes back expires a session later.
	hb.Generation = gen
	if r := g.Heartbeat(later.Add(6*time.Second), hb); r.ErrorCode != 0 {
		t.Fatalf("heartbeat: %d", r.ErrorCode)
	}
	g.Tick(later.Add(11 * time.Second))
	if g.State() != PreparingRebalance {
		t.Fatalf("state %v", g.State())
	}
	if s := gs["simple"]; s.State() != Empty || s.ProtocolType() != "" {
		t.Fatalf("simple group %v %q", s.State(), s.ProtocolType())
	}
}

func TestLoaderSkipsUnknownKeys(t *testing.T) {
	l := NewLoader()
	if err := l.AddRecord([]byte{0, 9, 1, 2}, []byte{1}); err != nil {
		t.Fatal(err)
	}
	if l.Skipped != 1 {
		t.Fatal("unknown key not skipped")
	}
	if err := l.AddRecord([]byte{0}, nil); err == nil {
		t.Fatal("short key accepted")
	}
	if err := l.AddRecord(offsetKey("g", TopicPartition{"t", 0}), []byte{0, 3, 1}); err == nil {
		t.Fatal("truncated value accepted")
	}
}
