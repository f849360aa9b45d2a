package brokerd_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"logpipe/internal/devstack"
)

// The fetch session conformance test sends the same script of raw Fetch
// requests (KIP-227 sessions) to brokerd and to Apache Kafka 3.9.1, both
// with max.incremental.fetch.session.cache.slots=fsSlots, and compares
// the answers step by step once what legitimately differs is normalized:
// session ids become S1, S2, ... in the order they appear, throttle times
// and record batches' layout are left out (records are compared decoded:
// offset, key and value).

// fsSlots is the session cache size of both brokers. Kafka 3.9 splits its
// cache into 8 shards of slots/8 sessions each and puts new sessions in
// them round robin, so with 8 slots, 8 sessions opened one after the
// other fill it on both brokers.
const fsSlots = 8

// fsPart is one partition of a Fetch request.
type fsPart struct {
	topic     string
	partition int32
	offset    int64
}

// fsScript runs the script against one broker and records what it sees.
type fsScript struct {
	t      *testing.T
	ctx    context.Context
	cl     *kgo.Client
	obs    observations
	labels map[int32]string // session id -> S1, S2, ...
}

// label names session id as the script knows it.
func (s *fsScript) label(id int32) string {
	if id == 0 {
		return "none"
	}
	if l, ok := s.labels[id]; ok {
		return l
	}
	l := "S" + strconv.Itoa(len(s.labels)+1)
	s.labels[id] = l
	return l
}

// fsRequest builds a Fetch of session id at epoch for parts, forgetting
// forgotten; replica is the replica id (-1 for a consumer).
func fsRequest(id, epoch, replica int32, parts []fsPart, forgotten map[string][]int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = replica, 50, 1, 1<<20
	req.SessionID, req.SessionEpoch = id, epoch
	for _, p := range parts {
		if n := len(req.Topics); n == 0 || req.Topics[n-1].Topic != p.topic {
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = p.topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p.partition, p.offset, 1<<20
		rt := &req.Topics[len(req.Topics)-1]
		rt.Partitions = append(rt.Partitions, rp)
	}
	for _, topic := range slices.Sorted(maps.Keys(forgotten)) {
		ft := kmsg.NewFetchRequestForgottenTopic()
		ft.Topic, ft.Partitions = topic, forgotten[topic]
		req.ForgottenTopics = append(req.ForgottenTopics, ft)
	}
	return req
}

// fetch sends req and records its answer under step; it returns the
// answer (nil if the request failed).
func (s *fsScript) fetch(step string, req *kmsg.FetchRequest) *kmsg.FetchResponse {
	resp, err := req.RequestWith(s.ctx, s.cl)
	if err != nil {
		s.obs.add("%s: request failed: %v", step, err)
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s session %s", step, errName(resp.ErrorCode), s.label(resp.SessionID))
	for _, rt := range resp.Topics {
		for i := range rt.Partitions {
			rp := &rt.Partitions[i]
			fmt.Fprintf(&b, "\n    %s-%d %s hw %d lso %d start %d", rt.Topic, rp.Partition, errName(rp.ErrorCode), rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset)
			if rp.DivergingEpoch.Epoch >= 0 || rp.PreferredReadReplica >= 0 {
				fmt.Fprintf(&b, " diverging %d/%d preferred %d", rp.DivergingEpoch.Epoch, rp.DivergingEpoch.EndOffset, rp.PreferredReadReplica)
			}
			got, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Topic: rt.Topic, Partition: rp.Partition}, rp, kgo.DefaultDecompressor(), nil)
			for _, r := range got.Records {
				fmt.Fprintf(&b, " [%d %s=%s]", r.Offset, r.Key, r.Value)
			}
		}
	}
	s.obs.add("%s", b.String())
	return resp
}

// produce writes one record to topic-partition, with key "k" and value
// naming its place in the script.
func (s *fsScript) produce(topic string, partition int32, value string) {
	r := &kgo.Record{Topic: topic, Partition: partition, Key: []byte("k"), Value: []byte(value), Timestamp: time.UnixMilli(1_700_000_000_000)}
	res := s.cl.ProduceSync(s.ctx, r)
	if err := res.FirstErr(); err != nil {
		s.t.Fatalf("produce to %s-%d: %v", topic, partition, err)
	}
	s.obs.add("produce %s to %s-%d -> offset %d", value, topic, partition, res[0].Record.Offset)
}

