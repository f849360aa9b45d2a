package httpdlog

import (
	"bufio"
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the parser's output")

// readLines returns the lines of a testdata file, without comment lines.
func readLines(t testing.TB, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if l := sc.Text(); !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return lines
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	if len(g) != len(w) {
		t.Fatalf("%s: %d lines, golden has %d (run with -update and review the diff)", name, len(g), len(w))
	}
	for i := range g {
		if g[i] != w[i] {
			t.Errorf("%s line %d:\n got %s\nwant %s", name, i+1, g[i], w[i])
		}
	}
}

// The golden documents show @timestamp in the line's own offset, so the
// offset kept is visible too.
func TestCorpusAccess(t *testing.T) {
	var out bytes.Buffer
	var a Access
	for _, l := range readLines(t, "access.log") {
		if err := ParseAccess(l, &a); err != nil {
			t.Errorf("ParseAccess(%.80q): %v", l, err)
			continue
		}
		doc := []byte(`{"@timestamp":"` + a.Timestamp.Format(time.RFC3339Nano) + `","format":"` + a.Format.String() +
			`","event":{`)
		doc = a.AppendEventMembers(doc)
		doc = append(doc, '}')
		doc = append(a.AppendJSONFields(doc), '}')
		if err := checkDoc(doc); err != nil {
			t.Error(err)
		}
		out.Write(doc)
		out.WriteByte('\n')
	}
	golden(t, "access.golden", out.Bytes())
}

func TestCorpusError(t *testing.T) {
	var out bytes.Buffer
	var e Error
	for _, l := range readLines(t, "error.log") {
		if err := ParseError(l, nil, &e); err != nil {
			t.Errorf("ParseError(%.80q): %v", l, err)
			continue
		}
		doc := []byte(`{"@timestamp":"` + e.Timestamp.Format(time.RFC3339Nano) + `","format":"` + e.Format.String() +
			`","message":`)
		doc = appendString(doc, e.Message)
		doc = append(doc, `,"log":{`...)
		doc = e.AppendLogMembers(doc)
		doc = append(doc, '}')
		doc = append(e.AppendJSONFields(doc), '}')
		if err := checkDoc(doc); err != nil {
			t.Error(err)
		}
		out.Write(doc)
		out.WriteByte('\n')
	}
	golden(t, "error.golden", out.Bytes())
}

func TestCorpusBad(t *testing.T) {
	var a Access
	var e Error
	for _, l := range readLines(t, "bad.log") {
		if k, err := Parse(l, nil, &a, &e); err == nil {
			t.Errorf("Parse(%q) = %v, want refusal", l, k)
		}
	}
}
