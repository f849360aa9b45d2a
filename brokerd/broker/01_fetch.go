package broker

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/fetchsession"
	"logpipe/brokerd/storage"
	"logpipe/brokerd/wire"
)

// Fetch v4–v12, isolation read_uncommitted (read_committed reads the same:
// brokerd has no transactions, so the last stable offset is the high
// watermark). Fetch sessions (v7+, KIP-227) are kept by the fetchsession
// cache: a request is sessionless, full (opening a session), incremental
// (reading every partition of its session, answering only those with
// news) or refused for its session fields. Records are never decoded nor
// copied into memory: each partition's records field is a wire.Splice of
// a segment file's range, which the connection sends with sendfile(2). A
// fetch with fewer than min_bytes ready and no partition in error waits up
// to max_wait_ms for a change of any partition it reads, which for an
// incremental fetch is every partition of its session (fetchwait.go).
func init() { register(1, 4, 12, handleFetch) }

func handleFetch(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	sf := b.fetchSessions.Open(kreq.(*kmsg.FetchRequest))
	// The request as its session reads it: an incremental one reads every
	// partition of the session, with the parameters the session holds.
	req := new(kmsg.FetchRequest)
	*req = *kreq.(*kmsg.FetchRequest)
	req.Topics = sf.Topics
	if sf.Kind == fetchsession.Failed {
		return b.finishFetch(sf, req, &wire.SplicedResponse{Response: req.ResponseKind()}), nil
	}
	denied := b.fetchDenied(ctx, c, req)
	deadline := time.Now().Add(time.Duration(max(req.MaxWaitMillis, 0)) * time.Millisecond)
	maxBytes := req.MaxBytes
	if maxBytes <= 0 {
		maxBytes = 1<<31 - 1
	}
	// As Kafka does, answer at once with enough data, with an error in any
	// partition, when there is nothing to read (a consumer closing its
	// session sends no partitions), or when the time is up (or the
	// connection or the broker is closing).
	empty := !slices.ContainsFunc(req.Topics, func(rt kmsg.FetchRequestTopic) bool { return len(rt.Partitions) > 0 })
	answer := func(total int, failed bool) bool {
		return failed || empty || total >= int(req.MinBytes) || !time.Now().Before(deadline) || ctx.Err() != nil
	}
	if req.ReplicaID >= 0 && denied == nil {
		// A follower: the offsets it fetches at are its log end offsets,
		// those it left out of an incremental request included.
		b.replicaFetched(req)
	}
	// Data that is already there is answered without registering a wait.
	resp, total, failed := b.fetchOnce(req, maxBytes, nil, denied)
	if answer(total, failed) {
		return b.finishFetch(sf, req, resp), nil
	}
	resp.Done(false)
	wait := &fetchWait{w: newWaiter()}
	defer wait.release()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		// fetchOnce registers the wait on each partition before reading
		// it, so a change made at any moment after the read began wakes
		// the select below, even one made before the select is reached.
		resp, total, failed = b.fetchOnce(req, maxBytes, wait, denied)
		if answer(total, failed) {
			return b.finishFetch(sf, req, resp), nil
		}
		resp.Done(false)
		if hook := beforeFetchWait.Load(); hook != nil {
			(*hook)()
		}
		select {
		case <-wait.w:
		case <-timer.C:
		case <-ctx.Done():
		case <-b.quit:
			deadline = time.Now()
		}
	}
}

// finishFetch writes the session's part of the answer to req read for sf:
// the session id, a session error, the partitions an incremental answer
// leaves out. An answer reduced to a session error gives back what it
// read.
func (b *Broker) finishFetch(sf *fetchsession.Fetch, req *kmsg.FetchRequest, out *wire.SplicedResponse) *wire.SplicedResponse {
	resp := out.Response.(*kmsg.FetchResponse)
	sf.Finish(resp)
	if resp.ErrorCode != 0 {
		b.countError("Fetch", resp.ErrorCode)
		if out.Done != nil {
			out.Done(false)
		}
		out.Done, out.Splices = nil, nil
	}
	if hook := afterFetch.Load(); hook != nil {
		(*hook)(sf.Kind, req, resp)
	}
	return out
}

// afterFetch, when set (by tests only), is called with each fetch answer
// about to be sent: how it was served, the request as its session read it
// (every partition of the session for an incremental fetch) and the
// answer.
var afterFetch atomic.Pointer[func(kind fetchsession.Kind, read *kmsg.FetchRequest, resp *kmsg.FetchResponse)]

// fetchDenied returns the topics of req the sender may not fetch, nil
// when there are none: for a consumer those it may not READ, for a
// follower every topic unless it may CLUSTER_ACTION on the cluster.
func (b *Broker) fetchDenied(ctx context.Context, c *wire.Conn, req *kmsg.FetchRequest) map[string]bool {
	if b.authz == nil {
		return nil
	}
	follower := req.ReplicaID >= 0
	clusterOK := follower && b.allowedCluster(ctx, c, opClusterAction)
	var denied map[string]bool
	for _, rt := range req.Topics {
		if clusterOK || !follower && b.allowed(ctx, c, opRead, resTopic, rt.Topic) {
			continue
		}
		if denied == nil {
			denied = map[string]bool{}
		}
		denied[rt.Topic] = true
	}
	return denied
}

