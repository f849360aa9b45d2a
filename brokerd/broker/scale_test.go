package broker_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"logpipe/brokerd/broker"
)

// TestNewPartitionsListLogDirsOnce: placing the partitions of a new topic
// lists each log dir once per metadata change, not once per partition
// (which made creating partitions cost time proportional to those already
// there). The partitions still spread evenly over the log dirs.
func TestNewPartitionsListLogDirsOnce(t *testing.T) {
	base := t.TempDir()
	dirs := []string{filepath.Join(base, "a"), filepath.Join(base, "b")}
	tb := clStart(t, dirs[0], func(c *broker.Config) { c.LogDirs = dirs })
	adm := grpAdmin(t, tb.addr)
	ctx := ctxT(t)
	before := broker.DirListings()
	const n = 400
	if r, err := adm.CreateTopic(ctx, n, 1, nil, "many"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	listed := broker.DirListings() - before
	if listed > 4*int64(len(dirs)) {
		t.Errorf("creating %d partitions listed the log dirs %d times, want a few (once per metadata change and dir)", n, listed)
	}
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		parts := 0
		for _, e := range entries {
			var p int
			if _, err := fmt.Sscanf(e.Name(), "many-%d", &p); err == nil {
				parts++
			}
		}
		if parts < n/2-1 || parts > n/2+1 {
			t.Errorf("%s holds %d partitions of %d, want half", d, parts, n)
		}
	}
}
