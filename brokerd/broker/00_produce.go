package broker

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/metadata"
	"logpipe/brokerd/recordbatch"
	"logpipe/brokerd/storage"
	"logpipe/brokerd/wire"
)

// Produce v0–v11. Versions 0–2 are advertised because librdkafka only
// compresses when it sees Produce v0 offered (Kafka 4 does the same), but
// they carry the legacy message format, which is refused, as Kafka 4
// refuses it. Batches are validated and stored without decompression.
// acks=0 gets no response.
func init() { register(0, 0, 11, handleProduce) }

func handleProduce(b *Broker, ctx context.Context, c *wire.Conn, _ wire.Header, kreq kmsg.Request) (kmsg.Response, error) {
	req := kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)
	var img *metadata.Image
	// A transactional producer needs WRITE on its transactional id, every
	// producer WRITE on each topic, checked before anything else.
	txnAllowed := req.TransactionID == nil || b.allowed(ctx, c, opWrite, resTxnID, *req.TransactionID)
	for _, rt := range req.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		topicAllowed := txnAllowed && b.allowed(ctx, c, opWrite, resTopic, rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			var err error
			switch {
			case !txnAllowed:
				err = newAPIError(kerr.TransactionalIDAuthorizationFailed, "producing with transactional id %q needs WRITE on it", *req.TransactionID)
			case !topicAllowed:
				err = newAPIError(kerr.TopicAuthorizationFailed, "producing to %q needs WRITE on it", rt.Topic)
			default:
				err = b.produceOne(ctx, req, rt.Topic, &rp, &sp)
			}
			if err != nil {
				sp.ErrorCode, sp.ErrorMessage = codeOf(err)
				sp.BaseOffset = -1
				b.countError("Produce", sp.ErrorCode)
				if sp.ErrorCode == kerr.NotLeaderForPartition.Code && req.Version >= 10 {
					if img == nil {
						img = b.meta.Image()
					}
					resp.Brokers = pointToLeader(img, c, rt.Topic, &sp, resp.Brokers)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if req.Acks == 0 {
		return nil, nil
	}
	return resp, nil
}

// pointToLeader names, in a NOT_LEADER_OR_FOLLOWER answer of Produce
// v10+, the partition's current leader and its epoch (KIP-951), and adds
// that broker to the response's endpoints if it is not there yet, so the
// client can move without asking for metadata.
func pointToLeader(img *metadata.Image, c *wire.Conn, topic string, sp *kmsg.ProduceResponseTopicPartition, brokers []kmsg.ProduceResponseBroker) []kmsg.ProduceResponseBroker {
	t := img.Topic(topic)
	if t == nil || int(sp.Partition) >= len(t.Partitions) {
		return brokers
	}
	p := t.Partitions[sp.Partition]
	br, ok := img.Brokers[p.Leader]
	if p.Leader < 0 || !ok || br.Fenced {
		return brokers
	}
	host, port, ok := endpoint(c, br)
	if !ok {
		return brokers
	}
	sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = p.Leader, p.LeaderEpoch
	if slices.ContainsFunc(brokers, func(e kmsg.ProduceResponseBroker) bool { return e.NodeID == p.Leader }) {
		return brokers
	}
	e := kmsg.NewProduceResponseBroker()
	e.NodeID, e.Host, e.Port = br.ID, host, port
	if br.Rack != "" {
		rack := br.Rack
		e.Rack = &rack
	}
	return append(brokers, e)
}

// produceOne appends one partition's batches and fills its response.
func (b *Broker) produceOne(ctx context.Context, req *kmsg.ProduceRequest, topic string, rp *kmsg.ProduceRequestTopicPartition, sp *kmsg.ProduceResponseTopicPartition) error {
	sp.LogAppendTime = -1
	sp.LogStartOffset = -1
	if req.Version < 3 {
		return newAPIError(kerr.UnsupportedForMessageFormat, "produce v%d carries the legacy message format (magic 0/1), which brokerd refuses as Kafka 4 does; use a client speaking Kafka 0.11 or newer", req.Version)
	}
	if req.Acks != 0 && req.Acks != 1 && req.Acks != -1 {
		return newAPIError(kerr.InvalidRequiredAcks, "acks must be -1, 0 or 1, got %d", req.Acks)
	}
	if req.TransactionID != nil {
		return newAPIError(kerr.InvalidRequest, "brokerd does not support transactions")
	}
	p := b.partition(topic, rp.Partition)
	if p == nil {
		if code := b.absent(topic, rp.Partition); code == kerr.KafkaStorageError.Code {
			return newAPIError(kerr.KafkaStorageError, "the log of %s-%d could not be opened on node %d; it is retried", topic, rp.Partition, b.cfg.NodeID)
		}
		return newAPIError(kerr.UnknownTopicOrPartition, "this broker does not host %s-%d", topic, rp.Partition)
	}
	if !p.leads.Load() {
		return newAPIError(kerr.NotLeaderForPartition, "node %d does not lead %s-%d", b.cfg.NodeID, topic, rp.Partition)
	}
	if hook := afterProducePartition.Load(); hook != nil {
		(*hook)(topic, rp.Partition)
	}
	// The hosted partition and the metadata image are read at different
	// moments: the topic may have been deleted and re-created with fewer
	// partitions in between.
	t := b.meta.Image().Topic(topic)
	if t == nil {
		return newAPIError(kerr.UnknownTopicOrPartition, "topic %q was deleted", topic)
	}
	if int(rp.Partition) >= len(t.Partitions) {
		return newAPIError(kerr.UnknownTopicOrPartition, "topic %q was re-created with %d partitions", topic, len(t.Partitions))
	}
	minISR := 0
	if req.Acks == -1 {
		v, _ := b.effectiveTopicConfig(t.Configs, "min.insync.replicas")
		minISR, _ = strconv.Atoi(v)
		if isr := len(t.Partitions[rp.Partition].ISR); isr < minISR {
			return newAPIError(kerr.NotEnoughReplicas, "%s-%d has %d in-sync replicas, min.insync.replicas is %d", topic, rp.Partition, isr, minISR)
		}
	}
	// acks=all is answered once the ISR has the records: once the high
	// watermark passed them.
	epoch := p.leaderEpoch.Load()
	replicated := func(last int64) error {
		if req.Acks != -1 {
			return nil
		}
		return b.awaitReplicated(ctx, p, last, epoch, time.Duration(max(req.TimeoutMillis, 0))*time.Millisecond, minISR)
	}
	if len(rp.Records) == 0 {
		return newAPIError(kerr.CorruptMessage, "no record batches")
	}
	batch, rest, err := recordbatch.Next(rp.Records)
	if err == nil && len(rest) > 0 {
		return newAPIError(kerr.InvalidRecord, "a produce request must carry exactly one record batch per partition")
	}
	var h recordbatch.Header
	if err == nil {
		h, err = recordbatch.ParseHeader(batch)
	}
	if err != nil {
		if code := recordbatch.ErrorCode(err); code > 0 {
			return &apiError{err: kerr.ErrorForCode(code).(*kerr.Error), msg: err.Error()}
		}
		return newAPIError(kerr.CorruptMessage, "%v", err)
	}
	now := b.now()
	base, last, dup, err := b.appendAsLeader(p, rp.Records, h, now)
	if dup {
		sp.BaseOffset = base
		sp.LogStartOffset = p.log.LogStartOffset()
		return replicated(last)
	}
	if err != nil {
		// Refusals with a Kafka code of their own first (producer state),
		// then batch and log errors; only what is left is a storage error.
		var ae *apiError
		if errors.As(err, &ae) {
			return err
		}
		if code := recordbatch.ErrorCode(err); code > 0 {
			return &apiError{err: kerr.ErrorForCode(code).(*kerr.Error), msg: err.Error()}
		}
		if code := storage.ErrorCode(err); code != kerr.KafkaStorageError.Code {
			return &apiError{err: kerr.ErrorForCode(code).(*kerr.Error), msg: err.Error()}
		}
		// An I/O failure (a full disk, a failing device): the operator
		// needs to see it, not only the client.
		b.log.Error("append failed", "topic", topic, "partition", rp.Partition, "err", err)
		return newAPIError(kerr.KafkaStorageError, "%v", err)
	}
	sp.BaseOffset = base
	sp.LogStartOffset = p.log.LogStartOffset()
	if p.log.Config().LogAppendTime {
		sp.LogAppendTime = now.UnixMilli()
	}
	if b.hooks.BytesIn != nil {
		b.hooks.BytesIn(topic, int64(len(rp.Records)), last-base+1)
	}
	return replicated(last)
}

// afterProducePartition, when set (by tests only), is called by a produce
// between finding the hosted partition and reading the topic's metadata.
var afterProducePartition atomic.Pointer[func(topic string, partition int32)]

// appendAsLeader appends one batch (whose header is h) to a hosted
// partition and wakes its fetchers. For an idempotent producer the
// sequence is checked first, under the same lock as the append; a retried
// batch is not written again and dup is true, with its original offsets.
func (b *Broker) appendAsLeader(p *partition, batch []byte, h recordbatch.Header, now time.Time) (base, last int64, dup bool, err error) {
	p.appendMu.Lock()
	defer p.appendMu.Unlock()
	idempotent := h.HasProducerID() && h.BaseSequence >= 0
	if idempotent {
		d, cerr := p.producers.Check(h.ProducerID, h.ProducerEpoch, h.BaseSequence, lastSequence(h))
		if cerr != nil {
			return -1, -1, false, producerError(cerr)
		}
		if d != nil {
			return d.FirstOffset, d.LastOffset, true, nil
		}
	}
	base, last, err = p.log.AppendAsLeader(batch, p.leaderEpoch.Load(), now)
	if err != nil {
		return -1, -1, false, err
	}
	if idempotent {
		m := batchMeta(h)
		m.FirstOffset, m.LastOffset = base, last
		if p.log.Config().LogAppendTime {
			m.Timestamp = now.UnixMilli()
		}
		p.producers.Update(h.ProducerID, h.ProducerEpoch, m)
	}
	b.advanced(p)
	return base, last, false, nil
}
