package harness

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
)

// TestBuildAndStartBrokerd builds the brokerd binary, runs it with
// StartBrokerd, produces to it, and reads the produce back through
// ScrapeMetrics; RSS must see the process.
func TestBuildAndStartBrokerd(t *testing.T) {
	paths, err := BuildPrograms(Program{Package: "logpipe/brokerd"})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 1 || filepath.Base(paths[0]) != "brokerd" {
		t.Fatalf("paths %v", paths)
	}
	st, err := os.Stat(filepath.Dir(paths[0]))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o755 {
		t.Errorf("binary folder mode %v, want 0755", st.Mode().Perm())
	}

	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	httpPort, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := StartBrokerd(ctx, BrokerdOptions{Bin: paths[0], Addr: addr, DataDir: filepath.Join(dir, "data"),
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
	if err := WaitFor(ctx, 50*time.Millisecond, p, func(context.Context) error {
		m, err := ScrapeMetrics("127.0.0.1:" + strconv.Itoa(httpPort))
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

	rss, err := RSS(p.Pid())
	if err != nil {
		t.Fatal(err)
	}
	if rss < 1<<20 {
		t.Errorf("RSS of brokerd %d bytes", rss)
	}
	if _, err := RSS(-1); err == nil {
		t.Error("RSS of pid -1 gave no error")
	}
}

// TestBuildProgramsFailure: a package that does not build gives an error
// with the compiler's words.
func TestBuildProgramsFailure(t *testing.T) {
	_, err := BuildPrograms(Program{Package: "logpipe/no/such/command"})
	if err == nil || !strings.Contains(err.Error(), "no/such/command") {
		t.Fatalf("error %v", err)
	}
}

// TestStartBrokerdNeedsOptions: missing options are refused before
// anything starts.
func TestStartBrokerdNeedsOptions(t *testing.T) {
	if _, err := StartBrokerd(context.Background(), BrokerdOptions{Addr: "127.0.0.1:1"}); err == nil {
		t.Fatal("no error without Bin and DataDir")
	}
}
