package recordbatch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var allCodecs = []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

func kgoCodec(c Codec) kgo.CompressionCodec {
	switch c {
	case CodecGzip:
		return kgo.GzipCompression()
	case CodecSnappy:
		return kgo.SnappyCompression()
	case CodecLZ4:
		return kgo.Lz4Compression()
	case CodecZstd:
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

// testBatch builds a producer-style batch of n records (keys k0.., values
// v0..) with timestamps ts, ts+1, ..., compressed with codec by franz-go's
// compressor.
func testBatch(t testing.TB, codec Codec, n int, ts int64) []byte {
	t.Helper()
	var payload []byte
	for i := 0; i < n; i++ {
		payload = AppendRecord(payload, kmsg.Record{
			TimestampDelta64: int64(i),
			OffsetDelta:      int32(i),
			Key:              []byte(fmt.Sprintf("k%d", i)),
			Value:            []byte(fmt.Sprintf("value-%d-%s", i, bytes.Repeat([]byte("x"), 50))),
			Headers:          []kmsg.Header{{Key: "h", Value: []byte("hv")}},
		})
	}
	if codec != CodecNone {
		comp, err := kgo.DefaultCompressor(kgoCodec(codec))
		if err != nil {
			t.Fatal(err)
		}
		out, used := comp.Compress(new(bytes.Buffer), payload)
		if used != kgo.CompressionCodecType(codec) {
			t.Fatalf("compressor used %v, want %v", used, codec)
		}
		payload = append([]byte(nil), out...)
	}
	return Build(Header{
		PartitionLeaderEpoch: -1,
		Attributes:           int16(codec),
		LastOffsetDelta:      int32(n - 1),
		BaseTimestamp:        ts,
		MaxTimestamp:         ts + int64(n) - 1,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		BaseSequence:         -1,
		RecordCount:          int32(n),
	}, payload)
}

// legacyMessage returns a magic v1 message set entry (offset, size, crc,
// magic, attributes, timestamp, key, value).
func legacyMessage(magic byte) []byte {
	var msg []byte
	msg = binary.BigEndian.AppendUint32(msg, 0) // crc, not checked here
	msg = append(msg, magic, 0)
	if magic == 1 {
		msg = binary.BigEndian.AppendUint64(msg, 1700000000000)
	}
	msg = binary.BigEndian.AppendUint32(msg, 0xffffffff) // null key
	msg = binary.BigEndian.AppendUint32(msg, 3)
	msg = append(msg, "abc"...)
	var out []byte
	out = binary.BigEndian.AppendUint64(out, 0)
	out = binary.BigEndian.AppendUint32(out, uint32(len(msg)))
	return append(out, msg...)
}

func TestCRCIsCastagnoli(t *testing.T) {
	// The standard check value of CRC-32C.
	if got := crc32.Checksum([]byte("123456789"), castagnoli); got != 0xe3069283 {
		t.Fatalf("crc32c check value %08x", got)
	}
	b := testBatch(t, CodecNone, 3, 1000)
	want := crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli))
	if got := binary.BigEndian.Uint32(b[17:]); got != want {
		t.Fatalf("stored crc %08x, want %08x", got, want)
	}
}

