package broker_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/brokerd/broker"
	"logpipe/internal/await"
)

func TestRetentionBySizeAndAlteredConfig(t *testing.T) {
	cb := clStart(t, "", func(c *broker.Config) { c.LogRetentionCheck = 50 })
	ctx := ctxT(t)
	cl := clClient(t, cb.addr, kgo.DefaultProduceTopic("ret"), kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"segment.bytes": kadm.StringPtr("2048")}, "ret"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strings.Repeat("x", 200))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing expires under the default retention; then a small
	// retention.bytes set at run time makes the old segments go.
	starts, _ := adm.ListStartOffsets(ctx, "ret")
	if s, _ := starts.Lookup("ret", 0); s.Offset != 0 {
		t.Fatalf("start offset %d before retention was lowered", s.Offset)
	}
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.bytes", Value: kadm.StringPtr("4096")}}, "ret"); err != nil {
		t.Fatal(err)
	}
	var start int64
	await.Eventually(t, "the log start offset to move", func() error {
		starts, err := adm.ListStartOffsets(ctx, "ret")
		if err != nil {
			return err
		}
		s, _ := starts.Lookup("ret", 0)
		if start = s.Offset; start <= 0 {
			return await.NotYet(start, "above 0")
		}
		return nil
	})
	// What is left is readable from the new start.
	got := consumeAll(t, cb.addr, "ret", int(100-start))
	if got[0].Offset != start || got[len(got)-1].Offset != 99 {
		t.Fatalf("read %d..%d, start %d", got[0].Offset, got[len(got)-1].Offset, start)
	}
}

func TestRetentionByTime(t *testing.T) {
	cb := clStart(t, "", func(c *broker.Config) { c.LogRetentionCheck = 50 })
	ctx := ctxT(t)
	// Uncompressed, so that three batches fill a 1 KiB segment and the
	// old and new records sit in different segments.
	cl := clClient(t, cb.addr, kgo.DefaultProduceTopic("old"), kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"segment.bytes": kadm.StringPtr("1024"), "retention.ms": kadm.StringPtr("3600000")}, "old"); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	for i := 0; i < 30; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(strings.Repeat("o", 200)), Timestamp: old}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("new")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	await.Eventually(t, "segments older than retention.ms to be deleted", func() error {
		starts, err := adm.ListStartOffsets(ctx, "old")
		if err != nil {
			return err
		}
		if s, _ := starts.Lookup("old", 0); s.Offset < 25 {
			return await.NotYet(fmt.Sprintf("log start offset %d", s.Offset), "25 or more")
		}
		return nil
	})
}

func TestCompactedTopicKeepsLastValuePerKey(t *testing.T) {
	cb := clStart(t, "", func(c *broker.Config) { c.LogCleanerBackoffMs = 50 })
	ctx := ctxT(t)
	cl := clClient(t, cb.addr, kgo.DefaultProduceTopic("compact"), kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact"), "segment.bytes": kadm.StringPtr("1024")}, "compact"); err != nil {
		t.Fatal(err)
	}
	const keys, rounds = 5, 20
	for r := 0; r < rounds; r++ {
		for k := 0; k < keys; k++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint("k", k)), Value: []byte(fmt.Sprintf("v%d-%s", r, strings.Repeat("p", 100)))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A record too big to share a segment rolls the last one, so that every
	// keyed record is in a segment the cleaner may rewrite (the active
	// segment is never cleaned, as in Kafka).
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("roll"), Value: []byte(strings.Repeat("r", 900))}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Read everything up to the end offset; compaction keeps offsets, so
	// the end stays keys*rounds+1 while the records in between thin out.
	var last map[string]string
	var n int
	await.Eventually(t, "compaction to keep one value per key", func() error {
		c := clClient(t, cb.addr, kgo.ConsumeTopics("compact"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		defer c.Close()
		last, n = map[string]string{}, 0
		for done := false; !done; {
			fs := c.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatal(ctx.Err())
			}
			for _, r := range fs.Records() {
				last[string(r.Key)] = string(r.Value)
				n++
				done = done || r.Offset == keys*rounds
			}
		}
		if n != keys+1 {
			return await.NotYet(fmt.Sprintf("%d records", n), fmt.Sprintf("%d: one per key, and the record that rolled the segment", keys+1))
		}
		return nil
	})
	for k := 0; k < keys; k++ {
		if v := last[fmt.Sprint("k", k)]; !strings.HasPrefix(v, fmt.Sprintf("v%d-", rounds-1)) {
			t.Fatalf("key k%d kept %q, want the last value", k, v[:min(len(v), 8)])
		}
	}
}
