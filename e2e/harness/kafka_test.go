package harness_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"

	"logpipe/e2e/harness"
	"logpipe/internal/await"
	"logpipe/internal/devstack"
)

// kafkaTopicName returns a topic name unique to this test run.
func kafkaTopicName(t *testing.T) string {
	return fmt.Sprintf("%s-%d", strings.ReplaceAll(t.Name(), "/", "."), time.Now().UnixNano())
}

func TestKafkaSaramaRoundTrip(t *testing.T) {
	start := time.Now()
	k := harness.SharedKafka(t)
	t.Logf("shared kafka at %s ready after %v (more if the jars were fetched or another test started it); broker RSS %d MiB",
		k.Bootstrap(), time.Since(start).Round(time.Millisecond), rssMiB(k.Pid(0)))

	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_9_0_0
	cfg.ClientID = "logpipe-harness-test"
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Return.Successes = true
	cfg.Producer.Retry.Max = 10
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Consumer.Return.Errors = true

	admin, err := sarama.NewClusterAdmin(k.Addrs(), cfg)
	if err != nil {
		t.Fatalf("cluster admin: %v", err)
	}
	defer admin.Close()
	topic := kafkaTopicName(t)
	if err := admin.CreateTopic(topic, &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1}, false); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	// Kafka answers CreateTopics before every broker's metadata has the
	// topic, so a listing right after may not show it yet.
	await.Eventually(t, "the new topic to be listed with 2 partitions", func() error {
		topics, err := admin.ListTopics()
		if err != nil {
			return fmt.Errorf("list topics: %w", err)
		}
		if d, ok := topics[topic]; !ok || d.NumPartitions != 2 {
			return await.NotYet(fmt.Sprintf("%+v (listed: %v)", d, ok), "2 partitions")
		}
		return nil
	}, await.Within(30*time.Second), await.Every(50*time.Millisecond))

	client, err := sarama.NewClient(k.Addrs(), cfg)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	defer client.Close()
	// The new topic's partitions get leaders a moment after creation.
	await.Eventually(t, "partition 1 of the new topic to have a leader", func() error {
		if err := client.RefreshMetadata(topic); err != nil {
			return err
		}
		_, err := client.Leader(topic, 1)
		return err
	}, await.Every(200*time.Millisecond))

	producer, err := sarama.NewSyncProducerFromClient(client)
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	defer producer.Close()

	const n = 5
	for i := 0; i < n; i++ {
		msg := &sarama.ProducerMessage{
			Topic:     topic,
			Partition: 1,
			Key:       sarama.StringEncoder(fmt.Sprintf("key-%d", i)),
			Value:     sarama.StringEncoder(fmt.Sprintf(`{"n":%d,"msg":"hello"}`, i)),
			Headers: []sarama.RecordHeader{
				{Key: []byte("source"), Value: []byte("harness")},
				{Key: []byte("seq"), Value: []byte(strconv.Itoa(i))},
			},
		}
		part, off, err := producer.SendMessage(msg)
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		if part != 1 || off != int64(i) {
			t.Fatalf("send %d landed at partition %d offset %d, want partition 1 offset %d", i, part, off, i)
		}
	}
	if hw, err := client.GetOffset(topic, 1, sarama.OffsetNewest); err != nil || hw != n {
		t.Fatalf("newest offset of partition 1 = %d (%v), want %d", hw, err, n)
	}

	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	defer consumer.Close()
	pc, err := consumer.ConsumePartition(topic, 1, sarama.OffsetOldest)
	if err != nil {
		t.Fatalf("consume partition: %v", err)
	}
	defer pc.Close()
	timeout := time.After(time.Minute)
	for i := 0; i < n; i++ {
		select {
		case m := <-pc.Messages():
			if m.Offset != int64(i) {
				t.Errorf("record %d has offset %d", i, m.Offset)
			}
			if got, want := string(m.Key), fmt.Sprintf("key-%d", i); got != want {
				t.Errorf("record %d key %q, want %q", i, got, want)
			}
			if got, want := string(m.Value), fmt.Sprintf(`{"n":%d,"msg":"hello"}`, i); got != want {
				t.Errorf("record %d value %q, want %q", i, got, want)
			}
			var hs []string
			for _, h := range m.Headers {
				hs = append(hs, string(h.Key)+"="+string(h.Value))
			}
			if got, want := strings.Join(hs, ","), fmt.Sprintf("source=harness,seq=%d", i); got != want {
				t.Errorf("record %d headers %q, want %q", i, got, want)
			}
		case err := <-pc.Errors():
			t.Fatalf("consume: %v", err)
		case <-timeout:
			t.Fatalf("consumed %d of %d records within a minute", i, n)
		}
	}
	// Partition 0 got nothing.
	if hw, err := client.GetOffset(topic, 0, sarama.OffsetNewest); err != nil || hw != 0 {
		t.Fatalf("newest offset of partition 0 = %d (%v), want 0", hw, err)
	}
}

