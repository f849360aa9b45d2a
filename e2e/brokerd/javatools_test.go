package brokerd_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"logpipe/internal/await"
	"logpipe/internal/devstack"
)

// TestJavaClientTools drives brokerd, one node and a three-node cluster,
// with Apache Kafka's own command-line tools (the Java admin client,
// producer and consumer of Kafka 3.9.1, from the jars devstack fetches), as
// an operator would: create, describe, alter and delete a topic, change its
// config, produce keyed lines, consume them in a group, and describe the
// group's offsets. On the cluster the topic has three replicas,
// TopicCommand shows the same leaders, replicas and ISRs as `brokerd topics
// --describe`, kafka-metadata-quorum describes the quorum and
// kafka-reassign-partitions moves partitions.
func TestJavaClientTools(t *testing.T) {
	t.Run("one node", func(t *testing.T) {
		port, err := devstack.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		startNode(t, addr, filepath.Join(t.TempDir(), "data"))
		javaTools(t, addr, 1)
	})
	t.Run("three nodes", func(t *testing.T) {
		c := newCluster(t, 3)
		javaTools(t, strings.Join(c.addrs, ","), 3)
	})
}

// partitionRows are the Partition/Leader/Replicas/Isr cells of a topic
// description, one line per partition.
var partitionRows = regexp.MustCompile(`Partition: \d+\s+Leader: \S+\s+Replicas: \S+\s+Isr: \S+`)

