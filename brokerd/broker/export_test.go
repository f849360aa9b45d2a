package broker

// SetBeforeFetchWait makes every fetch that found too little data call f
// just before it blocks, until the test ends.
func SetBeforeFetchWait(t interface{ Cleanup(func()) }, f func()) {
	beforeFetchWait.Store(&f)
	t.Cleanup(func() { beforeFetchWait.Store(nil) })
}
