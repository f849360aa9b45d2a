package devstack

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Time limits for bringing brokers up and down. They are generous because
// the test machines have two cores shared by several JVMs.
const (
	kafkaReadyTimeout  = 3 * time.Minute
	kafkaFormatTimeout = 2 * time.Minute
	kafkaStopGrace     = 30 * time.Second
	kafkaCheckTimeout  = 5 * time.Second
	kafkaPollInterval  = 250 * time.Millisecond
)

// KafkaOptions says how StartKafka lays out a cluster. The zero value is a
// single node with a 512 MB heap in a fresh temporary folder.
type KafkaOptions struct {
	// Nodes is the number of KRaft nodes, each both broker and controller
	// (combined mode), with node ids 1..Nodes. Zero means 1.
	Nodes int
	// Dir holds one sub-folder per node (data, server.properties, log).
	// It must not hold a formatted cluster already. Empty means a new
	// folder under CacheDir("run"), removed again by Stop.
	Dir string
	// HeapMB is each node's JVM heap (-Xms and -Xmx). Zero means 512.
	HeapMB int
	// Properties are server.properties overrides applied to every node
	// after devstack's own settings, so they win. Overrides must keep
	// the SASL_PLAINTEXT listener working: StartKafka waits for it.
	Properties map[string]string
	// SASLSSL, when set, gives every node a third client listener,
	// SASL_SSL, with this certificate (see SASLSSLAddrs).
	SASLSSL *KafkaTLS
}

// Kafka is a running Apache Kafka cluster in KRaft combined mode, every node a
// child process of the test binary listening on 127.0.0.1. Nodes are
// addressed by index 0..Nodes()-1; node i has Kafka node id i+1. Every node
// serves clients on two listeners: PLAINTEXT (Bootstrap, Addrs), which
// brokers also use among themselves, and SASL_PLAINTEXT (SASLBootstrap,
// SASLAddrs), which admits only the users of KafkaSASLUsers, and with
// KafkaOptions.SASLSSL a third, SASL_SSL (SASLSSLAddrs). Its methods
// are safe for concurrent use.
type Kafka struct {
	dir       string
	ownDir    bool
	jars      string
	java      string
	clusterID string
	heapMB    int
	log4j     string
	saslSSL   *KafkaTLS

	mu    sync.Mutex
	nodes []*kafkaNode
}

// kafkaNode is one broker+controller process and the files it owns.
type kafkaNode struct {
	id        int
	port      int // PLAINTEXT listener
	saslPort  int // SASL_PLAINTEXT listener
	sslPort   int // SASL_SSL listener, 0 if none
	ctrlPort  int // CONTROLLER listener
	dir       string
	propsPath string
	logPath   string
	proc      *Process // nil while stopped
}

func (n *kafkaNode) addr() string { return fmt.Sprintf("127.0.0.1:%d", n.port) }

func (n *kafkaNode) saslAddr() string { return fmt.Sprintf("127.0.0.1:%d", n.saslPort) }

// running reports whether the node's process is up. Callers hold Kafka.mu.
func (n *kafkaNode) running() bool {
	if n.proc == nil {
		return false
	}
	exited, _ := n.proc.Exited()
	return !exited
}

// KafkaJars returns the folder holding the Kafka broker's and tools' jars
// (deploy/maven/kafka), fetching them with Maven the first time. A java
// command line can use it as the class path "<dir>/*", for example to run
// org.apache.kafka.tools.ProducerPerformance.
func KafkaJars(ctx context.Context) (string, error) {
	return Jars(ctx, "kafka")
}

