package wire

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// markerLen is the length of a splice's placeholder. Sixteen random bytes
// cannot be mistaken for the rest of a response's encoding.
const markerLen = 16

// smallSplice is the size below which a splice is copied through the
// connection's write buffer rather than sent with its own system call.
const smallSplice = 16 << 10

// Splice is a bytes field of a response whose content is written to the
// socket from elsewhere, such as a range of a segment file, instead of
// being encoded in memory. The response carries Marker in the field's
// place; the connection writes the field's real length and Data instead.
type Splice struct {
	// Marker is the placeholder the response holds in the field.
	Marker []byte
	// Size is the number of bytes Data writes.
	Size int64
	// Data writes the field's content. When its destination is the socket
	// it may use sendfile(2).
	Data io.WriterTo
}

// NewMarker returns a fresh placeholder for a Splice.
func NewMarker() []byte {
	m := make([]byte, markerLen)
	_, _ = rand.Read(m)
	return m
}

// SplicedResponse is a response with spliced fields, in the order they
// appear in its encoding. Done, if set, runs once after the response was
// written (sent is true) or abandoned, to release what the splices hold.
type SplicedResponse struct {
	kmsg.Response
	Splices []Splice
	Done    func(sent bool)
}

// release runs Done once, even if Done panics.
func (r *SplicedResponse) release(sent bool) {
	if done := r.Done; done != nil {
		r.Done = nil
		done(sent)
	}
}

// piece is one part of a spliced frame: bytes of the encoding, or a splice.
type piece struct {
	enc    []byte
	splice *Splice
}

// splitSpliced cuts frame (a finished frame holding the response's
// encoding) at each splice's placeholder, replacing the placeholder's length
// prefix with the real one, and rewrites the frame's size. flexible says
// whether bytes fields carry compact (uvarint) lengths.
func splitSpliced(frame []byte, splices []Splice, flexible bool) ([]piece, error) {
	pieces := make([]piece, 0, 3*len(splices)+1)
	size := int64(len(frame) - 4)
	from := 0
	for i := range splices {
		sp := &splices[i]
		at := bytes.Index(frame[max(from, 4):], sp.Marker)
		if at < 0 {
			return nil, fmt.Errorf("wire: spliced field %d not found in the response", i)
		}
		at += max(from, 4)
		var old, prefix []byte
		if flexible {
			old = binary.AppendUvarint(nil, uint64(len(sp.Marker))+1)
			prefix = binary.AppendUvarint(nil, uint64(sp.Size)+1)
		} else {
			old = binary.BigEndian.AppendUint32(nil, uint32(len(sp.Marker)))
			prefix = binary.BigEndian.AppendUint32(nil, uint32(sp.Size))
		}
		start := at - len(old)
		if start < max(from, 4) || !bytes.Equal(frame[start:at], old) {
			return nil, fmt.Errorf("wire: spliced field %d has no length prefix", i)
		}
		pieces = append(pieces, piece{enc: frame[from:start]}, piece{enc: prefix}, piece{splice: sp})
		size += int64(len(prefix)-len(old)) + sp.Size - int64(len(sp.Marker))
		from = at + len(sp.Marker)
	}
	pieces = append(pieces, piece{enc: frame[from:]})
	if size > 1<<31-1 {
		return nil, fmt.Errorf("wire: response of %d bytes is too large for a frame", size)
	}
	binary.BigEndian.PutUint32(frame, uint32(size))
	return pieces, nil
}

// writeSpliced writes the pieces of a spliced frame: encoded bytes through
// bw, small splices through bw too, and large ones straight to the socket
// after flushing bw, so the kernel can send them from the page cache.
func writeSpliced(bw *bufio.Writer, sock io.Writer, pieces []piece) error {
	for _, p := range pieces {
		if p.splice == nil {
			if _, err := bw.Write(p.enc); err != nil {
				return err
			}
			continue
		}
		w := sock
		if p.splice.Size < smallSplice {
			w = bw
		} else if err := bw.Flush(); err != nil {
			return err
		}
		n, err := p.splice.Data.WriteTo(w)
		if err == nil && n != p.splice.Size {
			err = fmt.Errorf("wire: spliced field wrote %d bytes, want %d", n, p.splice.Size)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
