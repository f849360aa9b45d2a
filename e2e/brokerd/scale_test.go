package brokerd_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/sys/unix"

	"logpipe/brokerd/wire"
	"logpipe/internal/await"
	"logpipe/internal/devstack"
)

// fileLimitEnv, when set, makes this test binary start something else:
// see init.
const fileLimitEnv = "E2E_RLIMIT_NOFILE"

// init: started with fileLimitEnv set, this binary is not a test run. It
// sets its open-file limit (soft and hard) to that value and replaces
// itself with the program and arguments it was given, which inherits the
// limit: how brokerd runs with a low RLIMIT_NOFILE (withFileLimit).
func init() {
	v := os.Getenv(fileLimitEnv)
	if v == "" {
		return
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err == nil {
		err = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n})
	}
	if err == nil && len(os.Args) < 2 {
		err = fmt.Errorf("no program to run")
	}
	if err == nil {
		env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, fileLimitEnv+"=") })
		err = syscall.Exec(os.Args[1], os.Args[1:], env)
	}
	fmt.Fprintf(os.Stderr, "starting %v with %s=%s: %v\n", os.Args[1:], fileLimitEnv, v, err)
	os.Exit(2)
}

// withFileLimit is a devstack Command that runs a program with
// RLIMIT_NOFILE set to limit, through this test binary (init).
func withFileLimit(t *testing.T, limit int) func(string, ...string) *exec.Cmd {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(self, append([]string{name}, args...)...)
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%d", fileLimitEnv, limit))
		return cmd
	}
}

// startLimited starts brokerd as startNode does, with RLIMIT_NOFILE at
// limit.
func startLimited(t *testing.T, addr, dir string, limit int, settings ...string) *node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := devstack.StartBrokerd(ctx, devstack.BrokerdOptions{Bin: brokerdBin, Addr: addr, DataDir: dir,
		Settings: settings, Command: withFileLimit(t, limit)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop(30 * time.Second)
		if t.Failed() {
			t.Logf("the end of brokerd's log:\n%s", p.Tail(6000))
		}
	})
	return &node{t: t, addr: addr, dir: dir, proc: p}
}

// fds returns how many descriptors process pid has open, and how many of
// them are segment files (.log) under dir.
func fds(t *testing.T, pid int, dir string) (total, segments int) {
	t.Helper()
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err == nil && strings.HasPrefix(target, dir+"/") && strings.HasSuffix(target, ".log") {
			segments++
		}
	}
	return len(ents), segments
}

// logSize returns the size of a process's log file, to look for lines
// written after this point.
func logSize(t *testing.T, n *node) int64 {
	t.Helper()
	st, err := os.Stat(n.proc.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

var logField = regexp.MustCompile(`(\w+)=("[^"]*"|\S+)`)

// awaitLogLine waits for a line of n's log past offset that contains all of
// want and returns its key=value fields.
func awaitLogLine(t *testing.T, n *node, offset int64, want ...string) map[string]string {
	t.Helper()
	var line string
	await.Eventually(t, fmt.Sprintf("brokerd to log a line with %q", want), func() error {
		b, err := os.ReadFile(n.proc.LogPath)
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(b[min(offset, int64(len(b))):]), "\n") {
			if !slices.ContainsFunc(want, func(w string) bool { return !strings.Contains(l, w) }) {
				line = l
				return nil
			}
		}
		return await.NotYet("no such line", "one")
	}, await.Within(2*time.Minute), await.Every(100*time.Millisecond), await.While(n.proc.Alive))
	fields := map[string]string{}
	for _, m := range logField.FindAllStringSubmatch(line, -1) {
		fields[m[1]] = strings.Trim(m[2], `"`)
	}
	return fields
}

// checkFields compares some fields of a log line with what they should be.
func checkFields(t *testing.T, what string, fields map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if fields[k] != v {
			t.Errorf("%s: %s=%q, want %q (line %v)", what, k, fields[k], v, fields)
		}
	}
}