// sessionScript is the script for Fetch version v against the broker at
// boot.
func sessionScript(t *testing.T, boot string, v int16) observations {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(boot), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0), kgo.DisableIdempotentWrite(),
		// Topics by name (Fetch up to v12), at version v.
		kgo.MaxVersions(func() *kversion.Versions { vs := kversion.V3_0_0(); vs.SetMaxKeyVersion(1, v); return vs }()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	s := &fsScript{t: t, ctx: ctx, cl: cl, labels: map[int32]string{}}
	a, b := fmt.Sprintf("fs%d-a", v), fmt.Sprintf("fs%d-b", v)
	adm := kadm.NewClient(cl)
	for _, topic := range []string{a, b} {
		if r, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil || r.Err != nil {
			t.Fatalf("create %s: %v %v", topic, err, r.Err)
		}
	}
	s.produce(a, 0, "a0-0")
	s.produce(a, 0, "a0-1")
	s.produce(a, 1, "a1-0")
	s.produce(b, 0, "b0-0")

	// A full request opens a session and is answered in full.
	resp := s.fetch("full a-0 a-1", fsRequest(0, 0, -1, []fsPart{{a, 0, 0}, {a, 1, 0}}, nil))
	if resp == nil || resp.SessionID == 0 {
		t.Fatalf("version %d: the first full fetch opened no session: %s", v, s.obs[len(s.obs)-1])
	}
	id, epoch := resp.SessionID, int32(0)
	// inc sends the session's next incremental request.
	inc := func(what string, parts []fsPart, forgotten map[string][]int32) {
		epoch++
		s.fetch(fmt.Sprintf("incremental %d, %s", epoch, what), fsRequest(id, epoch, -1, parts, forgotten))
	}
	// Caught up: the offsets move on, nothing is new, nothing answered.
	inc("offsets moved", []fsPart{{a, 0, 2}, {a, 1, 1}}, nil)
	inc("nothing listed", nil, nil)
	// Partitions added: all answered, the empty ones with their
	// watermarks.
	inc("add a-2 b-0 b-1", []fsPart{{a, 2, 0}, {b, 0, 0}, {b, 1, 0}}, nil)
	inc("b-0 moved", []fsPart{{b, 0, 1}}, nil)
	// A partition in error is answered each time.
	inc("add a-9, no such partition", []fsPart{{a, 9, 0}}, nil)
	inc("a-9 still missing", nil, nil)
	inc("forget a-9", nil, map[string][]int32{a: {9}})
	// New records in one partition: only it is answered, its high
	// watermark moved.
	s.produce(a, 1, "a1-1")
	inc("a-1 has a record", nil, nil)
	// A fetch offset changed back: that partition is read again.
	inc("a-0 back to 1, a-1 moved", []fsPart{{a, 0, 1}, {a, 1, 2}}, nil)
	// The log start offset moves: the partition is answered without
	// records.
	inc("a-0 moved", []fsPart{{a, 0, 2}}, nil)
	if dr, err := adm.DeleteRecords(ctx, kadm.Offsets{a: {0: {At: 1}}}); err != nil || dr.Error() != nil {
		t.Fatalf("delete records of %s-0: %v %v", a, err, dr.Error())
	}
	inc("a-0's log start moved", nil, nil)
	// Forgotten partitions are no longer read, not even with news.
	inc("forget b-0 b-1", nil, map[string][]int32{b: {0, 1}})
	s.produce(b, 0, "b0-1")
	s.produce(a, 2, "a2-0")
	inc("news in forgotten b-0 and in a-2", nil, nil)
	inc("add b-1 and forget a-2", []fsPart{{b, 1, 0}}, map[string][]int32{a: {2}})
	// The order of the answers: partitions answered move to the end of
	// the session's order.
	s.produce(b, 1, "b1-0")
	s.produce(a, 1, "a1-2")
	s.produce(a, 0, "a0-2")
	inc("news in a-0 a-1 b-1", nil, nil)
	inc("all three moved", []fsPart{{a, 0, 3}, {a, 1, 3}, {b, 1, 1}}, nil)
	s.produce(a, 0, "a0-3")
	s.produce(b, 1, "b1-1")
	inc("news in a-0 and b-1", nil, nil)
	inc("b-1 moved, a-0 not", []fsPart{{b, 1, 2}}, nil)
	// Session errors: a wrong epoch, then the right one still works; an
	// unknown id.
	s.fetch("a wrong epoch", fsRequest(id, epoch+10, -1, []fsPart{{a, 2, 0}}, nil))
	inc("after the wrong epoch", nil, nil)
	unknown := id ^ 0x5a5a5a
	if unknown == 0 {
		unknown = 1
	}
	s.fetch("unknown session id", fsRequest(unknown, 1, -1, []fsPart{{a, 0, 0}}, nil))
	// Closing with epoch -1 answers sessionless; the session is gone.
	s.fetch("close with epoch -1", fsRequest(id, -1, -1, []fsPart{{a, 1, 2}}, nil))
	s.fetch("the closed session at its next epoch", fsRequest(id, epoch+1, -1, nil, nil))
	s.fetch("sessionless", fsRequest(0, -1, -1, []fsPart{{a, 0, 0}, {b, 0, 1}}, nil))
	// A session emptied by forgetting all its partitions.
	resp = s.fetch("full b-0", fsRequest(0, 0, -1, []fsPart{{b, 0, 2}}, nil))
	if resp != nil && resp.SessionID != 0 {
		e := resp.SessionID
		s.fetch("incremental 1 forgets b-0", fsRequest(e, 1, -1, nil, map[string][]int32{b: {0}}))
		s.fetch("incremental 2 of the emptied session", fsRequest(e, 2, -1, nil, nil))
		s.fetch("close the emptied session", fsRequest(e, -1, -1, nil, nil))
	}
	// A full request naming a session closes it and opens another.
	resp = s.fetch("full a-1", fsRequest(0, 0, -1, []fsPart{{a, 1, 0}}, nil))
	if resp != nil && resp.SessionID != 0 {
		e := resp.SessionID
		s.fetch("full naming the session", fsRequest(e, 0, -1, []fsPart{{a, 1, 2}}, nil))
		s.fetch("the replaced session at epoch 1", fsRequest(e, 1, -1, nil, nil))
		s.closeAll()
	}
	return s.obs
}