func TestParseHeaderMatchesKmsg(t *testing.T) {
	for _, c := range allCodecs {
		t.Run(c.String(), func(t *testing.T) {
			b := testBatch(t, c, 5, 1_700_000_000_000)
			SetBaseOffset(b, 1234)
			SetPartitionLeaderEpoch(b, 7)
			h, err := Verify(b)
			if err != nil {
				t.Fatal(err)
			}
			var rb kmsg.RecordBatch
			if err := rb.ReadFrom(b); err != nil {
				t.Fatal(err)
			}
			want := Header{
				BaseOffset:           rb.FirstOffset,
				BatchLength:          rb.Length,
				PartitionLeaderEpoch: rb.PartitionLeaderEpoch,
				Magic:                rb.Magic,
				CRC:                  uint32(rb.CRC),
				Attributes:           rb.Attributes,
				LastOffsetDelta:      rb.LastOffsetDelta,
				BaseTimestamp:        rb.FirstTimestamp,
				MaxTimestamp:         rb.MaxTimestamp,
				ProducerID:           rb.ProducerID,
				ProducerEpoch:        rb.ProducerEpoch,
				BaseSequence:         rb.FirstSequence,
				RecordCount:          rb.NumRecords,
			}
			if h != want {
				t.Fatalf("header %+v\nkmsg   %+v", h, want)
			}
			if h.BaseOffset != 1234 || h.PartitionLeaderEpoch != 7 || h.LastOffset() != 1238 || h.NextOffset() != 1239 {
				t.Fatalf("offsets: %+v", h)
			}
			if h.Codec() != c || h.Size() != len(b) || h.RecordCount != 5 {
				t.Fatalf("codec %v size %d count %d", h.Codec(), h.Size(), h.RecordCount)
			}
			if h.LogAppendTime() || h.Transactional() || h.Control() || h.DeleteHorizon() || h.HasProducerID() {
				t.Fatalf("unexpected flags in %+v", h)
			}
		})
	}
}

func TestAttributeBits(t *testing.T) {
	h := Header{Attributes: 0x08 | 0x10 | 0x20 | 0x40 | 3, ProducerID: 5}
	if !h.LogAppendTime() || !h.Transactional() || !h.Control() || !h.DeleteHorizon() || h.Codec() != CodecLZ4 || !h.HasProducerID() {
		t.Fatalf("flags of %+v", h)
	}
	for c := Codec(0); c < 8; c++ {
		if c.Valid() != (c <= 4) {
			t.Fatalf("codec %d valid=%v", c, c.Valid())
		}
	}
	if CodecZstd.String() != "zstd" || Codec(6).String() != "codec(6)" {
		t.Fatal("codec names")
	}
}

func TestNextSplitsBatches(t *testing.T) {
	a := testBatch(t, CodecNone, 2, 1)
	b := testBatch(t, CodecGzip, 3, 2)
	c := testBatch(t, CodecZstd, 1, 3)
	all := append(append(append([]byte(nil), a...), b...), c...)
	var got [][]byte
	for rest := all; len(rest) > 0; {
		batch, r, err := Next(rest)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, batch)
		rest = r
	}
	if len(got) != 3 || !bytes.Equal(got[0], a) || !bytes.Equal(got[1], b) || !bytes.Equal(got[2], c) {
		t.Fatalf("split into %d batches", len(got))
	}
	if Size(all) != int64(len(a)) || Size(all[:5]) != -1 {
		t.Fatal("Size")
	}
}

func TestNextErrors(t *testing.T) {
	good := testBatch(t, CodecNone, 2, 1)
	badMagic := append([]byte(nil), good...)
	badMagic[16] = 3
	shortLen := append([]byte(nil), good...)
	binary.BigEndian.PutUint32(shortLen[8:], 20)
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrCorrupt},
		{"eleven bytes", good[:11], ErrCorrupt},
		{"no magic", good[:16], ErrCorrupt},
		{"truncated", good[:len(good)-1], ErrCorrupt},
		{"header only", good[:HeaderSize], ErrCorrupt},
		{"unknown magic", badMagic, ErrCorrupt},
		{"length below v2 header", shortLen, ErrCorrupt},
		{"negative length", append(make([]byte, 8), 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 2), ErrCorrupt},
		{"magic 0", legacyMessage(0), ErrLegacyMagic},
		{"magic 1", legacyMessage(1), ErrLegacyMagic},
		{"magic 1 truncated", legacyMessage(1)[:20], ErrLegacyMagic},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, rest, err := Next(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if len(rest) != len(tc.in) && !errors.Is(err, ErrLegacyMagic) {
				t.Fatalf("rest %d bytes of %d", len(rest), len(tc.in))
			}
		})
	}
	// A whole legacy message is handed back so a caller can skip or report it.
	lm := legacyMessage(1)
	batch, rest, err := Next(lm)
	if !errors.Is(err, ErrLegacyMagic) || !bytes.Equal(batch, lm) || len(rest) != 0 {
		t.Fatalf("legacy: %v %d %d", err, len(batch), len(rest))
	}
	if _, err := ParseHeader(lm); !errors.Is(err, ErrLegacyMagic) {
		t.Fatalf("ParseHeader legacy: %v", err)
	}
}