// fetchOnce builds a response from what is there now. It returns the
// bytes of records included and whether any partition is answered with an
// error. If wait is not nil, it is registered on each partition read
// before the partition is read. The partitions of denied topics answer
// TOPIC_AUTHORIZATION_FAILED. The response holds the segment files it
// reads until its Done runs, which also counts the bytes sent.
func (b *Broker) fetchOnce(req *kmsg.FetchRequest, maxBytes int32, wait *fetchWait, denied map[string]bool) (*wire.SplicedResponse, int, bool) {
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	var reads []storage.ReadResult
	var topics []string // of each read
	out := &wire.SplicedResponse{Response: resp, Done: func(sent bool) {
		for i, rr := range reads {
			rr.Close()
			if sent && b.hooks.BytesOut != nil {
				b.hooks.BytesOut(topics[i], rr.Size)
			}
		}
	}}
	total, failed := 0, false
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic = rt.Topic
		st.TopicID = rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			p := b.partition(rt.Topic, rp.Partition)
			switch {
			case denied[rt.Topic]:
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case p == nil:
				sp.ErrorCode = b.absent(rt.Topic, rp.Partition)
			case !p.leads.Load():
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
			case req.ReplicaID >= 0 && req.Version >= 12 && rp.LastFetchedEpoch >= 0 && b.diverged(p, rp, &sp):
				// The follower's log parted from this one: it truncates
				// first (DivergingEpoch says where), so answer at once.
				failed = true
			case req.Version >= 9 && rp.CurrentLeaderEpoch >= 0 && rp.CurrentLeaderEpoch < p.leaderEpoch.Load():
				sp.ErrorCode = kerr.FencedLeaderEpoch.Code
			case req.Version >= 9 && rp.CurrentLeaderEpoch > p.leaderEpoch.Load():
				sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
			default:
				if wait != nil {
					wait.add(p)
				}
				limit := int(rp.PartitionMaxBytes)
				if left := int(maxBytes) - total; left < limit {
					limit = left
				}
				if limit < 0 {
					limit = 0
				}
				// The first partition with data always returns at least
				// one whole batch, so a consumer can pass a batch larger
				// than its limits (KIP-74).
				hw := p.highWatermark()
				sp.HighWatermark, sp.LastStableOffset = hw, hw
				sp.LogStartOffset = p.log.LogStartOffset()
				if total > 0 && limit == 0 {
					break
				}
				if total > 0 {
					limit = max(limit, 1)
				}
				upTo := hw
				if req.ReplicaID >= 0 {
					upTo = math.MaxInt64 // followers read to the log end
				}
				rr, err := p.log.ReadUpTo(rp.FetchOffset, max(limit, 1), upTo)
				if err != nil {
					if errors.Is(err, storage.ErrOffsetOutOfRange) {
						sp.ErrorCode = kerr.OffsetOutOfRange.Code
					} else {
						sp.ErrorCode = kerr.KafkaStorageError.Code
						b.log.Warn("fetch read failed", "topic", rt.Topic, "partition", rp.Partition, "err", err)
					}
					break
				}
				if total > 0 && rr.Size > int64(limit) {
					rr.Close()
					break
				}
				if rr.Size == 0 {
					rr.Close()
					sp.RecordBatches = []byte{}
					break
				}
				reads = append(reads, rr)
				sp.RecordBatches = wire.NewMarker()
				out.Splices = append(out.Splices, wire.Splice{Marker: sp.RecordBatches, Size: rr.Size, Data: rr})
				total += int(rr.Size)
				topics = append(topics, rt.Topic)
			}
			if sp.ErrorCode != 0 && req.ReplicaID < 0 {
				// As Kafka answers a consumer's partition in error: no
				// offsets. A follower keeps them; brokerd's replica
				// fetcher restarts from them after OFFSET_OUT_OF_RANGE.
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			}
			b.countError("Fetch", sp.ErrorCode)
			failed = failed || sp.ErrorCode != 0
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return out, total, failed
}

// replicaFetched records a follower's fetch offsets on the partitions it
// fetches that this node leads.
func (b *Broker) replicaFetched(req *kmsg.FetchRequest) {
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			if p := b.partition(rt.Topic, rp.Partition); p != nil && p.leads.Load() {
				b.followerFetched(p, req.ReplicaID, rp.FetchOffset)
			}
		}
	}
}

// diverged reports whether a follower whose last batch has leader epoch
// rp.LastFetchedEpoch and whose log ends at rp.FetchOffset holds records
// this log does not; it then sets where the logs part: the end of the
// largest epoch both know.
func (b *Broker) diverged(p *partition, rp kmsg.FetchRequestTopicPartition, sp *kmsg.FetchResponseTopicPartition) bool {
	epoch, end := p.log.EndOffsetForEpoch(rp.LastFetchedEpoch)
	if epoch == rp.LastFetchedEpoch && end >= rp.FetchOffset {
		return false
	}
	sp.DivergingEpoch.Epoch, sp.DivergingEpoch.EndOffset = epoch, end
	sp.HighWatermark = p.highWatermark()
	sp.LastStableOffset = sp.HighWatermark
	sp.LogStartOffset = p.log.LogStartOffset()
	return true
}
