package broker_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/broker"
	"logpipe/brokerd/recordbatch"
)

// consumeAll reads n records of topic from the start.
func consumeAll(t *testing.T, addr, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := clClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx := ctxT(t)
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(out), n, err)
		}
		fs.EachError(func(tp string, p int32, err error) { t.Fatalf("fetch %s-%d: %v", tp, p, err) })
		out = append(out, fs.Records()...)
	}
	return out
}

func TestFranzGoProduceConsumeEveryCodec(t *testing.T) {
	cb := clStart(t, "", nil)
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	for name, codec := range codecs {
		for _, idem := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/idempotent=%v", name, idem), func(t *testing.T) {
				topic := fmt.Sprintf("codec-%s-%v", name, idem)
				opts := []kgo.Opt{kgo.ProducerBatchCompression(codec), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation()}
				if !idem {
					opts = append(opts, kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.LeaderAck()))
				}
				cl := clClient(t, cb.addr, opts...)
				ctx := ctxT(t)
				const n = 200
				var recs []*kgo.Record
				for i := 0; i < n; i++ {
					r := &kgo.Record{Key: []byte("k" + strconv.Itoa(i%7)), Value: []byte(fmt.Sprintf("value %d %s", i, name))}
					if i%10 == 0 {
						r.Value = nil // a tombstone-like null value
					}
					if i%3 == 0 {
						r.Headers = []kgo.RecordHeader{{Key: "h", Value: []byte(strconv.Itoa(i))}, {Key: "empty"}}
					}
					recs = append(recs, r)
				}
				if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
					t.Fatal(err)
				}
				got := consumeAll(t, cb.addr, topic, n)
				for i, r := range got {
					want := recs[i]
					if r.Offset != int64(i) || string(r.Key) != string(want.Key) || string(r.Value) != string(want.Value) || (r.Value == nil) != (want.Value == nil) {
						t.Fatalf("record %d: got offset %d key %q value %q", i, r.Offset, r.Key, r.Value)
					}
					if len(r.Headers) != len(want.Headers) {
						t.Fatalf("record %d headers %v", i, r.Headers)
					}
					for j := range r.Headers {
						if r.Headers[j].Key != want.Headers[j].Key || string(r.Headers[j].Value) != string(want.Headers[j].Value) {
							t.Fatalf("record %d header %d: %v", i, j, r.Headers[j])
						}
					}
				}
			})
		}
	}
}

