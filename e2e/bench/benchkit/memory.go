package benchkit

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// reportedKiBPath is the counter of the guest's free page reporting (a
// virtio-balloon feature): the memory, in KiB, handed back to the host so
// far. On such a virtual machine a page the guest freed is soon returned
// to the host, and the next write to it faults it in again there, which
// makes the first write of new data into the page cache several times
// dearer than one into memory the guest still holds.
const reportedKiBPath = "/sys/module/page_reporting/parameters/reported_kib"

// SettleMemory puts the machine's memory in the same state before each
// broker starts, so that the brokers' page cache writes cost the same: it
// writes back dirty pages, drops the clean page cache (root only), and
// waits until the guest has reported the freed memory to the host (the
// counter at reportedKiBPath stops growing), or at most 30 s. Without the
// drop, a broker could write into memory the previous one had just freed
// and not yet returned, at a fraction of the other's cost.
//
// It returns what it did, for the log; an error only if it could not drop
// the caches.
func SettleMemory(ctx context.Context) (string, error) {
	syscall.Sync()
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err != nil {
		return "", fmt.Errorf("benchkit: dropping the page cache (needs root): %w", err)
	}
	start := time.Now()
	prev, ok := reportedKiB()
	if !ok {
		return "page cache dropped (no free page reporting here)", nil
	}
	stable := 0
	for time.Since(start) < 30*time.Second && stable < 2 {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		cur, _ := reportedKiB()
		if cur == prev {
			stable++
		} else {
			stable = 0
		}
		prev = cur
	}
	return fmt.Sprintf("page cache dropped, free memory reported to the host after %v", time.Since(start).Round(100*time.Millisecond)), nil
}

func reportedKiB() (string, bool) {
	b, err := os.ReadFile(reportedKiBPath)
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}