// closeAll closes every session the script has seen still open (a
// sessionless answer or FETCH_SESSION_ID_NOT_FOUND either way); their
// answers are not observed.
func (s *fsScript) closeAll() {
	for id := range s.labels {
		req := fsRequest(id, -1, -1, nil, nil)
		req.MaxWaitMillis = 0
		if _, err := req.RequestWith(s.ctx, s.cl); err != nil {
			s.t.Fatalf("closing session %d: %v", id, err)
		}
	}
}

// evictionScript fills the cache with consumer sessions, then asks for
// one more consumer session and for a follower's session. Kafka protects
// sessions younger than min.incremental.fetch.session.eviction.ms
// (120000, not configurable) from consumers' new sessions, so within the
// test no consumer session evicts another on either broker: the one more
// gets no session. A follower's session evicts a young consumer session
// on both. Which one is not compared: Kafka 3.9 takes the one in the
// shard the newcomer lands in (round robin), brokerd the least valuable
// of its single cache (fewest partitions, least recently used); clients
// only see that their session is gone. The script compares how many were
// evicted, and checks on its own that the others still work.
func evictionScript(t *testing.T, boot string) observations {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(boot), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MaxVersions(kversion.V3_0_0()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	s := &fsScript{t: t, ctx: ctx, cl: cl, labels: map[int32]string{}}
	adm := kadm.NewClient(cl)
	const topic = "fs-evict"
	if r, err := adm.CreateTopic(ctx, fsSlots, 1, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create %s: %v %v", topic, err, r.Err)
	}
	s.produce(topic, 0, "e0")
	// Sessions of 1 to fsSlots partitions.
	var sessions []int32
	for n := 1; n <= fsSlots; n++ {
		var parts []fsPart
		for p := range int32(n) {
			parts = append(parts, fsPart{topic, p, max(int64(1-p), 0)})
		}
		resp := s.fetch(fmt.Sprintf("full of %d partitions", n), fsRequest(0, 0, -1, parts, nil))
		if resp != nil && resp.SessionID != 0 {
			sessions = append(sessions, resp.SessionID)
		}
	}
	all := []fsPart{{topic, 0, 1}, {topic, 1, 0}}
	s.fetch("one more consumer's full, cache full", fsRequest(0, 0, -1, all, nil))
	// A follower's full request (replica id 100: its partitions' errors
	// are left out, only the session is compared).
	req := fsRequest(0, 0, 100, all, nil)
	resp, err := req.RequestWith(ctx, cl)
	switch {
	case err != nil:
		s.obs.add("follower's full: %v", err)
	default:
		s.obs.add("follower's full: %s session %s", errName(resp.ErrorCode), s.label(resp.SessionID))
		if id := resp.SessionID; id != 0 {
			defer func() {
				req := fsRequest(id, -1, 100, nil, nil)
				req.MaxWaitMillis = 0
				req.RequestWith(ctx, cl)
			}()
		}
	}
	evicted := 0
	for _, id := range sessions {
		req := fsRequest(id, 1, -1, nil, nil)
		req.MaxWaitMillis = 0
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatalf("incremental of session %s: %v", s.label(id), err)
		}
		switch resp.ErrorCode {
		case 0:
		case kerr.FetchSessionIDNotFound.Code:
			evicted++
		default:
			t.Errorf("incremental of session %s: %s, want OK or FETCH_SESSION_ID_NOT_FOUND", s.label(id), errName(resp.ErrorCode))
		}
	}
	s.obs.add("consumer sessions evicted: %d", evicted)
	s.closeAll()
	return s.obs
}

