package brokerd_test

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/internal/devstack"
)

// TestMetricsEndpoint scrapes the brokerd binary's /metrics after some
// traffic and checks the series operators rely on.
func TestMetricsEndpoint(t *testing.T) {
	port, _ := devstack.FreePort()
	httpPort, _ := devstack.FreePort()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	startNode(t, addr, filepath.Join(t.TempDir(), "data"), "http.enabled=true", "http.port="+strconv.Itoa(httpPort))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("metered"), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeTopics("metered"), kgo.ConsumerGroup("metered-group"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := 0; i < 10; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("m")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for got := 0; got < 10; {
		got += len(cl.PollFetches(ctx).Records())
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
	}
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(httpPort) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`brokerd_messages_in_total{topic="metered"} 10`,
		`brokerd_bytes_in_total{topic="metered"}`,
		`brokerd_bytes_out_total{topic="metered"}`,
		`brokerd_log_end_offset{partition="0",topic="metered"} 10`,
		`brokerd_log_segments{partition="0",topic="metered"} 1`,
		`brokerd_request_duration_seconds_count{api="Produce"}`,
		`brokerd_group_rebalances_total`,
		`brokerd_groups{state="Stable"} 1`,
		`brokerd_connections`,
		`brokerd_high_watermark{partition="0",topic="metered"} 10`,
		`brokerd_isr_size{partition="0",topic="metered"} 1`,
		`brokerd_leader_partitions `,
		`brokerd_under_replicated_partitions 0`,
		`brokerd_offline_partitions 0`,
		`brokerd_active_controller 1`,
		`brokerd_raft_role{role="leader"} 1`,
		`brokerd_raft_term `,
		`brokerd_raft_commit_index `,
		`brokerd_log_open_files{state="in_use"}`,
		`brokerd_log_open_files{state="idle"}`,
		`brokerd_log_file_events_total{event="opened"}`,
		`brokerd_partitions_unopened 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
