// Package group is brokerd's group coordinator for the classic consumer
// group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) and for
// committed offsets (OffsetCommit, OffsetFetch, OffsetDelete,
// DescribeGroups, ListGroups, DeleteGroups), following Apache Kafka's
// GroupCoordinator, KIP-345 (static membership) and KIP-394 (member ids
// required before joining).
//
// # Layout
//
//   - group.go, offsets.go: Group, the state machine of one group
//     (Empty, PreparingRebalance, CompletingRebalance, Stable, Dead) and
//     its offsets. It is a plain value: no goroutines, no clock (time is
//     passed in), no I/O. Records to persist and deferred answers go to
//     an Outbox that its driver drains.
//   - records.go: the __consumer_offsets record schemas (Kafka's own, via
//     kmsg), batch building, and the Loader that rebuilds groups from a
//     partition's log.
//   - coordinator.go: Coordinator, the driver. A group lives in the
//     __consumer_offsets partition PartitionFor(group id) selects, and the
//     broker leading that partition is its coordinator. The Coordinator
//     runs one goroutine (a shard) per partition it leads; the shard owns
//     that partition's groups outright, so no lock guards a Group.
//
// # Persistence
//
// A commit is answered only after its records are appended to the
// group's partition, and offsets take effect only then. A group's
// metadata (protocol, generation, leader, members with subscriptions and
// assignments) is written when the leader's assignment is accepted, when
// a static member is replaced, and when the group becomes Empty; a
// restarted broker reads it back, so members carry on heartbeating with
// their generation and Empty groups keep theirs. Deleted groups and
// offsets get tombstones, so compaction removes them.
//
// # Ownership
//
// Coordinator.mu guards the set of shards only; a shard's groups and
// Outbox belong to its goroutine. Requests are closures run by that
// goroutine; their answers come back on a channel with room for one
// value, so a shard never blocks delivering, and every sender and
// receiver also watches the shard's done channel.
package group