// TestFetchSessionConformance runs the session scripts at Fetch v7 (the
// first with sessions) and v12 (the last by topic name; brokerd serves
// 4–12) against Apache Kafka and against brokerd, and compares; then runs
// the Java consumer against each.
func TestFetchSessionConformance(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	slots := strconv.Itoa(fsSlots)
	k, err := devstack.StartKafka(ctx, devstack.KafkaOptions{Properties: map[string]string{
		"auto.create.topics.enable": "false", "max.incremental.fetch.session.cache.slots": slots}})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Stop()
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	httpPort, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr, metricsAddr := "127.0.0.1:"+strconv.Itoa(port), "127.0.0.1:"+strconv.Itoa(httpPort)
	startNode(t, addr, filepath.Join(t.TempDir(), "data"), "auto.create.topics.enable=false", "max.incremental.fetch.session.cache.slots="+slots,
		"http.enabled=true", "http.host=127.0.0.1", "http.port="+strconv.Itoa(httpPort))

	t.Run("script", func(t *testing.T) {
		run := func(boot string) observations {
			var obs observations
			for _, v := range []int16{7, 12} {
				obs = append(obs, fmt.Sprintf("-- Fetch v%d", v))
				obs = append(obs, sessionScript(t, boot, v)...)
			}
			obs = append(obs, "-- eviction")
			return append(obs, evictionScript(t, boot)...)
		}
		want, got := run(k.Bootstrap()), run(addr)
		compareObservations(t, want, got)
	})
	t.Run("java consumer", func(t *testing.T) {
		t.Run("kafka", func(t *testing.T) { javaSessionConsumer(t, k.Bootstrap()) })
		t.Run("brokerd", func(t *testing.T) {
			// brokerd counts the Java consumer's incremental fetches.
			const series = `brokerd_fetch_requests_total{fetcher="consumer",session="incremental"}`
			before := metricValue(scrape(t, metricsAddr), series)
			javaSessionConsumer(t, addr)
			if after := metricValue(scrape(t, metricsAddr), series); after <= before {
				t.Errorf("brokerd served %v incremental consumer fetches during the Java consumer's run, want some", after-before)
			}
		})
	})
}

