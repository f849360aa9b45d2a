package brokerd_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/internal/devstack"
)

// TestKafkaToolsReadTheLog writes batches in every codec through the
// brokerd binary, stops it, and has Kafka's own DumpLogSegments (from the
// Kafka jars devstack fetches) check the segment, offset index and time index
// files.
func TestKafkaToolsReadTheLog(t *testing.T) {
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	dir := filepath.Join(t.TempDir(), "data")
	n := startNode(t, addr, dir, "log.index.interval.bytes=256")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	codecs := []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()}
	records := 0
	for i, codec := range codecs {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("dump"), kgo.AllowAutoTopicCreation(), kgo.ProducerBatchCompression(codec))
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 20; j++ {
			var rs []*kgo.Record
			for k := 0; k < 5; k++ {
				rs = append(rs, &kgo.Record{Key: []byte(fmt.Sprint("k", k)), Value: []byte(fmt.Sprintf("codec %d batch %d record %d %s", i, j, k, strings.Repeat("x", 50)))})
			}
			if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			records += len(rs)
		}
		cl.Close()
	}
	n.proc.Stop(30 * time.Second)

	seg := filepath.Join(dir, "dump-0", "00000000000000000000")
	out := dumpLogSegments(t, ctx, "--deep-iteration", "--files", seg+".log")
	if strings.Count(out, "isvalid: true") == 0 || strings.Contains(out, "isvalid: false") {
		t.Fatalf("DumpLogSegments does not find valid batches:\n%s", out)
	}
	if got := strings.Count(out, "| offset: "); got != records {
		t.Fatalf("DumpLogSegments saw %d records, %d were written:\n%s", got, records, out)
	}
	for _, codec := range []string{"NONE", "GZIP", "SNAPPY", "LZ4", "ZSTD"} {
		if !strings.Contains(strings.ToUpper(out), "COMPRESSCODEC: "+codec) {
			t.Errorf("no %s batch in the dump", codec)
		}
	}
	if n := indexEntries(dumpLogSegments(t, ctx, "--files", seg+".index")); n < 10 {
		t.Fatalf("the offset index lists %d entries; with index.interval.bytes=256 there should be many", n)
	}
	if n := indexEntries(dumpLogSegments(t, ctx, "--files", seg+".timeindex")); n < 5 {
		t.Fatalf("the time index lists %d entries", n)
	}
	out = dumpLogSegments(t, ctx, "--verify-index-only", "--files", seg+".index,"+seg+".timeindex")
	if strings.Contains(out, "Mismatches") || strings.Contains(out, "not equal") || strings.Contains(out, "Exception") {
		t.Fatalf("index check failed:\n%s", out)
	}
}

func dumpLogSegments(t *testing.T, ctx context.Context, args ...string) string {
	t.Helper()
	cmd, err := devstack.KafkaToolCommand(ctx, "kafka.tools.DumpLogSegments", args...)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("DumpLogSegments %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// indexEntries counts the entries DumpLogSegments lists for an index file.
func indexEntries(out string) int { return strings.Count(out, "offset: ") }
