package indexer_test

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestStaticMemberRestart kills an indexer that has a group_instance_id
// with SIGKILL and starts it again at once, with a session timeout of a
// minute: the new process takes the killed one's place in the group
// (KIP-345) rather than waiting for the group to drop it. From the kill
// until every event produced after it is indexed, the group never shows
// more than one member or a rebalance, and every event is indexed once.
// A dynamic member would have shown the dead member beside the new one,
// in a rebalance, for the whole minute.
func TestStaticMemberRestart(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b broker) {
		f := newFaultRun(t, b, "httpd-static-"+b.name, "indexer-static-"+b.name, "static_"+b.name, 3)
		topic, group := f.topic, f.group
		const first, second = 2000, 2000
		// Index names and event ids carry the broker's name.
		w := newWorkload(topic, first+second, time.Date(2027, 12, 1, 0, 0, 0, 0, time.UTC))
		part := func(i int) int32 { return int32(i % 3) }
		const instance = "indexer-static-1"
		ix := startIndexer(t, f.splitConfig(f.node.URL, `kafka.version: 2.3.0
kafka.group_instance_id: `+instance+`
kafka.session_timeout: 60s
`))
		f.waitHoldsAll(ix, 3)
		p := newProducer(t, b, topic)
		recs := p.send(w.values[:first], part)
		f.waitIndexed(ix, w.head(first).expected(topic, recs))
		adm := admin(t, b)
		before := describeGroup(adm, group)
		if len(before.members) != 1 || before.members[0].instance != instance {
			t.Fatalf("before the kill: group %s with members %+v, want one with instance id %s", before.state, before.members, instance)
		}

		ix.kill()
		ix.start()
		// Watch the group from the restart until the second half is in.
		var (
			seen    []groupView
			stopped = make(chan struct{})
			done    = make(chan struct{})
		)
		go func() {
			defer close(done)
			for {
				v := describeGroup(adm, group)
				seen = append(seen, v)
				select {
				case <-stopped:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		}()
		recs = append(recs, p.send(w.values[first:], func(i int) int32 { return part(first + i) })...)
		want := w.expected(topic, recs)
		f.waitIndexed(ix, want)
		close(stopped)
		<-done
		seen = append(seen, describeGroup(adm, group))
		f.checkExact(want)

		replaced, bad := false, 0
		for _, v := range seen {
			if v.state != "Stable" || len(v.members) != 1 || v.members[0].instance != instance {
				if bad++; bad == 1 {
					t.Errorf("after the restart the group was %s with members %+v; want it Stable with the one static member throughout", v.state, v.members)
				}
				continue
			}
			replaced = replaced || v.members[0].id != before.members[0].id
		}
		if bad > 0 {
			t.Errorf("%d of %d views of the group after the restart were not that", bad, len(seen))
		}
		if !replaced {
			t.Errorf("the killed member %s was never replaced by the new process's", before.members[0].id)
		}
		waitCommitted(t, b, group, topic)
		ix.stop()
	})
}

// groupView is what DescribeGroups says of a group at one moment.
type groupView struct {
	state   string
	members []viewMember
}

type viewMember struct{ id, instance string }

// describeGroup asks for group's state and members.
func describeGroup(adm *kadm.Client, group string) groupView {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return groupView{state: err.Error()}
	}
	g := described[group]
	if g.Err != nil {
		return groupView{state: g.Err.Error()}
	}
	v := groupView{state: g.State}
	for _, m := range g.Members {
		vm := viewMember{id: m.MemberID, instance: "<none>"}
		if m.InstanceID != nil {
			vm.instance = *m.InstanceID
		}
		v.members = append(v.members, vm)
	}
	return v
}