// kafkaTool returns a function that runs a Java main class of the Kafka
// jars against the brokers at addr with stdin, failing the test unless it
// succeeds, and returns its output.
func kafkaTool(t *testing.T, ctx context.Context, addr string) func(stdin, class string, args ...string) string {
	return func(stdin, class string, args ...string) string {
		t.Helper()
		cmd, err := devstack.KafkaToolCommand(ctx, class, append([]string{"--bootstrap-server", addr}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v\n%s", class, args, err, out)
		}
		return string(out)
	}
}

func javaTools(t *testing.T, addr string, rf int) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tool := kafkaTool(t, ctx, addr)
	const (
		topics   = "org.apache.kafka.tools.TopicCommand"
		configs  = "kafka.admin.ConfigCommand"
		producer = "kafka.tools.ConsoleProducer"
		consumer = "org.apache.kafka.tools.consumer.ConsoleConsumer"
		groups   = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"
		reassign = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"
		quorum   = "org.apache.kafka.tools.MetadataQuorumCommand"
	)

	if out := tool("", topics, "--create", "--topic", "java", "--partitions", "3", "--replication-factor", strconv.Itoa(rf), "--config", "retention.ms=3600000"); !strings.Contains(out, "Created topic java.") {
		t.Fatalf("create:\n%s", out)
	}
	var out string
	await.Eventually(t, "TopicCommand and brokerd topics to describe the same partitions", func() error {
		out = tool("", topics, "--describe", "--topic", "java")
		ours, err := exec.CommandContext(ctx, brokerdBin, "topics", "--describe", "--topic", "java", "--bootstrap-server", addr).CombinedOutput()
		if err != nil {
			return fmt.Errorf("brokerd topics --describe: %v\n%s", err, ours)
		}
		java, mine := partitionRows.FindAllString(out, -1), partitionRows.FindAllString(string(ours), -1)
		for i := range mine {
			mine[i] = strings.Join(strings.Fields(mine[i]), " ")
		}
		for i := range java {
			java[i] = strings.Join(strings.Fields(java[i]), " ")
		}
		if len(java) != 3 || strings.Join(java, "\n") != strings.Join(mine, "\n") {
			return await.NotYet(strings.Join(mine, "\n"), strings.Join(java, "\n"))
		}
		return nil
	})
	if !strings.Contains(out, "PartitionCount: 3") || !strings.Contains(out, "retention.ms=3600000") || !strings.Contains(out, fmt.Sprintf("ReplicationFactor: %d", rf)) {
		t.Fatalf("describe:\n%s", out)
	}

	tool("", configs, "--entity-type", "topics", "--entity-name", "java", "--alter", "--add-config", "retention.ms=7200000,cleanup.policy=compact")
	out = tool("", configs, "--entity-type", "topics", "--entity-name", "java", "--describe")
	if !strings.Contains(out, "retention.ms=7200000") || !strings.Contains(out, "cleanup.policy=compact") {
		t.Fatalf("config describe after alter:\n%s", out)
	}

	var lines, want []string
	for i := 0; i < 200; i++ {
		lines = append(lines, fmt.Sprintf("key%03d:value %d from the Java producer", i, i))
		want = append(want, fmt.Sprintf("key%03d\tvalue %d from the Java producer", i, i))
	}
	tool(strings.Join(lines, "\n")+"\n", producer, "--topic", "java", "--property", "parse.key=true", "--property", "key.separator=:", "--producer-property", "acks=all")

	out = tool("", consumer, "--topic", "java", "--from-beginning", "--group", "javagroup", "--max-messages", "200", "--property", "print.key=true", "--timeout-ms", "60000")
	var got []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "key") {
			got = append(got, l)
		}
	}
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("consumed %d keyed records, want the 200 produced:\n%s", len(got), out)
	}

	// Each partition's committed offset is its end offset: lag 0, and the
	// offsets add up to the records produced.
	out = tool("", groups, "--describe", "--group", "javagroup")
	row := regexp.MustCompile(`(?m)^javagroup\s+java\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)`)
	rows := row.FindAllStringSubmatch(out, -1)
	if len(rows) != 3 {
		t.Fatalf("group describe lists %d partitions of java, want 3:\n%s", len(rows), out)
	}
	sum := 0
	for _, r := range rows {
		cur, _ := strconv.Atoi(r[2])
		end, _ := strconv.Atoi(r[3])
		if cur != end || r[4] != "0" {
			t.Fatalf("partition %s: committed %d, end %d, lag %s:\n%s", r[1], cur, end, r[4], out)
		}
		sum += cur
	}
	if sum != 200 {
		t.Fatalf("committed offsets add up to %d, want 200:\n%s", sum, out)
	}
	if out := tool("", groups, "--list"); !strings.Contains(out, "javagroup") {
		t.Fatalf("group list:\n%s", out)
	}

	if rf == 3 {
		// kafka-metadata-quorum.sh: a leader among the three voters,
		// and each of them listed with its replication state.
		status := tool("", quorum, "describe", "--status")
		if !regexp.MustCompile(`LeaderId:\s+[123]\n`).MatchString(status) || strings.Count(status, `"endpoints": ["CONTROLLER://`) != 3 {
			t.Fatalf("kafka-metadata-quorum describe --status:\n%s", status)
		}
		repl := tool("", quorum, "describe", "--replication")
		if n := len(regexp.MustCompile(`(?m)^[123]\s+\S+\s+\d+\s+\d+\s+\d+\s+\d+\s+(Leader|Follower)`).FindAllString(repl, -1)); n != 3 || strings.Count(repl, "Leader") != 1 {
			t.Fatalf("kafka-metadata-quorum describe --replication: %d voter rows, want 3 with one leader:\n%s", n, repl)
		}

		// kafka-reassign-partitions.sh: partition 0 shrinks to nodes 2
		// and 3, partition 1 changes its preferred leader.
		plan := filepath.Join(t.TempDir(), "plan.json")
		if err := os.WriteFile(plan, []byte(`{"version":1,"partitions":[{"topic":"java","partition":0,"replicas":[2,3]},{"topic":"java","partition":1,"replicas":[3,1,2]}]}`), 0o644); err != nil {
			t.Fatal(err)
		}
		if out := tool("", reassign, "--reassignment-json-file", plan, "--execute"); !strings.Contains(out, "Successfully started partition reassignments") {
			t.Fatalf("reassign --execute:\n%s", out)
		}
		await.Eventually(t, "the reassignment verified complete", func() error {
			out := tool("", reassign, "--reassignment-json-file", plan, "--verify")
			if strings.Count(out, "is completed") != 2 {
				return await.NotYet(out, "both partitions completed")
			}
			return nil
		}, await.Every(200*time.Millisecond))
		out := tool("", topics, "--describe", "--topic", "java")
		for _, want := range []string{`Partition: 0\s+Leader: [23]\s+Replicas: 2,3\s`, `Partition: 1\s+Leader: \d\s+Replicas: 3,1,2\s`} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Fatalf("describe after the reassignment: no match for %s in\n%s", want, out)
			}
		}
	}

	tool("", topics, "--alter", "--topic", "java", "--partitions", "5")
	if out := tool("", topics, "--describe", "--topic", "java"); !strings.Contains(out, "PartitionCount: 5") {
		t.Fatalf("describe after alter:\n%s", out)
	}
	tool("", topics, "--delete", "--topic", "java")
	await.Eventually(t, "the deleted topic to leave the list", func() error {
		if out := tool("", topics, "--list"); strings.Contains(out, "java\n") {
			return await.NotYet(fmt.Sprintf("%q", out), "a list without java")
		}
		return nil
	}, await.Every(200*time.Millisecond))
}
