package shipper_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"logpipe/pipeline/event"
)

// httpdConfig returns a Filebeat configuration for httpd's access and
// error logs, verbatim as a user gave it (issue 4); shipper's unit tests
// load it too.
func httpdConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "shipper", "testdata", "httpd.yml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// pointAt rewrites httpdConfig for a test: hosts at the test broker
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

// TestHTTPDConfig runs the shipper on httpdConfig, in both spellings: the
// lines of both logs, those there at start and one appended, arrive tagged,
// with stable ids, and the registry holds both files' sizes after SIGTERM.
func TestHTTPDConfig(t *testing.T) {
	httpd := httpdConfig(t)
	for _, variant := range []struct{ name, config string }{
		{"prospectors-log", httpd},
		{"inputs-filestream", strings.NewReplacer("filebeat.prospectors", "filebeat.inputs", "type: log", "type: filestream").Replace(httpd)},
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
