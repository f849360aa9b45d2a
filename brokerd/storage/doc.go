// Package storage keeps one partition's log on disk in Apache Kafka's
// layout, so Kafka's own tools (kafka-dump-log) can read it.
//
// # Layout
//
// A partition is a folder named <topic>-<partition> holding:
//
//	00000000000000000000.log        record batches (magic 2) byte for byte,
//	                                 as appended by the leader after it
//	                                 patched offsets, leader epoch and
//	                                 LogAppendTime
//	00000000000000000000.index      offset index (8-byte entries)
//	00000000000000000000.timeindex  time index (12-byte entries)
//	00000000000000001234.log ...    later segments, named by base offset
//	leader-epoch-checkpoint         "0", count, "epoch startOffset" lines
//	log-start-offset-checkpoint     "0", "1", "topic partition offset"
//	clean-shutdown                  present only while closed cleanly
//	cleaner-swap                    present only during a compaction swap
//
// Segment and index formats are described in index.go. Checkpoint files are
// replaced atomically (temporary file, fsync, rename, fsync of the folder).
// Kafka keeps the log start offset and the clean-shutdown marker once per
// log directory; here each partition folder has its own, so a Log owns
// everything it writes. partition.metadata (the topic id) is not written;
// producer-state snapshots and transaction indexes are not either.
//
// # Durability
//
// Like Kafka with its defaults, appends go to the page cache and are not
// fsynced: durability comes from replication and acks. A segment is fsynced
// when rolled and when the log is closed (if it was written to), its
// indexes are written then, and the log start checkpoint whenever it
// changes. The leader epoch checkpoint is written when an epoch that has
// records changes, at the latest before those records are fsynced; an epoch
// with no record yet (a leader just elected) is not written, as Open drops
// it. flush.messages and flush.ms (Config) force an fsync of the active
// segment after that many records or that much time, checked on each
// append; Flush does it on demand (a broker can call it from a ticker for
// flush.ms on idle partitions).
//
// Recovery (Open) checks every batch of the active segment (CRC included)
// after a crash and cuts the file at the first torn or corrupt batch, and
// finds the leader epochs its batches started; after a clean Close it
// checks only the batches after the last index entry. Rolled segments were
// fsynced, so only their indexes are checked and rebuilt when missing or
// inconsistent. Nothing is written when nothing needs repair, so opening
// thousands of cleanly closed partitions costs a few small reads each
// (Log.Recovery says what was checked).
//
// # Open files
//
// Segment files are opened on demand through a FileCache shared by the logs
// of a broker, which closes the least recently used idle ones beyond its
// bound and those unused for a while: a partition nobody writes or reads
// holds no descriptor. Index files hold none either: the indexes are kept
// in memory and written when a segment is rolled or its log closed (after
// a crash, the active segment's are rebuilt from its batches). Out of
// descriptors, the cache closes its idle files and tries again, then fails
// with ErrTooManyOpenFiles, having written nothing.
//
// # Concurrency
//
// A Log is safe for concurrent use. It is meant for one writer goroutine
// (the partition's produce or replica-fetch path) and any number of readers
// (fetches, ListOffsets, OffsetForLeaderEpoch), plus at most one cleaner:
//
//   - Writers: AppendAsLeader, AppendAsFollower, TruncateTo,
//     TruncateFullyAndStartAt, Roll, EnforceRetention, DeleteRecordsBefore,
//     AssignEpochStart, Flush, Close, Delete. They serialize on Log.wmu, so
//     several goroutines may call them, one at a time.
//   - Readers: Read, ReadUpTo, OffsetForTimestamp, LogStartOffset,
//     LogEndOffset, EndOffsetForEpoch, LatestEpoch, EpochEntries, Size,
//     SegmentBases. They take Log.mu for reading only long enough to copy
//     a segment's published size and index slices and to take a reference
//     on its file; file reads happen with no lock held.
//   - Compact reads rolled segments with no lock and takes Log.wmu only to
//     swap the cleaned files in; Log.cleanMu keeps one Compact at a time.
//
// A writer does its file I/O holding only wmu, and then takes Log.mu for
// writing just to publish the new segment size, index entries and log end
// offset. So a reader never sees a half-written batch (it only reads below
// the published size) and never waits for disk I/O behind a writer.
//
// Lock order: cleanMu, then wmu, then mu, then the FileCache's. A segment's
// file stays open while in use: a ReadResult keeps it open until closed,
// even if the segment is deleted meanwhile. A writer about to replace a
// segment's files first drops it from the cache (holding mu), so nobody
// opens the new file by the old name; a reader that finds a segment so
// dropped waits for the writer and looks again.
package storage
