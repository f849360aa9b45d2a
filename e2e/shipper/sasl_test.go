package shipper_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"logpipe/e2e/harness"
	"logpipe/internal/await"
	"logpipe/internal/devstack"
)

// TestSASL ships an httpd access log through the SASL_PLAINTEXT listener
// of Apache Kafka with each mechanism the shipper offers. Each account of
// the harness may log in only with its own mechanism, so a shipper that
// spoke another mechanism than configured would be refused. First the
// shipper runs with a wrong password: it must say why it cannot connect,
// report not ready, and acknowledge nothing. Restarted on the same data
// with the right password, it must deliver every line exactly once.
func TestSASL(t *testing.T) {
	k := harness.SharedKafka(t)
	for _, u := range devstack.KafkaSASLUsers() {
		t.Run(u.Mechanism, func(t *testing.T) { testSASL(t, k, u) })
	}
}

// saslAccessLine returns line n of the test's access log, in the Common
// Log Format httpd writes, mentioning the mechanism so a line from another
// subtest cannot be taken for one of this subtest's.
func saslAccessLine(mechanism string, n int) string {
	return fmt.Sprintf(`192.0.2.%d - frank [21/Nov/2026:10:%02d:%02d +0000] "GET /sasl/%s/%d HTTP/1.1" 200 %d`,
		n%250+1, n/60%60, n%60, strings.ToLower(mechanism), n, 1000+n)
}