// kafkaKcat returns the path of kcat, failing the test if it is missing.
func kafkaKcat(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat (librdkafka) is not installed: run `make deps` (it installs kcat with apt-get): %v", err)
	}
	return p
}

func kafkaRun(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func TestKafkaKcat(t *testing.T) {
	kcat := kafkaKcat(t)
	k := harness.SharedKafka(t)
	topic := kafkaTopicName(t)

	// The topic does not exist: producing creates it (auto.create.topics.enable).
	var lines []string
	for i := 0; i < 20; i++ {
		lines = append(lines, fmt.Sprintf("k%d:line %d from kcat", i, i))
	}
	kafkaRun(t, strings.Join(lines, "\n")+"\n", kcat, "-b", k.Bootstrap(), "-P", "-t", topic, "-K", ":", "-X", "acks=all")

	out := kafkaRun(t, "", kcat, "-b", k.Bootstrap(), "-C", "-t", topic, "-o", "beginning", "-e", "-K", ":", "-f", "%k:%s@%o\n")
	got := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var want []string
	for i, l := range lines {
		want = append(want, fmt.Sprintf("%s@%d", l, i))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("kcat consumed:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	var md struct {
		Brokers []struct {
			ID   int32  `json:"id"`
			Name string `json:"name"`
		} `json:"brokers"`
		Topics []struct {
			Topic      string `json:"topic"`
			Partitions []struct {
				Partition int32 `json:"partition"`
				Leader    int32 `json:"leader"`
			} `json:"partitions"`
		} `json:"topics"`
	}
	js := kafkaRun(t, "", kcat, "-b", k.Bootstrap(), "-L", "-J", "-t", topic)
	if err := json.Unmarshal([]byte(js), &md); err != nil {
		t.Fatalf("kcat -L -J output is not JSON: %v\n%s", err, js)
	}
	if len(md.Brokers) != 1 || md.Brokers[0].ID != k.NodeID(0) || md.Brokers[0].Name != k.Addrs()[0] {
		t.Errorf("kcat -L brokers %+v, want node %d at %s", md.Brokers, k.NodeID(0), k.Addrs()[0])
	}
	if len(md.Topics) != 1 || md.Topics[0].Topic != topic || len(md.Topics[0].Partitions) != 1 ||
		md.Topics[0].Partitions[0].Leader != k.NodeID(0) {
		t.Errorf("kcat -L topics %+v, want %s with one partition led by node %d", md.Topics, topic, k.NodeID(0))
	}
	// The plain listing names the broker too.
	if plain := kafkaRun(t, "", kcat, "-b", k.Bootstrap(), "-L"); !strings.Contains(plain, k.Addrs()[0]) || !strings.Contains(plain, `"`+topic+`"`) {
		t.Errorf("kcat -L does not mention %s and %q:\n%s", k.Addrs()[0], topic, plain)
	}
}

// kafkaISR returns, per partition of topic, its leader and in-sync replicas.
func kafkaISR(ctx context.Context, adm *kadm.Client, topic string) (map[int32][]int32, map[int32]int32, error) {
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	td, ok := md.Topics[topic]
	if !ok || td.Err != nil {
		return nil, nil, fmt.Errorf("topic %s not in metadata (%v)", topic, td.Err)
	}
	isr := map[int32][]int32{}
	leaders := map[int32]int32{}
	for p, pd := range td.Partitions {
		isr[p] = slices.Sorted(slices.Values(pd.ISR))
		leaders[p] = pd.Leader
	}
	return isr, leaders, nil
}

func TestKafkaThreeNodeFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	k, err := devstack.StartKafka(ctx, devstack.KafkaOptions{Nodes: 3, HeapMB: 384})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop()
	var rss []int64
	for i := 0; i < k.Nodes(); i++ {
		rss = append(rss, rssMiB(k.Pid(i)))
	}
	t.Logf("3-node kafka at %s ready after %v; RSS MiB per broker %v", k.Bootstrap(), time.Since(start).Round(time.Millisecond), rss)
	if k.Nodes() != 3 || len(strings.Split(k.Bootstrap(), ",")) != 3 {
		t.Fatalf("Nodes() = %d, Bootstrap() = %q", k.Nodes(), k.Bootstrap())
	}

	admCl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	bm, err := adm.BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ids := bm.Brokers.NodeIDs(); !slices.Equal(slices.Sorted(slices.Values(ids)), []int32{1, 2, 3}) {
		t.Fatalf("brokers %v, want [1 2 3]", ids)
	}
	// Each node has its own SASL listener, and its metadata lists them all.
	scram := devstack.KafkaSASLUsers()[2]
	for i, addr := range k.SASLAddrs() {
		brokers, err := kafkaSASLMetadata(ctx, addr, scram, scram.SASL())
		if err != nil {
			t.Fatal(err)
		}
		want := map[int32]string{}
		for j, a := range k.SASLAddrs() {
			want[k.NodeID(j)] = a
		}
		if !maps.Equal(brokers, want) {
			t.Errorf("node %d's SASL listener lists brokers %v, want %v", k.NodeID(i), brokers, want)
		}
	}

	topic := kafkaTopicName(t)
	if _, err := adm.CreateTopic(ctx, 3, 3, map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}, topic); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	all := []int32{1, 2, 3}
	var leaders map[int32]int32
	await.Eventually(t, "every replica of the topic with replication factor 3 in sync", func() error {
		isr, l, err := kafkaISR(ctx, adm, topic)
		if err != nil {
			return err
		}
		for p := int32(0); p < 3; p++ {
			if !slices.Equal(isr[p], all) || l[p] < 0 {
				return await.NotYet(fmt.Sprintf("partition %d led by %d with ISR %v", p, l[p], isr[p]), fmt.Sprintf("a leader and ISR %v", all))
			}
		}
		leaders = l
		return nil
	}, await.Within(3*time.Minute), await.Every(200*time.Millisecond))

	prod, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	produce := func(from, to int) {
		t.Helper()
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			recs = append(recs, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(fmt.Sprintf("value-%d", i))})
		}
		pctx, pcancel := context.WithTimeout(ctx, 3*time.Minute)
		defer pcancel()
		if err := prod.ProduceSync(pctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce %d..%d: %v", from, to, err)
		}
	}
	produce(0, 30)

	// Kill the leader of partition 0 the hard way.
	victim := int(leaders[0]) - 1
	killed := time.Now()
	k.KillNode(victim)
	if k.Pid(victim) != 0 {
		t.Fatalf("node %d still has a pid after KillNode", victim)
	}
	produce(30, 60)
	t.Logf("acks=all produce after kill -9 of node %d took %v", k.NodeID(victim), time.Since(killed).Round(time.Millisecond))

	consumeAll := func(want int) {
		t.Helper()
		cons, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		defer cons.Close()
		cctx, ccancel := context.WithTimeout(ctx, 3*time.Minute)
		defer ccancel()
		seen := map[string]bool{}
		last := map[int32]int64{}
		for len(seen) < want {
			fs := cons.PollFetches(cctx)
			if cctx.Err() != nil {
				t.Fatalf("consumed %d of %d records before the deadline", len(seen), want)
			}
			fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
			fs.EachRecord(func(r *kgo.Record) {
				if o, ok := last[r.Partition]; ok && r.Offset != o+1 {
					t.Errorf("partition %d jumped from offset %d to %d", r.Partition, o, r.Offset)
				}
				last[r.Partition] = r.Offset
				if want := "value-" + string(r.Key); string(r.Value) != want {
					t.Errorf("record %s/%d@%d value %q, want %q", r.Topic, r.Partition, r.Offset, r.Value, want)
				}
				if seen[string(r.Key)] {
					t.Errorf("key %s consumed twice", r.Key)
				}
				seen[string(r.Key)] = true
			})
		}
		for i := 0; i < want; i++ {
			if !seen[strconv.Itoa(i)] {
				t.Errorf("record %d never consumed", i)
			}
		}
	}
	consumeAll(60)

	// The survivors took over: no partition is led by the dead node.
	await.Eventually(t, fmt.Sprintf("dead node %d to lead no partition and leave every ISR", k.NodeID(victim)), func() error {
		isr, l, err := kafkaISR(ctx, adm, topic)
		if err != nil {
			return err
		}
		for p, leader := range l {
			if leader == k.NodeID(victim) || leader < 0 || slices.Contains(isr[p], k.NodeID(victim)) {
				return await.NotYet(fmt.Sprintf("partition %d led by %d with ISR %v", p, leader, isr[p]), fmt.Sprintf("a leader other than %d, not in the ISR", k.NodeID(victim)))
			}
		}
		return nil
	}, await.Within(3*time.Minute), await.Every(200*time.Millisecond))

	restarted := time.Now()
	if err := k.StartNode(ctx, victim); err != nil {
		t.Fatalf("restart node %d: %v", k.NodeID(victim), err)
	}
	await.Eventually(t, fmt.Sprintf("node %d to rejoin every ISR", k.NodeID(victim)), func() error {
		isr, _, err := kafkaISR(ctx, adm, topic)
		if err != nil {
			return err
		}
		for p := int32(0); p < 3; p++ {
			if !slices.Equal(isr[p], all) {
				return await.NotYet(fmt.Sprintf("partition %d with ISR %v", p, isr[p]), fmt.Sprintf("ISR %v", all))
			}
		}
		return nil
	}, await.Within(3*time.Minute), await.Every(200*time.Millisecond))
	t.Logf("node %d back in every ISR %v after restart", k.NodeID(victim), time.Since(restarted).Round(time.Millisecond))
	if err := k.StartNode(ctx, victim); err == nil {
		t.Errorf("StartNode on a running node succeeded")
	}

	// A graceful stop of another node keeps the cluster serving too.
	other := (victim + 1) % 3
	k.StopNode(other)
	produce(60, 90)
	consumeAll(90)
}

