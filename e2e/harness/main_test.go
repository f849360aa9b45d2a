package harness_test

import (
	"testing"

	"logpipe/e2e/harness"
	"logpipe/internal/devstack"
)

// TestMain stops the shared services this test binary started once its
// tests end.
func TestMain(m *testing.M) { harness.Main(m) }

// rssMiB returns the resident memory of process pid in MiB, or -1 if it
// cannot be read, for the logs of service tests.
func rssMiB(pid int) int64 {
	b, err := devstack.RSS(pid)
	if err != nil {
		return -1
	}
	return b >> 20
}
