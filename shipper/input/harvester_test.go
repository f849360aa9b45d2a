package input

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"logpipe/shipper/fileid"
	"logpipe/shipper/lines"
)

// TestStaleRead covers the race copytruncate rotation leaves between a
// scan (or a read) and the next read: bytes read after the file was
// truncated and written again must not be sent as the old content's.
func TestStaleRead(t *testing.T) {
	d, e := numbered(1, 40), numbered(41, 80) // each over FingerprintSize
	for _, tc := range []struct {
		name    string
		content string // the file when the harvester starts
		offset  int64  // where it starts reading
		head    int    // how much of content the scan saw as the head
		then    string // what the file holds by the read; "" for unchanged
		want    bool
	}{
		{name: "unchanged, from the start", content: d, head: fileid.FingerprintSize, want: false},
		{name: "unchanged, mid-file", content: d, offset: 1500, head: fileid.FingerprintSize, want: false},
		{name: "grown", content: d, offset: 1500, head: fileid.FingerprintSize, then: d + e, want: false},
		{name: "short file grown", content: d[:100], offset: 100, head: 100, then: d, want: false},
		{name: "nothing known yet", content: "", then: e, want: false},
		{name: "replaced before the first read", content: d, head: fileid.FingerprintSize, then: e, want: true},
		{name: "replaced mid-file", content: d, offset: 1500, head: fileid.FingerprintSize, then: e, want: true},
		{name: "replaced by a shorter file", content: d, offset: 1500, head: fileid.FingerprintSize, then: e[:1600], want: true},
		{name: "short file replaced", content: d[:100], offset: 50, head: 100, then: e[:200], want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "access_log")
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			h := &harvester{f: f, split: lines.NewSplitter(tc.offset, 1<<20, lines.UTF8), head: []byte(tc.content[:tc.head])}
			if tc.then != "" {
				// Rewritten in place, as copytruncate and a writer do.
				if err := os.Truncate(path, 0); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(tc.then), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p := make([]byte, readSize)
			n, err := f.ReadAt(p, tc.offset)
			if err != nil && err != io.EOF {
				t.Fatal(err)
			}
			if n == 0 {
				t.Fatal("nothing to read at the offset; the case is wrong")
			}
			if got := h.stale(); got != tc.want {
				t.Errorf("stale = %v, want %v", got, tc.want)
			}
		})
	}
}
