package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/wire"
	"logpipe/e2e/bench/benchkit"
	"logpipe/e2e/bench/loadgen"
	"logpipe/internal/await"
	"logpipe/internal/devstack"
)

// The layout of the cluster comparison: three nodes, and every topic with
// six partitions replicated to all of them, acks=all needing two in-sync
// replicas.
const (
	clusterNodes      = 3
	clusterPartitions = 6
	clusterReplicas   = 3
	clusterMinISR     = 2
)

const (
	// failoverRecordSize is the value size of the records produced while
	// a leader is killed: 1 KiB, as in the other steps.
	failoverRecordSize = 1024
	// failoverClientRetry is the failover producer's retry backoff and
	// the least time between its metadata requests (franz-go's defaults
	// are 250 ms growing to 5 s, and 5 s), so that the client learns of a
	// new leader within this long of a broker telling it.
	failoverClientRetry = 100 * time.Millisecond
)

// timingKeys are the settings that decide how soon a cluster notices a
// dead node and moves its partitions; the report gives each broker's.
var timingKeys = []string{"broker.heartbeat.interval.ms", "broker.session.timeout.ms", "replica.lag.time.max.ms"}

// cluster is a three-node cluster under test, brokerd's or Kafka's;
// devstack.Kafka is one as it is. Nodes are addressed by index.
type cluster interface {
	Addrs() []string
	Nodes() int
	NodeID(i int) int32
	// Pid returns node i's process id, 0 while it is down.
	Pid(i int) int
	// KillNode sends SIGKILL to node i and waits for it to be gone.
	KillNode(i int)
	// StartNode starts node i again on its data.
	StartNode(ctx context.Context, i int) error
	// Stop stops every node.
	Stop()
	// Dir returns the folder holding the nodes' data and logs.
	Dir() string
}

// brokerdCluster is a devstack brokerd cluster on a folder of its own.
type brokerdCluster struct {
	*devstack.BrokerdCluster
	dir string
}

// Dir returns the folder holding the nodes' data and logs.
func (c *brokerdCluster) Dir() string { return c.dir }

// Pid returns node i's process id, 0 while it is down.
func (c *brokerdCluster) Pid(i int) int {
	if p := c.Process(i); p != nil {
		return p.Pid()
	}
	return 0
}

