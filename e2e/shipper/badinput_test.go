package shipper_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unicode/utf8"
)

// TestBadInput feeds the shipper invalid UTF-8, NUL bytes, a 50 MiB line,
// an empty file, a folder and a FIFO matched by the glob, and a file it may
// not read. Each gets a clear log line or a sane event, and the rest keeps
// working.
//
// Tests run as root here, which may read any file; to get a real
// "permission denied" the shipper then runs as the user nobody (through
// setpriv), with its folders opened up to it.
func TestBadInput(t *testing.T) {
	forEachBroker(t, func(t *testing.T, b broker) {
		dir, err := os.MkdirTemp("", "shipper-badinput")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		os.Chmod(dir, 0o755)
		logs := filepath.Join(dir, "logs")
		os.Mkdir(logs, 0o755)
		topic := topicName(t)
		files := map[string][]byte{
			"utf8.log":   []byte("ok \xff\xfe bad bytes\nfine\n"),
			"nul.log":    append([]byte("a\x00b\n"), append(bytes.Repeat([]byte{0}, 100), '\n')...),
			"empty.log":  nil,
			"big.log":    append(append(bytes.Repeat([]byte("z"), 50<<20), '\n'), "after the big line\n"...),
			"secret.log": []byte("you may not read this\n"),
		}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(logs, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		os.Chmod(filepath.Join(logs, "secret.log"), 0)
		os.Mkdir(filepath.Join(logs, "folder.log"), 0o755)
		if err := syscall.Mkfifo(filepath.Join(logs, "fifo.log"), 0o644); err != nil {
			t.Fatal(err)
		}
		s := &shipper{t: t, dir: dir, cfg: filepath.Join(dir, "shipper.yml"), log: filepath.Join(dir, "shipper.log")}
		os.WriteFile(s.cfg, []byte(fmt.Sprintf(`
filebeat.inputs:
- type: log
  paths: ["%s/*.log"]
output.kafka:
  hosts: [%q]
  topic: %s
`, logs, b.bootstrap, topic)), 0o644)
		if os.Geteuid() == 0 {
			data := filepath.Join(dir, "data")
			os.Mkdir(data, 0o755)
			os.Chown(data, 65534, 65534)
			os.WriteFile(s.log, nil, 0o666)
			s.wrap = []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"}
		}
		c := consume(t, b.bootstrap, topic)
		s.start(shipperBin)
		recs := c.waitRecords("the readable lines", s, func(r []record) bool { return len(r) == 6 })
		got := map[string]record{}
		for _, r := range recs {
			got[fmt.Sprintf("%s@%d", filepath.Base(r.Log.File.Path), r.Log.Offset)] = r
		}
		if r := got["utf8.log@0"]; r.Message != "ok \uFFFD bad bytes" {
			t.Errorf("invalid UTF-8: %q", r.Message)
		}
		if r := got["nul.log@0"]; r.Message != "a\x00b" {
			t.Errorf("NUL bytes: %q", r.Message)
		}
		if r := got["nul.log@4"]; r.Message != strings.Repeat("\x00", 100) {
			t.Errorf("NUL line: %q", r.Message)
		}
		big := got["big.log@0"]
		if len(big.Message) < 500000 || len(big.Message) > 1000000 || strings.Trim(big.Message, "z") != "" || strings.Join(big.Log.Flags, ",") != "truncated" {
			t.Errorf("50 MiB line: %d bytes, flags %v", len(big.Message), big.Log.Flags)
		}
		if r := got[fmt.Sprintf("big.log@%d", 50<<20+1)]; r.Message != "after the big line" {
			t.Errorf("line after the big one: %+v", got)
		}
		for _, r := range recs {
			if !utf8.ValidString(r.Message) {
				t.Errorf("invalid UTF-8 sent: %q", r.Message)
			}
		}
		s.stop()
		log, _ := os.ReadFile(s.log)
		for _, want := range [][]string{
			{`level=WARN msg="cannot open file; skipping it, the other files are read"`, `path=` + filepath.Join(logs, "secret.log"), `err="open ` + filepath.Join(logs, "secret.log") + `: permission denied"`},
			{`level=WARN msg="the input's paths match a folder, which is not read (write a glob that matches the files in it)"`, `path=` + filepath.Join(logs, "folder.log")},
			{`level=WARN msg="not a regular file (p---------); skipping it"`, `path=` + filepath.Join(logs, "fifo.log")},
		} {
			if !logHas(string(log), want...) {
				t.Errorf("no log line with all of %q", want)
			}
		}
		if m := strings.Count(string(log), "cannot open file"); m != 1 {
			t.Errorf("the unreadable file was reported %d times, want once", m)
		}
	})
}

// TestConfigTypo checks that a mistyped key stops the shipper at once
// with the file, line and key named.
func TestConfigTypo(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "shipper.yml")
	os.WriteFile(cfg, []byte("filebeat.inputs:\n- type: log\n  pahts: [/var/log/x]\noutput.kafka:\n  hosts: [\"127.0.0.1:9\"]\n  topic: t\n"), 0o644)
	cmd := exec.Command(shipperBin, "-c", cfg)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, output:\n%s", err, out)
	}
	want := cfg + `:3:3: filebeat.inputs[0].pahts: unknown key; did you mean "filebeat.inputs[0].paths"?`
	if !strings.Contains(string(out), want) {
		t.Fatalf("output lacks %q:\n%s", want, out)
	}
}

// logHas reports whether one line of log contains every part.
func logHas(log string, parts ...string) bool {
	for _, line := range strings.Split(log, "\n") {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			return true
		}
	}
	return false
}
