package benchkit

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"logpipe/internal/devstack"
)

// docPreamble starts a benchmarks document that does not exist yet.
const docPreamble = `# Benchmarks

Each section below is written by the command that measures it, and names
the command line that reproduces it. Rerunning a benchmark replaces its own
section and leaves the others alone.
`

// Thousands formats v rounded to an integer with comma separators.
func Thousands(v float64) string {
	s := strconv.FormatInt(int64(math.Round(math.Abs(v))), 10)
	var b strings.Builder
	if v < 0 && s != "0" {
		b.WriteByte('-')
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// WriteSection replaces the section of the markdown file at path that
// starts with the line heading (up to the next level-2 heading or the end)
// with section, or appends section if there is none. A missing file is
// created with a short preamble.
func WriteSection(path, heading, section string) error {
	old, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		old = []byte(docPreamble)
	} else if err != nil {
		return fmt.Errorf("benchkit: %w", err)
	}
	out := ReplaceSection(string(old), heading, section)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("benchkit: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(out), 0o644); err != nil {
		return fmt.Errorf("benchkit: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("benchkit: %w", err)
	}
	return nil
}

// ReplaceSection returns doc with the level-2 section titled by the line
// heading replaced by section, or with section appended after a blank line.
func ReplaceSection(doc, heading, section string) string {
	section = strings.TrimRight(section, "\n") + "\n"
	lines := strings.SplitAfter(doc, "\n")
	start := -1
	for i, l := range lines {
		if strings.TrimRight(l, "\r\n") == heading {
			start = i
			break
		}
	}
	if start < 0 {
		doc = strings.TrimRight(doc, "\n")
		if doc == "" {
			return section
		}
		return doc + "\n\n" + section
	}
	end := len(lines)
	inFence := false
	for i := start + 1; i < len(lines); i++ {
		if strings.HasPrefix(lines[i], "```") {
			inFence = !inFence
		}
		if !inFence && strings.HasPrefix(lines[i], "## ") {
			end = i
			break
		}
	}
	before := strings.Join(lines[:start], "")
	after := strings.Join(lines[end:], "")
	if after != "" {
		section += "\n"
	}
	return before + section + after
}

// Cell formats a figure, or says it is missing.
func Cell(v float64, ok bool, decimals int) string {
	if !ok {
		return "–"
	}
	if decimals == 0 {
		return Thousands(v)
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

// Ratio formats a/b with two decimals (three below 0.1, so a small ratio
// does not read as zero), or says it cannot be computed.
func Ratio(a float64, aok bool, b float64, bok bool) string {
	if !aok || !bok || b == 0 {
		return "–"
	}
	r := a / b
	if math.Abs(r) < 0.1 {
		return strconv.FormatFloat(r, 'f', 3, 64)
	}
	return strconv.FormatFloat(r, 'f', 2, 64)
}

// CommandLine returns the `go run` command that reproduces a run of the
// command in pkg (such as ./e2e/bench/cmd/brokerbench): the flags set on
// fs, in alphabetical order, quoted where the shell needs it; a boolean
// flag as -name=value, which the flag package reads back as one.
func CommandLine(pkg string, fs *flag.FlagSet) string {
	args := []string{"go", "run", pkg}
	fs.Visit(func(f *flag.Flag) {
		v := f.Value.String()
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			// "-name true" would end the flags at "true".
			args = append(args, "-"+f.Name+"="+v)
			return
		}
		if v == "" || strings.ContainsAny(v, " '\"") {
			v = "'" + v + "'"
		}
		args = append(args, "-"+f.Name, v)
	})
	return strings.Join(args, " ")
}

// Main runs a benchmark command named name: parse reads the flags (an
// error exits 2), then run measures with a context that SIGINT or SIGTERM
// cancels (an error exits 1). Progress lines are logged with the time and
// the command's name.
func Main[O any](name string, parse func(args []string) (O, error), run func(ctx context.Context, o O) error) {
	log.SetFlags(log.Ltime)
	log.SetPrefix(name + ": ")
	o, err := parse(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// Opening returns the start of a report section written by the benchmark
// command cmd (its folder, such as "e2e/bench/cmd/shipperbench"): when it
// ran and for how long, and the command line that reproduces it.
func Opening(cmd string, started, finished time.Time, commandLine string) string {
	return fmt.Sprintf("Written by `%s` on %s (%s of wall time); rerunning it replaces this section.\n\n"+
		"Reproduce from the repository root, after `make deps` and `make build`:\n\n```sh\n%s\n```\n\n",
		cmd, started.UTC().Format("2006-01-02 15:04 MST"), finished.Sub(started).Round(time.Second), commandLine)
}

// ListSection returns a "### heading" subsection listing items, or "" when
// there are none.
func ListSection(heading string, items []string) string {
	if len(items) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### %s\n\n", heading)
	for _, it := range items {
		fmt.Fprintf(&b, "- %s\n", it)
	}
	b.WriteString("\n")
	return b.String()
}

// WorkDir makes a new folder for one run under the repository's
// .cache/run, its name starting with prefix.
func WorkDir(prefix string) (string, error) {
	runDir, err := devstack.CacheDir("run")
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp(runDir, prefix)
	if err != nil {
		return "", fmt.Errorf("benchkit: %w", err)
	}
	return dir, nil
}
