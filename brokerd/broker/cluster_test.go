package broker_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"logpipe/brokerd/broker"
	"logpipe/brokerd/metadata"
)

// TestSingleFileMetadataIsCarriedOver starts a broker on the log dir of
// an earlier release, whose metadata is one file: its cluster id and
// topics are carried into the quorum, and the file is read only once.
func TestSingleFileMetadataIsCarriedOver(t *testing.T) {
	dir := t.TempDir()
	old, err := metadata.OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	cluster := old.Image().ClusterID
	top := &metadata.Topic{Name: "kept", ID: metadata.NewUUID(), Partitions: []metadata.Partition{{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}, {Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}}}
	if err := old.Propose(context.Background(), metadata.Record{CreateTopic: top}); err != nil {
		t.Fatal(err)
	}
	old.Close()

	tb := clStart(t, dir, nil)
	adm := grpAdmin(t, tb.addr)
	ctx := ctxT(t)
	cl, err := adm.Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Cluster != cluster {
		t.Errorf("cluster id: got %q, want %q (the old store's)", cl.Cluster, cluster)
	}
	td, err := adm.ListTopics(ctx, "kept")
	if err != nil || td["kept"].Err != nil || len(td["kept"].Partitions) != 2 || td["kept"].ID != [16]byte(top.ID) {
		t.Fatalf("topic after the move: %+v (%v), want 2 partitions with id %s", td["kept"], err, top.ID)
	}
	if _, err := os.Stat(filepath.Join(dir, metadata.LocalFile)); !os.IsNotExist(err) {
		t.Errorf("the old metadata file is still there (stat: %v); want it renamed", err)
	}
	tb.stop()

	// Restarted, the broker reads the quorum only.
	tb = clStart(t, dir, nil)
	td, err = grpAdmin(t, tb.addr).ListTopics(ctxT(t), "kept")
	if err != nil || len(td["kept"].Partitions) != 2 {
		t.Fatalf("topic after a restart: %+v (%v)", td["kept"], err)
	}
}

// TestLogDirsOfAnotherClusterAreRefused: a node whose log dirs name
// another cluster than its metadata quorum does not start.
func TestLogDirsOfAnotherClusterAreRefused(t *testing.T) {
	dir := t.TempDir()
	tb := clStart(t, dir, nil)
	tb.stop()
	props := filepath.Join(dir, "meta.properties")
	b, err := os.ReadFile(props)
	if err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "meta.properties"), []byte(strings.Replace(string(b), "cluster.id=", "cluster.id=x", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := broker.DefaultConfig()
	cfg.LogDirs = []string{dir, other}
	_, err = broker.New(context.Background(), cfg, slog.New(slog.DiscardHandler), broker.Hooks{})
	if err == nil || !strings.Contains(err.Error(), "belongs to cluster x") {
		t.Fatalf("start on another cluster's log dir: got %v, want a refusal naming cluster x", err)
	}
}