// createTopics creates the topics with perTopic partitions each, one
// replica, through adm.
func createTopics(t *testing.T, ctx context.Context, adm *kadm.Client, n *node, topics []string, perTopic int32) {
	t.Helper()
	// On a loaded machine a create of 1,000 partitions may outlast the
	// client's first attempt; its retry then finds the topic made.
	adm.SetTimeoutMillis(120000)
	start := time.Now()
	for _, topic := range topics {
		r, err := adm.CreateTopic(ctx, perTopic, 1, nil, topic)
		if err == nil && errors.Is(r.Err, kerr.TopicAlreadyExists) {
			td, lerr := adm.ListTopics(ctx, topic)
			if lerr == nil && len(td[topic].Partitions) == int(perTopic) {
				r.Err = nil
			}
		}
		if err != nil || r.Err != nil {
			t.Fatalf("creating %s: %v %v\n%s", topic, err, r.Err, n.proc.Tail(3000))
		}
	}
	t.Logf("created %d partitions in %v", len(topics)*int(perTopic), time.Since(start).Round(time.Millisecond))
}

// produceEach writes one record to each partition of the topics, its value
// naming the partition.
func produceEach(t *testing.T, ctx context.Context, addr string, topics []string, partitions int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for _, topic := range topics {
		for p := range partitions {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(p), Value: []byte(fmt.Sprintf("%s/%d", topic, p))})
		}
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("producing one record to each of %d partitions: %v", len(rs), err)
	}
}

// readEach reads every partition of the topics from the start and checks
// that each holds exactly the one record produceEach wrote.
func readEach(t *testing.T, ctx context.Context, addr string, topics []string, partitions int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[string]int{}
	for len(seen) < len(topics)*partitions {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading back: %v with %d of %d partitions read", ctx.Err(), len(seen), len(topics)*partitions)
		}
		fs.EachRecord(func(r *kgo.Record) {
			key := fmt.Sprintf("%s/%d", r.Topic, r.Partition)
			if string(r.Value) != key || r.Offset != 0 {
				t.Errorf("%s at offset %d holds %q, want %q at offset 0", key, r.Offset, r.Value, key)
			}
			seen[key]++
		})
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("%s: read %d records, want 1", k, n)
		}
	}
}

// restartAndRead stops n, by kill -9 if how says so and else cleanly,
// starts it again with start, and reads every record of the topics (as
// produceEach wrote them) back. It checks what brokerd's "opened partition
// logs" line says: after kill -9 every partition's active segment was
// recovered, after a clean stop the markers were trusted and no segment was
// read. It returns the new node.
func restartAndRead(t *testing.T, ctx context.Context, n *node, how string, topics []string, perTopic int, start func() *node) *node {
	t.Helper()
	parts := strconv.Itoa(len(topics) * perTopic)
	want := map[string]string{"partitions": parts, "after_clean_shutdown": parts, "segments_recovered": "0"}
	if how == "kill -9" {
		n.proc.Kill()
		want["after_clean_shutdown"], want["segments_recovered"] = "0", parts
	} else {
		// One producer-state snapshot per partition, each fsynced, on a
		// shared machine.
		began := time.Now()
		n.proc.Stop(3 * time.Minute)
		if exited, err := n.proc.Exited(); !exited || err != nil {
			t.Fatalf("brokerd did not exit cleanly: %v\n%s", err, n.proc.Tail(2000))
		}
		t.Logf("a clean stop took %v", time.Since(began).Round(time.Millisecond))
	}
	offset := logSize(t, n)
	began := time.Now()
	n = start()
	fields := awaitLogLine(t, n, offset, `msg="opened partition logs"`)
	readEach(t, ctx, n.addr, topics, perTopic)
	t.Logf("restart after %s until every record was read: %v (opening the logs took %s)", how, time.Since(began).Round(time.Millisecond), fields["took"])
	checkFields(t, "after "+how, fields, want)
	return n
}

