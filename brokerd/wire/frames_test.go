package wire

import "testing"

// TestFrameSizeClasses: a frame gets a buffer of the power-of-two class
// at or above its size (1 KiB at least), with a handle to give it back;
// one above 16 MiB gets a buffer of its own size and no handle, so it is
// never kept; giving a buffer back and taking one of the same class gives
// a buffer of that class again.
func TestFrameSizeClasses(t *testing.T) {
	for _, c := range []struct{ size, capacity int }{
		{8, 1 << 10}, {1 << 10, 1 << 10}, {1<<10 + 1, 2 << 10}, {58114, 64 << 10}, {1 << 20, 1 << 20}, {1<<20 + 100, 2 << 20}, {2 << 20, 2 << 20}, {6 << 20, 8 << 20}, {16 << 20, 16 << 20},
	} {
		buf, p := getFrame(c.size)
		if len(buf) != c.size || cap(buf) != c.capacity || p == nil {
			t.Errorf("getFrame(%d): got len %d cap %d handle %v, want len %d cap %d and a handle", c.size, len(buf), cap(buf), p != nil, c.size, c.capacity)
			continue
		}
		putFrame(p)
		again, p2 := getFrame(c.size)
		if len(again) != c.size || cap(again) != c.capacity || p2 == nil {
			t.Errorf("getFrame(%d) after putFrame: got len %d cap %d handle %v, want len %d cap %d and a handle", c.size, len(again), cap(again), p2 != nil, c.size, c.capacity)
		}
		putFrame(p2)
	}
	huge, p := getFrame(16<<20 + 1)
	if len(huge) != 16<<20+1 || cap(huge) != 16<<20+1 || p != nil {
		t.Errorf("getFrame(16 MiB + 1): got len %d cap %d handle %v, want a buffer of exactly that size and no handle", len(huge), cap(huge), p != nil)
	}
	putFrame(nil) // a frame that was not pooled: nothing to give back
}
