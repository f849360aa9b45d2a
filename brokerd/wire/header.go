// Package wire is brokerd's Kafka protocol front end: it accepts TCP
// connections, reads size-prefixed request frames, decodes the request
// header (v0–v2) and the body (with kmsg), hands each request to a Handler,
// and writes the responses back strictly in request order.
//
// The package knows nothing of topics or groups. A frame that is oversized
// or malformed closes that one connection, after one log line; nothing
// else is affected.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Sentinel errors of header decoding.
var (
	ErrShortHeader = errors.New("wire: request header is truncated")
	ErrBadClientID = errors.New("wire: request header client id is malformed")
	ErrBadTags     = errors.New("wire: request header tagged fields are malformed")
)

// Header is a decoded request header.
type Header struct {
	APIKey        int16
	APIVersion    int16
	CorrelationID int32
	// ClientID is the client's id; empty when absent or null.
	ClientID string
}

// parseFixed reads the part of the header that every version has: key,
// version and correlation id. It returns the rest of the frame.
func parseFixed(frame []byte) (Header, []byte, error) {
	if len(frame) < 8 {
		return Header{}, nil, ErrShortHeader
	}
	h := Header{
		APIKey:        int16(binary.BigEndian.Uint16(frame[0:])),
		APIVersion:    int16(binary.BigEndian.Uint16(frame[2:])),
		CorrelationID: int32(binary.BigEndian.Uint32(frame[4:])),
	}
	return h, frame[8:], nil
}

// parseRest reads the client id (request header v1 and v2) and, for v2
// (flexible requests), the header's tagged fields, which are skipped. It
// returns the body that follows.
func parseRest(h *Header, rest []byte, flexible bool) ([]byte, error) {
	if len(rest) < 2 {
		return nil, ErrShortHeader
	}
	n := int16(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	switch {
	case n == -1:
	case n < -1 || int(n) > len(rest):
		return nil, ErrBadClientID
	default:
		h.ClientID = string(rest[:n])
		rest = rest[n:]
	}
	if !flexible {
		return rest, nil
	}
	count, k := binary.Uvarint(rest)
	if k <= 0 {
		return nil, ErrBadTags
	}
	rest = rest[k:]
	for i := uint64(0); i < count; i++ {
		if _, k = binary.Uvarint(rest); k <= 0 {
			return nil, ErrBadTags
		}
		rest = rest[k:]
		size, k := binary.Uvarint(rest)
		if k <= 0 || size > uint64(len(rest)-k) {
			return nil, ErrBadTags
		}
		rest = rest[k+int(size):]
	}
	return rest, nil
}

// appendResponseHeader appends the frame size placeholder and the response
// header: the correlation id, plus an empty tagged-field section for
// flexible responses (header v1). ApiVersions always uses header v0 so that
// a client can read the answer before it knows what the broker speaks.
func appendResponseHeader(dst []byte, key int16, correlationID int32, flexible bool) []byte {
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	if flexible && key != apiVersionsKey {
		dst = append(dst, 0)
	}
	return dst
}

// finishFrame writes the size of the frame that starts at start.
func finishFrame(buf []byte, start int) []byte {
	binary.BigEndian.PutUint32(buf[start:], uint32(len(buf)-start-4))
	return buf
}

const apiVersionsKey = 18

// String describes the header for logs.
func (h Header) String() string {
	return fmt.Sprintf("api %d v%d correlation %d client %q", h.APIKey, h.APIVersion, h.CorrelationID, h.ClientID)
}
