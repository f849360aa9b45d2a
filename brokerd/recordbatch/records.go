package recordbatch

import (
	"encoding/binary"
	"fmt"
	"math"
)

// NextRecord splits the first record off an uncompressed records payload
// (Payload of an uncompressed batch, or the decompressed payload of a
// compressed one). raw is the whole record including its leading length
// varint, as kmsg.Record.ReadFrom expects it; rest is what follows. Both
// alias payload. It returns ErrCorrupt when the length varint is malformed,
// negative, or larger than what is left.
func NextRecord(payload []byte) (raw, rest []byte, err error) {
	length, n := binary.Varint(payload)
	if n <= 0 {
		return nil, payload, fmt.Errorf("%w: bad record length varint", ErrCorrupt)
	}
	if length < 0 || length > math.MaxInt32 || length > int64(len(payload)-n) {
		return nil, payload, fmt.Errorf("%w: record length %d with %d bytes left", ErrCorrupt, length, len(payload)-n)
	}
	end := n + int(length)
	return payload[:end], payload[end:], nil
}