// scrape returns the text of /metrics at addr.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// javaPartitions is the number of partitions the Java consumer reads.
const javaPartitions = 100

// sessionLog sets the Java client's FetchSessionHandler to DEBUG, which
// logs each fetch answer's partitions: those in the answer and those it
// leaves out ("implied").
const sessionLog = `log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=%p %m%n
log4j.logger.org.apache.kafka.clients.FetchSessionHandler=DEBUG
`

// incrementalAnswer matches the Java client's log of an incremental fetch
// answer: how many partitions it holds and how many it leaves out.
var incrementalAnswer = regexp.MustCompile(`sent an incremental fetch response with throttleTimeMs = \d+ for session \d+ with (\d+) response partition\(s\), (\d+) implied partition\(s\)`)

// javaSessionConsumer runs Kafka's console consumer (the Java consumer of
// Kafka 3.9.1) over javaPartitions partitions of a new topic, one record
// in each, then adds records to a tenth of the partitions while it runs.
// Every record arrives exactly once, and the client's own log shows
// incremental fetch answers that leave unchanged partitions out.
func javaSessionConsumer(t *testing.T, boot string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const topic = "fs-java"
	cl, err := kgo.NewClient(kgo.SeedBrokers(boot), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if r, err := kadm.NewClient(cl).CreateTopic(ctx, javaPartitions, 1, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create %s: %v %v", topic, err, r.Err)
	}
	var want []string
	produce := func(p int32, value string) {
		if err := cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte(value)}).FirstErr(); err != nil {
			t.Fatalf("produce to %s-%d: %v", topic, p, err)
		}
		want = append(want, value)
	}
	for p := range int32(javaPartitions) {
		produce(p, fmt.Sprintf("first-%03d", p))
	}
	const later = 200
	logConf := filepath.Join(t.TempDir(), "log4j.properties")
	if err := os.WriteFile(logConf, []byte(sessionLog), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd, err := devstack.KafkaToolCommand(ctx, "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", boot,
		"--topic", topic, "--from-beginning", "--max-messages", strconv.Itoa(javaPartitions+later), "--timeout-ms", "60000",
		"--consumer-property", "fetch.max.wait.ms=100")
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range cmd.Args {
		if strings.HasPrefix(a, "-Dlog4j.configuration=") {
			cmd.Args[i] = "-Dlog4j.configuration=file:" + logConf
		}
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, javaPartitions+later+16) // never blocks the reader
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var got []string
	for len(got) < javaPartitions {
		l, ok := <-lines
		if !ok {
			cmd.Wait() // stderr is complete
			t.Fatalf("the consumer stopped after %d records, want %d first:\n%s", len(got), javaPartitions, stderr.String())
		}
		got = append(got, l)
	}
	// Records added while the consumer runs, in every tenth partition.
	for i := range later {
		produce(int32(i%10*10), fmt.Sprintf("later-%03d", i))
	}
	for l := range lines {
		got = append(got, l)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("console consumer: %v\n%s", err, stderr.String())
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("consumed %d records, want the %d produced, each once:\ngot  %v\nwant %v", len(got), len(want), got, want)
	}
	answers, answered, omitted, mixed := 0, 0, 0, 0
	for _, m := range incrementalAnswer.FindAllStringSubmatch(stderr.String(), -1) {
		n, _ := strconv.Atoi(m[1])
		o, _ := strconv.Atoi(m[2])
		answers, answered, omitted = answers+1, answered+n, omitted+o
		if n > 0 && o > 0 {
			mixed++
		}
	}
	t.Logf("%d incremental answers: %d partitions answered, %d left out; %d with some of each", answers, answered, omitted, mixed)
	if answers == 0 || omitted == 0 || mixed == 0 {
		t.Errorf("the Java consumer logged %d incremental answers leaving out %d partitions, %d answering some and leaving out others; want some of each:\n%s", answers, omitted, mixed, stderr.String())
	}
}
