package wire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestSplicedFetchResponseDecodes encodes fetch responses whose records are
// spliced in, small and large, in a flexible and a non-flexible version,
// and checks that the frame decodes to the same records.
func TestSplicedFetchResponseDecodes(t *testing.T) {
	small := bytes.Repeat([]byte("s"), 100)
	large := bytes.Repeat([]byte("L"), 3*smallSplice+7) // a 3-byte uvarint length
	for _, version := range []int16{4, 11, 12} {
		resp := kmsg.NewPtrFetchResponse()
		resp.SetVersion(version)
		var splices []Splice
		var want [][]byte
		for i, data := range [][]byte{small, nil, large} {
			p := kmsg.NewFetchResponseTopicPartition()
			p.Partition = int32(i)
			p.HighWatermark = int64(100 + i)
			if data == nil {
				p.RecordBatches = []byte{}
			} else {
				p.RecordBatches = NewMarker()
				splices = append(splices, Splice{Marker: p.RecordBatches, Size: int64(len(data)), Data: bytes.NewReader(data)})
			}
			want = append(want, data)
			topic := kmsg.NewFetchResponseTopic()
			topic.Topic = "t"
			topic.Partitions = append(topic.Partitions, p)
			resp.Topics = append(resp.Topics, topic)
		}
		frame := appendResponseHeader(nil, 1, 42, resp.IsFlexible())
		frame = resp.AppendTo(frame)
		frame = finishFrame(frame, 0)
		pieces, err := splitSpliced(frame, splices, resp.IsFlexible())
		if err != nil {
			t.Fatalf("v%d: %v", version, err)
		}
		var out bytes.Buffer
		bw := bufio.NewWriterSize(&out, 64)
		if err := writeSpliced(bw, &out, pieces); err != nil {
			t.Fatal(err)
		}
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		b := out.Bytes()
		if got := int(binary.BigEndian.Uint32(b)); got != len(b)-4 {
			t.Fatalf("v%d: frame size %d, frame has %d bytes after the size", version, got, len(b)-4)
		}
		if got := int32(binary.BigEndian.Uint32(b[4:])); got != 42 {
			t.Fatalf("v%d: correlation id %d", version, got)
		}
		body := b[8:]
		if resp.IsFlexible() {
			body = body[1:] // empty header tagged fields
		}
		dec := kmsg.NewPtrFetchResponse()
		dec.SetVersion(version)
		if err := dec.ReadFrom(body); err != nil {
			t.Fatalf("v%d: decoding the spliced response: %v", version, err)
		}
		if len(dec.Topics) != 3 {
			t.Fatalf("v%d: %d topics", version, len(dec.Topics))
		}
		for i, tp := range dec.Topics {
			p := tp.Partitions[0]
			if p.Partition != int32(i) || p.HighWatermark != int64(100+i) {
				t.Fatalf("v%d: partition %d decoded as %d with high watermark %d", version, i, p.Partition, p.HighWatermark)
			}
			if !bytes.Equal(p.RecordBatches, want[i]) {
				t.Fatalf("v%d: partition %d records are %d bytes, want %d", version, i, len(p.RecordBatches), len(want[i]))
			}
		}
	}
}

// TestSplicedMissingMarker refuses a splice whose placeholder is not in the
// response, rather than writing a frame the client would misread.
func TestSplicedMissingMarker(t *testing.T) {
	resp := kmsg.NewPtrFetchResponse()
	resp.SetVersion(12)
	frame := finishFrame(resp.AppendTo(appendResponseHeader(nil, 1, 1, true)), 0)
	_, err := splitSpliced(frame, []Splice{{Marker: NewMarker(), Size: 1, Data: bytes.NewReader([]byte{1})}}, true)
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("err = %v, want a missing splice", err)
	}
}
