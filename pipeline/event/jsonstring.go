package event

import (
	"encoding/binary"
	"unicode/utf8"
)

// safe[c] is true for the bytes a JSON string holds as they are (as
// AppendBytes writes them): printable ASCII but '"' and '\\'.
var safe = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Word-at-a-time helpers: lo has 0x01 in every byte, hi 0x80.
const (
	lo = 0x0101010101010101
	hi = 0x8080808080808080
)

// plain reports whether none of the 8 bytes in w (little-endian) needs
// escaping: each is at least 0x20, below 0x80, and neither '"' nor '\\'.
func plain(w uint64) bool {
	// A byte below 0x20, or at or above 0x80.
	ctl := (w - 0x20*lo) | w
	// A byte equal to '"' or '\\': zero after the XOR.
	q := w ^ ('"' * lo)
	bs := w ^ ('\\' * lo)
	return (ctl|zeroByte(q)|zeroByte(bs))&hi == 0
}

// zeroByte has the high bit set in (at least) the lowest byte of v that is
// zero; above it there may be false alarms, never below.
func zeroByte(v uint64) uint64 { return (v - lo) &^ v }

// AppendBytes appends text to dst as a JSON string, escaping what JSON
// requires (<, >, & are left as they are; U+2028 and U+2029, valid JSON
// that breaks JavaScript consumers, are escaped) and replacing invalid
// UTF-8 with U+FFFD. Runs that need no escaping are found eight bytes at a
// time.
func AppendBytes(dst []byte, text []byte) []byte {
	dst = append(dst, '"')
	start, i := 0, 0
	for i < len(text) {
		// Skip eight plain bytes at a time, then one at a time.
		for i+8 <= len(text) {
			if !plain(binary.LittleEndian.Uint64(text[i:])) {
				break
			}
			i += 8
		}
		for i < len(text) && safe[text[i]] {
			i++
		}
		if i == len(text) {
			break
		}
		c := text[i]
		if c < utf8.RuneSelf {
			dst = append(dst, text[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(text[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, text[start:i]...)
			dst = append(dst, "\ufffd"...)
			i++
			start = i
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, text[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
		default:
			i += size
		}
	}
	dst = append(dst, text[start:]...)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"
