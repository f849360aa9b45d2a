package admin

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"logpipe/internal/await"
	"logpipe/internal/devstack"
)

func TestHelpAndUsage(t *testing.T) {
	for _, cmd := range []string{"topics", "console-producer", "console-consumer", "consumer-groups", "acls", "users"} {
		r := run(t, nil, cmd, "--help").ok(t)
		for _, want := range []string{"Usage:", "brokerd " + cmd, "--bootstrap-server", "--output"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%s --help lacks %q", cmd, want)
			}
		}
	}
	run(t, nil, "topics", "--list", "--create").fails(t, 2, `^brokerd topics: exactly one of --create`)
	run(t, nil, "topics", "--nonsense").fails(t, 2, `^brokerd topics: flag provided but not defined: --nonsense`)
	run(t, nil, "topics", "--list", "--output", "yaml").fails(t, 2, `--output must be text or json`)
	run(t, nil, "topics", "--create").fails(t, 2, `--topic is required`)
	run(t, nil, "topics", "--create", "--topic", "x", "--config", "novalue").fails(t, 2, `--config wants key=value`)
	run(t, nil, "console-consumer", "--topic", "x", "--offset", "5").fails(t, 2, `--offset needs --partition`)
	run(t, nil, "console-producer", "--topic", "x", "--compression-codec", "brotli").fails(t, 2, `--compression-codec`)
	run(t, nil, "consumer-groups", "--reset-offsets", "--group", "g", "--topic", "t").fails(t, 2, `needs one of --to-earliest`)
	run(t, nil, "no-such-command").fails(t, 2, `unknown admin command "no-such-command"`)
	if got := Commands(); len(got) != 6 || !strings.HasPrefix(got[0], "topics ") {
		t.Errorf("Commands() = %q, want 6 lines starting with topics", got)
	}
}

func TestUnreachableBroker(t *testing.T) {
	// A port that was free a moment ago: nothing answers there.
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{name: "nothing", bootstrap: fmt.Sprintf("127.0.0.1:%d", port)}
	run(t, tg, "topics", "--list", "--timeout", "3000").fails(t, 1, `^brokerd topics: list topics: .*`)
}

