package netns

// TB is the part of testing.TB that ForTest needs.
type TB interface {
	Cleanup(func())
	Helper()
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Name() string
}

// ForTest makes a lab of n nodes for a test, labelled with the test's name,
// and registers its Close with t.Cleanup before handing it over, so the lab
// is removed when the test ends however it ends: passed, failed or panicked.
// Cleanups run last registered first, so a process started in a node after
// ForTest returns and stopped by a later Cleanup is gone before its
// namespace is removed. A lab left behind by a killed test binary is removed
// by the next New (see Sweep).
func ForTest(t TB, n int) *Lab {
	t.Helper()
	l, err := New(t.Name(), n)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("%v", err)
		}
	})
	return l
}
