package storage

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/recordbatch"
)

// Record decoding is needed only off the produce path: by the cleaner
// (keys) and by timestamp lookups (per-record timestamps). Codecs come from
// franz-go, which handles the framings real producers use (including
// xerial-framed snappy from the Java client).

var decompressor = kgo.DefaultDecompressor()

var (
	compressorsMu sync.Mutex
	compressors   = map[recordbatch.Codec]kgo.Compressor{}
)

// payload returns a batch's records, decompressed.
func payload(h recordbatch.Header, batch []byte) ([]byte, error) {
	p := recordbatch.Payload(batch)
	if h.Codec() == recordbatch.CodecNone {
		return p, nil
	}
	out, err := decompressor.Decompress(p, kgo.CompressionCodecType(h.Codec()))
	if err != nil {
		return nil, fmt.Errorf("%w: decompressing %s batch at offset %d: %v", recordbatch.ErrCorrupt, h.Codec(), h.BaseOffset, err)
	}
	return out, nil
}

// compress compresses raw records with codec for a rebuilt batch.
func compress(codec recordbatch.Codec, raw []byte) ([]byte, error) {
	if codec == recordbatch.CodecNone {
		return raw, nil
	}
	compressorsMu.Lock()
	c, ok := compressors[codec]
	if !ok {
		var kc kgo.CompressionCodec
		switch codec {
		case recordbatch.CodecGzip:
			kc = kgo.GzipCompression()
		case recordbatch.CodecSnappy:
			kc = kgo.SnappyCompression()
		case recordbatch.CodecLZ4:
			kc = kgo.Lz4Compression()
		case recordbatch.CodecZstd:
			kc = kgo.ZstdCompression()
		default:
			compressorsMu.Unlock()
			return nil, fmt.Errorf("%w: codec %d", recordbatch.ErrUnsupportedCodec, codec)
		}
		var err error
		if c, err = kgo.DefaultCompressor(kc); err != nil {
			compressorsMu.Unlock()
			return nil, err
		}
		compressors[codec] = c
	}
	compressorsMu.Unlock()
	out, used := c.Compress(new(bytes.Buffer), raw)
	if used != kgo.CompressionCodecType(codec) {
		return nil, fmt.Errorf("storage: compressing with %s failed", codec)
	}
	return append([]byte(nil), out...), nil
}

// record is one decoded record of a batch. Key and Value are nil when
// null; Raw is the record's whole encoding. All alias the decoded payload.
type record struct {
	Offset    int64
	Timestamp int64
	Key       []byte
	Value     []byte
	Raw       []byte
}

// forEachRecord decodes batch's records in order and calls fn for each
// until fn returns false.
func forEachRecord(h recordbatch.Header, batch []byte, fn func(r record) bool) error {
	p, err := payload(h, batch)
	if err != nil {
		return err
	}
	for len(p) > 0 {
		raw, rest, err := recordbatch.NextRecord(p)
		if err != nil {
			return fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
		}
		var kr kmsg.Record
		if err := kr.ReadFrom(raw); err != nil {
			return fmt.Errorf("%w: record in batch at offset %d: %v", recordbatch.ErrCorrupt, h.BaseOffset, err)
		}
		ts := h.BaseTimestamp + kr.TimestampDelta64
		if h.LogAppendTime() {
			ts = h.MaxTimestamp
		}
		if !fn(record{Offset: h.BaseOffset + int64(kr.OffsetDelta), Timestamp: ts, Key: kr.Key, Value: kr.Value, Raw: raw}) {
			return nil
		}
		p = rest
	}
	return nil
}
