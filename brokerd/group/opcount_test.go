package group

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestMemberRequestCostDoesNotGrowWithMembers: in a group of 300 members,
// a heartbeat or a commit of one member looks at a few deadlines to find
// the group's next one, not at every member's (an operation count, not a
// time); and a member that goes silent among them still expires when its
// session ends, while the others, heartbeating, stay.
func TestMemberRequestCostDoesNotGrowWithMembers(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxSize = 1000 })
	const n = 300
	ids, gen := e.stable(n)
	e.g.NextDeadline() // the shard does after every event
	before := deadlineChecks.Load()
	ops := 0
	for round := range 2 {
		for i, id := range ids[:n-1] {
			e.now = e.now.Add(10 * time.Millisecond)
			if round == 0 {
				wantCode(t, fmt.Sprintf("heartbeat of member %d", i), e.heartbeat(id, gen), nil)
			} else {
				r := e.commit(fmt.Sprintf("c%d", i), id, gen, map[TopicPartition]int64{{"t1", int32(i % 10)}: int64(i)})
				if c := codes(r); len(c) != 1 || c[0] != 0 {
					t.Fatalf("commit of member %d: got codes %v, want [0]", i, c)
				}
			}
			if _, ok := e.g.NextDeadline(); !ok {
				t.Fatalf("after request %d: got no next deadline, want the members' sessions", ops)
			}
			ops++
		}
	}
	if got := deadlineChecks.Load() - before; got > 3*int64(ops) {
		t.Errorf("%d requests of members of a %d-member group looked at %d deadlines, want at most %d (a few each)", ops, n, got, 3*ops)
	}
	// The last member has not been heard of since the rebalance: its
	// session (10 s) ends while the others keep heartbeating.
	for range 4 {
		e.advance(3 * time.Second)
		for i, id := range ids[:n-1] {
			if c := e.heartbeat(id, gen); c != 0 && c != kerr.RebalanceInProgress.Code {
				t.Fatalf("heartbeat of member %d: got %v, want none or REBALANCE_IN_PROGRESS", i, kerr.ErrorForCode(c))
			}
		}
	}
	wantState(t, e.g, PreparingRebalance)
	if _, ok := e.g.members[ids[n-1]]; ok {
		t.Errorf("the silent member %s is still in the group after its session ended", ids[n-1])
	}
	if got := len(e.g.members); got != n-1 {
		t.Errorf("got %d members after one expired, want %d", got, n-1)
	}
}
