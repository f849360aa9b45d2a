package brokerd_test

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"logpipe/brokerd/recordbatch"
	"logpipe/internal/devstack"
)

// observations collects what a client sees of one scenario, as text, so
// that brokerd's and Kafka's can be compared line by line.
type observations []string

func (o *observations) add(format string, args ...any) { *o = append(*o, fmt.Sprintf(format, args...)) }

func errName(code int16) string {
	if code == 0 {
		return "OK"
	}
	if e, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return e.Message
	}
	return strconv.Itoa(int(code))
}

// scenario runs the same client steps against a broker with
// auto.create.topics.enable=false and records what they return.
func scenario(t *testing.T, boot string) observations {
	t.Helper()
	var obs observations
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(boot), kgo.DefaultProduceTopic("diff"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0),
		// Requests by topic name (Fetch v12), which both brokers serve;
		// Kafka's v13+ would address topics by id.
		kgo.MaxVersions(kversion.V3_0_0()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)

	// Topic admin and its errors.
	r, err := adm.CreateTopic(ctx, 2, 1, nil, "diff")
	obs.add("create diff: %v %v", err, r.Err)
	r, _ = adm.CreateTopic(ctx, 2, 1, nil, "diff")
	obs.add("create diff again: %v", r.Err)
	r, _ = adm.CreateTopic(ctx, 0, 1, nil, "zero-partitions")
	obs.add("create with 0 partitions: %v", r.Err)
	r, _ = adm.CreateTopic(ctx, 1, 1, nil, "bad name!")
	obs.add("create with a bad name: %v", r.Err)

	// Produce with keys and headers; offsets per partition.
	for i := 0; i < 10; i++ {
		rec := &kgo.Record{Partition: int32(i % 2), Key: []byte("k" + strconv.Itoa(i)), Value: []byte("v" + strconv.Itoa(i)),
			Headers: []kgo.RecordHeader{{Key: "i", Value: []byte(strconv.Itoa(i))}}, Timestamp: time.UnixMilli(1_700_000_000_000 + int64(i)*1000)}
		if i == 9 {
			rec.Value = nil
		}
		res := cl.ProduceSync(ctx, rec)
		if err := res.FirstErr(); err != nil {
			obs.add("produce %d: %v", i, err)
			continue
		}
		obs.add("produce %d -> partition %d offset %d", i, res[0].Record.Partition, res[0].Record.Offset)
	}

	// Offsets: earliest, latest, by timestamp.
	starts, _ := adm.ListStartOffsets(ctx, "diff")
	ends, _ := adm.ListEndOffsets(ctx, "diff")
	byTime, _ := adm.ListOffsetsAfterMilli(ctx, 1_700_000_000_000+4500, "diff")
	for p := int32(0); p < 2; p++ {
		s, _ := starts.Lookup("diff", p)
		e, _ := ends.Lookup("diff", p)
		b, _ := byTime.Lookup("diff", p)
		obs.add("partition %d: start %d end %d after-4.5s %d", p, s.Offset, e.Offset, b.Offset)
	}

	// Read back everything with a raw fetch, high watermark included.
	for p := int32(0); p < 2; p++ {
		f := kmsg.NewPtrFetchRequest()
		f.MaxWaitMillis, f.MinBytes, f.MaxBytes = 100, 1, 1<<20
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = "diff"
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = p, 0, 1<<20
		ft.Partitions = append(ft.Partitions, fp)
		f.Topics = append(f.Topics, ft)
		resp, err := f.RequestWith(ctx, cl)
		if err != nil {
			obs.add("fetch %d: %v", p, err)
			continue
		}
		rp := resp.Topics[0].Partitions[0]
		obs.add("fetch %d: %s hw %d", p, errName(rp.ErrorCode), rp.HighWatermark)
		fp2 := kgo.ProcessFetchPartitionOpts{Topic: "diff", Partition: p}
		got, _ := kgo.ProcessFetchPartition(fp2, &rp, kgo.DefaultDecompressor(), nil)
		for _, rec := range got.Records {
			obs.add("  offset %d key %q value %q null=%v headers %v ts %d", rec.Offset, rec.Key, rec.Value, rec.Value == nil, rec.Headers, rec.Timestamp.UnixMilli())
		}
	}

	// Fetch out of range.
	f := kmsg.NewPtrFetchRequest()
	f.MaxWaitMillis, f.MaxBytes = 0, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "diff"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = 0, 100, 1<<20
	ft.Partitions = append(ft.Partitions, fp)
	f.Topics = append(f.Topics, ft)
	if resp, err := f.RequestWith(ctx, cl); err == nil {
		obs.add("fetch at 100: %s", errName(resp.Topics[0].Partitions[0].ErrorCode))
	}

	// Produce to a topic that does not exist, auto-creation off.
	pr := kmsg.NewPtrProduceRequest()
	pr.Acks, pr.TimeoutMillis = -1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "missing"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = oneBatch()
	pt.Partitions = append(pt.Partitions, pp)
	pr.Topics = append(pr.Topics, pt)
	if resp, err := pr.RequestWith(ctx, cl); err == nil {
		obs.add("produce to a missing topic: %s", errName(resp.Topics[0].Partitions[0].ErrorCode))
	} else {
		obs.add("produce to a missing topic: %v", err)
	}
	md := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("missing")
	md.Topics = append(md.Topics, mt)
	md.AllowAutoTopicCreation = true
	if resp, err := md.RequestWith(ctx, cl); err == nil {
		obs.add("metadata of a missing topic: %s", errName(resp.Topics[0].ErrorCode))
	}

	// Delete records, then the start offset.
	dr, err := adm.DeleteRecords(ctx, kadm.Offsets{"diff": {0: {At: 3}}})
	if err == nil {
		d, _ := dr.Lookup("diff", 0)
		obs.add("delete records before 3: %v low watermark %d", d.Err, d.LowWatermark)
	}
	dr, _ = adm.DeleteRecords(ctx, kadm.Offsets{"diff": {0: {At: 50}}})
	d, _ := dr.Lookup("diff", 0)
	obs.add("delete records before 50: %v", d.Err)

	// An offset commit by a member the group does not know.
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Group, oc.Generation, oc.MemberID = "diff-group", 1, "nobody"
	oct := kmsg.NewOffsetCommitRequestTopic()
	oct.Topic = "diff"
	ocp := kmsg.NewOffsetCommitRequestTopicPartition()
	ocp.Partition, ocp.Offset = 0, 4
	oct.Partitions = append(oct.Partitions, ocp)
	oc.Topics = append(oc.Topics, oct)
	if resp, err := oc.RequestWith(ctx, cl); err == nil {
		obs.add("commit by an unknown member: %s", errName(resp.Topics[0].Partitions[0].ErrorCode))
	}
	// A simple (memberless) commit is accepted and read back.
	oc.Generation, oc.MemberID = -1, ""
	if resp, err := oc.RequestWith(ctx, cl); err == nil {
		obs.add("simple commit: %s", errName(resp.Topics[0].Partitions[0].ErrorCode))
	}
	fetched, err := adm.FetchOffsets(ctx, "diff-group")
	if err == nil {
		o, _ := fetched.Lookup("diff", 0)
		obs.add("committed: %d %v", o.At, o.Err)
	}

	// Deleting the topic.
	dt, _ := adm.DeleteTopics(ctx, "diff")
	obs.add("delete diff: %v", dt["diff"].Err)
	dt, _ = adm.DeleteTopics(ctx, "diff")
	obs.add("delete diff again: %v", dt["diff"].Err)
	return obs
}