func TestAdminWithKadm(t *testing.T) {
	cb := clStart(t, "", func(c *broker.Config) { c.AutoCreateTopics = false })
	adm := kadm.NewClient(clClient(t, cb.addr))
	ctx := ctxT(t)

	res, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"retention.ms": kadm.StringPtr("3600000"), "cleanup.policy": kadm.StringPtr("compact")}, "admin-a")
	if err != nil || res.Err != nil {
		t.Fatalf("create: %v %v", err, res.Err)
	}
	if res, _ := adm.CreateTopic(ctx, 1, 1, nil, "admin-a"); !errors.Is(res.Err, kerr.TopicAlreadyExists) {
		t.Fatalf("duplicate create: %v", res.Err)
	}
	if res, _ := adm.CreateTopic(ctx, 1, 3, nil, "admin-rf"); !errors.Is(res.Err, kerr.InvalidReplicationFactor) {
		t.Fatalf("rf 3 on one broker: %v", res.Err)
	}
	if res, _ := adm.CreateTopic(ctx, 1, 1, map[string]*string{"no.such.config": kadm.StringPtr("1")}, "admin-bad"); !errors.Is(res.Err, kerr.InvalidConfig) {
		t.Fatalf("bad config: %v", res.Err)
	}
	if res, _ := adm.CreateTopic(ctx, 1, 1, nil, "bad/name"); !errors.Is(res.Err, kerr.InvalidTopicException) {
		t.Fatalf("bad name: %v", res.Err)
	}
	if res, _ := adm.ValidateCreateTopics(ctx, 2, 1, nil, "admin-validate"); res.Error() != nil {
		t.Fatalf("validate only: %v", res.Error())
	}

	details, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !details.Has("admin-a") || details.Has("admin-validate") || len(details["admin-a"].Partitions) != 3 {
		t.Fatalf("list: %v", details.Names())
	}

	rcs, err := adm.DescribeTopicConfigs(ctx, "admin-a")
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := rcs.On("admin-a", nil)
	vals := map[string]string{}
	for _, c := range rc.Configs {
		vals[c.Key] = c.MaybeValue()
	}
	if vals["retention.ms"] != "3600000" || vals["cleanup.policy"] != "compact" || vals["segment.bytes"] != "1073741824" {
		t.Fatalf("configs: %v", vals)
	}

	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("60000")}, {Op: kadm.AppendConfig, Name: "cleanup.policy", Value: kadm.StringPtr("delete")}}, "admin-a"); err != nil {
		t.Fatal(err)
	}
	rcs, _ = adm.DescribeTopicConfigs(ctx, "admin-a")
	rc, _ = rcs.On("admin-a", nil)
	for _, c := range rc.Configs {
		vals[c.Key] = c.MaybeValue()
	}
	if vals["retention.ms"] != "60000" || vals["cleanup.policy"] != "compact,delete" {
		t.Fatalf("after alter: %v", vals)
	}
	// Deleting what is not set removes nothing and succeeds, on a topic
	// whatever the name, on a broker too (what kafka-reassign-partitions
	// --verify sends); setting a broker config or an unknown topic config
	// is refused.
	del := []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "follower.replication.throttled.replicas"}}
	if rs, err := adm.AlterTopicConfigs(ctx, del, "admin-a"); err != nil || rs[0].Err != nil {
		t.Fatalf("deleting an unset topic config: %v %v", err, rs[0].Err)
	}
	if rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: "leader.replication.throttled.rate"}}, 1); err != nil || rs[0].Err != nil {
		t.Fatalf("deleting a broker config: %v %v", err, rs[0].Err)
	}
	if rs, err := adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "leader.replication.throttled.rate", Value: kadm.StringPtr("1")}}, 1); err != nil || !errors.Is(rs[0].Err, kerr.InvalidRequest) {
		t.Fatalf("setting a broker config: %v %v, want INVALID_REQUEST", err, rs[0].Err)
	}
	if rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "no.such.config", Value: kadm.StringPtr("1")}}, "admin-a"); err != nil || !errors.Is(rs[0].Err, kerr.InvalidConfig) {
		t.Fatalf("setting an unknown topic config: %v %v, want INVALID_CONFIG", err, rs[0].Err)
	}

	if _, err := adm.CreatePartitions(ctx, 2, "admin-a"); err != nil {
		t.Fatal(err)
	}
	if r, _ := adm.UpdatePartitions(ctx, 2, "admin-a"); r.Error() == nil {
		t.Fatal("shrinking partitions accepted")
	}
	details, _ = adm.ListTopics(ctx, "admin-a")
	if len(details["admin-a"].Partitions) != 5 {
		t.Fatalf("partitions after create: %d", len(details["admin-a"].Partitions))
	}

	// Produce, then delete records below offset 3 and check the offsets.
	cl := clClient(t, cb.addr, kgo.DefaultProduceTopic("admin-a"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := 0; i < 5; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}, Partition: 0}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := adm.DeleteRecords(ctx, kadm.Offsets{"admin-a": {0: {At: 3}}}); err != nil {
		t.Fatal(err)
	}
	starts, _ := adm.ListStartOffsets(ctx, "admin-a")
	ends, _ := adm.ListEndOffsets(ctx, "admin-a")
	if s, _ := starts.Lookup("admin-a", 0); s.Offset != 3 {
		t.Fatalf("start offset %d", s.Offset)
	}
	if e, _ := ends.Lookup("admin-a", 0); e.Offset != 5 {
		t.Fatalf("end offset %d", e.Offset)
	}

	if r, err := adm.DeleteTopics(ctx, "admin-a"); err != nil || r.Error() != nil {
		t.Fatal(err, r.Error())
	}
	// A fresh client: kadm answers from the client's metadata cache.
	details, _ = kadm.NewClient(clClient(t, cb.addr)).ListTopics(ctx)
	if details.Has("admin-a") {
		t.Fatal("topic still listed after delete")
	}
	if _, err := os.Stat(cb.dir + "/admin-a-0"); !os.IsNotExist(err) {
		t.Fatalf("partition folder left behind: %v", err)
	}
	if r, _ := adm.DeleteTopics(ctx, "admin-a"); !errors.Is(r["admin-a"].Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("second delete: %v", r["admin-a"].Err)
	}
	cluster, err := adm.BrokerMetadata(ctx)
	if err != nil || len(cluster.Brokers) != 1 || cluster.Cluster == "" {
		t.Fatalf("cluster: %+v %v", cluster, err)
	}
}