// KafkaToolCommand returns a command that runs a Java main class from the
// Kafka jars, such as org.apache.kafka.tools.ProducerPerformance or
// org.apache.kafka.tools.ConsumerPerformance, with a 512 MB heap and log4j
// set to print warnings to stderr. The caller sets its output and runs it;
// ctx kills it.
func KafkaToolCommand(ctx context.Context, class string, args ...string) (*exec.Cmd, error) {
	jars, err := KafkaJars(ctx)
	if err != nil {
		return nil, err
	}
	java, err := JavaPath()
	if err != nil {
		return nil, err
	}
	runDir, err := CacheDir("run")
	if err != nil {
		return nil, err
	}
	// Written to a temporary name and renamed, so binaries running side by
	// side never see a half-written file.
	conf := filepath.Join(runDir, "kafka-tools-log4j.properties")
	tmp, err := os.CreateTemp(runDir, "kafka-tools-log4j-*")
	if err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	_, werr := tmp.WriteString(kafkaToolsLog4j)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("devstack: %w", err)
	}
	if err := os.Rename(tmp.Name(), conf); err != nil {
		os.Remove(tmp.Name())
		return nil, fmt.Errorf("devstack: %w", err)
	}
	argv := []string{"-Xmx512m", "-Djava.awt.headless=true", "-Dlog4j.configuration=file:" + conf,
		"-cp", filepath.Join(jars, "*"), class}
	return exec.CommandContext(ctx, java, append(argv, args...)...), nil
}

// StartKafka formats storage for a new cluster, starts its nodes and waits
// until every node lists all brokers in its metadata, admits every account
// of KafkaSASLUsers on its SASL_PLAINTEXT listener, and a topic can be
// created. On failure it stops whatever it started and the error carries
// the tail of the failing node's log; the folder is left for inspection.
func StartKafka(ctx context.Context, opts KafkaOptions) (*Kafka, error) {
	n := opts.Nodes
	if n <= 0 {
		n = 1
	}
	heap := opts.HeapMB
	if heap <= 0 {
		heap = 512
	}
	jars, err := KafkaJars(ctx)
	if err != nil {
		return nil, err
	}
	java, err := JavaPath()
	if err != nil {
		return nil, err
	}
	k := &Kafka{dir: opts.Dir, jars: jars, java: java, heapMB: heap, saslSSL: opts.SASLSSL}
	if k.dir == "" {
		runDir, err := CacheDir("run")
		if err != nil {
			return nil, err
		}
		if k.dir, err = os.MkdirTemp(runDir, "kafka-"); err != nil {
			return nil, fmt.Errorf("devstack: %w", err)
		}
		k.ownDir = true
	} else if err := os.MkdirAll(k.dir, 0o755); err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}
	if k.clusterID, err = kafkaClusterID(); err != nil {
		return nil, err
	}
	k.log4j = filepath.Join(k.dir, "log4j.properties")
	if err := os.WriteFile(k.log4j, []byte(kafkaLog4j), 0o644); err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}

	ports, err := kafkaFreePorts(3 * n)
	if err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		dir := filepath.Join(k.dir, fmt.Sprintf("node-%d", i+1))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("devstack: %w", err)
		}
		k.nodes = append(k.nodes, &kafkaNode{
			id:        i + 1,
			port:      ports[3*i],
			saslPort:  ports[3*i+1],
			ctrlPort:  ports[3*i+2],
			dir:       dir,
			propsPath: filepath.Join(dir, "server.properties"),
			logPath:   filepath.Join(dir, "kafka.log"),
		})
	}
	if err := k.addSASLSSLPorts(); err != nil {
		return nil, err
	}
	for _, node := range k.nodes {
		if err := os.WriteFile(node.propsPath, []byte(k.serverProperties(node, opts.Properties)), 0o644); err != nil {
			return nil, fmt.Errorf("devstack: %w", err)
		}
	}

	// Formatting runs one short JVM per node; they run side by side.
	fctx, cancel := context.WithTimeout(ctx, kafkaFormatTimeout)
	defer cancel()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, node := range k.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = k.format(fctx, node)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	k.mu.Lock()
	for _, node := range k.nodes {
		if err := k.launch(node); err != nil {
			k.mu.Unlock()
			k.stopNodes(false)
			return nil, err
		}
	}
	k.mu.Unlock()

	rctx, rcancel := context.WithTimeout(ctx, kafkaReadyTimeout)
	defer rcancel()
	if err := k.waitNodes(rctx, k.nodes); err != nil {
		k.stopNodes(false)
		return nil, err
	}
	if err := k.probeTopic(rctx); err != nil {
		k.stopNodes(false)
		return nil, err
	}
	return k, nil
}