func TestTopics(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tg *target) {
		topic := uniq("admin-topics")
		other := uniq("admin-topics-json")

		r := run(t, tg, "topics", "--create", "--topic", topic, "--partitions", "3", "--config", "retention.ms=3600000").ok(t)
		if r.stdout != "Created topic "+topic+".\n" {
			t.Fatalf("create printed %q", r.stdout)
		}
		run(t, tg, "topics", "--create", "--topic", topic).fails(t, 1, `TOPIC_ALREADY_EXISTS`)
		run(t, tg, "topics", "--create", "--topic", topic, "--if-not-exists").ok(t)

		var created createdTopic
		run(t, tg, "topics", "--create", "--topic", other, "--partitions", "2", "--replication-factor", "1", "--output", "json").ok(t).decode(t, &created)
		if !created.Created || created.Topic != other || created.Partitions != 2 || created.ReplicationFactor != 1 || created.TopicID == "" {
			t.Fatalf("create json: %+v", created)
		}

		// --list, text and json.
		await.Eventually(t, "both topics to be listed", func() error {
			names := run(t, tg, "topics", "--list").ok(t).lines()
			if !slices.Contains(names, topic) || !slices.Contains(names, other) {
				return await.NotYet(fmt.Sprintf("%q", names), fmt.Sprintf("a list with %s and %s", topic, other))
			}
			return nil
		}, settle)
		var listed []listedTopic
		run(t, tg, "topics", "--list", "--output", "json").ok(t).decode(t, &listed)
		i := slices.IndexFunc(listed, func(l listedTopic) bool { return l.Name == topic })
		if i < 0 || listed[i].Partitions != 3 || listed[i].Internal {
			t.Fatalf("list json: %+v", listed)
		}
		if got := run(t, tg, "topics", "--list", "--topic", topic).ok(t).lines(); !slices.Equal(got, []string{topic}) {
			t.Fatalf("list --topic: %q", got)
		}

		// --describe, text and json.
		r = run(t, tg, "topics", "--describe", "--topic", topic).ok(t)
		lines := r.lines()
		if len(lines) != 4 {
			t.Fatalf("describe printed %d lines, want 1 + 3 partitions", len(lines))
		}
		for _, want := range []string{"Topic: " + topic, "PartitionCount: 3", "ReplicationFactor: 1", "Configs: retention.ms=3600000"} {
			if !strings.Contains(lines[0], want) {
				t.Errorf("describe header %q lacks %q", lines[0], want)
			}
		}
		for p, l := range lines[1:] {
			want := fmt.Sprintf("Topic: %s Partition: %d Leader: %d Replicas: %d Isr: %d", topic, p, tg.nodeID, tg.nodeID, tg.nodeID)
			if got := strings.Join(fields(l), " "); got != want {
				t.Errorf("describe partition line %q, want %q", got, want)
			}
		}
		described := describeTopic(t, tg, topic)
		if described.PartitionCount != 3 || described.ReplicationFactor != 1 || described.TopicID == "" ||
			!maps.Equal(described.Configs, map[string]string{"retention.ms": "3600000"}) {
			t.Fatalf("describe json: %+v", described)
		}
		for i, p := range described.Partitions {
			if p.Partition != int32(i) || p.Leader != tg.nodeID || !slices.Equal(p.Replicas, []int32{tg.nodeID}) || !slices.Equal(p.ISR, []int32{tg.nodeID}) {
				t.Errorf("describe json partition %d: %+v", i, p)
			}
		}

		// --alter: partitions, then configs.
		r = run(t, tg, "topics", "--alter", "--topic", topic, "--partitions", "5").ok(t)
		if r.stdout != fmt.Sprintf("Topic %s now has 5 partitions.\n", topic) {
			t.Errorf("alter printed %q", r.stdout)
		}
		await.Eventually(t, "5 partitions after --alter --partitions 5", func() error {
			if d := describeTopic(t, tg, topic); d.PartitionCount != 5 {
				return await.NotYet(d.PartitionCount, 5)
			}
			return nil
		}, settle)
		run(t, tg, "topics", "--alter", "--topic", topic, "--partitions", "2").fails(t, 1, `INVALID_PARTITIONS`)
		run(t, tg, "topics", "--alter", "--topic", topic, "--config", "cleanup.policy=compact", "--delete-config", "retention.ms").ok(t)
		await.Eventually(t, "the altered configs", func() error {
			want := map[string]string{"cleanup.policy": "compact"}
			if d := describeTopic(t, tg, topic); !maps.Equal(d.Configs, want) {
				return await.NotYet(d.Configs, want)
			}
			return nil
		}, settle)
		var altered alteredTopic
		run(t, tg, "topics", "--alter", "--topic", topic, "--config", "retention.ms=60000", "--output", "json").ok(t).decode(t, &altered)
		if !altered.Exists || altered.ConfigsSet["retention.ms"] != "60000" || altered.Partitions != nil {
			t.Errorf("alter json: %+v", altered)
		}
		missing := uniq("admin-missing")
		run(t, tg, "topics", "--alter", "--topic", missing, "--partitions", "4").fails(t, 1, `UNKNOWN_TOPIC_OR_PARTITION`)
		run(t, tg, "topics", "--alter", "--topic", missing, "--partitions", "4", "--if-exists").ok(t)

		// --delete.
		if r := run(t, tg, "topics", "--delete", "--topic", topic).ok(t); r.stdout != "Deleted topic "+topic+".\n" {
			t.Errorf("delete printed %q", r.stdout)
		}
		await.Eventually(t, "the deleted topic to leave the list", func() error {
			if names := run(t, tg, "topics", "--list").ok(t).lines(); slices.Contains(names, topic) {
				return await.NotYet(fmt.Sprintf("%q", names), "a list without "+topic)
			}
			return nil
		}, settle)
		run(t, tg, "topics", "--describe", "--topic", topic).fails(t, 1, `topic ".*" does not exist`)
		run(t, tg, "topics", "--delete", "--topic", topic).fails(t, 1, `UNKNOWN_TOPIC_OR_PARTITION`)
		run(t, tg, "topics", "--delete", "--topic", topic, "--if-exists").ok(t)
		var deleted map[string]any
		run(t, tg, "topics", "--delete", "--topic", other, "--output", "json").ok(t).decode(t, &deleted)
		if deleted["deleted"] != true {
			t.Errorf("delete json: %v", deleted)
		}
	})
}

// describeTopic runs --describe --output json for one topic, waiting
// until its metadata shows up.
func describeTopic(t *testing.T, tg *target, topic string) describedTopic {
	t.Helper()
	var out []describedTopic
	await.Eventually(t, "topic "+topic+" to be described", func() error {
		r := run(t, tg, "topics", "--describe", "--topic", topic, "--output", "json")
		if r.code != 0 {
			return await.NotYet(fmt.Sprintf("exit status %d: %s", r.code, r.stderr), "exit status 0")
		}
		r.decode(t, &out)
		if len(out) != 1 || out[0].Name != topic {
			return await.NotYet(fmt.Sprintf("%+v", out), "that one topic")
		}
		return nil
	}, settle)
	return out[0]
}
