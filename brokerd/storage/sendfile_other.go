//go:build !linux

package storage

import (
	"io"
	"os"
)

// sendFile is Linux-only; elsewhere WriteTo copies through a buffer.
func sendFile(w io.Writer, f *os.File, pos, n int64) (int64, bool, error) {
	return 0, false, nil
}
