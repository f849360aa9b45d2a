package devstack

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPipelineLayout checks what StartPipeline decides before it starts a
// program: the run folder's cluster keeps the ports it was formed with,
// node data it did not record is refused, and the shipper's config is the
// shipped one with its logs moved into the run folder. The binaries do not
// exist, so nothing starts.
func TestPipelineLayout(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	start := func(dir string, kafkaPort int) error {
		_, err := StartPipeline(context.Background(), PipelineOptions{Bin: filepath.Join(dir, "no-bin"), Configs: filepath.Join(root, "configs"),
			Dir: dir, ElasticsearchURL: "http://127.0.0.1:1", KafkaPort: kafkaPort, HTTPPort: 29101})
		return err
	}

	dir := t.TempDir()
	err = start(dir, 29092)
	if err == nil || !strings.Contains(err.Error(), "no-bin/brokerd") {
		t.Fatalf("first start without binaries: got %v, want an error naming no-bin/brokerd", err)
	}
	voters, err := os.ReadFile(filepath.Join(dir, "brokerd", "controller.quorum.voters"))
	if want := "1@127.0.0.1:29093,2@127.0.0.1:29095,3@127.0.0.1:29097\n"; err != nil || string(voters) != want {
		t.Errorf("recorded voters: got %q (%v), want %q", voters, err, want)
	}
	conf, err := os.ReadFile(filepath.Join(dir, "shipper", "shipper.yml"))
	if err != nil {
		t.Fatal(err)
	}
	logs := filepath.Join(dir, "logs")
	if s := string(conf); strings.Contains(s, "/var/log/httpd") || !strings.Contains(s, logs+"/access_log") || !strings.Contains(s, logs+"/error_log") {
		t.Errorf("shipper config: got\n%s\nwant the inputs in %s", conf, logs)
	}

	if err := start(dir, 29192); err == nil || !strings.Contains(err.Error(), "was formed with controller.quorum.voters 1@127.0.0.1:29093") {
		t.Errorf("start on other ports: got %v, want a refusal naming the voters the cluster was formed with", err)
	}

	stray := t.TempDir()
	if err := os.MkdirAll(filepath.Join(stray, "brokerd", "node2", "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := start(stray, 29092); err == nil || !strings.Contains(err.Error(), "node2 holds brokerd data of unknown voters") {
		t.Errorf("start on node data without recorded voters: got %v, want a refusal naming node2", err)
	}
}
