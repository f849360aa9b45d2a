package benchkit

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const heading = "## brokerd vs Apache Kafka"

// TestWriteSectionKeepsOtherSections writes the section into a document
// that has others (one after it, a fenced block with "## " inside it), then
// writes it again, and into a missing file.
func TestWriteSectionKeepsOtherSections(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "benchmarks.md")
	doc := "# Benchmarks\n\nintro\n\n## shipper\n\nshipper figures\n\n" + heading + "\n\nold figures\n```\n## not a heading\n```\nmore old\n\n## indexer\n\nindexer figures\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, figures := range []string{"new figures", "newer figures"} {
		if err := WriteSection(path, heading, heading+"\n\n"+figures+"\n"); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		want := "# Benchmarks\n\nintro\n\n## shipper\n\nshipper figures\n\n" + heading + "\n\n" + figures + "\n\n## indexer\n\nindexer figures\n"
		if string(got) != want {
			t.Fatalf("document is\n%s\nwant\n%s", got, want)
		}
	}

	fresh := filepath.Join(dir, "new.md")
	if err := WriteSection(fresh, heading, heading+"\n\nfigures\n"); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(got), "# Benchmarks\n") || !strings.HasSuffix(string(got), "\n\n"+heading+"\n\nfigures\n") {
		t.Fatalf("new document is\n%s", got)
	}
}

func TestThousands(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.6: "1,234,568", -20000: "-20,000"} {
		if got := Thousands(v); got != want {
			t.Errorf("Thousands(%v) = %q, want %q", v, got, want)
		}
	}
}

// TestMarkdownRatiosAndGoals renders a report of one configuration where
// brokerd produces faster, has the lower p99 and a failed consume step, and

// TestCommandLineParsesBack checks that the command line of a run, flags
// of every kind among them, gives the same flags when parsed again.
func TestCommandLineParsesBack(t *testing.T) {
	newFS := func() (*flag.FlagSet, *bool, *bool, *string, *int) {
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		return fs, fs.Bool("faults", false, ""), fs.Bool("keep", true, ""), fs.String("set", "", ""), fs.Int("n", 1, "")
	}
	fs, _, _, _, _ := newFS()
	if err := fs.Parse([]string{"-faults", "-keep=false", "-set", "a=1 b=2", "-n", "3"}); err != nil {
		t.Fatal(err)
	}
	line := CommandLine("./e2e/bench/cmd/x", fs)
	if want := "go run ./e2e/bench/cmd/x -faults=true -keep=false -n 3 -set 'a=1 b=2'"; line != want {
		t.Fatalf("got %s\nwant %s", line, want)
	}
	// The words after the package, without the shell's quotes.
	args := strings.Fields(strings.TrimPrefix(line, "go run ./e2e/bench/cmd/x "))
	args = append(args[:len(args)-2], "a=1 b=2")
	fs2, faults, keep, set, n := newFS()
	if err := fs2.Parse(args); err != nil || fs2.NArg() != 0 {
		t.Fatalf("parse %q: %v, left %q", args, err, fs2.Args())
	}
	if !*faults || *keep || *set != "a=1 b=2" || *n != 3 {
		t.Errorf("parsed back: faults %v keep %v set %q n %d", *faults, *keep, *set, *n)
	}
}
