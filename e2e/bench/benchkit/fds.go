package benchkit

import (
	"fmt"
	"os"
)

// OpenFDs returns how many file descriptors process pid has open, from
// /proc/<pid>/fd.
func OpenFDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, fmt.Errorf("benchkit: %w", err)
	}
	return len(ents), nil
}
