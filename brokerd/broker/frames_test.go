package broker_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/recordbatch"
)

// frameValue is the value of frameBatch's record i: 1 KiB of letters.
func frameValue(i int) []byte {
	v := make([]byte, 1024)
	for j := range v {
		v[j] = byte('a' + (i+j)%26)
	}
	return v
}

// frameBatch is a producer batch of n records of 1 KiB.
func frameBatch(n int) []byte {
	var raw []byte
	for i := range n {
		raw = recordbatch.AppendRecord(raw, kmsg.Record{OffsetDelta: int32(i), Key: fmt.Appendf(nil, "k%d", i), Value: frameValue(i)})
	}
	now := time.Now().UnixMilli()
	return recordbatch.Build(recordbatch.Header{
		PartitionLeaderEpoch: -1, LastOffsetDelta: int32(n - 1),
		BaseTimestamp: now, MaxTimestamp: now,
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, RecordCount: int32(n),
	}, raw)
}

// frameConn sends pre-encoded requests on a bare connection and reads
// their responses into one buffer, so that what a measurement allocates
// is the broker's.
type frameConn struct {
	t   *testing.T
	c   net.Conn
	buf []byte
}

func dialFrames(t *testing.T, addr string) *frameConn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &frameConn{t: t, c: c, buf: make([]byte, 1<<20)}
}

// roundTrip sends a request frame and returns the response body (after
// the correlation id), valid until the next call.
func (f *frameConn) roundTrip(frame []byte) []byte {
	if _, err := f.c.Write(frame); err != nil {
		f.t.Fatal(err)
	}
	if _, err := io.ReadFull(f.c, f.buf[:4]); err != nil {
		f.t.Fatal(err)
	}
	n := int(binary.BigEndian.Uint32(f.buf))
	if n > len(f.buf) {
		f.buf = make([]byte, n)
	}
	if _, err := io.ReadFull(f.c, f.buf[:n]); err != nil {
		f.t.Fatal(err)
	}
	return f.buf[4:n]
}

func encodeFrame(req kmsg.Request, v int16) []byte {
	req.SetVersion(v)
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("frames")).AppendRequest(nil, req, 1)
}

// produceFrame is a Produce v9 (acks 1) of one batch of 56 records of
// 1 KiB to frames/0: about 58 KiB, a little under its buffer's size class
// (64 KiB).
func produceFrame() []byte {
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = 1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "frames"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = frameBatch(56)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return encodeFrame(req, 9)
}

// fetchFrame is a sessionless Fetch v12 of up to 64 KiB of frames/0 from
// offset 0.
func fetchFrame() []byte {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxWaitMillis, req.MinBytes, req.MaxBytes = -1, 0, 1, 1<<20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "frames"
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 64 << 10
	rp.CurrentLeaderEpoch = -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return encodeFrame(req, 12)
}

// perRequest runs n requests with send and returns the bytes and the
// allocations per request, counted over the whole process (the broker's
// goroutines included) after one warm-up request. It runs on one P: a
// sync.Pool keeps a buffer given back on one P from a Get on another
// until it moves to the shared part, so with several Ps whether the
// connection's reader finds the buffer its processor gave back would
// depend on scheduling.
func perRequest(n int, send func()) (bytes, allocs float64) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	send()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		send()
	}
	runtime.ReadMemStats(&after)
	return float64(after.TotalAlloc-before.TotalAlloc) / float64(n), float64(after.Mallocs-before.Mallocs) / float64(n)
}

// TestRequestFrameAllocations: what the broker allocates to serve a
// Produce of a 58 KiB batch and a Fetch of up to 64 KiB over a
// connection (request frame, decoding, handling, response), measured
// as bytes and allocations per request, not as time. The produce's frame
// buffer is reused: the broker allocates less per request than the frame
// (about 1 KiB without the race detector; with it, sync.Pool drops a
// quarter of what it is given, so about a quarter of the 64 KiB class and
// of the connection's 32 KiB write buffer).
func TestRequestFrameAllocations(t *testing.T) {
	tb := startBroker(t, "", "", nil)
	adm := grpAdmin(t, tb.addr)
	if r, err := adm.CreateTopic(ctxT(t), 1, 1, nil, "frames"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	fc := dialFrames(t, tb.addr)
	produce := produceFrame()
	var presp kmsg.ProduceResponse
	presp.Version = 9
	pBytes, pAllocs := perRequest(500, func() {
		body := fc.roundTrip(produce)
		if err := presp.ReadFrom(body[1:]); err != nil {
			t.Fatal(err)
		}
		if c := presp.Topics[0].Partitions[0].ErrorCode; c != 0 {
			t.Fatalf("produce: got %v, want no error", kerr.ErrorForCode(c))
		}
	})
	fetch := fetchFrame()
	fBytes, fAllocs := perRequest(500, func() {
		if body := fc.roundTrip(fetch); len(body) < 32<<10 {
			t.Fatalf("fetch: got %d bytes, want a whole batch of 58 KiB", len(body))
		}
	})
	t.Logf("produce of %d bytes: %.0f B and %.1f allocations per request; fetch: %.0f B and %.1f allocations per request", len(produce), pBytes, pAllocs, fBytes, fAllocs)
	if pBytes > float64(len(produce))*3/4 {
		t.Errorf("a produce of a %d-byte frame allocates %.0f bytes, want less than 3/4 of the frame (its buffer pooled)", len(produce), pBytes)
	}
}

// TestPipelinedProducesKeepTheirBatches: with produce frames read into
// reused buffers, a producer with several requests in flight on one
// connection (not idempotent, so franz-go allows more than one), batches
// of many sizes and compression, gets every record stored as it sent it.
func TestPipelinedProducesKeepTheirBatches(t *testing.T) {
	tb := startBroker(t, "", "", nil)
	adm := grpAdmin(t, tb.addr)
	if r, err := adm.CreateTopic(ctxT(t), 3, 1, nil, "pipelined"); err != nil || r.Err != nil {
		t.Fatal(err, r.Err)
	}
	cl := clClient(t, tb.addr, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(5), kgo.ProducerLinger(time.Millisecond),
		kgo.ProducerBatchCompression(kgo.SnappyCompression(), kgo.NoCompression()), kgo.ProducerBatchMaxBytes(64<<10))
	const n = 3000
	want := map[string]string{}
	var recs []*kgo.Record
	for i := range n {
		k := strconv.Itoa(i)
		v := strings.Repeat(string(rune('a'+i%26)), 1+i%700) + k
		want[k] = v
		recs = append(recs, &kgo.Record{Topic: "pipelined", Key: []byte(k), Value: []byte(v)})
	}
	if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	got := consumeAll(t, tb.addr, "pipelined", n)
	if len(got) != n {
		t.Fatalf("consumed %d records, want %d", len(got), n)
	}
	for _, r := range got {
		if w, ok := want[string(r.Key)]; !ok || string(r.Value) != w {
			t.Fatalf("record %q: got value %.40q (%d bytes), want %.40q (%d bytes)", r.Key, r.Value, len(r.Value), w, len(w))
		}
		delete(want, string(r.Key))
	}
}
