package shipper_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestMultilineStackTrace joins a Java stack trace in an error log into
// one event.
func TestMultilineStackTrace(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b broker) {
		dir := t.TempDir()
		topic := topicName(t)
		errlog := filepath.Join(dir, "error_log")
		trace := "[Sat Nov 21 10:00:00 2026] [proxy:error] [pid 7] backend said:\n" +
			"java.lang.IllegalStateException: connection pool exhausted\n" +
			"\tat com.example.db.Pool.take(Pool.java:88)\n" +
			"\tat com.example.web.Handler.handle(Handler.java:42)\n" +
			"Caused by: java.util.concurrent.TimeoutException\n" +
			"\t... 12 more\n"
		appendFile(t, errlog, trace+"[Sat Nov 21 10:00:01 2026] [core:notice] [pid 7] next\n")
		c := consume(t, b.bootstrap, topic)
		s := startShipper(t, dir, fmt.Sprintf(`
filebeat.inputs:
- type: log
  paths: [%s]
  tags: [error]
  multiline.pattern: '^\['
  multiline.negate: true
  multiline.match: after
  multiline.timeout: 500ms
output.kafka:
  hosts: [%q]
  topic: %s
`, errlog, b.bootstrap, topic))
		recs := c.waitRecords("two events", s, func(r []record) bool { return len(r) == 2 })
		if recs[0].Message != strings.TrimSuffix(trace, "\n") || strings.Join(recs[0].Log.Flags, ",") != "multiline" {
			t.Fatalf("first event %q flags %v", recs[0].Message, recs[0].Log.Flags)
		}
		if recs[1].Log.Offset != int64(len(trace)) {
			t.Fatalf("second event at %d", recs[1].Log.Offset)
		}
	})
}