// startBrokerdCluster starts three brokerd nodes in dir with their
// defaults, but for the same overrides as the single node.
func startBrokerdCluster(ctx context.Context, bin, dir string) (cluster, error) {
	var settings []string
	for _, k := range slices.Sorted(maps.Keys(brokerdOverrides)) {
		settings = append(settings, k+"="+brokerdOverrides[k])
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c, err := devstack.StartBrokerdCluster(sctx, devstack.BrokerdClusterOptions{Bin: bin, Dir: dir, Nodes: clusterNodes, Settings: settings})
	if err != nil {
		return nil, err
	}
	return &brokerdCluster{BrokerdCluster: c, dir: dir}, nil
}

// startKafkaCluster starts three Kafka nodes in dir with heapMB of heap
// each and the same server.properties as the single node.
func startKafkaCluster(ctx context.Context, heapMB int, dir string) (cluster, error) {
	sctx, cancel := context.WithTimeout(ctx, 6*time.Minute)
	defer cancel()
	k, err := devstack.StartKafka(sctx, devstack.KafkaOptions{Nodes: clusterNodes, Dir: dir, HeapMB: heapMB, Properties: kafkaOverrides})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// clusterRun is everything measured on one kind of cluster.
type clusterRun struct {
	name string
	// load is the 1-minute load average when the cluster was started.
	load string
	// timing holds the values of timingKeys the nodes run with, and
	// timingSource says where they were read.
	timing       map[string]string
	timingSource string
	// produce is the full-speed run, latency the fixed-rate one.
	produce *loadgen.ProduceResult
	latency *loadgen.ProduceResult
	// peakRSSKB is each node's peak resident memory over those two runs
	// (and the warm-up), cpuSeconds the CPU time of all nodes until then.
	peakRSSKB  []int64
	cpuSeconds float64
	failovers  []failover
	errs       []string
}

// failover is one leader kill.
type failover struct {
	// killed is the node id that was killed; led are the partitions it
	// led then; controller says whether it was the active controller.
	killed     int32
	led        []int32
	controller bool
	// successor is the node whose acknowledgement ended the failover,
	// for partition.
	successor int32
	partition int32
	// took runs from the kill to that acknowledgement.
	took time.Duration
}

// runCluster starts a cluster in a new folder, measures it, stops it, and
// removes the folder unless a step failed, leaving the nodes' logs to
// read. Failed steps are recorded in r; only a cluster that does not
// start, or an interrupt, is an error.
func runCluster(ctx context.Context, o *options, root string, r *clusterRun, start func(ctx context.Context, dir string) (cluster, error)) error {
	load := benchkit.LoadAverage()
	r.load = strings.Fields(load)[0]
	dir, err := benchkit.WorkDir("bench-" + r.name + "-cluster-")
	if err != nil {
		return err
	}
	log.Printf("%s cluster: starting %d nodes in %s (load average %s)", r.name, clusterNodes, dir, load)
	c, err := start(ctx, dir)
	if err != nil {
		return fmt.Errorf("%w (logs in %s)", err, dir)
	}
	defer func() {
		c.Stop()
		if len(r.errs) == 0 {
			_ = os.RemoveAll(dir)
		} else {
			log.Printf("%s cluster: a step failed; its logs are kept in %s", r.name, dir)
		}
	}()
	addrs := c.Addrs()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return fmt.Errorf("brokerbench: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	prefix := r.name + " cluster"
	step := func(what string, f func(context.Context) error) {
		runStep(ctx, o.stepTimeout(), &r.errs, prefix, what, f)
	}
	r.timing, r.timingSource = clusterTiming(ctx, r.name, adm, c.NodeID(0), root)

	watches := make([]*benchkit.MemWatch, c.Nodes())
	for i := range watches {
		watches[i] = benchkit.WatchMemory(c.Pid(i))
	}
	// A warm-up (not kept), then the full-speed run and the fixed-rate
	// one, each on a topic of its own.
	var warm *loadgen.ProduceResult
	for _, run := range []struct {
		what, topic string
		duration    time.Duration
		rate        int
		linger      time.Duration
		into        **loadgen.ProduceResult
	}{
		{"warm-up", "bench-cluster-warmup", o.warmup, 0, -1, &warm},
		{"produce (franz-go)", "bench-cluster-produce", o.duration, 0, -1, &r.produce},
		{"latency (franz-go)", "bench-cluster-latency", o.duration, o.clusterRate, 0, &r.latency},
	} {
		if run.duration == 0 {
			continue
		}
		step(run.what, func(ctx context.Context) error {
			pr, err := produceReplicated(ctx, adm, run.topic, loadgen.ProduceConfig{
				Brokers: addrs, RecordSize: o.recordSize, AllAcks: true, Duration: run.duration, Rate: run.rate, Linger: run.linger,
			})
			if err != nil {
				return err
			}
			*run.into = &pr
			log.Printf("%s: %s: %.0f records/s, %.1f MiB/s, p50 %s, p99 %s", prefix, run.what, pr.RecordsPerSec(), pr.MiBPerSec(),
				ms(pr.Latencies.Percentile(50)), ms(pr.Latencies.Percentile(99)))
			return nil
		})
	}
	for i, w := range watches {
		peak, cpu := w.Finish()
		r.peakRSSKB = append(r.peakRSSKB, peak)
		r.cpuSeconds += cpu
		log.Printf("%s: node %d peak RSS %.0f MiB, %.0f CPU seconds", prefix, c.NodeID(i), float64(peak)/1024, cpu)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("brokerbench: %w", err)
	}
	if o.failovers == 0 {
		return nil
	}

	const topic = "bench-cluster-failover"
	failed := len(r.errs) // a failure from here on ends the failovers
	step("failover topic", func(ctx context.Context) error { return createReplicated(ctx, adm, topic) })
	for n := 1; n <= o.failovers && len(r.errs) == failed; n++ {
		killed := -1
		step(fmt.Sprintf("failover %d", n), func(ctx context.Context) error {
			// Every second repetition kills the active controller,
			// the others a node that is not.
			f, i, err := measureFailover(ctx, o, c, cl, adm, topic, n%2 == 0)
			killed = i
			if err != nil {
				return err
			}
			r.failovers = append(r.failovers, f)
			log.Printf("%s: failover %d: killed node %d (leader of %v, active controller: %v), node %d acknowledged partition %d after %s",
				prefix, n, f.killed, f.led, f.controller, f.successor, f.partition, ms(f.took))
			return nil
		})
		if killed < 0 || n == o.failovers || len(r.errs) > failed {
			break
		}
		step(fmt.Sprintf("restart after failover %d", n), func(ctx context.Context) error {
			if err := c.StartNode(ctx, killed); err != nil {
				return err
			}
			return waitFullISR(ctx, adm, topic)
		})
	}
	return nil
}

// produceReplicated creates topic replicated across the cluster, runs
// cfg's load on it, checks that every record was acknowledged, and
// deletes the topic again, so that it adds no replication work to later
// steps.
func produceReplicated(ctx context.Context, adm *kadm.Client, topic string, cfg loadgen.ProduceConfig) (loadgen.ProduceResult, error) {
	if err := createReplicated(ctx, adm, topic); err != nil {
		return loadgen.ProduceResult{}, err
	}
	cfg.Topic = topic
	pr, err := loadgen.Produce(ctx, cfg)
	if err == nil {
		err = allAcknowledged(pr)
	}
	if _, derr := adm.DeleteTopics(ctx, topic); derr != nil {
		log.Printf("deleting %s: %v", topic, derr)
	}
	return pr, err
}

// createReplicated creates topic with the cluster layout and waits until
// every partition has a leader and all its replicas in sync.
func createReplicated(ctx context.Context, adm *kadm.Client, topic string) error {
	return benchkit.CreateReplicatedTopic(ctx, adm, topic, clusterPartitions, clusterReplicas, clusterMinISR)
}

// waitFullISR waits until every partition of topic has a leader and every
// replica in its ISR.
func waitFullISR(ctx context.Context, adm *kadm.Client, topic string) error {
	return benchkit.WaitInSync(ctx, adm, topic, clusterPartitions, clusterReplicas)
}

// clusterTiming returns the values of timingKeys the nodes run with, and
// where they come from: what node id says of itself in DescribeConfigs,
// asked again for up to 30 s while the answer lacks a key (right after
// the start the client may not know node id yet); for brokerd, keys still
// missing then are taken from its defaults as configs/brokerd.yml lists
// them, since the benchmark overrides none.
func clusterTiming(ctx context.Context, name string, adm *kadm.Client, id int32, root string) (map[string]string, string) {
	got := map[string]string{}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var why error
	for {
		rcs, err := adm.DescribeBrokerConfigs(dctx, id)
		for _, rc := range rcs {
			err = cmp.Or(err, rc.Err)
			for _, c := range rc.Configs {
				if slices.Contains(timingKeys, c.Key) && c.Value != nil {
					got[c.Key] = *c.Value
				}
			}
		}
		if err == nil && len(got) < len(timingKeys) {
			err = fmt.Errorf("node %d described %d of the %d keys", id, len(got), len(timingKeys))
		}
		why = err
		if len(got) == len(timingKeys) || dctx.Err() != nil {
			break
		}
		select {
		case <-dctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	if len(got) == len(timingKeys) {
		return got, "as the nodes describe them (DescribeConfigs)"
	}
	if name != "brokerd" {
		return got, fmt.Sprintf("as the nodes describe them, partly (DescribeConfigs: %v)", why)
	}
	path := filepath.Join(root, "configs", "brokerd.yml")
	f, err := os.Open(path)
	if err != nil {
		return got, "partly unknown: " + err.Error()
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if _, have := got[k]; ok && !have && slices.Contains(timingKeys, k) {
			got[k] = strings.TrimSpace(v)
		}
	}
	return got, fmt.Sprintf("brokerd's defaults as configs/brokerd.yml lists them (DescribeConfigs: %v)", why)
}

// measureFailover produces a steady acks=all stream to topic, kills a
// leader once every partition is being acknowledged (the active
// controller if controller and it leads a partition, else the leader of
// the first partition not led by the controller), and times the kill to
// the first acknowledgement, from another node, of a partition the killed
// node led. It returns the killed node's index (-1 if none was killed)
// and waits for every record sent to be acknowledged.
func measureFailover(ctx context.Context, o *options, c cluster, cl *kgo.Client, adm *kadm.Client, topic string, controller bool) (failover, int, error) {
	w := newSuccessorWatch()
	stop := make(chan struct{})
	type produced struct {
		res loadgen.ProduceResult
		err error
	}
	done := make(chan produced, 1)
	go func() {
		res, err := loadgen.Produce(ctx, loadgen.ProduceConfig{
			Brokers: c.Addrs(), Topic: topic, RecordSize: failoverRecordSize, AllAcks: true,
			Duration: 2*o.failoverTimeout + time.Minute, Rate: o.failoverRate, Linger: 0, Stop: stop,
			Opts: []kgo.Opt{
				kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
				kgo.MetadataMinAge(failoverClientRetry),
				kgo.RetryBackoffFn(func(int) time.Duration { return failoverClientRetry }),
				// A node that just lost a partition may answer
				// UNKNOWN_TOPIC_OR_PARTITION (Kafka did, in one run),
				// which franz-go gives up on after 4 tries by default.
				kgo.UnknownTopicRetries(-1),
				kgo.WithHooks(w),
			},
		})
		done <- produced{res, err}
	}()
	finish := func(err error) (failover, int, error) {
		close(stop)
		p := <-done
		w.mu.Lock()
		defer w.mu.Unlock()
		i := w.killedIndex
		if err == nil {
			err = p.err
		}
		if err == nil {
			err = allAcknowledged(p.res)
		}
		if err != nil {
			return failover{}, i, err
		}
		return *w.first, i, nil
	}

	// Steady: a second's worth of records acknowledged, on every partition.
	sctx, cancel := context.WithTimeout(ctx, o.failoverTimeout)
	defer cancel()
	if err := await.Poll(sctx, 20*time.Millisecond, w.steady(int64(o.failoverRate))); err != nil {
		return finish(fmt.Errorf("brokerbench: steady stream before the kill: %w", err))
	}
	// The victim is chosen once the metadata and the acknowledgements
	// agree on who leads what: right after a node returned, leadership
	// may still be moving back to it.
	var (
		victim = -1
		leader = int32(-1)
		active = int32(-1)
		led    []int32
	)
	agreed := func(ctx context.Context) error {
		var err error
		if active, err = activeController(ctx, cl); err != nil {
			return err
		}
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return fmt.Errorf("brokerbench: leaders before the kill: %w", err)
		}
		leads := map[int32][]int32{}
		leader, victim, led = -1, -1, nil
		for _, p := range md.Topics[topic].Partitions.Sorted() {
			leads[p.Leader] = append(leads[p.Leader], p.Partition)
			if leader < 0 && p.Leader >= 0 && p.Leader != active {
				leader = p.Leader
			}
		}
		if controller && len(leads[active]) > 0 {
			leader = active
		}
		for i := range c.Nodes() {
			if c.NodeID(i) == leader {
				victim = i
			}
		}
		if victim < 0 {
			return await.NotYet(fmt.Sprintf("a partition of %s led by %d", topic, leader), "one led by a node of the cluster")
		}
		led = leads[leader]
		return w.agrees(leader, led)
	}
	if err := await.Poll(sctx, 20*time.Millisecond, agreed); err != nil {
		return finish(err)
	}
	w.arm(victim, leader, led, leader == active)
	c.KillNode(victim)

	fctx, fcancel := context.WithTimeout(ctx, o.failoverTimeout)
	defer fcancel()
	if err := await.Poll(fctx, 10*time.Millisecond, w.succeeded); err != nil {
		logViews(c.Addrs(), topic)
		return finish(fmt.Errorf("brokerbench: no acknowledgement from a new leader after killing node %d: %w", leader, err))
	}
	return finish(nil)
}

// successorWatch is a franz-go hook on every batch a broker acknowledges:
// before a kill it counts each partition's records; after one, it keeps
// the first acknowledgement that another node gives for a partition the
// killed node led.
type successorWatch struct {
	mu          sync.Mutex
	acked       map[int32]int64 // records per partition
	lastBy      map[int32]int32 // node of each partition's last acknowledgement
	killedIndex int             // -1 until the kill
	killedAt    time.Time
	victim      failover // killed and led, set at the kill
	first       *failover
}

func newSuccessorWatch() *successorWatch {
	return &successorWatch{acked: map[int32]int64{}, lastBy: map[int32]int32{}, killedIndex: -1}
}

// OnProduceBatchWritten implements kgo.HookProduceBatchWritten.
func (w *successorWatch) OnProduceBatchWritten(meta kgo.BrokerMetadata, _ string, partition int32, m kgo.ProduceBatchMetrics) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.acked[partition] += int64(m.NumRecords)
	w.lastBy[partition] = meta.NodeID
	if w.killedAt.IsZero() || w.first != nil || meta.NodeID == w.victim.killed || !slices.Contains(w.victim.led, partition) {
		return
	}
	f := w.victim
	f.successor, f.partition, f.took = meta.NodeID, partition, now.Sub(w.killedAt)
	w.first = &f
}

// steady returns a check that passes once every partition has had records
// acknowledged, atLeast of them in all.
func (w *successorWatch) steady(atLeast int64) func(context.Context) error {
	return func(context.Context) error {
		w.mu.Lock()
		defer w.mu.Unlock()
		var total int64
		for _, n := range w.acked {
			total += n
		}
		if len(w.acked) < clusterPartitions || total < atLeast {
			return await.NotYet(fmt.Sprintf("%d records acknowledged on %d partitions", total, len(w.acked)),
				fmt.Sprintf("%d on %d", atLeast, clusterPartitions))
		}
		return nil
	}
}

// agrees checks that the last acknowledgement of each partition in led
// came from id, as the metadata says it leads them; if not, the metadata
// or the client is out of date, and a kill would not show a failover.
func (w *successorWatch) agrees(id int32, led []int32) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, p := range led {
		if by, ok := w.lastBy[p]; !ok || by != id {
			return await.NotYet(fmt.Sprintf("partition %d last acknowledged by node %d", p, by), fmt.Sprintf("by node %d, its leader in the metadata", id))
		}
	}
	return nil
}

// arm notes, just before the kill, that node index i with node id id,
// leader of the partitions led, and the active controller or not, is
// about to be killed now.
func (w *successorWatch) arm(i int, id int32, led []int32, controller bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.killedIndex = i
	w.victim = failover{killed: id, led: led, controller: controller}
	w.killedAt = time.Now()
}

// succeeded is a check that passes once a successor has acknowledged.
func (w *successorWatch) succeeded(context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.first == nil {
		return errors.New("no acknowledgement from a new leader yet")
	}
	return nil
}

// activeController asks the cluster which node leads its metadata quorum
// (DescribeQuorum, which Kafka's brokers and brokerd's nodes forward to
// the active controller).
func activeController(ctx context.Context, cl *kgo.Client) (int32, error) {
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rt.Partitions = append(rt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return -1, fmt.Errorf("brokerbench: describing the metadata quorum: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return -1, fmt.Errorf("brokerbench: describing the metadata quorum: %w", err)
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return -1, errors.New("brokerbench: describing the metadata quorum: no partition in the answer")
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return -1, fmt.Errorf("brokerbench: describing the metadata quorum: %w", err)
	}
	return p.LeaderID, nil
}

// logViews logs how each node that answers sees topic's partitions, for
// a failover that did not complete.
func logViews(addrs []string, topic string) {
	for _, addr := range addrs {
		conn, err := wire.Dial(addr, "brokerbench", 2*time.Second)
		if err != nil {
			log.Printf("%s: %v", addr, err)
			continue
		}
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 12
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		kresp, err := conn.Request(req, time.Now().Add(5*time.Second))
		conn.Close()
		if err != nil {
			log.Printf("%s: metadata: %v", addr, err)
			continue
		}
		resp := kresp.(*kmsg.MetadataResponse)
		log.Printf("%s: controller %d, %d brokers", addr, resp.ControllerID, len(resp.Brokers))
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				log.Printf("%s: %s-%d leader %d (epoch %d), replicas %v, ISR %v, error %d", addr, topic, p.Partition, p.Leader, p.LeaderEpoch, p.Replicas, p.ISR, p.ErrorCode)
			}
		}
	}
}
