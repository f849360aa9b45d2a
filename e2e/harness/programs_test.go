package harness_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"logpipe/e2e/harness"
	"logpipe/internal/devstack"
)

// TestBuildPrograms builds a command into a folder every user may read and
// search, and the binary runs.
func TestBuildPrograms(t *testing.T) {
	paths, err := harness.BuildPrograms(devstack.Program{Package: "logpipe/e2e/cmd/stack"})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 1 || filepath.Base(paths[0]) != "stack" {
		t.Fatalf("paths: got %v, want one ending in /stack", paths)
	}
	st, err := os.Stat(filepath.Dir(paths[0]))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o755 {
		t.Errorf("binary folder mode: got %v, want 0755", st.Mode().Perm())
	}
	out, err := exec.Command(paths[0]).CombinedOutput()
	if exit, ok := errors.AsType[*exec.ExitError](err); !ok || exit.ExitCode() != 2 || !strings.Contains(string(out), "usage: stack") {
		t.Errorf("stack with no arguments: got %v and %q, want exit status 2 and its usage", err, out)
	}
}
