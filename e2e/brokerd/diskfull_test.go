package brokerd_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/e2e/checker"
	"logpipe/internal/await"
	"logpipe/internal/devstack"
)

// TestDiskFull fills the log directory (a 16 MiB tmpfs) with acks=all
// produces: the produce that no longer fits is answered with
// KAFKA_STORAGE_ERROR and brokerd logs the failure with the partition and
// the system's reason; the broker keeps answering, every acknowledged
// record reads back in order (the refused write left no torn batch), and
// once a topic is deleted the freed space takes new records.
func TestDiskFull(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mounting a 16 MiB tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = syscall.Unmount(dir, syscall.MNT_DETACH) })
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	// The metadata log lives elsewhere, so that deleting a topic can be
	// committed while the data disk is full.
	n := startNode(t, addr, dir, "metadata.log.dir="+filepath.Join(base, "meta"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("full"), kgo.DisableIdempotentWrite(),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(2), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	create := func(topic string) error {
		r, err := adm.CreateTopic(ctx, 1, 1, nil, topic)
		if err == nil {
			err = r.Err
		}
		return err
	}
	if err := create("full"); err != nil {
		t.Fatal(err)
	}

	value := strings.Repeat("x", 64<<10)
	var acked []string
	var refused error
	for i := 0; i < 1000 && refused == nil; i++ {
		v := fmt.Sprintf("%04d%s", i, value)
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			refused = err
			break
		}
		acked = append(acked, v)
	}
	if !errors.Is(refused, kerr.KafkaStorageError) {
		t.Fatalf("after %d records of 64 KiB on a 16 MiB disk: %v; want KAFKA_STORAGE_ERROR", len(acked), refused)
	}
	if len(acked) == 0 {
		t.Fatal("no record acknowledged before the disk was full")
	}
	await.Eventually(t, "the failed append in brokerd's log", func() error {
		tail := n.proc.Tail(20000)
		if !strings.Contains(tail, `msg="append failed"`) || !strings.Contains(tail, "topic=full") || !strings.Contains(tail, "no space left on device") {
			return await.NotYet("no such line", `"append failed" topic=full ... no space left on device`)
		}
		return nil
	})

	// Everything acknowledged reads back, in order, and nothing else.
	if got := readChecked(ctx, t, checker.New(), []string{addr}, "full", len(acked)); !slices.Equal(got, acked) {
		t.Fatalf("read back %d records, want the %d acknowledged in order", len(got), len(acked))
	}
	end, err := adm.ListEndOffsets(ctx, "full")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := end.Lookup("full", 0); o.Offset != int64(len(acked)) {
		t.Fatalf("end offset of full-0: %d, want %d (only the acknowledged records)", o.Offset, len(acked))
	}

	// Deleting the topic frees its space; a new topic takes records.
	if rs, err := adm.DeleteTopics(ctx, "full"); err != nil || rs.Error() != nil {
		t.Fatalf("deleting full: %v %v", err, rs.Error())
	}
	await.Eventually(t, "new records on the freed disk", func() error {
		if err := create("after"); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return err
		}
		return cl.ProduceSync(ctx, &kgo.Record{Topic: "after", Value: []byte(value)}).FirstErr()
	})
}
