package storage

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/recordbatch"
)

// t0 is the fake clock's start, in the past so CreateTime timestamps near
// it are plausible.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// rec is a record to put in a test batch; a nil key or value is null.
type rec struct {
	key, value []byte
	ts         int64
}

func kv(k, v string, ts int64) rec {
	r := rec{key: []byte(k), ts: ts}
	if v != "" {
		r.value = []byte(v)
	}
	return r
}

// makeBatch builds a producer-style batch (base offset 0, no epoch) of
// recs compressed with codec by franz-go's compressor.
func makeBatch(t testing.TB, codec recordbatch.Codec, recs ...rec) []byte {
	t.Helper()
	var raw []byte
	maxTS := recs[0].ts
	for i, r := range recs {
		raw = recordbatch.AppendRecord(raw, kmsg.Record{
			TimestampDelta64: r.ts - recs[0].ts,
			OffsetDelta:      int32(i),
			Key:              r.key,
			Value:            r.value,
		})
		maxTS = max(maxTS, r.ts)
	}
	p, err := compress(codec, raw)
	if err != nil {
		t.Fatal(err)
	}
	return recordbatch.Build(recordbatch.Header{
		PartitionLeaderEpoch: -1,
		Attributes:           int16(codec),
		LastOffsetDelta:      int32(len(recs) - 1),
		BaseTimestamp:        recs[0].ts,
		MaxTimestamp:         maxTS,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		BaseSequence:         -1,
		RecordCount:          int32(len(recs)),
	}, p)
}

// valueBatch builds a batch of n records with keys key-<first+i>, values of
// valueSize bytes and timestamps ts.
func valueBatch(t testing.TB, codec recordbatch.Codec, first, n, valueSize int, ts int64) []byte {
	recs := make([]rec, n)
	for i := range recs {
		v := bytes.Repeat([]byte{byte('a' + (first+i)%26)}, valueSize)
		recs[i] = rec{key: []byte(fmt.Sprintf("key-%d", first+i)), value: v, ts: ts}
	}
	return makeBatch(t, codec, recs...)
}

func openLog(t testing.TB, dir string, cfg Config) *Log {
	t.Helper()
	l, err := Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func partitionDir(t testing.TB) string {
	return filepath.Join(t.TempDir(), "logs-0")
}

func mustAppend(t testing.TB, l *Log, batch []byte, epoch int32, now time.Time) (int64, int64) {
	t.Helper()
	b, e, err := l.AppendAsLeader(batch, epoch, now)
	if err != nil {
		t.Fatal(err)
	}
	return b, e
}

// decoded is one record read back from a log.
type decoded struct {
	Offset    int64
	Timestamp int64
	Key       string
	Value     string
	Null      bool
}

// readAll reads the whole log from its start with Read (logBytes) and
// decodes every record, checking each batch's CRC and that batches come in
// offset order.
func readAll(t testing.TB, l *Log) []decoded {
	t.Helper()
	var out []decoded
	prevLast := int64(-1)
	for b := logBytes(t, l); len(b) > 0; {
		batch, rest, err := recordbatch.Next(b)
		if err != nil {
			t.Fatal(err)
		}
		h, err := recordbatch.Verify(batch)
		if err != nil {
			t.Fatal(err)
		}
		if h.BaseOffset <= prevLast {
			t.Fatalf("batch %d..%d after %d", h.BaseOffset, h.LastOffset(), prevLast)
		}
		prevLast = h.LastOffset()
		if err := forEachRecord(h, batch, func(r record) bool {
			if r.Offset >= l.LogStartOffset() {
				out = append(out, decoded{r.Offset, r.Timestamp, string(r.Key), string(r.Value), r.Value == nil})
			}
			return true
		}); err != nil {
			t.Fatal(err)
		}
		b = rest
	}
	return out
}

// logBytes reads every batch of l from its start with Read, as stored.
func logBytes(t testing.TB, l *Log) []byte {
	t.Helper()
	var out []byte
	for off := l.LogStartOffset(); ; {
		r, err := l.Read(off, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if r.Size == 0 {
			r.Close()
			return out
		}
		b, err := r.Bytes()
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
		for len(b) > 0 {
			batch, rest, err := recordbatch.Next(b)
			if err != nil {
				t.Fatal(err)
			}
			h, err := recordbatch.ParseHeader(batch)
			if err != nil {
				t.Fatal(err)
			}
			off = h.NextOffset()
			b = rest
		}
	}
}

// sendOverTCP copies r to a loopback TCP connection with WriteTo (sendfile
// on Linux) and returns what the other end received.
func sendOverTCP(t testing.TB, r ReadResult) []byte {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(c)
		got <- b
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	n, err := r.WriteTo(c)
	c.Close()
	if err != nil || n != r.Size {
		t.Fatalf("sending over TCP: wrote %d bytes (%v), want %d", n, err, r.Size)
	}
	return <-got
}

func wantErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
}
