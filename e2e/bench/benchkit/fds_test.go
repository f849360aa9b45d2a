package benchkit

import (
	"os"
	"path/filepath"
	"testing"
)

// TestOpenFDsCountsAnOpenedFile checks that opening a file adds one to this
// process's count and closing it takes it away.
func TestOpenFDsCountsAnOpenedFile(t *testing.T) {
	before, err := OpenFDs(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	during, err := OpenFDs(os.Getpid())
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	after, err := OpenFDs(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if during != before+1 || after != before {
		t.Errorf("got %d, %d, %d descriptors before, with and after the file; want %d, %d, %d", before, during, after, before, before+1, before)
	}
	if _, err := OpenFDs(-1); err == nil {
		t.Error("OpenFDs(-1): got no error, want one")
	}
}
