package admin

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/internal/await"
)

// produceTo writes n records to one partition of topic with a real
// franz-go producer.
func produceTo(t *testing.T, tg *target, topic string, partition int32, n int) {
	t.Helper()
	cl := testClient(t, tg.bootstrap, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: partition, Value: fmt.Appendf(nil, "p%d-%d", partition, i)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
}

// describeGroupJSON runs --describe --output json for one group.
func describeGroupJSON(t *testing.T, tg *target, group string) groupInfo {
	t.Helper()
	var out []groupInfo
	run(t, tg, "consumer-groups", "--describe", "--group", group, "--output", "json").ok(t).decode(t, &out)
	if len(out) != 1 || out[0].Group != group {
		t.Fatalf("described %+v", out)
	}
	return out[0]
}

// committed returns the committed offset per partition (-1 for none).
func committed(g groupInfo, topic string, parts int) []int64 {
	out := make([]int64, parts)
	for i := range out {
		out[i] = -1
	}
	for _, o := range g.Offsets {
		if o.Topic == topic && o.CurrentOffset != nil {
			out[o.Partition] = *o.CurrentOffset
		}
	}
	return out
}

func TestConsumerGroups(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tg *target) {
		needGroups(t, tg)
		topic := uniq("admin-groups")
		group := uniq("admin-group")
		run(t, tg, "topics", "--create", "--topic", topic, "--partitions", "2").ok(t)
		describeTopic(t, tg, topic)
		produceTo(t, tg, topic, 0, 6)
		produceTo(t, tg, topic, 1, 4)

		run(t, tg, "consumer-groups", "--describe", "--group", group).fails(t, 1, `consumer group ".*" does not exist`)

		// A console consumer in the group reads everything and commits.
		r := run(t, tg, "console-consumer", "--topic", topic, "--group", group, "--from-beginning", "--max-messages", "10").ok(t, "Processed a total of 10 messages\n")
		if n := len(r.lines()); n != 10 {
			t.Fatalf("consumed %d records, want 10", n)
		}
		await.Eventually(t, "the group to be listed", func() error {
			if names := run(t, tg, "consumer-groups", "--list").ok(t).lines(); !slices.Contains(names, group) {
				return await.NotYet(fmt.Sprintf("%q", names), "a list with "+group)
			}
			return nil
		}, settle)
		var listed []listedGroup
		run(t, tg, "consumer-groups", "--list", "--output", "json").ok(t).decode(t, &listed)
		if i := slices.IndexFunc(listed, func(g listedGroup) bool { return g.Group == group }); i < 0 || listed[i].State != "Empty" {
			t.Errorf("list json: %+v", listed)
		}
		if r := run(t, tg, "consumer-groups", "--list", "--state").ok(t); !strings.Contains(r.stdout, group+"  ") {
			t.Errorf("list --state: %q", r.stdout)
		}

		// Describe with lag, text and json.
		produceTo(t, tg, topic, 0, 3)
		r = run(t, tg, "consumer-groups", "--describe", "--group", group).ok(t)
		lines := r.lines()
		if len(lines) != 5 || lines[0] != fmt.Sprintf("Consumer group '%s' has no active members.", group) || lines[1] != "" {
			t.Fatalf("describe printed %q", lines)
		}
		if got := strings.Join(fields(lines[2]), " "); got != "GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID" {
			t.Errorf("header %q", got)
		}
		for i, want := range []string{group + " " + topic + " 0 6 9 3 - - -", group + " " + topic + " 1 4 4 0 - - -"} {
			if got := strings.Join(fields(lines[3+i]), " "); got != want {
				t.Errorf("row %q, want %q", got, want)
			}
		}
		g := describeGroupJSON(t, tg, group)
		if g.State != "Empty" || len(g.Members) != 0 || len(g.Offsets) != 2 {
			t.Fatalf("describe json: %+v", g)
		}
		for i, want := range [][3]int64{{6, 9, 3}, {4, 4, 0}} {
			o := g.Offsets[i]
			if o.Topic != topic || o.Partition != int32(i) || o.CurrentOffset == nil || o.LogEndOffset == nil || o.Lag == nil ||
				[3]int64{*o.CurrentOffset, *o.LogEndOffset, *o.Lag} != want {
				t.Errorf("describe json partition %d: %+v", i, o)
			}
		}

		// A consumer stopped by --max-messages commits what it printed
		// and no more.
		partial := uniq("admin-group-partial")
		run(t, tg, "console-consumer", "--topic", topic, "--group", partial, "--from-beginning", "--max-messages", "3").ok(t, "Processed a total of 3 messages\n")
		var sum int64
		for _, c := range committed(describeGroupJSON(t, tg, partial), topic, 2) {
			sum += max(c, 0)
		}
		if sum != 3 {
			t.Errorf("the partial consumer committed %d records, want 3", sum)
		}

		// An active member: it shows up in --describe, and resets are
		// refused.
		member := testClient(t, tg.bootstrap, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
			kgo.ClientID("admin-test-member"), kgo.DisableAutoCommit())
		pollCtx, stopPolling := context.WithCancel(context.Background())
		polled := make(chan struct{})
		go func() {
			defer close(polled)
			for pollCtx.Err() == nil {
				member.PollFetches(pollCtx)
			}
		}()
		await.Eventually(t, "the group to be Stable with its member assigned", func() error {
			g := describeGroupJSON(t, tg, group)
			if g.State != "Stable" || len(g.Members) != 1 || len(g.Members[0].Assignment) != 1 {
				return await.NotYet(fmt.Sprintf("%s with members %+v", g.State, g.Members), "Stable with one member assigned one topic")
			}
			return nil
		}, settle)
		g = describeGroupJSON(t, tg, group)
		m := g.Members[0]
		if m.ClientID != "admin-test-member" || m.Host == "" || m.MemberID == "" || g.ProtocolType != "consumer" || g.AssignmentStrategy == "" ||
			m.Assignment[0].Topic != topic || !slices.Equal(m.Assignment[0].Partitions, []int32{0, 1}) {
			t.Errorf("member %+v of group %+v", m, g)
		}
		for _, o := range g.Offsets {
			if o.MemberID != m.MemberID || o.ClientID != "admin-test-member" {
				t.Errorf("partition %d is not shown as owned by the member: %+v", o.Partition, o)
			}
		}
		r = run(t, tg, "consumer-groups", "--describe", "--group", group, "--members").ok(t)
		if got := strings.Join(fields(r.lines()[1]), " "); got != fmt.Sprintf("%s %s %s admin-test-member 2 %s(0,1)", group, m.MemberID, m.Host, topic) {
			t.Errorf("--members row %q", got)
		}
		r = run(t, tg, "consumer-groups", "--describe", "--group", group, "--state").ok(t)
		if f := fields(r.lines()[1]); len(f) != 6 || f[0] != group || f[2] != fmt.Sprintf("(%d)", tg.nodeID) || f[4] != "Stable" || f[5] != "1" {
			t.Errorf("--state row %q", r.lines()[1])
		}
		run(t, tg, "consumer-groups", "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest", "--execute").
			fails(t, 1, `offsets can only be reset if group ".*" is inactive, but its state is Stable`)
		run(t, tg, "consumer-groups", "--delete", "--group", group).fails(t, 1, `NON_EMPTY_GROUP`)
		stopPolling()
		<-polled
		member.Close()
		await.Eventually(t, "the group to be Empty after its member left", func() error {
			if g := describeGroupJSON(t, tg, group); g.State != "Empty" {
				return await.NotYet(g.State, "Empty")
			}
			return nil
		}, settle)

		// Resets: a dry run by default, then executed.
		r = run(t, tg, "consumer-groups", "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest").ok(t, "brokerd consumer-groups: WARN: no --execute, so this is a dry run and nothing was changed (add --dry-run to say so)\n")
		if got := resetRows(r); got != "0:0 1:0" {
			t.Errorf("dry run printed %s", got)
		}
		if got := committed(describeGroupJSON(t, tg, group), topic, 2); !slices.Equal(got, []int64{6, 4}) {
			t.Fatalf("a dry run changed the offsets to %v", got)
		}
		var res resetResult
		run(t, tg, "consumer-groups", "--reset-offsets", "--group", group, "--topic", topic, "--to-earliest", "--dry-run", "--output", "json").ok(t).decode(t, &res)
		if res.Executed || len(res.Partitions) != 2 || *res.Partitions[0].PreviousOffset != 6 || res.Partitions[0].NewOffset != 0 {
			t.Errorf("dry run json %+v", res)
		}
		steps := []struct {
			args []string
			want []int64
		}{
			{[]string{"--topic", topic, "--to-earliest"}, []int64{0, 0}},
			{[]string{"--topic", topic, "--to-latest"}, []int64{9, 4}},
			{[]string{"--topic", topic, "--to-offset", "5"}, []int64{5, 4}}, // partition 1 ends at 4
			{[]string{"--topic", topic, "--shift-by", "-2"}, []int64{3, 2}},
			{[]string{"--topic", topic + ":1", "--to-offset", "0"}, []int64{3, 0}},
			{[]string{"--all-topics", "--shift-by", "100"}, []int64{9, 4}},
		}
		for _, s := range steps {
			args := append(append([]string{"consumer-groups", "--reset-offsets", "--group", group}, s.args...), "--execute", "--output", "json")
			run(t, tg, args...).ok(t).decode(t, &res)
			if !res.Executed {
				t.Errorf("%v: not executed", s.args)
			}
			if got := committed(describeGroupJSON(t, tg, group), topic, 2); !slices.Equal(got, s.want) {
				t.Fatalf("after %v the offsets are %v, want %v", s.args, got, s.want)
			}
		}
		run(t, tg, "consumer-groups", "--reset-offsets", "--group", group, "--topic", uniq("admin-missing"), "--to-earliest").fails(t, 1, `topic ".*" does not exist`)

		// Delete.
		r = run(t, tg, "consumer-groups", "--delete", "--group", group).ok(t)
		if r.stdout != fmt.Sprintf("Deletion of requested consumer groups ('%s') was successful.\n", group) {
			t.Errorf("delete printed %q", r.stdout)
		}
		await.Eventually(t, "the deleted group to leave the list", func() error {
			if names := run(t, tg, "consumer-groups", "--list").ok(t).lines(); slices.Contains(names, group) {
				return await.NotYet(fmt.Sprintf("%q", names), "a list without "+group)
			}
			return nil
		}, settle)
		run(t, tg, "consumer-groups", "--delete", "--group", group).fails(t, 1, `GROUP_ID_NOT_FOUND`)
		var deleted []deletedGroup
		run(t, tg, "consumer-groups", "--delete", "--group", partial, "--output", "json").ok(t).decode(t, &deleted)
		if len(deleted) != 1 || !deleted[0].Deleted {
			t.Errorf("delete json %+v", deleted)
		}
	})
}

// resetRows renders a --reset-offsets table as "partition:new ...".
func resetRows(r result) string {
	var out []string
	for _, l := range r.lines()[1:] {
		f := fields(l)
		out = append(out, f[2]+":"+f[3])
	}
	return strings.Join(out, " ")
}
