package pipeline_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/e2e/harness"
	"logpipe/internal/await"
	"logpipe/internal/devstack"
)

// The fault run's lines.
const (
	// generated is how many access and error lines the writer appends.
	generated = 100000
	// batch lines are appended every tick: 2,000 lines a second, so that
	// the faults happen while lines are written.
	batch = 200
	tick  = 100 * time.Millisecond
	// Line i is stamped first + i·step: the run covers four UTC days,
	// hence four indices of each kind.
	step = 2 * time.Second
	// maxMessageBytes is the shipper's output.kafka.max_message_bytes,
	// which configs/shipper.yml leaves at its default.
	maxMessageBytes = 1000000
)

// first is the time of line 0.
var first = time.Date(2031, 3, 7, 20, 0, 0, 0, time.UTC)

// The hostile lines' markers and where the writer puts them (before
// generated line at).
const (
	markUTF8   = "lpx-utf8"
	markBig    = "lpx-big"
	markFuture = "lpx-future"
	atUTF8     = 20000
	atRotate   = 45000
	atBig      = 50000
	atFuture   = 80000
)

// marker finds a line's marker in a document's message.
var marker = regexp.MustCompile(`lp(\d{6}|x-[a-z0-9]+)`)

func mark(i int) string { return fmt.Sprintf("lp%06d", i) }

// isError says whether generated line i goes to error_log.
func isError(i int) bool { return i%4 == 3 }

// stamp is line i's time; a third of the access lines are written in a
// zone west of UTC, so that their index date is not always their wall
// clock's.
func stamp(i int) time.Time {
	t := first.Add(time.Duration(i) * step)
	if !isError(i) && i%2 == 1 {
		t = t.In(time.FixedZone("", -7*3600))
	}
	return t
}

// indexOf is the index line i belongs in.
func indexOf(i int) string {
	kind := "access"
	if isError(i) {
		kind = "error"
	}
	return "httpd_" + kind + "-" + stamp(i).UTC().Format("2006.01.02")
}

// writer appends the run's lines to access_log and error_log as a web
// server does, a batch every tick, and the hostile lines and the rotation
// at their places.
type writer struct {
	dir            string
	g              *devstack.HTTPDLog
	access, errors *os.File
	done           atomic.Int64 // generated lines written
	// The hostile lines as written.
	utf8, big, future string
}

func newWriter(t *testing.T, dir string) *writer {
	w := &writer{dir: dir, g: devstack.NewHTTPDLog(11)}
	if err := w.open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.access.Close(); w.errors.Close() })
	// Latin-1 bytes in a path, which are no UTF-8.
	w.utf8 = w.g.Error(first.Add(atUTF8*step), "caf\xe9\xff-"+markUTF8)
	// A combined line with a 5 MiB field logged after the user agent (a
	// cookie, say): the shipper cuts the event's message to fit
	// max_message_bytes, and the cut line still parses.
	w.big = w.g.Access(first.Add(atBig*step), markBig) + ` "` + strings.Repeat("c", 5<<20) + `"`
	// 31/Dec/9999 23:30 at -0100 is 00:30 UTC in the year 10000, which
	// the indexer parses and Elasticsearch's date field refuses.
	w.future = w.g.Access(time.Date(9999, 12, 31, 23, 30, 0, 0, time.FixedZone("", -3600)), markFuture)
	return w
}

