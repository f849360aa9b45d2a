package brokerd_test

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"logpipe/internal/devstack"
)

// TestKafkaConfigsDescribesUsers runs Kafka's kafka-configs --describe
// for a user against brokerd, which asks for the user's client quotas
// (DescribeClientQuotas) and SCRAM credentials: the tool must succeed and
// report the user's SCRAM mechanism and no quota.
func TestKafkaConfigsDescribesUsers(t *testing.T) {
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	startNode(t, addr, filepath.Join(t.TempDir(), "data"))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tool := kafkaTool(t, ctx, addr)
	tool("", "kafka.admin.ConfigCommand", "--alter", "--entity-type", "users", "--entity-name", "alice",
		"--add-config", "SCRAM-SHA-256=[iterations=4096,password=alice-secret]")
	out := tool("", "kafka.admin.ConfigCommand", "--describe", "--entity-type", "users", "--entity-name", "alice")
	if !strings.Contains(out, "SCRAM credential configs for user-principal 'alice' are SCRAM-SHA-256=iterations=4096") {
		t.Fatalf("kafka-configs --describe alice: got\n%s\nwant alice's SCRAM-SHA-256 credential", out)
	}
	if strings.Contains(out, "Quota configs for user-principal 'alice' are") || strings.Contains(strings.ToLower(out), "exception") {
		t.Fatalf("kafka-configs --describe alice: got\n%s\nwant no quota and no error", out)
	}
}
