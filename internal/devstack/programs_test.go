package devstack_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/internal/devstack"
)

// TestBuildAndStartBrokerd builds the brokerd binary, runs it with
// StartBrokerd, produces to it, and reads the produce back through
// ScrapeMetrics; RSS must see the process.
func TestBuildAndStartBrokerd(t *testing.T) {
	bin := t.TempDir()
	paths, err := devstack.BuildPrograms(bin, devstack.Program{Package: "logpipe/brokerd"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(bin, "brokerd")}; !slices.Equal(paths, want) {
		t.Fatalf("paths: got %v, want %v", paths, want)
	}

	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	httpPort, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := devstack.StartBrokerd(ctx, devstack.BrokerdOptions{Bin: paths[0], Addr: addr, DataDir: filepath.Join(dir, "data"),
		Settings: []string{"http.enabled=true", "http.port=" + strconv.Itoa(httpPort)}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(10 * time.Second)
	if p.LogPath != filepath.Join(dir, "brokerd.log") {
		t.Errorf("log at %s", p.LogPath)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("scraped"), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := 0; i < 3; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	series := `brokerd_messages_in_total{topic="scraped"}`
	var last map[string]float64
	if err := devstack.WaitFor(ctx, 50*time.Millisecond, p, func(context.Context) error {
		m, err := devstack.ScrapeMetrics("127.0.0.1:" + strconv.Itoa(httpPort))
		if err != nil {
			return err
		}
		last = m
		if got := m[series]; got != 3 {
			return fmt.Errorf("%s = %v, want 3", series, got)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for name := range last {
		if strings.HasPrefix(name, "#") {
			t.Errorf("a comment was taken for a series: %q", name)
		}
	}

	rss, err := devstack.RSS(p.Pid())
	if err != nil {
		t.Fatal(err)
	}
	if rss < 1<<20 {
		t.Errorf("RSS of brokerd %d bytes", rss)
	}
	if _, err := devstack.RSS(-1); err == nil {
		t.Error("RSS of pid -1 gave no error")
	}
}

// TestBuildProgramsFailure: a package that does not build gives an error
// with the compiler's words, and the programs built before it are removed.
func TestBuildProgramsFailure(t *testing.T) {
	dir := t.TempDir()
	_, err := devstack.BuildPrograms(dir, devstack.Program{Package: "logpipe/e2e/cmd/stack"}, devstack.Program{Package: "logpipe/no/such/command"})
	if err == nil || !strings.Contains(err.Error(), "no/such/command") {
		t.Fatalf("error: got %v, want one naming no/such/command", err)
	}
	left, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("left in the folder: got %v, want nothing", left)
	}
}

// TestStartBrokerdNeedsOptions: missing options are refused before
// anything starts.
func TestStartBrokerdNeedsOptions(t *testing.T) {
	if _, err := devstack.StartBrokerd(context.Background(), devstack.BrokerdOptions{Addr: "127.0.0.1:1"}); err == nil {
		t.Fatal("no error without Bin and DataDir")
	}
}