func TestFetchOutOfRangeAndTimestamps(t *testing.T) {
	cb := clStart(t, "", nil)
	ctx := ctxT(t)
	cl := clClient(t, cb.addr, kgo.DefaultProduceTopic("ts"), kgo.AllowAutoTopicCreation())
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	for i := 0; i < 10; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}, Timestamp: base.Add(time.Duration(i) * time.Minute)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	offs, err := adm.ListOffsetsAfterMilli(ctx, base.Add(4*time.Minute+time.Second).UnixMilli(), "ts")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := offs.Lookup("ts", 0); o.Offset != 5 {
		t.Fatalf("offset for timestamp: %+v", o)
	}
	offs, _ = adm.ListOffsetsAfterMilli(ctx, base.Add(time.Hour).UnixMilli(), "ts")
	if o, _ := offs.Lookup("ts", 0); o.Offset != 10 {
		t.Fatalf("offset after every record: %+v (franz-go maps 'none' to the end)", o)
	}

	// A consumer asking past the end gets OFFSET_OUT_OF_RANGE and resets.
	c := clClient(t, cb.addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"ts": {0: kgo.NewOffset().At(50)}}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got int
	for got < 10 {
		fs := c.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("no reset after out of range: %d records", got)
		}
		got += len(fs.Records())
	}
}

func TestLegacyMessageFormatRefused(t *testing.T) {
	cb := clStart(t, "", nil)
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V0_10_2_0 // produce v2, magic 1 message sets
	cfg.Producer.Return.Successes = true
	cfg.Producer.Retry.Max = 0
	p, err := sarama.NewSyncProducer([]string{cb.addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: "legacy", Value: sarama.StringEncoder("old")})
	if !errors.Is(err, sarama.ErrUnsupportedForMessageFormat) {
		t.Fatalf("legacy produce: %v", err)
	}
	// Nothing was stored.
	adm := kadm.NewClient(clClient(t, cb.addr))
	ends, _ := adm.ListEndOffsets(ctxT(t), "legacy")
	if e, _ := ends.Lookup("legacy", 0); e.Offset != 0 {
		t.Fatalf("legacy records stored: end %d", e.Offset)
	}
}

func TestSaramaProducersAndConsumer(t *testing.T) {
	for _, codec := range []sarama.CompressionCodec{sarama.CompressionNone, sarama.CompressionGZIP, sarama.CompressionSnappy, sarama.CompressionLZ4, sarama.CompressionZSTD} {
		t.Run(codec.String(), func(t *testing.T) { saramaRoundTrip(t, codec) })
	}
}

