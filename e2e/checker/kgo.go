package checker

import (
	"errors"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// rejectedBeforeAppend are the produce errors with which a broker refuses a
// batch before writing any of it.
var rejectedBeforeAppend = []*kerr.Error{
	kerr.NotEnoughReplicas,
	kerr.MessageTooLarge,
	kerr.RecordListTooLarge,
	kerr.CorruptMessage,
	kerr.InvalidRecord,
	kerr.InvalidTimestamp,
	kerr.InvalidRequiredAcks,
	kerr.InvalidTopicException,
	kerr.TopicAuthorizationFailed,
	kerr.ClusterAuthorizationFailed,
	kerr.UnsupportedForMessageFormat,
	kerr.UnsupportedCompressionType,
}

// Definite reports whether a produce error from franz-go means the record was
// certainly not written: the broker answered the last attempt with an error
// it returns before appending, and the client gave up without a timeout.
// Everything else (timeouts, lost connections, a closed client, cancelled
// contexts, NOT_ENOUGH_REPLICAS_AFTER_APPEND, errors of other clients) is
// indeterminate. franz-go keeps retrying a record whose earlier attempt is in
// doubt, but a retry after a lost connection can still be answered with a
// rejection although the lost attempt was written; a test that cuts
// connections while expecting rejections should treat those as
// indeterminate itself.
func Definite(err error) bool {
	if err == nil || errors.Is(err, kgo.ErrRecordTimeout) || errors.Is(err, kgo.ErrRecordRetries) {
		return false
	}
	ke, ok := errors.AsType[*kerr.Error](err)
	return ok && slices.Contains(rejectedBeforeAppend, ke)
}

// SendRecord records that producer is about to produce r: Send with r's
// topic, key and value.
func (h *History) SendRecord(producer string, r *kgo.Record) {
	h.Send(producer, r.Topic, string(r.Key), string(r.Value))
}

// Promise is a franz-go produce promise recording the outcome of r, sent
// after SendRecord: acknowledged at r's partition and offset, failed when
// Definite says so, indeterminate otherwise. Pass h.Promise to
// (*kgo.Client).Produce. franz-go retries retriable errors such as
// NOT_ENOUGH_REPLICAS until its record retries (kgo.RecordRetries) run out,
// so a test expecting definite failures limits them.
func (h *History) Promise(r *kgo.Record, err error) {
	v := string(r.Value)
	switch {
	case err == nil:
		h.Acked(v, r.Partition, r.Offset)
	case Definite(err):
		h.Failed(v, err)
	default:
		h.Indeterminate(v, err)
	}
}

// ReadRecord records that reader read r: Read with r's topic, partition,
// offset and value.
func (h *History) ReadRecord(reader string, r *kgo.Record) {
	h.Read(reader, r.Topic, r.Partition, r.Offset, string(r.Value))
}
