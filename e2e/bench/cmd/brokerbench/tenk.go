package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/e2e/bench/benchkit"
	"logpipe/internal/devstack"
)

// tenkOptions are the settings of the -parts tenk and conns modes (issue
// 14: many partitions, many connections).
type tenkOptions struct {
	// tenk and conns say whether the modes run.
	tenk, conns bool
	// topics of perTopic partitions each, recordsPer records in each
	// partition, for tenk.
	topics, perTopic, recordsPer int
	// connections is how many idle connections conns holds.
	connections int
}

// addTenkFlags registers the modes' flags on fs.
func addTenkFlags(fs *flag.FlagSet, o *tenkOptions) {
	fs.IntVar(&o.topics, "tenk-topics", 10, "tenk: topics to create (Kafka takes at most 10,000 partitions per CreateTopics)")
	fs.IntVar(&o.perTopic, "tenk-partitions", 1000, "tenk: partitions per topic")
	fs.IntVar(&o.recordsPer, "tenk-records", 10, "tenk: records written to each partition")
	fs.IntVar(&o.connections, "conns", 10000, "conns: idle client connections to hold")
}

// parsePart takes the -parts entries of the scale modes; it returns false
// for any other.
func (o *tenkOptions) parsePart(s string) bool {
	switch s {
	case "tenk":
		o.tenk = true
	case "conns":
		o.conns = true
	default:
		return false
	}
	return true
}

// tenkResult is what the tenk mode measured on one broker; a zero figure
// is one that was not reached, and err says why.
type tenkResult struct {
	name string
	load string
	// create and write are the times to create every partition and to
	// write every record; firstRead the time a new client took to read
	// them all back.
	create, write, firstRead time.Duration
	// rssKB is the resident memory after every record was written and
	// read back; peakKB the largest seen before the kill; fds the open
	// descriptors then.
	rssKB, peakKB int64
	fds           int
	// listening is the time from the restart until the broker accepted
	// connections (Kafka: answered Metadata listing itself), readable the
	// time until every partition had served all its records. slowStart
	// says why listening is missing when the broker ran but was not
	// ready in the time devstack gives it.
	listening, readable time.Duration
	slowStart           string
	// restartRSSKB is the resident memory once everything was read after
	// the restart.
	restartRSSKB int64
	// goEmpty and goFull are brokerd's Go memory before the first topic
	// was created and with every partition written and read (hasGo:
	// they were read).
	goEmpty, goFull goMemory
	hasGo           bool
	// openedLogs is brokerd's last "opened partition logs" line, the
	// restart's: how long opening the logs took of the restart.
	openedLogs string
	err        error
}

// restartable is a one-node broker whose process can be killed and
// started again on the same data.
type restartable interface {
	benchkit.Broker
	// Kill stops the process with SIGKILL.
	Kill()
	// Restart starts it again on the same folder and port and returns
	// once it accepts connections (or errStillStarting).
	Restart(ctx context.Context) error
}

// brokerdNode is brokerd on a folder and port of its own, restartable,
// with /metrics and the profiler served on httpAddr.
type brokerdNode struct {
	opts     devstack.BrokerdOptions
	dir      string
	httpAddr string
	proc     *devstack.Process
}

