package recordbatch

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/; f.Add adds a few more
// built at run time so the seeds follow the builders.

// FuzzParseHeader checks that ParseHeader and Next never panic, agree with
// each other, and that a header they accept re-encodes (through kmsg) to the
// same bytes.
func FuzzParseHeader(f *testing.F) {
	f.Add(testBatch(f, CodecNone, 1, 0))
	f.Add(testBatch(f, CodecZstd, 3, 1_700_000_000_000)[:HeaderSize])
	f.Add(legacyMessage(1))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err == nil {
			if h.Magic != MagicV2 || h.BatchLength < minBatchLength {
				t.Fatalf("accepted %+v", h)
			}
			rb := kmsg.RecordBatch{
				FirstOffset: h.BaseOffset, Length: h.BatchLength, PartitionLeaderEpoch: h.PartitionLeaderEpoch,
				Magic: h.Magic, CRC: int32(h.CRC), Attributes: h.Attributes, LastOffsetDelta: h.LastOffsetDelta,
				FirstTimestamp: h.BaseTimestamp, MaxTimestamp: h.MaxTimestamp, ProducerID: h.ProducerID,
				ProducerEpoch: h.ProducerEpoch, FirstSequence: h.BaseSequence, NumRecords: h.RecordCount,
			}
			if enc := rb.AppendTo(nil); !bytes.Equal(enc, b[:HeaderSize]) {
				t.Fatalf("re-encoded header differs:\n%x\n%x", enc, b[:HeaderSize])
			}
		}
		batch, rest, nerr := Next(b)
		switch {
		case nerr == nil:
			if err != nil {
				t.Fatalf("Next accepted what ParseHeader refused: %v", err)
			}
			if int64(len(batch)) != Size(batch) || len(batch)+len(rest) != len(b) || !bytes.Equal(batch, b[:len(batch)]) {
				t.Fatalf("split %d+%d of %d", len(batch), len(rest), len(b))
			}
			if h.Size() != len(batch) {
				t.Fatalf("size %d vs %d", h.Size(), len(batch))
			}
		case errors.Is(nerr, ErrLegacyMagic):
			if !errors.Is(err, ErrLegacyMagic) {
				t.Fatalf("Next says legacy, ParseHeader says %v", err)
			}
		case !errors.Is(nerr, ErrCorrupt):
			t.Fatalf("unexpected error %v", nerr)
		}
	})
}

// FuzzValidate checks that Verify and Validate never panic, that what
// Validate accepts Verify accepts, that kmsg decodes what Verify accepts to
// the same fields, and that patching keeps an accepted batch valid.
func FuzzValidate(f *testing.F) {
	for _, c := range allCodecs {
		f.Add(testBatch(f, c, 2, 1_700_000_000_000))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		lim := ProduceLimits{MaxBatchBytes: 1 << 20, NowMs: 1_700_000_000_000, TimestampBeforeMaxMs: 1 << 40, TimestampAfterMaxMs: 3_600_000}
		vh, verr := Validate(b, lim)
		h, err := Verify(b)
		if verr == nil && err != nil {
			t.Fatalf("Validate accepted what Verify refused: %v", err)
		}
		if verr == nil && vh != h {
			t.Fatalf("headers differ: %+v %+v", vh, h)
		}
		if err != nil {
			for _, s := range []error{ErrCorrupt, ErrCRC, ErrLegacyMagic, ErrUnsupportedCodec} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("unexpected error %v", err)
		}
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b); err != nil {
			t.Fatalf("kmsg refuses a verified batch: %v", err)
		}
		if rb.NumRecords != h.RecordCount || rb.MaxTimestamp != h.MaxTimestamp || len(rb.Records) != len(b)-HeaderSize {
			t.Fatalf("kmsg disagrees: %+v vs %+v", rb, h)
		}
		c := append([]byte(nil), b...)
		SetBaseOffset(c, 1<<40)
		SetPartitionLeaderEpoch(c, 12)
		SetLogAppendTime(c, 1_800_000_000_000)
		ph, err := Verify(c)
		if err != nil {
			t.Fatalf("patched batch fails: %v", err)
		}
		if ph.BaseOffset != 1<<40 || ph.PartitionLeaderEpoch != 12 || !ph.LogAppendTime() || ph.MaxTimestamp != 1_800_000_000_000 || ph.RecordCount != h.RecordCount {
			t.Fatalf("patched header %+v", ph)
		}
		// Walking the payload never panics and never runs past it.
		if h.Codec() == CodecNone {
			p := Payload(b)
			for len(p) > 0 {
				raw, rest, err := NextRecord(p)
				if err != nil {
					break
				}
				if len(raw)+len(rest) != len(p) || len(raw) == 0 {
					t.Fatalf("record split %d+%d of %d", len(raw), len(rest), len(p))
				}
				p = rest
			}
		}
	})
}
