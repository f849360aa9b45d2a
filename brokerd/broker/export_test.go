package broker

// SetBeforeFetchWait makes every fetch that found too little data call f
// just before it blocks, until the test ends.
func SetBeforeFetchWait(t interface{ Cleanup(func()) }, f func()) {
	beforeFetchWait.Store(&f)
	t.Cleanup(func() { beforeFetchWait.Store(nil) })
}

// SetAfterProducePartition makes every produce call f between finding the
// hosted partition and reading the topic's metadata, until the test ends.
func SetAfterProducePartition(t interface{ Cleanup(func()) }, f func(topic string, partition int32)) {
	afterProducePartition.Store(&f)
	t.Cleanup(func() { afterProducePartition.Store(nil) })
}

// DirListings returns how many times log dirs were listed to place new
// partitions.
func DirListings() int64 { return dirListings.Load() }

// ListenerSecurity is the security settings of listener with its
// listener.name overrides applied.
func ListenerSecurity(c *Config, listener string) SecurityConfig { return c.listenerSecurity(listener) }
