package shipper_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"logpipe/internal/await"
)

// TestMetrics checks the shipper's Prometheus metrics against what it did.
func TestMetrics(t *testing.T) {
	b := startBrokerd(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "access_log")
	appendFile(t, path, "GET /a\nGET /healthcheck\nGET /b\n")
	topic := topicName(t)
	c := consume(t, b.bootstrap, topic)
	s := startShipper(t, dir, fmt.Sprintf(`
filebeat.inputs:
- type: log
  paths: [%q]
  exclude_lines: [healthcheck]
output.kafka:
  hosts: [%q]
  topic: %s
registry.flush: 100ms
`, path, b.bootstrap, topic))
	c.waitRecords("two events", s, func(r []record) bool { return len(r) == 2 })
	want := map[string]float64{
		"shipper_lines_read_total":                              3,
		"shipper_events_published_total":                        2,
		"shipper_events_acked_total":                            2,
		"shipper_events_retried_total":                          0,
		`shipper_events_dropped_total{reason="filter"}`:         1,
		`shipper_events_dropped_total{reason="topic"}`:          0,
		"shipper_harvesters_open":                               1,
		fmt.Sprintf(`shipper_file_bytes_behind{path=%q}`, path): 0,
		"shipper_queue_events":                                  0,
		"shipper_registry_files":                                1,
	}
	await.Eventually(t, "the metrics", func() error {
		m, err := s.metrics()
		if err != nil {
			return err
		}
		for k, v := range want {
			if m[k] != v {
				return await.NotYet(fmt.Sprintf("%s %v", k, m[k]), v)
			}
		}
		if ok, failed := m[`shipper_registry_writes_total{result="ok"}`], m[`shipper_registry_writes_total{result="error"}`]; ok < 1 || failed != 0 {
			return await.NotYet(fmt.Sprintf("%v registry writes, %v failed", ok, failed), "at least one, none failed")
		}
		return nil
	}, s.alive())
	// Bytes behind follow the file while the broker has not acknowledged.
	b.stop()
	appendFile(t, path, "GET /c\n")
	await.Eventually(t, "bytes behind to show the new line", func() error {
		if v := s.metric(fmt.Sprintf(`shipper_file_bytes_behind{path=%q}`, path)); v != 7 {
			return await.NotYet(v, 7)
		}
		return nil
	}, s.alive())
	if _, err := os.Stat(filepath.Join(dir, "data", "registry", "shipper.json")); err != nil {
		t.Fatal(err)
	}
}