func (w *writer) open() error {
	var err error
	for _, f := range []struct {
		file **os.File
		name string
	}{{&w.access, "access_log"}, {&w.errors, "error_log"}} {
		if *f.file, err = os.OpenFile(filepath.Join(w.dir, f.name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// rotate renames both logs to .1 and opens new ones, as logrotate and a
// graceful restart of httpd do.
func (w *writer) rotate() error {
	w.access.Close()
	w.errors.Close()
	for _, name := range []string{"access_log", "error_log"} {
		if err := os.Rename(filepath.Join(w.dir, name), filepath.Join(w.dir, name+".1")); err != nil {
			return err
		}
	}
	return w.open()
}

// run writes every line, then returns; it stops early when ctx ends.
func (w *writer) run(ctx context.Context) error {
	t := time.NewTicker(tick)
	defer t.Stop()
	var access, errors bytes.Buffer
	for i := 0; i < generated; {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		access.Reset()
		errors.Reset()
		for end := min(i+batch, generated); i < end; i++ {
			switch i {
			case atUTF8:
				errors.WriteString(w.utf8 + "\n")
			case atBig:
				access.WriteString(w.big + "\n")
			case atFuture:
				access.WriteString(w.future + "\n")
			case atRotate:
				if err := w.flush(&access, &errors); err != nil {
					return err
				}
				if err := w.rotate(); err != nil {
					return err
				}
			}
			if isError(i) {
				errors.WriteString(w.g.Error(stamp(i), mark(i)) + "\n")
			} else {
				access.WriteString(w.g.Access(stamp(i), mark(i)) + "\n")
			}
		}
		if err := w.flush(&access, &errors); err != nil {
			return err
		}
		w.done.Store(int64(i))
	}
	return nil
}

func (w *writer) flush(access, errors *bytes.Buffer) error {
	if _, err := w.access.Write(access.Bytes()); err != nil {
		return err
	}
	access.Reset()
	_, err := w.errors.Write(errors.Bytes())
	errors.Reset()
	return err
}

// faultRun is the pipeline under test and what watches it.
type faultRun struct {
	t    *testing.T
	p    *devstack.Pipeline
	node *devstack.Elasticsearch
	es   *search
	w    *writer
	// patient waits while the pipeline runs, failing at once if one of
	// its programs exits.
	patient await.Option
}

// indexed returns the documents in the run's indices now, as searches see
// them after a refresh (-1 while Elasticsearch does not answer).
func (f *faultRun) indexed() int {
	n, err := f.es.count("httpd_*", nil)
	if err != nil {
		return -1
	}
	return n
}

// waitWritten waits until the writer has appended n generated lines.
func (f *faultRun) waitWritten(n int) {
	f.t.Helper()
	await.Eventually(f.t, fmt.Sprintf("the writer to append %d lines", n), func() error {
		if got := f.w.done.Load(); got < int64(n) {
			return await.NotYet(got, fmt.Sprintf("at least %d", n))
		}
		return nil
	}, f.patient)
}

// waitIndexed waits until the run's indices hold at least n documents.
func (f *faultRun) waitIndexed(n int) {
	f.t.Helper()
	await.Eventually(f.t, fmt.Sprintf("%d documents to be indexed", n), func() error {
		if got := f.indexed(); got < n {
			return await.NotYet(got, fmt.Sprintf("at least %d", n))
		}
		return nil
	}, f.patient)
}

// busiestBroker returns the index of the node leading most partitions of
// the topic, and how many it leads.
func (f *faultRun) busiestBroker() (int, int) {
	f.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.p.BrokerAddrs()...))
	if err != nil {
		f.t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	md, err := kadm.NewClient(cl).Metadata(ctx, devstack.PipelineTopic)
	if err != nil {
		f.t.Fatal(err)
	}
	led := map[int32]int{}
	for _, p := range md.Topics[devstack.PipelineTopic].Partitions {
		led[p.Leader]++
	}
	most := slices.MaxFunc(slices.Collect(maps.Keys(led)), func(a, b int32) int { return led[a] - led[b] })
	if most < 1 {
		f.t.Fatalf("partition leaders %v: want node ids", led)
	}
	return int(most - 1), led[most]
}

// TestPipelineUnderFaults is issue 11's fault run: the real binaries from
// the shipped configs, three brokerd nodes and the harness's Elasticsearch;
// 100,000 generated access and error lines written at 2,000 a second,
// renamed away (rotation) halfway; while they flow, kill -9 of the node
// leading most partitions (started again once indexing has moved on), of
// the shipper, of the indexer (each started again at once), and a 20 s
// Elasticsearch outage (killed, started again on its data). Three hostile
// lines go in between: invalid UTF-8, a 5 MiB line and a line
// Elasticsearch refuses. Then every generated line is one document, in the
// index of its kind and UTC day, with its parsed fields and time; the
// invalid bytes are U+FFFD; the 5 MiB line is one document whose message is
// cut to fit max_message_bytes and flagged truncated; the refused line is
// in the dead-letter index with Elasticsearch's reason.
func TestPipelineUnderFaults(t *testing.T) {
	start := time.Now()
	node := harness.SharedElasticsearch(t)
	p, err := devstack.StartPipeline(within(t, 3*time.Minute), devstack.PipelineOptions{
		Bin: binDir, Configs: configs(t), Dir: t.TempDir(), ElasticsearchURL: node.URL,
		BrokerdSettings: []string{"group.initial.rebalance.delay.ms=0"},
		// The indexer's defaults are for production: a killed member is
		// dropped after 10 s and Elasticsearch retried up to every 60 s;
		// shorter here, so that the run spends its time on faults.
		IndexerSettings: []string{"kafka.session_timeout=6s", "kafka.heartbeat_interval=1s", "elasticsearch.backoff.max=2s"},
		Logf:            t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Error(err)
		}
	})
	f := &faultRun{t: t, p: p, node: node, es: newSearch(t, node.URL), w: newWriter(t, p.LogsDir()),
		patient: await.Options(await.Within(4*time.Minute), await.Every(250*time.Millisecond), await.While(p.Alive))}
	defer func() {
		if t.Failed() {
			for _, proc := range []*devstack.Process{p.Shipper(), p.Indexer()} {
				if proc != nil {
					t.Logf("the end of %s:\n%s", proc.LogPath, proc.Tail(4000))
				}
			}
		}
	}()
	t.Logf("pipeline up after %v", time.Since(start).Round(time.Millisecond))

	writeCtx, stopWriting := context.WithCancel(context.Background())
	var writeErr error
	var wg sync.WaitGroup
	wg.Go(func() { writeErr = f.w.run(writeCtx) })
	defer func() {
		stopWriting() // when a check failed before the writer was done
		wg.Wait()
	}()
	written := time.Now()

	f.waitWritten(generated / 10)
	victim, leads := f.busiestBroker()
	before := f.indexed()
	p.KillBroker(victim)
	t.Logf("kill -9 of node %d (leading %d of %d partitions) at %d lines written, %d indexed", victim+1, leads, devstack.PipelinePartitions, f.w.done.Load(), before)
	f.waitIndexed(before + generated/20)
	if err := p.StartBroker(within(t, 2*time.Minute), victim); err != nil {
		t.Fatal(err)
	}
	t.Logf("node %d started again at %d indexed", victim+1, f.indexed())

	f.waitWritten(generated / 4)
	p.KillShipper()
	t.Logf("kill -9 of the shipper at %d lines written", f.w.done.Load())
	if err := p.StartShipper(within(t, 2*time.Minute)); err != nil {
		t.Fatal(err)
	}

	f.waitWritten(generated * 6 / 10)
	p.KillIndexer()
	t.Logf("kill -9 of the indexer at %d lines written, %d indexed", f.w.done.Load(), f.indexed())
	if err := p.StartIndexer(within(t, 2*time.Minute)); err != nil {
		t.Fatal(err)
	}

	f.waitWritten(generated * 3 / 4)
	f.outage(20 * time.Second)

	wg.Wait()
	if writeErr != nil {
		t.Fatal(writeErr)
	}
	t.Logf("all %d lines written in %v", generated, time.Since(written).Round(time.Millisecond))
	want := generated + 2 // the invalid UTF-8 and the 5 MiB line
	await.Eventually(t, fmt.Sprintf("the run's indices to hold %d documents", want), func() error {
		switch n := f.indexed(); {
		case n > want:
			return await.Stop(fmt.Errorf("%d documents, more than the %d lines indexable", n, want))
		case n < want:
			return await.NotYet(n, want)
		}
		return nil
	}, f.patient)
	t.Logf("every document indexed %v after the first line was written", time.Since(written).Round(time.Millisecond))
	if m, err := devstack.ScrapeMetrics(p.IndexerHTTP()); err == nil {
		t.Logf("the last indexer: %v documents indexed, %v found there already (sent again after a fault)",
			m[`logpipe_indexer_documents_total{result="indexed"}`], m[`logpipe_indexer_documents_total{result="duplicate"}`])
	}
	f.checkDocuments()
	f.checkDeadLetter()
	t.Logf("the fault run took %v", time.Since(start).Round(time.Millisecond))
}

// within returns a context that ends after d or with the test.
func within(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// outage kills the Elasticsearch node, keeps it down for d while the
// pipeline's programs must stay up, and starts it again on its data.
func (f *faultRun) outage(d time.Duration) {
	f.t.Helper()
	f.node.Kill()
	down := time.Now()
	restarted := false
	f.t.Cleanup(func() {
		if !restarted {
			f.node.Start(context.Background())
		}
	})
	f.t.Logf("Elasticsearch killed at %d lines written", f.w.done.Load())
	over := time.After(d)
	watch := time.NewTicker(500 * time.Millisecond)
	defer watch.Stop()
	for held := false; !held; {
		select {
		case <-over:
			held = true
		case <-watch.C:
		}
		if err := f.p.Alive(); err != nil {
			f.t.Fatalf("a program ended during the Elasticsearch outage: %v", err)
		}
	}
	if err := f.node.Start(within(f.t, 3*time.Minute)); err != nil {
		f.t.Fatal(err)
	}
	restarted = true
	f.t.Logf("Elasticsearch back after %v", time.Since(down).Round(time.Millisecond))
}

// The source fields the checks read.
var checked = []string{"@timestamp", "message", "log.flags", "http.request.method", "url.original", "http.response.status_code",
	"source.ip", "log.level", "process.pid"}

// checkDocuments reads every document of the run's indices and checks that
// each generated line is one document in its index with its time and
// parsed fields, and the hostile lines' documents.
func (f *faultRun) checkDocuments() {
	t := f.t
	t.Helper()
	docs := f.es.all("httpd_*", nil, checked...)
	seen := map[string][]doc{}
	var unmarked []string
	for _, d := range docs {
		msg, _ := harness.Field(d.Source, "message").(string)
		m := marker.FindString(msg)
		if m == "" {
			unmarked = append(unmarked, d.ID)
			continue
		}
		seen[m] = append(seen[m], d)
	}
	if len(unmarked) > 0 {
		t.Errorf("%d documents carry no line's marker, e.g. %v", len(unmarked), unmarked[:min(5, len(unmarked))])
	}

	wantPerIndex, gotPerIndex := map[string]int{}, map[string]int{}
	for _, d := range docs {
		gotPerIndex[d.Index]++
	}
	var missing, duplicated, misplaced, unparsed []string
	for i := range generated {
		index := indexOf(i)
		wantPerIndex[index]++
		ds := seen[mark(i)]
		switch {
		case len(ds) == 0:
			missing = append(missing, mark(i))
			continue
		case len(ds) > 1:
			duplicated = append(duplicated, fmt.Sprintf("%s ×%d", mark(i), len(ds)))
		}
		d := ds[0]
		if d.Index != index {
			misplaced = append(misplaced, fmt.Sprintf("%s in %s, want %s", mark(i), d.Index, index))
		}
		if problem := parsed(d, isError(i), stamp(i)); problem != "" {
			unparsed = append(unparsed, mark(i)+": "+problem)
		}
	}
	// The invalid UTF-8 is an error line, the 5 MiB line an access line.
	wantPerIndex["httpd_error-"+first.Add(atUTF8*step).Format("2006.01.02")]++
	wantPerIndex["httpd_access-"+first.Add(atBig*step).Format("2006.01.02")]++
	report := func(what string, list []string) {
		if len(list) > 0 {
			t.Errorf("%d generated lines %s: %v", len(list), what, list[:min(20, len(list))])
		}
	}
	report("have no document", missing)
	report("have more than one document", duplicated)
	report("are in the wrong index", misplaced)
	report("lack parsed fields or their time", unparsed)
	if !maps.Equal(gotPerIndex, wantPerIndex) {
		t.Errorf("documents per index: got %v, want %v", gotPerIndex, wantPerIndex)
	}

	f.checkUTF8(seen[markUTF8])
	f.checkBig(seen[markBig])
	if ds := seen[markFuture]; len(ds) > 0 {
		t.Errorf("the line Elasticsearch refuses is indexed in %s", ds[0].Index)
	}
}

// parsed returns what a generated line's document lacks: the fields
// parsing its kind gives, or its own time as @timestamp.
func parsed(d doc, isError bool, at time.Time) string {
	fields := []string{"http.request.method", "url.original", "http.response.status_code", "source.ip"}
	if isError {
		fields = []string{"log.level", "process.pid", "source.ip"}
	}
	for _, name := range fields {
		if harness.Field(d.Source, name) == nil {
			return "no " + name
		}
	}
	ts, _ := harness.Field(d.Source, "@timestamp").(string)
	if got, err := time.Parse(time.RFC3339Nano, ts); err != nil || !got.Equal(at) {
		return fmt.Sprintf("@timestamp %q, want %s", ts, at.UTC().Format(time.RFC3339Nano))
	}
	return ""
}

// checkUTF8: the line with invalid bytes is one document whose message has
// each run of them replaced by U+FFFD, as the shipper's UTF-8 decoding
// does, parsed as an error line.
func (f *faultRun) checkUTF8(ds []doc) {
	t := f.t
	t.Helper()
	d, ok := f.only("the line with invalid UTF-8", ds)
	if !ok {
		return
	}
	msg, _ := harness.Field(d.Source, "message").(string)
	if want := "/caf\uFFFD-" + markUTF8; !strings.Contains(msg, want) {
		t.Errorf("the line with invalid UTF-8: got message %q, want one with %q", msg, want)
	}
	if problem := parsed(d, true, first.Add(atUTF8*step)); problem != "" {
		t.Errorf("the line with invalid UTF-8: %s", problem)
	}
}

// only returns the one document of ds, or fails the test naming what.
func (f *faultRun) only(what string, ds []doc) (doc, bool) {
	f.t.Helper()
	if len(ds) != 1 {
		f.t.Errorf("%s: got %d documents, want 1", what, len(ds))
		return doc{}, false
	}
	return ds[0], true
}

// checkBig: the 5 MiB line is one event (max_bytes, 10 MiB by default, does
// not cut it) whose message the shipper's output cut to fit
// max_message_bytes and flagged truncated; the cut line still parses, and
// the line after it arrived (checked with the generated lines).
func (f *faultRun) checkBig(ds []doc) {
	t := f.t
	t.Helper()
	d, ok := f.only("the 5 MiB line", ds)
	if !ok {
		return
	}
	msg, _ := harness.Field(d.Source, "message").(string)
	flags := fmt.Sprint(harness.Field(d.Source, "log.flags"))
	if !strings.HasPrefix(f.w.big, msg) || len(msg) >= maxMessageBytes || len(msg) < maxMessageBytes-4096 || flags != "[truncated]" {
		t.Errorf("the 5 MiB line's document: message of %d bytes (a prefix of the line: %v), flags %s; want a prefix of %d to %d bytes, flags [truncated]",
			len(msg), strings.HasPrefix(f.w.big, msg), flags, maxMessageBytes-4096, maxMessageBytes-1)
	}
	if problem := parsed(d, false, first.Add(atBig*step)); problem != "" {
		t.Errorf("the 5 MiB line's document: %s", problem)
	}
}

// checkDeadLetter: the line Elasticsearch refuses is in the dead-letter
// index with the index it was meant for and Elasticsearch's reason.
func (f *faultRun) checkDeadLetter() {
	t := f.t
	t.Helper()
	dead := f.es.all("logpipe-dlq-*", nil, "event.original", "error.type", "error.message", "dead_letter.index", "dead_letter.status")
	var found []doc
	for _, d := range dead {
		if orig, _ := harness.Field(d.Source, "event.original").(string); strings.Contains(orig, markFuture) {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		dropped := ""
		if b, err := os.ReadFile(f.p.Indexer().LogPath); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, "dead-letter index refused") {
					dropped = "; the indexer logged: " + line
					break
				}
			}
		}
		t.Errorf("the line Elasticsearch refuses: got %d dead letters of %d in logpipe-dlq-*, want 1%s", len(found), len(dead), dropped)
		return
	}
	d := found[0].Source
	if harness.Field(d, "dead_letter.index") != "httpd_access-10000.01.01" || harness.Field(d, "dead_letter.status") != 400.0 ||
		!strings.Contains(fmt.Sprint(harness.Field(d, "error.message")), "@timestamp") || harness.Field(d, "error.type") == nil {
		t.Errorf("the dead letter: got index %v, status %v, error %v: %v; want httpd_access-10000.01.01, 400 and a reason naming @timestamp",
			harness.Field(d, "dead_letter.index"), harness.Field(d, "dead_letter.status"), harness.Field(d, "error.type"), harness.Field(d, "error.message"))
	}
}