// Bootstrap returns the PLAINTEXT addresses of all nodes joined by commas,
// the form Kafka clients take as bootstrap servers.
func (k *Kafka) Bootstrap() string { return strings.Join(k.Addrs(), ",") }

// Addrs returns the PLAINTEXT host:port of every node, index i for node i,
// whether or not the node is running now.
func (k *Kafka) Addrs() []string { return k.eachNode((*kafkaNode).addr) }

// SASLBootstrap returns the SASL_PLAINTEXT addresses of all nodes joined by
// commas. Clients must authenticate there as one of KafkaSASLUsers, with
// that user's mechanism; the brokers they learn of from its metadata are
// the nodes' SASL_PLAINTEXT addresses too.
func (k *Kafka) SASLBootstrap() string { return strings.Join(k.SASLAddrs(), ",") }

// SASLAddrs returns the SASL_PLAINTEXT host:port of every node, index i
// for node i, whether or not the node is running now.
func (k *Kafka) SASLAddrs() []string { return k.eachNode((*kafkaNode).saslAddr) }

// eachNode returns f of every node, index i for node i.
func (k *Kafka) eachNode(f func(*kafkaNode) string) []string {
	out := make([]string, len(k.nodes))
	for i, n := range k.nodes {
		out[i] = f(n)
	}
	return out
}

// Nodes returns how many nodes the cluster has, running or not.
func (k *Kafka) Nodes() int { return len(k.nodes) }

// NodeID returns the Kafka node id (broker id) of node i, which is i+1.
func (k *Kafka) NodeID(i int) int32 { return int32(k.node(i).id) }

// LogPath returns the file that node i's stdout, stderr and log4j output go to.
func (k *Kafka) LogPath(i int) string { return k.node(i).logPath }

// Dir returns the folder holding the nodes' data, configs and logs.
func (k *Kafka) Dir() string { return k.dir }

// Pid returns the process id of node i's JVM, or 0 if it is not running.
func (k *Kafka) Pid(i int) int {
	n := k.node(i)
	k.mu.Lock()
	defer k.mu.Unlock()
	if !n.running() {
		return 0
	}
	return n.proc.Pid()
}

// StopNode shuts node i down gracefully (SIGTERM, so Kafka does a controlled
// shutdown), killing it if it takes longer than 30 seconds. A stopped node
// is left alone.
func (k *Kafka) StopNode(i int) {
	if p := k.take(i); p != nil {
		p.Stop(kafkaStopGrace)
	}
}

// KillNode kills node i with SIGKILL, as a crash would, and waits for it to
// be gone. A stopped node is left alone.
func (k *Kafka) KillNode(i int) {
	if p := k.take(i); p != nil {
		p.Kill()
	}
}

// take marks node i stopped and returns its process, nil if it had none.
func (k *Kafka) take(i int) *Process {
	n := k.node(i)
	k.mu.Lock()
	defer k.mu.Unlock()
	p := n.proc
	n.proc = nil
	return p
}

// StartNode starts stopped node i again on its own folder and ports and
// waits until it answers, its metadata lists every running node, itself
// included, and its SASL_PLAINTEXT listener admits every account. Starting
// a running node is an error.
func (k *Kafka) StartNode(ctx context.Context, i int) error {
	n := k.node(i)
	k.mu.Lock()
	if n.running() {
		k.mu.Unlock()
		return fmt.Errorf("devstack: kafka node %d is already running", n.id)
	}
	if n.proc != nil {
		// It died by itself; release it before starting anew.
		n.proc.Kill()
		n.proc = nil
	}
	err := k.launch(n)
	k.mu.Unlock()
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, kafkaReadyTimeout)
	defer cancel()
	return k.waitNodes(rctx, []*kafkaNode{n})
}