func testSASL(t *testing.T, k *devstack.Kafka, u devstack.KafkaSASLUser) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(logs, "access_log")
	topic := topicName(t)
	// The topic is made, and read back, through the plaintext listener:
	// the checks do not depend on the SASL code under test.
	createTopic(t, k.Bootstrap(), topic, 1)
	c := consume(t, k.Bootstrap(), topic)

	var want []string
	write := func(from, to int) {
		t.Helper()
		var b strings.Builder
		for n := from; n <= to; n++ {
			l := saslAccessLine(u.Mechanism, n)
			want = append(want, l)
			b.WriteString(l + "\n")
		}
		appendFile(t, path, b.String())
	}
	write(1, 40)

	hosts := make([]string, len(k.SASLAddrs()))
	for i, a := range k.SASLAddrs() {
		hosts[i] = fmt.Sprintf("%q", a)
	}
	config := func(password string) string {
		return fmt.Sprintf(`filebeat.inputs:
- type: log
  paths: [%q]
  tags: [access]
output.kafka:
  hosts: [%s]
  topic: %s
  username: %q
  password: %q
  sasl.mechanism: %s
  backoff.init: 200ms
  backoff.max: 1s
shutdown_timeout: 2s
`, path, strings.Join(hosts, ", "), topic, u.Name, password, u.Mechanism)
	}

	// A wrong password: refused, said so, not ready, nothing acknowledged.
	bad := startShipper(t, dir, config(u.Password+"-wrong"))
	await.Eventually(t, "the shipper to log the refused login", func() error {
		warnings, err := saslWarnings(bad.log)
		if err != nil {
			return err
		}
		for _, w := range warnings {
			if strings.Contains(w, "SASL Authentication failed") {
				t.Logf("the shipper says: %s", w)
				return nil
			}
		}
		return await.NotYet(fmt.Sprintf("%d warnings: %s", len(warnings), strings.Join(warnings, "\n")), "one saying SASL Authentication failed")
	}, bad.alive())
	await.Eventually(t, "/readyz to name the refused login", func() error {
		code, body, err := saslGet(bad.http, "/readyz")
		if err != nil {
			return err
		}
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "SASL Authentication failed") {
			return await.NotYet(fmt.Sprintf("%d %q", code, body), "503 naming SASL Authentication failed")
		}
		return nil
	}, bad.alive())
	// The lines were read and offered to the output, which could not
	// send them.
	await.Eventually(t, "the lines to be read", func() error {
		if n := bad.metric("shipper_lines_read_total"); n < float64(len(want)) {
			return await.NotYet(fmt.Sprintf("%v lines read", n), len(want))
		}
		return nil
	}, bad.alive())
	if n := bad.metric("shipper_events_acked_total"); n != 0 {
		t.Errorf("%v events acknowledged with a wrong password", n)
	}
	if recs := c.records(); len(recs) != 0 {
		t.Errorf("%d records arrived with a wrong password, the first %q", len(recs), recs[0].Message)
	}
	bad.stop()
	for _, e := range bad.registry() {
		if e.Offset != 0 {
			t.Errorf("registry acknowledges %s up to offset %d after a refused login", e.Path, e.Offset)
		}
	}
	if log, _ := os.ReadFile(bad.log); logHas(string(log), "connected to Kafka") {
		t.Errorf("the shipper with a wrong password says it connected; log:\n%s", bad.proc.Tail(4000))
	}

	// The right password, same data folder: everything arrives, lines
	// written while it runs too.
	good := startShipper(t, dir, config(u.Password))
	c.waitRecords(fmt.Sprintf("the first %d lines", len(want)), good, func(r []record) bool { return len(r) >= len(want) })
	write(41, 60)
	c.waitRecords(fmt.Sprintf("all %d lines", len(want)), good, func(r []record) bool { return len(r) >= len(want) })
	await.Eventually(t, "/readyz to report ready", func() error {
		code, body, err := saslGet(good.http, "/readyz")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return await.NotYet(fmt.Sprintf("%d %q", code, body), http.StatusOK)
		}
		return nil
	}, good.alive())
	await.Eventually(t, "every line to be acknowledged", func() error {
		if n := good.metric("shipper_events_acked_total"); n != float64(len(want)) {
			return await.NotYet(fmt.Sprintf("%v acknowledged", n), len(want))
		}
		return nil
	}, good.alive())
	good.stop()

	// Read the topic to its end, then check each line is there once.
	end := saslEndOffset(t, k.Bootstrap(), topic)
	await.Eventually(t, "every record of the topic to be consumed", func() error {
		if n := len(c.records()); int64(n) < end {
			return await.NotYet(n, end)
		}
		return nil
	}, patient)
	recs := c.records()
	if end != int64(len(want)) {
		t.Errorf("the topic holds %d records for %d lines", end, len(want))
	}
	count := map[string]int{}
	for _, r := range recs {
		count[r.Message]++
		if len(r.Tags) != 1 || r.Tags[0] != "access" {
			t.Errorf("line %q tagged %v, want [access]", r.Message, r.Tags)
		}
		if r.Log.File.Path != path {
			t.Errorf("line %q from %q, want %q", r.Message, r.Log.File.Path, path)
		}
	}
	for _, l := range want {
		if count[l] != 1 {
			t.Errorf("line %q arrived %d times", l, count[l])
		}
		delete(count, l)
	}
	for l, n := range count {
		t.Errorf("unexpected record %q (%d times)", l, n)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	var acked bool
	for _, e := range good.registry() {
		if e.Path == path {
			acked = e.Offset == info.Size()
			if !acked {
				t.Errorf("registry acknowledges %s up to %d of %d bytes", path, e.Offset, info.Size())
			}
		}
	}
	if !acked {
		t.Errorf("registry has no complete entry for %s: %+v", path, good.registry())
	}
}

// saslWarnings returns the lines of a log at level WARN or ERROR.
func saslWarnings(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "level=WARN") || strings.Contains(l, "level=ERROR") {
			out = append(out, l)
		}
	}
	return out, nil
}

// saslGet fetches a path from the shipper's HTTP server.
func saslGet(hostport, path string) (int, string, error) {
	res, err := http.Get("http://" + hostport + path)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, strings.TrimSpace(string(b)), err
}

// saslEndOffset returns the end offset of partition 0 of topic.
func saslEndOffset(t *testing.T, bootstrap, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTime)
	defer cancel()
	offs, err := adminClient(t, bootstrap).ListEndOffsets(ctx, topic)
	if err == nil {
		err = offs.Error()
	}
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	o, ok := offs.Lookup(topic, 0)
	if !ok {
		t.Fatalf("no end offset for %s/0", topic)
	}
	return o.Offset
}