// TestManyPartitionsUnderALowFileLimit runs brokerd with RLIMIT_NOFILE at
// 256 and 2,000 partitions, which at three descriptors per partition
// (before log.max.open.files) could not even be created: they are
// created, written and read back with the segment files open staying
// within log.max.open.files. After kill -9 every partition's active
// segment is recovered and every record is there; after a clean stop the
// restart trusts the clean-shutdown markers and recovers nothing. With
// every descriptor taken (by connections held open), a new topic's
// partitions cannot be opened: brokerd says so in its log and opens them
// once descriptors are free again.
//
// It is issue 14's descriptor bound ("2,000 partitions with a limit of 512
// descriptors, every partition written and read, nothing lost") with half
// the descriptors: 256 is the stricter test, so there is no separate one
// at 512.
func TestManyPartitionsUnderALowFileLimit(t *testing.T) {
	const limit, maxOpen, perTopic = 256, 100, 1000
	topics := []string{"many-a", "many-b"}
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	dir := filepath.Join(t.TempDir(), "data")
	bounded := "log.max.open.files=" + strconv.Itoa(maxOpen)
	n := startLimited(t, addr, dir, limit, bounded)
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", n.proc.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	if want := regexp.MustCompile(`Max open files\s+256\s+256`); !want.Match(limits) {
		t.Fatalf("brokerd's limits do not say %v:\n%s", want, limits)
	}
	baseline, _ := fds(t, n.proc.Pid(), dir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// Its connection must outlive the wait for every descriptor to be taken.
	admCl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConnIdleTimeout(15*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	createTopics(t, ctx, adm, n, topics, perTopic)
	produceEach(t, ctx, addr, topics, perTopic)
	// Within the bound, plus what is not a segment file (connections, the
	// metadata store) as when brokerd had no partition, plus a few opened
	// for a moment.
	checkFDs := func(what string, maxOpen int) {
		t.Helper()
		total, segments := fds(t, n.proc.Pid(), dir)
		t.Logf("%s: %d descriptors open, %d of them segment files (%d with no partition)", what, total, segments, baseline)
		if segments > maxOpen || total > baseline+maxOpen+32 {
			t.Errorf("%s: %d descriptors open, %d of them segment files; want at most %d segment files and %d in all", what, total, segments, maxOpen, baseline+maxOpen+32)
		}
	}
	checkFDs("after writing every partition", maxOpen)
	readEach(t, ctx, addr, topics, perTopic)
	checkFDs("after reading every partition", maxOpen)

	// kill -9: every active segment is checked, and every record is there.
	n = restartAndRead(t, ctx, n, "kill -9", topics, perTopic, func() *node { return startLimited(t, addr, dir, limit, bounded) })
	// A clean stop: the restart trusts the markers and reads no segment
	// whole. From here on one idle segment file at most stays open.
	n = restartAndRead(t, ctx, n, "a clean stop", topics, perTopic, func() *node { return startLimited(t, addr, dir, limit, "log.max.open.files=1") })
	checkFDs("after reading every partition with log.max.open.files=1", 1)

	// Lower brokerd's descriptor limit to 3 (standard input, output and
	// error), so that it can open no file and accept no connection until
	// the limit is raised again, whatever it closes meanwhile: a new
	// topic's partitions cannot be opened. The admin client's connection
	// to the controller, and the one for producing, are made before.
	if _, err := adm.ValidateCreateTopics(ctx, 4, 1, nil, "overflow"); err != nil {
		t.Fatal(err)
	}
	pconn, err := wire.Dial(addr, "e2e", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer pconn.Close()
	// Dial returns once the kernel has queued the connection; an answer
	// proves brokerd accepted it (took its descriptor) before the limit
	// drops, else it would wait in the backlog until the limit is raised.
	if _, err := pconn.Request(kmsg.NewPtrApiVersionsRequest(), time.Now().Add(30*time.Second)); err != nil {
		t.Fatal(err)
	}
	setFileLimit := func(to uint64) {
		t.Helper()
		if err := unix.Prlimit(n.proc.Pid(), unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: to, Max: limit}, nil); err != nil {
			t.Fatalf("setting brokerd's RLIMIT_NOFILE to %d: %v", to, err)
		}
	}
	offset := logSize(t, n)
	setFileLimit(3)
	r, _ := adm.CreateTopic(ctx, 4, 1, nil, "overflow")
	// kadm returns the topic's error as the call's too.
	if !errors.Is(r.Err, kerr.KafkaStorageError) || !strings.Contains(r.ErrMessage, "overflow was created") {
		t.Errorf("CreateTopics with no descriptor left: %v (%s), want KAFKA_STORAGE_ERROR saying the topic was created", r.Err, r.ErrMessage)
	}
	awaitLogLine(t, n, offset, `msg="cannot open partition log; retrying"`, "topic=overflow", "storage: too many open files")
	// Producing to it meanwhile is answered KAFKA_STORAGE_ERROR too (on a
	// connection made before: no new one can be accepted).
	preq := kmsg.NewPtrProduceRequest()
	preq.Version, preq.Acks, preq.TimeoutMillis = 9, -1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "overflow"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = oneBatch()
	pt.Partitions = append(pt.Partitions, pp)
	preq.Topics = append(preq.Topics, pt)
	if presp, err := pconn.Request(preq, time.Now().Add(30*time.Second)); err != nil {
		t.Errorf("produce to overflow with no descriptor left: %v", err)
	} else if code := presp.(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode; code != kerr.KafkaStorageError.Code {
		t.Errorf("produce to overflow with no descriptor left: error %d, want KAFKA_STORAGE_ERROR", code)
	}

	// Descriptors free again: the partitions are opened by a retry and
	// work; nothing written before was lost.
	offset = logSize(t, n)
	setFileLimit(limit)
	fields := awaitLogLine(t, n, offset, `msg="opened partition logs"`)
	checkFields(t, "the retry", fields, map[string]string{"partitions": "4"})
	produceEach(t, ctx, addr, []string{"overflow"}, 4)
	readEach(t, ctx, addr, []string{"overflow"}, 4)
	readEach(t, ctx, addr, topics, perTopic)
}

// TestRestartTenThousandPartitions writes one record to each of 10,000
// partitions (10 topics of 1,000), restarts brokerd after kill -9 and then
// after a clean stop, and reads every record back each time: recovery
// checks every active segment after the kill and none after the clean
// stop.
func TestRestartTenThousandPartitions(t *testing.T) {
	const perTopic = 1000
	var topics []string
	for i := range 10 {
		topics = append(topics, fmt.Sprintf("tenk-%d", i))
	}
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	// A clean stop fsyncs four or five files per partition (the active
	// segment, its indexes, the producer-state snapshot and its folder):
	// 50,000 fsyncs, a minute and more on this shared machine's disk, and
	// not what this test is about. On tmpfs, when there is one, an fsync
	// costs nothing and the logs are the same files.
	parent := t.TempDir()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if parent, err = os.MkdirTemp("/dev/shm", "tenk-"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(parent) })
	}
	dir := filepath.Join(parent, "data")
	n := startNode(t, addr, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	createTopics(t, ctx, kadm.NewClient(cl), n, topics, perTopic)
	began := time.Now()
	produceEach(t, ctx, addr, topics, perTopic)
	t.Logf("wrote one record to each of %d partitions in %v", len(topics)*perTopic, time.Since(began).Round(time.Millisecond))
	start := func() *node { return startNode(t, addr, dir) }
	n = restartAndRead(t, ctx, n, "kill -9", topics, perTopic, start)
	restartAndRead(t, ctx, n, "a clean stop", topics, perTopic, start)
}

// TestIdleConnectionsMemory holds 1,000 connections to brokerd, each set up
// with ApiVersions and Metadata and then left idle, and bounds what they
// cost brokerd by its own /metrics, read after a forced garbage
// collection: the Go heap and goroutine stacks grow by at most 32 KiB per
// connection (about 8 KiB is what one costs, see docs/architecture.md;
// the race detector's build adds some), and one goroutine per connection
// remains (its reader: the one that handles requests runs only while
// there are some), plus a few of brokerd's own. Once they are closed,
// the goroutines are gone again. A new client is answered while they are
// held.
func TestIdleConnectionsMemory(t *testing.T) {
	const conns, maxBytesPerConn, goroutinesPerConn = 1000, 32 << 10, 1
	port, _ := devstack.FreePort()
	httpPort, _ := devstack.FreePort()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	metricsAddr := "127.0.0.1:" + strconv.Itoa(httpPort)
	startNode(t, addr, filepath.Join(t.TempDir(), "data"), "http.enabled=true", "http.pprof=true", "http.port="+strconv.Itoa(httpPort))

	// hello sets up one connection as a client would.
	hello := func() (*wire.Client, error) {
		c, err := wire.Dial(addr, "idle", 30*time.Second)
		if err != nil {
			return nil, err
		}
		deadline := time.Now().Add(time.Minute)
		if _, err = c.Request(kmsg.NewPtrApiVersionsRequest(), deadline); err == nil {
			_, err = c.Request(kmsg.NewPtrMetadataRequest(), deadline)
		}
		if err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	// One connection first, so that what every connection shares (the
	// output buffer pool, the handlers' first allocations) is in the
	// baseline.
	first, err := hello()
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	// scrape waits until brokerd counts want connections, has it collect
	// its garbage (the heap profile with gc=1) and returns its /metrics.
	scrape := func(what string, want float64) map[string]float64 {
		t.Helper()
		await.Eventually(t, what, func() error {
			m, err := devstack.ScrapeMetrics(metricsAddr)
			if err != nil {
				return err
			}
			if got := m["brokerd_connections"]; got != want {
				return await.NotYet(fmt.Sprint(got), fmt.Sprint(want))
			}
			return nil
		}, await.Within(2*time.Minute), await.Every(100*time.Millisecond))
		res, err := http.Get("http://" + metricsAddr + "/debug/pprof/heap?gc=1")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		m, err := devstack.ScrapeMetrics(metricsAddr)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	inUse := func(m map[string]float64) float64 {
		return m["go_memstats_heap_inuse_bytes"] + m["go_memstats_stack_inuse_bytes"]
	}
	before := scrape("brokerd_connections with one client", 1)

	held := make([]*wire.Client, conns)
	errs := make([]error, conns)
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < conns; i += 16 {
				held[i], errs[i] = hello()
			}
		})
	}
	wg.Wait()
	defer func() {
		for _, c := range held {
			if c != nil {
				c.Close()
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("setting up %d connections: %v", conns, err)
	}
	after := scrape("brokerd_connections with every connection held", conns+1)
	perConn := (inUse(after) - inUse(before)) / conns
	goroutines := after["go_goroutines"] - before["go_goroutines"]
	t.Logf("%d idle connections: heap and stacks %+.0f bytes per connection, %+.0f goroutines, RSS %+.1f MiB",
		conns, perConn, goroutines, (after["process_resident_memory_bytes"]-before["process_resident_memory_bytes"])/(1<<20))
	if perConn > maxBytesPerConn {
		t.Errorf("heap and stacks grew by %.0f bytes per idle connection, want at most %d", perConn, maxBytesPerConn)
	}
	// A few more for the broker's own timers and housekeeping.
	if want := goroutinesPerConn*conns + 10; goroutines > float64(want) {
		t.Errorf("%d idle connections added %.0f goroutines, want at most %d", conns, goroutines, want)
	}
	// A new client is answered while they are held.
	if c, err := hello(); err != nil {
		t.Errorf("a new client with %d connections held: %v", conns, err)
	} else {
		c.Close()
	}

	for i, c := range held {
		c.Close()
		held[i] = nil
	}
	scrape("brokerd_connections once they are closed", 1)
	await.Eventually(t, "brokerd's goroutines once the connections are closed", func() error {
		m, err := devstack.ScrapeMetrics(metricsAddr)
		if err != nil {
			return err
		}
		if got, want := m["go_goroutines"], before["go_goroutines"]+10; got > want {
			return await.NotYet(fmt.Sprint(got), fmt.Sprintf("at most %v", want))
		}
		return nil
	}, await.Within(time.Minute), await.Every(100*time.Millisecond))
}