// oneBatch is a valid uncompressed batch of one record.
func oneBatch() []byte {
	now := time.Now().UnixMilli()
	payload := recordbatch.AppendRecord(nil, kmsg.Record{Key: []byte("k"), Value: []byte("v")})
	return recordbatch.Build(recordbatch.Header{RecordCount: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, BaseTimestamp: now, MaxTimestamp: now}, payload)
}

func TestDifferentialAgainstKafka(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	k, err := devstack.StartKafka(ctx, devstack.KafkaOptions{Properties: map[string]string{"auto.create.topics.enable": "false", "delete.topic.enable": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop()

	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	dir := filepath.Join(t.TempDir(), "data")
	startNode(t, addr, dir, "auto.create.topics.enable=false")

	want := scenario(t, k.Bootstrap())
	got := scenario(t, addr)
	compareObservations(t, want, got)
}

// compareObservations fails t with a side by side listing if got (brokerd)
// differs from want (Kafka).
func compareObservations(t *testing.T, want, got observations) {
	t.Helper()
	if reflect.DeepEqual(want, got) {
		t.Logf("brokerd and Kafka agree on %d observations", len(want))
		if testing.Verbose() {
			t.Logf("they are:\n%s", strings.Join(want, "\n"))
		}
		return
	}
	var diff []string
	for i := range max(len(want), len(got)) {
		var w, g string
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		mark := "  "
		if w != g {
			mark = "!="
		}
		diff = append(diff, fmt.Sprintf("%s kafka:   %s\n   brokerd: %s", mark, w, g))
	}
	t.Fatalf("brokerd differs from Kafka:\n%s", strings.Join(diff, "\n"))
}
