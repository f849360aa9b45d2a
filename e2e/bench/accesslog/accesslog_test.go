package accesslog

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// combined matches Apache's combined log format:
// %h %l %u [%t] "%r" %>s %b "%{Referer}i" "%{User-agent}i".
var combined = regexp.MustCompile(`^(\d{1,3}\.){3}\d{1,3} - \S+ \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000\] "[A-Z]+ /\S* HTTP/[12]\.[01]" \d{3} (\d+|-) "[^"]*" "[^"]*"$`)

func TestLinesAreCombinedFormatAndVaried(t *testing.T) {
	g := New(7)
	var line []byte
	total := 0
	distinct := map[string]map[string]bool{"addr": {}, "status": {}, "agent": {}, "path": {}}
	const n = 20000
	for i := 0; i < n; i++ {
		line = g.Append(line[:0])
		if line[len(line)-1] != '\n' || bytes.Count(line, []byte("\n")) != 1 {
			t.Fatalf("line %d does not end in one newline: %q", i, line)
		}
		text := string(line[:len(line)-1])
		if !combined.MatchString(text) {
			t.Fatalf("line %d is not in the combined format: %q", i, text)
		}
		total += len(line)
		f := bytes.Fields(line)
		distinct["addr"][string(f[0])] = true
		distinct["path"][string(f[6])] = true
		distinct["status"][string(f[8])] = true
		q := bytes.Split(line, []byte(`"`))
		distinct["agent"][string(q[len(q)-2])] = true
	}
	if avg := total / n; avg < 180 || avg > 220 {
		t.Errorf("lines average %d bytes, want about 200", avg)
	}
	for what, min := range map[string]int{"addr": n / 2, "path": n / 2, "status": 8, "agent": 10} {
		if len(distinct[what]) < min {
			t.Errorf("only %d distinct values of %s in %d lines", len(distinct[what]), what, n)
		}
	}
}

func TestSameSeedSameLines(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	na, err := WriteFile(a, 5000, 42)
	if err != nil {
		t.Fatal(err)
	}
	nb, _ := WriteFile(b, 5000, 42)
	nc, _ := WriteFile(c, 5000, 43)
	ba, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	bc, _ := os.ReadFile(c)
	if na != int64(len(ba)) || nb != int64(len(bb)) || nc != int64(len(bc)) {
		t.Fatalf("WriteFile counted %d, %d, %d bytes; files hold %d, %d, %d", na, nb, nc, len(ba), len(bb), len(bc))
	}
	if !bytes.Equal(ba, bb) {
		t.Fatal("the same seed made different files")
	}
	if bytes.Equal(ba, bc) {
		t.Fatal("different seeds made the same file")
	}
	if n := bytes.Count(ba, []byte("\n")); n != 5000 {
		t.Fatalf("%d lines, want 5000", n)
	}
}