func TestVerify(t *testing.T) {
	good := testBatch(t, CodecSnappy, 4, 100)
	mut := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		return b
	}
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"good", good, nil},
		{"flipped payload byte", mut(func(b []byte) { b[len(b)-3] ^= 0x40 }), ErrCRC},
		{"flipped attribute", mut(func(b []byte) { b[22] ^= 0x10 }), ErrCRC},
		{"flipped crc", mut(func(b []byte) { b[18] ^= 1 }), ErrCRC},
		{"trailing byte", append(append([]byte(nil), good...), 0), ErrCorrupt},
		{"short", good[:len(good)-1], ErrCorrupt},
		{"codec 5", mut(func(b []byte) { b[22] = b[22]&^7 | 5; UpdateCRC(b) }), ErrUnsupportedCodec},
		{"negative delta", mut(func(b []byte) { binary.BigEndian.PutUint32(b[23:], 0xffffffff); UpdateCRC(b) }), ErrCorrupt},
		{"negative count", mut(func(b []byte) { binary.BigEndian.PutUint32(b[57:], 0xffffffff); UpdateCRC(b) }), ErrCorrupt},
		// Fields outside the CRC do not break it.
		{"offset and epoch", mut(func(b []byte) { SetBaseOffset(b, 99); SetPartitionLeaderEpoch(b, 3) }), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(tc.in)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	const now = int64(1_700_000_000_000)
	good := testBatch(t, CodecLZ4, 3, now)
	mut := func(f func(b []byte)) []byte {
		b := append([]byte(nil), good...)
		f(b)
		UpdateCRC(b)
		return b
	}
	put32 := func(off int, v int32) func([]byte) {
		return func(b []byte) { binary.BigEndian.PutUint32(b[off:], uint32(v)) }
	}
	put64 := func(off int, v int64) func([]byte) {
		return func(b []byte) { binary.BigEndian.PutUint64(b[off:], uint64(v)) }
	}
	attr := func(bits uint16) func([]byte) {
		return func(b []byte) { binary.BigEndian.PutUint16(b[21:], binary.BigEndian.Uint16(b[21:])|bits) }
	}
	lim := ProduceLimits{NowMs: now, TimestampBeforeMaxMs: 1000, TimestampAfterMaxMs: 1000}
	cases := []struct {
		name string
		in   []byte
		lim  ProduceLimits
		want error
	}{
		{"good", good, lim, nil},
		{"good no limits", good, ProduceLimits{}, nil},
		{"too large", good, ProduceLimits{MaxBatchBytes: len(good) - 1}, ErrTooLarge},
		{"exactly max", good, ProduceLimits{MaxBatchBytes: len(good)}, nil},
		{"base offset set", mut(put64(0, 5)), lim, ErrInvalidRecord},
		{"count mismatch", mut(put32(57, 2)), lim, ErrInvalidRecord},
		{"count zero", mut(func(b []byte) { put32(57, 0)(b); put32(23, -1+1)(b) }), lim, ErrInvalidRecord},
		{"control", mut(attr(0x20)), lim, ErrInvalidRecord},
		{"delete horizon", mut(attr(0x40)), lim, ErrInvalidRecord},
		{"pid without sequence", mut(put64(43, 9)), lim, ErrInvalidRecord},
		{"pid with sequence", mut(func(b []byte) { put64(43, 9)(b); put32(53, 0)(b) }), lim, nil},
		{"transactional allowed", mut(func(b []byte) { attr(0x10)(b); put64(43, 9)(b); put32(53, 0)(b) }), lim, nil},
		{"log append time from client", mut(attr(0x08)), lim, ErrInvalidTimestamp},
		{"base below -1", mut(put64(27, -2)), ProduceLimits{}, ErrInvalidTimestamp},
		{"max below -1", mut(put64(35, -5)), ProduceLimits{}, ErrInvalidTimestamp},
		{"max below base", mut(put64(35, now-1)), ProduceLimits{}, ErrInvalidTimestamp},
		{"no timestamps", mut(func(b []byte) { put64(27, -1)(b); put64(35, -1)(b) }), lim, nil},
		{"too far in future", good, ProduceLimits{NowMs: now - 1002, TimestampAfterMaxMs: 1000}, ErrInvalidTimestamp},
		{"just in future", good, ProduceLimits{NowMs: now - 998, TimestampAfterMaxMs: 1000}, nil},
		{"too far in past", good, ProduceLimits{NowMs: now + 1001, TimestampBeforeMaxMs: 1000}, ErrInvalidTimestamp},
		{"just in past", good, ProduceLimits{NowMs: now + 1000, TimestampBeforeMaxMs: 1000}, nil},
		{"crc still checked", func() []byte { b := append([]byte(nil), good...); b[70] ^= 1; return b }(), lim, ErrCRC},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Validate(tc.in, tc.lim)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestValidateAll(t *testing.T) {
	a := testBatch(t, CodecNone, 2, 1)
	b := testBatch(t, CodecZstd, 3, 2)
	hs, err := ValidateAll(append(append([]byte(nil), a...), b...), ProduceLimits{})
	if err != nil || len(hs) != 2 || hs[0].RecordCount != 2 || hs[1].RecordCount != 3 {
		t.Fatalf("%v %+v", err, hs)
	}
	if _, err := ValidateAll(nil, ProduceLimits{}); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("empty: %v", err)
	}
	if _, err := ValidateAll(append(append([]byte(nil), a...), b[:30]...), ProduceLimits{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("trailing garbage: %v", err)
	}
	if _, err := ValidateAll(append(append([]byte(nil), a...), legacyMessage(1)...), ProduceLimits{}); !errors.Is(err, ErrLegacyMagic) {
		t.Fatalf("legacy: %v", err)
	}
}

func TestSetLogAppendTime(t *testing.T) {
	b := testBatch(t, CodecGzip, 3, 500)
	SetLogAppendTime(b, 1_800_000_000_000)
	h, err := Verify(b)
	if err != nil {
		t.Fatal(err)
	}
	if !h.LogAppendTime() || h.MaxTimestamp != 1_800_000_000_000 || h.BaseTimestamp != 500 || h.Codec() != CodecGzip {
		t.Fatalf("%+v", h)
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	b := testBatch(t, CodecNone, 4, 10)
	payload := Payload(b)
	var n int
	for len(payload) > 0 {
		raw, rest, err := NextRecord(payload)
		if err != nil {
			t.Fatal(err)
		}
		var r kmsg.Record
		if err := r.ReadFrom(raw); err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != fmt.Sprintf("k%d", n) || r.OffsetDelta != int32(n) || r.TimestampDelta64 != int64(n) || len(r.Headers) != 1 {
			t.Fatalf("record %d: %+v", n, r)
		}
		n++
		payload = rest
	}
	if n != 4 {
		t.Fatalf("%d records", n)
	}
	for _, bad := range [][]byte{{}, {0x80}, {0x01}, {0x06, 1, 2}} {
		if _, _, err := NextRecord(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%x: %v", bad, err)
		}
	}
}

func TestErrorCode(t *testing.T) {
	cases := []struct {
		err  error
		want *kerr.Error
	}{
		{fmt.Errorf("x: %w", ErrCorrupt), kerr.CorruptMessage},
		{ErrCRC, kerr.CorruptMessage},
		{ErrLegacyMagic, kerr.InvalidRecord},
		{ErrInvalidRecord, kerr.InvalidRecord},
		{ErrUnsupportedCodec, kerr.UnsupportedCompressionType},
		{ErrInvalidTimestamp, kerr.InvalidTimestamp},
		{ErrTooLarge, kerr.MessageTooLarge},
		{errors.New("other"), kerr.UnknownServerError},
	}
	for _, tc := range cases {
		if got := ErrorCode(tc.err); got != tc.want.Code {
			t.Errorf("%v: %d, want %d", tc.err, got, tc.want.Code)
		}
	}
	if ErrorCode(nil) != 0 {
		t.Error("nil")
	}
}
