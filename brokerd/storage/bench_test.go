package storage

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/recordbatch"
)

// benchBatch is a producer batch of n uncompressed 1 KiB records with
// random-looking values (like JSON events, not compressible to nothing).
func benchBatch(b *testing.B, n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	var raw []byte
	for i := 0; i < n; i++ {
		v := make([]byte, 1024)
		for j := range v {
			v[j] = byte(' ' + rng.IntN(90))
		}
		raw = recordbatch.AppendRecord(raw, kmsg.Record{OffsetDelta: int32(i), Key: []byte(fmt.Sprintf("host-%d", i)), Value: v})
	}
	return recordbatch.Build(recordbatch.Header{
		PartitionLeaderEpoch: -1, LastOffsetDelta: int32(n - 1),
		BaseTimestamp: t0.UnixMilli(), MaxTimestamp: t0.UnixMilli(),
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1, RecordCount: int32(n),
	}, raw)
}

// BenchmarkAppend measures AppendAsLeader (validation with CRC, offset
// patching, write to the page cache, index upkeep) for batches of 16
// records of 1 KiB, with the default 1 GiB segments.
func BenchmarkAppend(b *testing.B) {
	clk := newClock()
	l := openLog(b, partitionDir(b), Config{Clock: clk.Now})
	defer l.Close()
	batch := benchBatch(b, 16)
	b.SetBytes(int64(len(batch)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Appending patches the batch in place; a producer sends base
		// offset 0 (outside the CRC, so resetting it is free).
		recordbatch.SetBaseOffset(batch, 0)
		if _, _, err := l.AppendAsLeader(batch, 0, clk.Now()); err != nil {
			b.Fatal(err)
		}
	}
}

// fillLog appends about size bytes of 16 KiB batches.
func fillLog(b *testing.B, size int) *Log {
	clk := newClock()
	l := openLog(b, partitionDir(b), Config{Clock: clk.Now, SegmentBytes: 64 << 20})
	batch := benchBatch(b, 16)
	for n := 0; n < size; n += len(batch) {
		recordbatch.SetBaseOffset(batch, 0)
		if _, _, err := l.AppendAsLeader(batch, 0, clk.Now()); err != nil {
			b.Fatal(err)
		}
	}
	return l
}

// BenchmarkReadBytes reads the log sequentially in 1 MiB fetches into
// memory (index lookup, header walk, pread).
func BenchmarkReadBytes(b *testing.B) {
	l := fillLog(b, 128<<20)
	defer l.Close()
	benchReads(b, l, func(r ReadResult) error {
		_, err := r.Bytes()
		return err
	})
}

// BenchmarkReadSendfile sends 1 MiB fetches over a loopback TCP connection
// with ReadResult.WriteTo (sendfile).
func BenchmarkReadSendfile(b *testing.B) {
	l := fillLog(b, 128<<20)
	defer l.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(io.Discard, c)
		c.Close()
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	benchReads(b, l, func(r ReadResult) error {
		_, err := r.WriteTo(c)
		return err
	})
}

// benchReads times b.N reads of the log in 1 MiB fetches from its start,
// handing each non-empty one to use, and starting over at the end.
func benchReads(b *testing.B, l *Log, use func(ReadResult) error) {
	b.ResetTimer()
	var total int64
	off := int64(0)
	for i := 0; i < b.N; i++ {
		r, err := l.Read(off, 1<<20)
		if err != nil {
			b.Fatal(err)
		}
		if r.Size == 0 {
			off = 0
			r.Close()
			continue
		}
		if err := use(r); err != nil {
			b.Fatal(err)
		}
		total += r.Size
		off = nextOffsetAfter(b, r)
		r.Close()
	}
	b.SetBytes(total / int64(b.N))
}

// nextOffsetAfter returns the offset after the last batch of r, reading
// only that batch's header (through the index-free header walk).
func nextOffsetAfter(b *testing.B, r ReadResult) int64 {
	hr := newHeaderReader(r.File, r.Position+r.Size)
	defer hr.release()
	var next int64
	for pos := r.Position; pos < r.Position+r.Size; {
		h, err := hr.at(pos)
		if err != nil {
			b.Fatal(err)
		}
		next = h.NextOffset()
		pos += int64(h.Size())
	}
	return next
}