// Stop shuts every node down, gracefully and side by side, and removes the
// cluster's folder if StartKafka made it. It is safe to call more than once.
func (k *Kafka) Stop() {
	k.stopNodes(true)
	if k.ownDir {
		_ = os.RemoveAll(k.dir)
	}
}

func (k *Kafka) stopNodes(graceful bool) {
	k.mu.Lock()
	var procs []*Process
	for _, n := range k.nodes {
		if n.proc != nil {
			procs = append(procs, n.proc)
			n.proc = nil
		}
	}
	k.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if graceful {
				p.Stop(kafkaStopGrace)
			} else {
				p.Kill()
			}
		}()
	}
	wg.Wait()
}

func (k *Kafka) node(i int) *kafkaNode {
	if i < 0 || i >= len(k.nodes) {
		panic(fmt.Sprintf("devstack: kafka node index %d out of range [0,%d)", i, len(k.nodes)))
	}
	return k.nodes[i]
}

// serverProperties renders node's server.properties: KRaft combined mode
// on loopback, then settings that suit small test clusters, then extra.
func (k *Kafka) serverProperties(node *kafkaNode, extra map[string]string) string {
	n := len(k.nodes)
	voters := make([]string, n)
	for i, o := range k.nodes {
		voters[i] = fmt.Sprintf("%d@127.0.0.1:%d", o.id, o.ctrlPort)
	}
	rf := strconv.Itoa(min(3, n))
	props := map[string]string{
		"process.roles":            "broker,controller",
		"node.id":                  strconv.Itoa(node.id),
		"controller.quorum.voters": strings.Join(voters, ","),
		"listeners": fmt.Sprintf("PLAINTEXT://127.0.0.1:%d,SASL_PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d",
			node.port, node.saslPort, node.ctrlPort),
		"advertised.listeners":           fmt.Sprintf("PLAINTEXT://127.0.0.1:%d,SASL_PLAINTEXT://127.0.0.1:%d", node.port, node.saslPort),
		"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
		"controller.listener.names":      "CONTROLLER",
		"inter.broker.listener.name":     "PLAINTEXT",
		"log.dirs":                       filepath.Join(node.dir, "data"),

		"num.partitions":                           "1",
		"auto.create.topics.enable":                "true",
		"group.initial.rebalance.delay.ms":         "0",
		"offsets.topic.replication.factor":         rf,
		"offsets.topic.num.partitions":             "10",
		"transaction.state.log.replication.factor": rf,
		"transaction.state.log.min.isr":            strconv.Itoa(min(2, n)),
		"transaction.state.log.num.partitions":     "10",
		"num.network.threads":                      "2",
		"num.io.threads":                           "4",
		"num.recovery.threads.per.data.dir":        "1",
	}
	maps.Copy(props, kafkaSASLProperties())
	k.addSASLSSLProperties(node, props)
	for key, v := range extra {
		props[key] = v
	}
	keys := make([]string, 0, len(props))
	for key := range props {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by logpipe's devstack for Kafka node %d.\n", node.id)
	for _, key := range keys {
		fmt.Fprintf(&b, "%s=%s\n", key, kafkaEscapeProperty(props[key]))
	}
	return b.String()
}

// kafkaEscapeProperty escapes the characters that java.util.Properties
// treats specially in a value.
func kafkaEscapeProperty(v string) string {
	r := strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`)
	return r.Replace(v)
}

// classPath returns the class path of every jar, as java expands it.
func (k *Kafka) classPath() string { return filepath.Join(k.jars, "*") }

// format runs Kafka's storage tool on node's config, writing the cluster id
// and the bootstrap metadata, with the SCRAM accounts, into its log folder.
func (k *Kafka) format(ctx context.Context, node *kafkaNode) error {
	args := []string{"-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
		"-Dlog4j.configuration=file:" + k.log4j,
		"-cp", k.classPath(),
		"kafka.tools.StorageTool", "format", "-t", k.clusterID, "-c", node.propsPath}
	cmd := exec.CommandContext(ctx, k.java, append(args, kafkaSCRAMFormatArgs()...)...)
	cmd.Dir = node.dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("devstack: kafka storage format for node %d failed: %w\n%s", node.id, err, tailString(string(out), 4000))
	}
	return nil
}

// launch starts node's JVM. Callers hold k.mu.
func (k *Kafka) launch(node *kafkaNode) error {
	heap := fmt.Sprintf("%dm", k.heapMB)
	cmd := exec.Command(k.java,
		"-Xms"+heap, "-Xmx"+heap,
		"-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35",
		"-XX:+ExplicitGCInvokesConcurrent", "-XX:+ExitOnOutOfMemoryError",
		"-Djava.awt.headless=true",
		"-Dlog4j.configuration=file:"+k.log4j,
		"-Dkafka.logs.dir="+node.dir,
		"-cp", k.classPath(),
		"kafka.Kafka", node.propsPath)
	cmd.Dir = node.dir
	p, err := StartProcess(fmt.Sprintf("kafka node %d", node.id), cmd, node.logPath)
	if err != nil {
		return err
	}
	node.proc = p
	return nil
}

// waitNodes waits until each of nodes answers a Metadata request that
// lists every node running now. If any of them exits or the time runs out,
// the error holds that node's log tail.
func (k *Kafka) waitNodes(ctx context.Context, nodes []*kafkaNode) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		once  sync.Once
		first error // the first failure, not those cancelled because of it
		wg    sync.WaitGroup
	)
	for _, node := range nodes {
		k.mu.Lock()
		proc := node.proc
		k.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := k.waitNode(ctx, node, proc); err != nil {
				once.Do(func() {
					first = err
					cancel()
				})
			}
		}()
	}
	wg.Wait()
	return first
}

// waitNode waits until node answers a Metadata request on its PLAINTEXT
// listener that lists every running node, and every account of
// KafkaSASLUsers can log in on its SASL_PLAINTEXT listener, which for the
// SCRAM accounts means the node has loaded them from the metadata log.
func (k *Kafka) waitNode(ctx context.Context, node *kafkaNode, proc *Process) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(node.addr()), kgo.DialTimeout(2*time.Second))
	if err != nil {
		return fmt.Errorf("devstack: kafka client: %w", err)
	}
	defer cl.Close()
	var saslClients []*kgo.Client
	defer func() {
		for _, c := range saslClients {
			c.Close()
		}
	}()
	for _, u := range KafkaSASLUsers() {
		c, err := kgo.NewClient(kgo.SeedBrokers(node.saslAddr()), kgo.DialTimeout(2*time.Second), kgo.SASL(u.SASL()))
		if err != nil {
			return fmt.Errorf("devstack: kafka client: %w", err)
		}
		saslClients = append(saslClients, c)
	}
	return WaitFor(ctx, kafkaPollInterval, proc, func(ctx context.Context) error {
		want := k.runningIDs()
		cctx, cancel := context.WithTimeout(ctx, kafkaCheckTimeout)
		defer cancel()
		req := kmsg.NewPtrMetadataRequest()
		req.Topics = []kmsg.MetadataRequestTopic{} // brokers only
		resp, err := cl.SeedBrokers()[0].Request(cctx, req)
		if err != nil {
			return err
		}
		var have []int32
		for _, b := range resp.(*kmsg.MetadataResponse).Brokers {
			have = append(have, b.NodeID)
		}
		for _, id := range want {
			if !slices.Contains(have, id) {
				return fmt.Errorf("node %d lists brokers %v, want all of %v", node.id, have, want)
			}
		}
		for i, c := range saslClients {
			if _, err := c.SeedBrokers()[0].Request(cctx, req); err != nil {
				u := KafkaSASLUsers()[i]
				return fmt.Errorf("node %d: SASL_PLAINTEXT listener refuses %s user %s: %w", node.id, u.Mechanism, u.Name, err)
			}
		}
		return nil
	})
}

// runningIDs returns the node ids whose processes are up.
func (k *Kafka) runningIDs() []int32 {
	k.mu.Lock()
	defer k.mu.Unlock()
	var ids []int32
	for _, n := range k.nodes {
		if n.running() {
			ids = append(ids, int32(n.id))
		}
	}
	return ids
}

// probeTopic creates a topic with a replica on every node (at most three),
// waits for its partition to have a leader, and deletes it again.
func (k *Kafka) probeTopic(ctx context.Context) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.DialTimeout(2*time.Second))
	if err != nil {
		return fmt.Errorf("devstack: kafka client: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topic := "_devstack_probe_" + strings.ToLower(strings.NewReplacer("-", "x", "_", "y").Replace(k.clusterID))
	rf := int16(min(3, len(k.nodes)))
	created := false
	err = WaitFor(ctx, kafkaPollInterval, nil, func(ctx context.Context) error {
		if err := k.anyExited(); err != nil {
			return err
		}
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if !created {
			_, err := adm.CreateTopic(cctx, 1, rf, nil, topic)
			if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
				return fmt.Errorf("create topic %s: %w", topic, err)
			}
			created = true
		}
		md, err := adm.Metadata(cctx, topic)
		if err != nil {
			return err
		}
		t, ok := md.Topics[topic]
		if !ok || t.Err != nil || len(t.Partitions) != 1 {
			return fmt.Errorf("topic %s not in metadata yet", topic)
		}
		if p := t.Partitions[0]; p.Leader < 0 || p.Err != nil {
			return fmt.Errorf("topic %s has no leader yet", topic)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("devstack: kafka cannot create a topic: %w%s", err, k.logTails())
	}
	// UNKNOWN_TOPIC_OR_PARTITION: gone already, as when the client's retry
	// of a slow delete reaches a node after the first attempt succeeded.
	if _, err := adm.DeleteTopic(ctx, topic); err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("devstack: kafka delete probe topic: %w%s", err, k.logTails())
	}
	return nil
}

// anyExited returns an error with the log tail of a node that has died.
func (k *Kafka) anyExited() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, n := range k.nodes {
		if n.proc != nil {
			if exited, err := n.proc.Exited(); exited {
				return fmt.Errorf("kafka node %d exited (%v); log %s:\n%s", n.id, err, n.logPath, n.proc.Tail(4000))
			}
		}
	}
	return nil
}

// logTails returns the end of every node's log, for error messages.
func (k *Kafka) logTails() string {
	var b strings.Builder
	for _, n := range k.nodes {
		fmt.Fprintf(&b, "\n--- kafka node %d log %s:\n%s", n.id, n.logPath, tailFile(n.logPath, 3000))
	}
	return b.String()
}

// kafkaClusterID returns a cluster id in Kafka's form: 16 random bytes as
// 22 characters of unpadded base64url. Like Kafka's own generator it avoids
// a leading '-', which a command line would take for a flag.
func kafkaClusterID() (string, error) {
	for {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("devstack: cluster id: %w", err)
		}
		id := base64.RawURLEncoding.EncodeToString(b[:])
		if !strings.HasPrefix(id, "-") && b != [16]byte{} {
			return id, nil
		}
	}
}

// kafkaFreePorts returns n distinct free loopback ports.
func kafkaFreePorts(n int) ([]int, error) {
	var ports []int
	for len(ports) < n {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	return ports, nil
}

// kafkaLog4j sends every broker's log4j output to stdout, which
// StartProcess appends to the node's log file.
const kafkaLog4j = `# Written by logpipe's devstack.
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.org.apache.kafka.clients.NetworkClient=WARN
`

// kafkaToolsLog4j keeps command-line tools quiet on stdout, which they use
// for their results.
const kafkaToolsLog4j = `# Written by logpipe's devstack.
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
`
