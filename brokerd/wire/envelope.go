package wire

import (
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A broker that forwards a client's request to the controller wraps it
// in an Envelope (API 58) with the client's principal and address, so the
// controller authorizes the client, not the broker. The envelope carries
// the request and the answer as they travel on the wire, headers
// included, without the size prefix.

// EncodeRequestData returns req (its version set) with a request header
// naming clientID, as an EnvelopeRequest's request data.
func EncodeRequestData(req kmsg.Request, clientID string) []byte {
	framed := kmsg.NewRequestFormatter(kmsg.FormatterClientID(clientID)).AppendRequest(nil, req, 0)
	return framed[4:]
}

// DecodeRequestData decodes an EnvelopeRequest's request data.
func DecodeRequestData(data []byte) (Header, kmsg.Request, error) {
	h, rest, err := parseFixed(data)
	if err != nil {
		return Header{}, nil, err
	}
	req := kmsg.RequestForKey(h.APIKey)
	if req == nil || h.APIVersion < 0 || h.APIVersion > req.MaxVersion() {
		return Header{}, nil, fmt.Errorf("wire: enveloped request %s (%s) is not known", h, kmsg.NameForKey(h.APIKey))
	}
	req.SetVersion(h.APIVersion)
	body, err := parseRest(&h, rest, req.IsFlexible())
	if err != nil {
		return Header{}, nil, err
	}
	if err := req.ReadFrom(body); err != nil {
		return Header{}, nil, fmt.Errorf("wire: malformed enveloped %s v%d request: %w", kmsg.NameForKey(h.APIKey), h.APIVersion, err)
	}
	return h, req, nil
}

// EncodeResponseData returns resp with a response header, as an
// EnvelopeResponse's response data.
func EncodeResponseData(resp kmsg.Response, correlationID int32) []byte {
	dst := binary.BigEndian.AppendUint32(nil, uint32(correlationID))
	if resp.IsFlexible() {
		dst = append(dst, 0)
	}
	return resp.AppendTo(dst)
}

// DecodeResponseData decodes the answer to req from an EnvelopeResponse's
// response data.
func DecodeResponseData(req kmsg.Request, data []byte) (kmsg.Response, error) {
	if len(data) < 4 {
		return nil, ErrShortHeader
	}
	return decodeResponseBody(req, data[4:])
}

// decodeResponseBody decodes the answer to req from what follows the
// correlation id of its response header.
func decodeResponseBody(req kmsg.Request, body []byte) (kmsg.Response, error) {
	if req.IsFlexible() && req.Key() != apiVersionsKey {
		var err error
		if body, err = skipTags(body); err != nil {
			return nil, fmt.Errorf("wire: %s response header: %w", kmsg.NameForKey(req.Key()), err)
		}
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("wire: decoding the %s response: %w", kmsg.NameForKey(req.Key()), err)
	}
	return resp, nil
}