func saramaRoundTrip(t *testing.T, codec sarama.CompressionCodec) {
	cb := clStart(t, "", nil)
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Compression = codec
	sp, err := sarama.NewSyncProducer([]string{cb.addr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		part, off, err := sp.SendMessage(&sarama.ProducerMessage{Topic: "sarama", Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder(strconv.Itoa(i)),
			Headers: []sarama.RecordHeader{{Key: []byte("n"), Value: []byte(strconv.Itoa(i))}}})
		if err != nil || part != 0 || off != int64(i) {
			t.Fatalf("send %d: partition %d offset %d err %v", i, part, off, err)
		}
	}
	sp.Close()

	acfg := sarama.NewConfig()
	acfg.Version = sarama.V3_6_0_0
	acfg.Producer.Return.Successes = true
	acfg.Producer.Compression = codec
	ap, err := sarama.NewAsyncProducer([]string{cb.addr}, acfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 50; i < 100; i++ {
		ap.Input() <- &sarama.ProducerMessage{Topic: "sarama", Key: sarama.StringEncoder("k"), Value: sarama.StringEncoder(strconv.Itoa(i))}
	}
	for i := 50; i < 100; i++ {
		select {
		case <-ap.Successes():
		case err := <-ap.Errors():
			t.Fatal(err)
		case <-time.After(30 * time.Second):
			t.Fatal("async producer stalled")
		}
	}
	ap.Close()

	c, err := sarama.NewConsumer([]string{cb.addr}, acfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pc, err := c.ConsumePartition("sarama", 0, sarama.OffsetOldest)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for i := 0; i < 100; i++ {
		select {
		case m := <-pc.Messages():
			if m.Offset != int64(i) || string(m.Value) != strconv.Itoa(i) {
				t.Fatalf("message %d: offset %d value %q", i, m.Offset, m.Value)
			}
			if i < 50 && (len(m.Headers) != 1 || string(m.Headers[0].Value) != strconv.Itoa(i)) {
				t.Fatalf("message %d headers %v", i, m.Headers)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("consumer stalled at %d", i)
		}
	}
}

func TestRestartKeepsDataAndProducerState(t *testing.T) {
	dir := t.TempDir()
	cb := clStart(t, dir, nil)
	ctx := ctxT(t)
	cl := clClient(t, cb.addr, kgo.DefaultProduceTopic("keep"), kgo.AllowAutoTopicCreation())
	for i := 0; i < 20; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	cb.stop()

	cb = clStart(t, dir, nil)
	got := consumeAll(t, cb.addr, "keep", 20)
	for i, r := range got {
		if string(r.Value) != strconv.Itoa(i) || r.Offset != int64(i) {
			t.Fatalf("record %d after restart: %d %q", i, r.Offset, r.Value)
		}
	}
	// New producers get ids that were never handed out before the restart.
	cl = clClient(t, cb.addr, kgo.DefaultProduceTopic("keep"))
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// produceIdempotent sends one batch of one record to partition 0 of topic
// as the idempotent producer id at epoch with first sequence seq, and
// returns the partition's error code and base offset.
func produceIdempotent(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, id int64, epoch int16, seq int32) (int16, int64) {
	t.Helper()
	now := time.Now().UnixMilli()
	payload := recordbatch.AppendRecord(nil, kmsg.Record{Value: []byte("x")})
	batch := recordbatch.Build(recordbatch.Header{RecordCount: 1, ProducerID: id, ProducerEpoch: epoch, BaseSequence: seq, BaseTimestamp: now, MaxTimestamp: now}, payload)
	req := produceTo(topic, 0)
	req.Topics[0].Partitions[0].Records = batch
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	return p.ErrorCode, p.BaseOffset
}

// TestIdempotenceErrors sends raw produce requests of an idempotent
// producer: a gap in sequence numbers is OUT_OF_ORDER_SEQUENCE_NUMBER, a
// retried batch gets its first offset back without a second copy, and an
// older epoch after a newer one is INVALID_PRODUCER_EPOCH.
func TestIdempotenceErrors(t *testing.T) {
	cb := clStart(t, "", nil)
	ctx := ctxT(t)
	cl := clClient(t, cb.addr)
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "idem"); err != nil {
		t.Fatal(err)
	}
	init, err := kmsg.NewPtrInitProducerIDRequest().RequestWith(ctx, cl)
	if err != nil || init.ErrorCode != 0 {
		t.Fatalf("InitProducerId: %v %d", err, init.ErrorCode)
	}
	produce := func(epoch int16, seq int32) (int16, int64) {
		t.Helper()
		return produceIdempotent(t, ctx, cl, "idem", init.ProducerID, epoch, seq)
	}
	if code, _ := produce(0, 5); code != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("first batch at sequence 5: %v", kerr.ErrorForCode(code))
	}
	if code, off := produce(0, 0); code != 0 || off != 0 {
		t.Fatalf("sequence 0: %v offset %d", kerr.ErrorForCode(code), off)
	}
	if code, off := produce(0, 0); code != 0 || off != 0 {
		t.Fatalf("retry of sequence 0: %v offset %d", kerr.ErrorForCode(code), off)
	}
	if code, _ := produce(0, 2); code != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap: %v", kerr.ErrorForCode(code))
	}
	if code, off := produce(1, 0); code != 0 || off != 1 {
		t.Fatalf("new epoch: %v offset %d", kerr.ErrorForCode(code), off)
	}
	if code, _ := produce(0, 1); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("fenced epoch: %v", kerr.ErrorForCode(code))
	}
	ends, _ := kadm.NewClient(cl).ListEndOffsets(ctx, "idem")
	if e, _ := ends.Lookup("idem", 0); e.Offset != 2 {
		t.Fatalf("end offset %d: a duplicate or refused batch was written", e.Offset)
	}
}