func startBrokerdNode(ctx context.Context, bin string) (*brokerdNode, error) {
	dir, err := benchkit.WorkDir("bench-tenk-brokerd-")
	if err != nil {
		return nil, err
	}
	port, err := devstack.FreePort()
	var httpPort int
	if err == nil {
		httpPort, err = devstack.FreePort()
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	n := &brokerdNode{dir: dir, httpAddr: fmt.Sprintf("127.0.0.1:%d", httpPort), opts: devstack.BrokerdOptions{
		Bin: bin, Addr: fmt.Sprintf("127.0.0.1:%d", port), DataDir: filepath.Join(dir, "data"), LogPath: filepath.Join(dir, "brokerd.log"),
		Settings: []string{"http.enabled=true", "http.pprof=true", fmt.Sprintf("http.port=%d", httpPort)}}}
	for k, v := range brokerdOverrides {
		n.opts.Settings = append(n.opts.Settings, k+"="+v)
	}
	if err := n.Restart(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return n, nil
}

// Bootstrap returns brokerd's listener address.
func (n *brokerdNode) Bootstrap() string { return n.opts.Addr }

// Pid returns the process id of the brokerd started last.
func (n *brokerdNode) Pid() int { return n.proc.Pid() }

// Kill kills brokerd with SIGKILL.
func (n *brokerdNode) Kill() { n.proc.Kill() }

// Restart starts brokerd on its folder and port and returns once its
// listener accepts connections.
func (n *brokerdNode) Restart(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	p, err := devstack.StartBrokerd(sctx, n.opts)
	if err != nil {
		return err
	}
	n.proc = p
	return nil
}

// lastLogLine returns the last line of brokerd's log holding s, without
// its time, "" if there is none.
func (n *brokerdNode) lastLogLine(s string) string {
	b, _ := os.ReadFile(n.opts.LogPath)
	for _, l := range slices.Backward(strings.Split(string(b), "\n")) {
		if strings.Contains(l, s) {
			_, rest, _ := strings.Cut(l, " ")
			return rest
		}
	}
	return ""
}

// Stop stops brokerd (SIGTERM, SIGKILL after 2 minutes: a clean stop of
// many partitions fsyncs several files for each) and removes its folder.
func (n *brokerdNode) Stop() {
	n.proc.Stop(2 * time.Minute)
	_ = os.RemoveAll(n.dir)
}

// kafkaNode is devstack's one-node Kafka, restartable.
type kafkaNode struct{ k *devstack.Kafka }

func startKafkaNode(ctx context.Context, heapMB int) (*kafkaNode, error) {
	sctx, cancel := context.WithTimeout(ctx, 6*time.Minute)
	defer cancel()
	k, err := devstack.StartKafka(sctx, devstack.KafkaOptions{Nodes: 1, HeapMB: heapMB, Properties: kafkaOverrides})
	if err != nil {
		return nil, err
	}
	return &kafkaNode{k: k}, nil
}

// Bootstrap returns Kafka's PLAINTEXT listener address.
func (n *kafkaNode) Bootstrap() string { return n.k.Bootstrap() }

// Pid returns the JVM's process id, 0 if it is not running.
func (n *kafkaNode) Pid() int { return n.k.Pid(0) }

// Kill kills the JVM with SIGKILL.
func (n *kafkaNode) Kill() { n.k.KillNode(0) }

// Stop stops Kafka and removes its folder.
func (n *kafkaNode) Stop() { n.k.Stop() }

// errStillStarting is a restart whose process runs but was not ready in
// the time devstack gives it.
var errStillStarting = errors.New("brokerbench: still starting")

// Restart starts the JVM again and waits until devstack finds it ready;
// errStillStarting says it runs but was not ready in devstack's time.
func (n *kafkaNode) Restart(ctx context.Context) error {
	err := n.k.StartNode(ctx, 0)
	if err != nil && ctx.Err() == nil && n.k.Pid(0) != 0 {
		return fmt.Errorf("%w: %w", errStillStarting, err)
	}
	return err
}

// tenkStarters start each broker kind for the scale modes.
func tenkStarters(o *options, bin string) map[string]func(context.Context) (restartable, error) {
	return map[string]func(context.Context) (restartable, error){
		"brokerd": func(ctx context.Context) (restartable, error) { return startBrokerdNode(ctx, bin) },
		"kafka":   func(ctx context.Context) (restartable, error) { return startKafkaNode(ctx, o.kafkaHeapMB) },
	}
}

// runTenkParts runs the modes -parts asked for, each broker in turn, and
// publishes their sections.
func runTenkParts(ctx context.Context, o *options, root, bin string, rep *report) error {
	if !o.many.tenk && !o.many.conns {
		return nil
	}
	if err := raiseFileLimit(); err != nil {
		return err
	}
	starters := tenkStarters(o, bin)
	if o.many.tenk {
		started := time.Now()
		var results []*tenkResult
		for _, name := range o.brokers {
			syscall.Sync()
			r, err := runTenk(ctx, &o.many, name, starters[name])
			if err != nil {
				return err
			}
			results = append(results, r)
		}
		if err := publish(o, root, tenkHeading, rep.tenkMarkdown(&o.many, started, time.Now(), results)); err != nil {
			return err
		}
	}
	if o.many.conns {
		started := time.Now()
		var results []*connsResult
		for _, name := range o.brokers {
			syscall.Sync()
			r, err := runConns(ctx, o.many.connections, name, starters[name])
			if err != nil {
				return err
			}
			results = append(results, r)
		}
		if err := publish(o, root, connsHeading, rep.connsMarkdown(&o.many, started, time.Now(), results)); err != nil {
			return err
		}
	}
	return nil
}

// raiseFileLimit sets this process's soft RLIMIT_NOFILE to its hard limit;
// the brokers it starts inherit it.
func raiseFileLimit() error {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("brokerbench: %w", err)
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return fmt.Errorf("brokerbench: %w", err)
	}
	log.Printf("open-file limit %d", l.Cur)
	return nil
}

// tenkTopics names the mode's topics.
func tenkTopics(o *tenkOptions) []string {
	var ts []string
	for i := range o.topics {
		ts = append(ts, fmt.Sprintf("tenk-%d", i))
	}
	return ts
}

// runTenk measures one broker with o.topics×o.perTopic partitions: their
// creation, writing o.recordsPer records to each, memory, and the restart
// after kill -9 until every partition served its records again. A failed
// step ends the broker's run and is recorded; only a broker that does not
// start at all, or an interrupt, is an error.
func runTenk(ctx context.Context, o *tenkOptions, name string, start func(context.Context) (restartable, error)) (*tenkResult, error) {
	r := &tenkResult{name: name, load: benchkit.LoadAverage()}
	parts := o.topics * o.perTopic
	log.Printf("%s: starting for %d partitions (load average %s)", name, parts, r.load)
	b, err := start(ctx)
	if err != nil {
		return nil, err
	}
	defer b.Stop()
	w := benchkit.WatchMemory(b.Pid())
	r.err = func() error {
		topics := tenkTopics(o)
		r.goEmpty, r.hasGo = brokerdMemory(b)
		began := time.Now()
		for _, t := range topics {
			if err := benchkit.CreateTopic(ctx, b.Bootstrap(), t, o.perTopic); err != nil {
				return err
			}
		}
		r.create = time.Since(began)
		log.Printf("%s: created %d partitions in %v", name, parts, r.create.Round(time.Millisecond))
		began = time.Now()
		if err := writeEvery(ctx, b.Bootstrap(), topics, o.perTopic, o.recordsPer); err != nil {
			return err
		}
		r.write = time.Since(began)
		log.Printf("%s: wrote %d records in %v", name, parts*o.recordsPer, r.write.Round(time.Millisecond))
		began = time.Now()
		if err := readEvery(ctx, b.Bootstrap(), topics, o.perTopic, o.recordsPer); err != nil {
			return err
		}
		r.firstRead = time.Since(began)
		r.rssKB, _ = benchkit.ProcStatusKB(b.Pid(), "VmRSS")
		r.fds = openFiles(b.Pid())
		r.peakKB, _ = w.Finish()
		if r.hasGo {
			r.goFull, r.hasGo = brokerdMemory(b)
		}
		log.Printf("%s: read every record in %v; RSS %.0f MiB (peak %.0f MiB), %d descriptors; kill -9",
			name, r.firstRead.Round(time.Millisecond), float64(r.rssKB)/1024, float64(r.peakKB)/1024, r.fds)

		b.Kill()
		began = time.Now()
		switch err := b.Restart(ctx); {
		case errors.Is(err, errStillStarting):
			r.slowStart = firstLine(err.Error())
			log.Printf("%s: %s; reading on", name, r.slowStart)
		case err != nil:
			return err
		default:
			r.listening = time.Since(began)
		}
		if err := readEvery(ctx, b.Bootstrap(), topics, o.perTopic, o.recordsPer); err != nil {
			return err
		}
		r.readable = time.Since(began)
		r.restartRSSKB, _ = benchkit.ProcStatusKB(b.Pid(), "VmRSS")
		if n, ok := b.(*brokerdNode); ok {
			r.openedLogs = n.lastLogLine(`msg="opened partition logs"`)
		}
		log.Printf("%s: restarted after kill -9: listening after %v, every record read after %v; RSS %.0f MiB",
			name, r.listening.Round(time.Millisecond), r.readable.Round(time.Millisecond), float64(r.restartRSSKB)/1024)
		return nil
	}()
	if err := endRun(ctx, name, r.err); err != nil {
		return nil, err
	}
	return r, nil
}

// endRun logs why a broker's run stopped early, if it did, and returns
// the interrupt that ends the whole benchmark, if any.
func endRun(ctx context.Context, name string, failed error) error {
	if failed != nil {
		log.Printf("%s: %v", name, failed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("brokerbench: %w", err)
	}
	return nil
}

// writeEvery writes n records of 100 bytes to every partition of the
// topics, all acknowledged by the leader.
func writeEvery(ctx context.Context, addr string, topics []string, partitions, n int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(), kgo.MaxBufferedRecords(1<<20))
	if err != nil {
		return fmt.Errorf("brokerbench: %w", err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	value := make([]byte, 100)
	for _, t := range topics {
		for p := range partitions {
			for range n {
				rs = append(rs, &kgo.Record{Topic: t, Partition: int32(p), Value: value})
			}
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := cl.ProduceSync(wctx, rs...).FirstErr(); err != nil {
		return fmt.Errorf("brokerbench: writing %d records: %w", len(rs), err)
	}
	return nil
}

// readEvery reads the topics from the start with a new client until every
// partition has served n records, retrying quickly while the broker is not
// ready yet.
func readEvery(ctx context.Context, addr string, topics []string, partitions, n int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }),
		kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		return fmt.Errorf("brokerbench: %w", err)
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	type tp struct {
		t string
		p int32
	}
	got := map[tp]int{}
	full, want := 0, len(topics)*partitions
	for full < want {
		fs := cl.PollFetches(rctx)
		if err := rctx.Err(); err != nil {
			return fmt.Errorf("brokerbench: reading back: %w with %d of %d partitions read", err, full, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			k := tp{r.Topic, r.Partition}
			got[k]++
			if got[k] == n {
				full++
			}
		})
	}
	return nil
}

// openFiles returns how many descriptors process pid has open, 0 if that
// cannot be read.
func openFiles(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

// goMemory is what brokerd's Go runtime holds: heap and goroutine stacks
// in use, in bytes, and goroutines.
type goMemory struct{ inUse, goroutines float64 }

// readGoMemory has brokerd at httpAddr collect its garbage (the heap
// profile with gc=1) and then reads its /metrics.
func readGoMemory(httpAddr string) (goMemory, error) {
	c := http.Client{Timeout: time.Minute}
	res, err := c.Get("http://" + httpAddr + "/debug/pprof/heap?gc=1")
	if err != nil {
		return goMemory{}, fmt.Errorf("brokerbench: %w", err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	m, err := devstack.ScrapeMetrics(httpAddr)
	if err != nil {
		return goMemory{}, err
	}
	return goMemory{m["go_memstats_heap_inuse_bytes"] + m["go_memstats_stack_inuse_bytes"], m["go_goroutines"]}, nil
}

// brokerdMemory reads b's Go memory if it is brokerd; ok is false for
// Kafka or when it cannot be read.
func brokerdMemory(b restartable) (m goMemory, ok bool) {
	n, isBrokerd := b.(*brokerdNode)
	if !isBrokerd {
		return goMemory{}, false
	}
	m, err := readGoMemory(n.httpAddr)
	if err != nil {
		log.Printf("brokerd: reading its Go memory: %v", err)
		return goMemory{}, false
	}
	return m, true
}
