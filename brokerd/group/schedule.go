package group

import (
	"container/heap"
	"sync/atomic"
	"time"
)

// schedule keeps, for one shard, when each of its groups next has
// something due (Group.NextDeadline), so that the shard recomputes only
// the deadlines of the groups an operation touched and, when its timer
// fires, ticks only the groups that are due: the cost of a request does
// not grow with the groups and members the shard holds.
type schedule struct {
	due     map[string]time.Time // each group's deadline, if it has one
	queue   deadlineQueue        // (deadline, group); stale entries skipped
	touched map[string]struct{}  // groups to look at again
}

func newSchedule() *schedule {
	return &schedule{due: map[string]time.Time{}, touched: map[string]struct{}{}}
}

// touch marks a group whose deadline may have changed.
func (s *schedule) touch(id string) { s.touched[id] = struct{}{} }

// update recomputes the deadlines of the touched groups; groups maps ids
// to the shard's groups (a missing one has none).
func (s *schedule) update(groups map[string]*Group) {
	for id := range s.touched {
		d, ok := time.Time{}, false
		if g := groups[id]; g != nil {
			d, ok = g.NextDeadline()
		}
		switch old, had := s.due[id]; {
		case !ok:
			delete(s.due, id)
		case !had || !old.Equal(d):
			s.due[id] = d
			heap.Push(&s.queue, deadlineEntry{at: d, id: id})
		}
	}
	clear(s.touched)
	// Stale entries leave as they reach the top; rebuild if they pile up.
	if len(s.queue) > 4*len(s.due)+64 {
		s.queue = s.queue[:0]
		for id, d := range s.due {
			s.queue = append(s.queue, deadlineEntry{at: d, id: id})
		}
		heap.Init(&s.queue)
	}
}

// deadlineChecks counts the deadlines Group.NextDeadline looks at (tests
// check that a request costs a few, not one per group of the shard nor
// one per member of the group).
var deadlineChecks atomic.Int64

// next returns the earliest deadline, ok false if no group has one.
func (s *schedule) next() (time.Time, bool) {
	for s.queue.Len() > 0 {
		top := s.queue[0]
		if d, ok := s.due[top.id]; ok && d.Equal(top.at) {
			return top.at, true
		}
		heap.Pop(&s.queue) // stale
	}
	return time.Time{}, false
}

// takeDue removes and returns the groups whose deadline is not after now;
// they are touched, so update sees their next deadline.
func (s *schedule) takeDue(now time.Time) []string {
	var out []string
	for {
		at, ok := s.next()
		if !ok || at.After(now) {
			return out
		}
		e := heap.Pop(&s.queue).(deadlineEntry)
		delete(s.due, e.id)
		s.touch(e.id)
		out = append(out, e.id)
	}
}

// deadlineEntry is a deadline of a group (in a schedule) or of a member
// or a pending member id (in a Group), by id.
type deadlineEntry struct {
	at time.Time
	id string
}

// deadlineQueue is a min-heap of deadlines (container/heap).
type deadlineQueue []deadlineEntry

func (q deadlineQueue) Len() int           { return len(q) }
func (q deadlineQueue) Less(i, j int) bool { return q[i].at.Before(q[j].at) }
func (q deadlineQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *deadlineQueue) Push(x any)        { *q = append(*q, x.(deadlineEntry)) }
func (q *deadlineQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}