func TestKafkaPerformanceTools(t *testing.T) {
	k := harness.SharedKafka(t)
	topic := kafkaTopicName(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run := func(class string, args ...string) string {
		t.Helper()
		cmd, err := devstack.KafkaToolCommand(ctx, class, args...)
		if err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout = &stdout
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", class, err, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
	out := run("org.apache.kafka.tools.ProducerPerformance", "--topic", topic, "--num-records", "2000",
		"--record-size", "200", "--throughput", "-1",
		"--producer-props", "bootstrap.servers="+k.Bootstrap(), "acks=all")
	if !strings.Contains(out, "2000 records sent") {
		t.Fatalf("ProducerPerformance did not report 2000 records sent:\n%s", out)
	}
	t.Logf("ProducerPerformance: %s", strings.TrimSpace(out[strings.LastIndex(strings.TrimRight(out, "\n"), "\n")+1:]))

	out = run("org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server", k.Bootstrap(),
		"--topic", topic, "--messages", "2000", "--timeout", "60000")
	// The last line is CSV: start, end, MB, MB/sec, records, records/sec, ...
	lines := strings.Split(strings.TrimSpace(out), "\n")
	fields := strings.Split(lines[len(lines)-1], ",")
	if len(fields) < 6 || strings.TrimSpace(fields[4]) != "2000" {
		t.Fatalf("ConsumerPerformance did not report 2000 records:\n%s", out)
	}
}

// kafkaSASLMetadata asks the SASL_PLAINTEXT listener at addr, logged in as
// u with mechanism mech, which brokers there are, and returns them as node
// id -> host:port. The request goes to that one broker, with no retries, so
// a refused login is the error returned.
func kafkaSASLMetadata(ctx context.Context, addr string, u devstack.KafkaSASLUser, mech sasl.Mechanism) (map[int32]string, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.DialTimeout(5 * time.Second)}
	if mech != nil {
		opts = append(opts, kgo.SASL(mech))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := cl.SeedBrokers()[0].Request(cctx, req)
	if err != nil {
		return nil, fmt.Errorf("metadata from %s as %s (%s): %w", addr, u.Name, u.Mechanism, err)
	}
	out := map[int32]string{}
	for _, b := range resp.(*kmsg.MetadataResponse).Brokers {
		out[b.NodeID] = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
	}
	return out, nil
}

// TestKafkaSASL logs in on the shared cluster's SASL_PLAINTEXT listener
// with each account and its mechanism, produces a record there and reads it
// back there; wrong passwords, another account's mechanism and no SASL at
// all are refused.
func TestKafkaSASL(t *testing.T) {
	k := harness.SharedKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if len(k.SASLAddrs()) != k.Nodes() || k.SASLBootstrap() == k.Bootstrap() {
		t.Fatalf("SASLAddrs %v, Addrs %v", k.SASLAddrs(), k.Addrs())
	}
	mechs := map[string]bool{}
	for _, u := range devstack.KafkaSASLUsers() {
		mechs[u.Mechanism] = true
	}
	if len(mechs) != 3 || !mechs["PLAIN"] || !mechs["SCRAM-SHA-256"] || !mechs["SCRAM-SHA-512"] {
		t.Fatalf("KafkaSASLUsers covers mechanisms %v, want PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512", mechs)
	}

	topic := kafkaTopicName(t)
	admCl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	if _, err := kadm.NewClient(admCl).CreateTopic(ctx, 1, 1, nil, topic); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}

	for _, u := range devstack.KafkaSASLUsers() {
		t.Run(u.Mechanism, func(t *testing.T) {
			// The listener's metadata names the brokers' SASL addresses,
			// so a client that starts there stays there.
			brokers, err := kafkaSASLMetadata(ctx, k.SASLAddrs()[0], u, u.SASL())
			if err != nil {
				t.Fatal(err)
			}
			if len(brokers) != k.Nodes() {
				t.Errorf("metadata lists brokers %v, want %d", brokers, k.Nodes())
			}
			for i, addr := range k.SASLAddrs() {
				if got := brokers[k.NodeID(i)]; got != addr {
					t.Errorf("broker %d advertised at %q on the SASL listener, want %s", k.NodeID(i), got, addr)
				}
			}

			cl, err := kgo.NewClient(kgo.SeedBrokers(k.SASLAddrs()...), kgo.SASL(u.SASL()),
				kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			value := fmt.Sprintf("sent with %s as %s", u.Mechanism, u.Name)
			rec := &kgo.Record{Key: []byte(u.Mechanism), Value: []byte(value), Partition: 0}
			if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
				t.Fatalf("produce as %s with %s: %v", u.Name, u.Mechanism, err)
			}

			cons, err := kgo.NewClient(kgo.SeedBrokers(k.SASLAddrs()...), kgo.SASL(u.SASL()),
				kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().At(rec.Offset)}}))
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			for {
				fs := cons.PollFetches(ctx)
				if ctx.Err() != nil {
					t.Fatalf("record at offset %d never consumed as %s with %s", rec.Offset, u.Name, u.Mechanism)
				}
				fs.EachError(func(topic string, p int32, err error) {
					t.Fatalf("fetch %s/%d as %s with %s: %v", topic, p, u.Name, u.Mechanism, err)
				})
				if recs := fs.Records(); len(recs) > 0 {
					got := recs[0]
					if got.Offset != rec.Offset || string(got.Key) != u.Mechanism || string(got.Value) != value {
						t.Fatalf("consumed %s@%d %q, want %s@%d %q", got.Key, got.Offset, got.Value, u.Mechanism, rec.Offset, value)
					}
					break
				}
			}
		})
	}

	t.Run("refused", func(t *testing.T) {
		users := devstack.KafkaSASLUsers()
		plainU, s256, s512 := users[0], users[1], users[2]
		wrong := func(u devstack.KafkaSASLUser) devstack.KafkaSASLUser { u.Password += "-wrong"; return u }
		for _, c := range []struct {
			name string
			as   devstack.KafkaSASLUser // whose name and password are sent, with as.Mechanism
		}{
			{"PLAIN wrong password", wrong(plainU)},
			{"SCRAM-SHA-256 wrong password", wrong(s256)},
			{"SCRAM-SHA-512 wrong password", wrong(s512)},
			{"PLAIN account with SCRAM-SHA-512", devstack.KafkaSASLUser{Mechanism: "SCRAM-SHA-512", Name: plainU.Name, Password: plainU.Password}},
			{"SCRAM-SHA-512 account with PLAIN", devstack.KafkaSASLUser{Mechanism: "PLAIN", Name: s512.Name, Password: s512.Password}},
			{"SCRAM-SHA-256 account with SCRAM-SHA-512", devstack.KafkaSASLUser{Mechanism: "SCRAM-SHA-512", Name: s256.Name, Password: s256.Password}},
			{"unknown account", devstack.KafkaSASLUser{Mechanism: "SCRAM-SHA-256", Name: "nobody", Password: s256.Password}},
		} {
			brokers, err := kafkaSASLMetadata(ctx, k.SASLAddrs()[0], c.as, c.as.SASL())
			if !errors.Is(err, kerr.SaslAuthenticationFailed) {
				t.Errorf("%s: got brokers %v, error %v; want %v", c.name, brokers, err, kerr.SaslAuthenticationFailed)
			}
		}
		// A client that does not authenticate at all gets no answer.
		if brokers, err := kafkaSASLMetadata(ctx, k.SASLAddrs()[0], devstack.KafkaSASLUser{Name: "(none)"}, nil); err == nil {
			t.Errorf("metadata without SASL on the SASL listener answered %v", brokers)
		}
		// The plaintext listener still serves clients that do not log in.
		if _, err := kafkaSASLMetadata(ctx, k.Addrs()[0], devstack.KafkaSASLUser{Name: "(none)"}, nil); err != nil {
			t.Errorf("PLAINTEXT listener: %v", err)
		}
	})
}
