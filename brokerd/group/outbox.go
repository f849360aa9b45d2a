package group

import (
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Outbox collects what groups ask their driver to do after an event: the
// records to persist and the responses to send. A Group never does I/O
// itself. The driver takes the writes first, appends each to the group's
// __consumer_offsets partition and reports the outcome with Write.Done
// (which may add further writes and replies), and only then delivers the
// replies, so that no client hears of a change before it is stored.
type Outbox struct {
	// Writes are the pending appends, oldest first.
	Writes []*Write
	// Replies are the responses ready to send, oldest first.
	Replies []Reply
}

// TakeWrites returns the pending writes and clears them.
func (o *Outbox) TakeWrites() []*Write {
	w := o.Writes
	o.Writes = nil
	return w
}

// TakeReplies returns the ready replies and clears them.
func (o *Outbox) TakeReplies() []Reply {
	r := o.Replies
	o.Replies = nil
	return r
}

// Reply is a response for a request whose answer was deferred (or is
// ready now). Ref is the value the driver passed with the request.
type Reply struct {
	Ref  any
	Resp kmsg.Response
}

// Write is a set of records for the __consumer_offsets partition of
// Group, to be appended as one batch.
type Write struct {
	Group   string
	Records []Record
	done    func(now time.Time, err error)
}

// Done reports the outcome of the append: nil once the records are
// stored, else the error (a *kerr.Error gives the Kafka code). It must be
// called exactly once per write, in the order the writes were taken, and
// before the group's next event.
func (w *Write) Done(now time.Time, err error) {
	if w.done != nil {
		w.done(now, err)
		w.done = nil
	}
}

// appendCode is the Kafka code of an append error.
func appendCode(err error) int16 {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return kerr.UnknownServerError.Code
}

// commitErrorCode maps an append error to what an OffsetCommit answers, as
// Kafka's GroupMetadataManager does.
func commitErrorCode(err error) int16 {
	switch c := appendCode(err); c {
	case kerr.UnknownTopicOrPartition.Code, kerr.NotEnoughReplicas.Code, kerr.NotEnoughReplicasAfterAppend.Code:
		return kerr.CoordinatorNotAvailable.Code
	case kerr.NotLeaderForPartition.Code, kerr.KafkaStorageError.Code:
		return kerr.NotCoordinator.Code
	case kerr.MessageTooLarge.Code, kerr.RecordListTooLarge.Code, kerr.InvalidFetchSize.Code:
		return kerr.InvalidCommitOffsetSize.Code
	default:
		return c
	}
}

// storeErrorCode maps an append error of group metadata to what JoinGroup
// and SyncGroup answer, as Kafka's GroupMetadataManager does.
func storeErrorCode(err error) int16 {
	switch c := appendCode(err); c {
	case kerr.UnknownTopicOrPartition.Code, kerr.NotEnoughReplicas.Code, kerr.NotEnoughReplicasAfterAppend.Code:
		return kerr.CoordinatorNotAvailable.Code
	case kerr.NotLeaderForPartition.Code, kerr.KafkaStorageError.Code:
		return kerr.NotCoordinator.Code
	case kerr.RequestTimedOut.Code:
		return kerr.RebalanceInProgress.Code
	default:
		return kerr.UnknownServerError.Code
	}
}
