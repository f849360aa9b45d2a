package broker

// groupState holds the group coordinator; see the group package.
type groupState struct{}

// startGroups starts the group coordinator.
func (b *Broker) startGroups() error { return nil }

// stopGroups stops the group coordinator.
func (b *Broker) stopGroups() {}
