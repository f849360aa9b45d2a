package shipper_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"logpipe/pipeline/event"
)

// issueConfig is the configuration of issue 4, verbatim.
const issueConfig = `filebeat.prospectors:
- type: log
  enabled: true
  paths:
    - /var/log/httpd/access_log
  tags: ["access"]
- type: log
  enabled: true
  paths:
    - /var/log/httpd/error_log
  tags: ["error"]
output.kafka:
  enabled: true
  hosts: ["10.0.0.10:9092","10.0.0.11:9092","10.0.0.12:9092"]
  topic: "httpd"
`

// pointAt rewrites the issue's config for a test: hosts at the test broker
// and the two log paths into dir (the test does not write to /var/log),
// and the topic to a fresh one. Everything else stays as written.
func pointAt(config, dir, bootstrap, topic string) string {
	hosts := `"` + strings.ReplaceAll(bootstrap, ",", `","`) + `"`
	return strings.NewReplacer(
		`"10.0.0.10:9092","10.0.0.11:9092","10.0.0.12:9092"`, hosts,
		"/var/log/httpd/", dir+"/",
		`topic: "httpd"`, `topic: "`+topic+`"`,
	).Replace(config)
}

const accessLines = `192.168.1.10 - - [21/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 1234 "-" "curl/8.0"
192.168.1.11 - frank [21/Nov/2026:10:00:01 +0000] "POST /login HTTP/1.1" 302 - "https://example.com/" "Mozilla/5.0"
`

const errorLines = `[Sat Nov 21 10:00:02.123456 2026] [core:error] [pid 1234] [client 192.168.1.10:50000] AH00126: Invalid URI in request
[Sat Nov 21 10:00:03.000000 2026] [mpm_event:notice] [pid 1:tid 1] AH00489: Apache/2.4.58 configured
`

func TestIssueConfig(t *testing.T) {
	for _, variant := range []struct{ name, config string }{
		{"prospectors-log", issueConfig},
		{"inputs-filestream", strings.NewReplacer("filebeat.prospectors", "filebeat.inputs", "type: log", "type: filestream").Replace(issueConfig)},
	} {
		t.Run(variant.name, func(t *testing.T) {
			forEachBroker(t, func(t *testing.T, b broker) {
				dir := t.TempDir()
				topic := topicName(t)
				logs := filepath.Join(dir, "logs")
				os.Mkdir(logs, 0o755)
				access, errlog := filepath.Join(logs, "access_log"), filepath.Join(logs, "error_log")
				appendFile(t, access, accessLines)
				appendFile(t, errlog, errorLines)
				c := consume(t, b.bootstrap, topic)
				start := time.Now().Truncate(time.Millisecond)
				s := startShipper(t, dir, pointAt(variant.config, logs, b.bootstrap, topic), "-E", "name=web-1")
				c.waitRecords("the four existing lines", s, func(r []record) bool { return len(r) == 4 })
				// Lines written while running arrive too.
				appendFile(t, access, `10.0.0.1 - - [21/Nov/2026:10:00:05 +0000] "GET /late HTTP/1.1" 404 0 "-" "-"`+"\n")
				recs := c.waitRecords("the appended line", s, func(r []record) bool { return len(r) == 5 })
				s.stop()

				ids := map[string]string{}
				for _, e := range s.registry() {
					ids[e.Path] = e.ID
				}
				tags := map[string]int{}
				for _, r := range recs {
					if len(r.Tags) != 1 {
						t.Fatalf("tags %v", r.Tags)
					}
					tags[r.Tags[0]]++
					wantPath := access
					if r.Tags[0] == "error" {
						wantPath = errlog
					}
					content, _ := os.ReadFile(wantPath)
					if r.Log.File.Path != wantPath || !strings.Contains("\n"+string(content), "\n"+r.Message+"\n") {
						t.Errorf("%s line %q from %s", r.Tags[0], r.Message, r.Log.File.Path)
					}
					if r.Event.Event.ID != event.ID("web-1", ids[wantPath], r.Log.Offset) {
						t.Errorf("event.id %s is not the stable id of %s at %d", r.Event.Event.ID, wantPath, r.Log.Offset)
					}
					if !r.Timestamp.Equal(r.Event.Timestamp) || r.Timestamp.Before(start) {
						t.Errorf("record time %v, event time %v", r.Timestamp, r.Event.Timestamp)
					}
					if r.Host.Name != "web-1" || r.Agent.Type != "shipper" || r.Input.Type == "" {
						t.Errorf("event %+v", r.Event)
					}
				}
				if tags["access"] != 3 || tags["error"] != 2 {
					t.Fatalf("tags %v", tags)
				}
				// SIGTERM waited for the acknowledgements: the registry holds
				// every byte of both files.
				for _, e := range s.registry() {
					st, _ := os.Stat(e.Path)
					if e.Offset != st.Size() {
						t.Errorf("registry offset of %s is %d, file has %d bytes", e.Path, e.Offset, st.Size())
					}
				}
			})
		})
	}
}

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
