package httpdlog

import (
	"strconv"
	"unicode/utf8"
)

// sep appends the comma that separates a new member from the one before it:
// none when dst is empty or ends with '{' or ','.
func sep(dst []byte) []byte {
	if n := len(dst); n > 0 && dst[n-1] != '{' && dst[n-1] != ',' {
		dst = append(dst, ',')
	}
	return dst
}

// openObject appends `"key":{` (after a separator if needed). key must not
// need escaping.
func openObject(dst []byte, key string) []byte {
	dst = sep(dst)
	dst = append(dst, '"')
	dst = append(dst, key...)
	return append(dst, '"', ':', '{')
}

func closeObject(dst []byte) []byte { return append(dst, '}') }

// stringMember appends `"key":"value"` with value escaped for JSON.
func stringMember(dst []byte, key, value string) []byte {
	dst = sep(dst)
	dst = append(dst, '"')
	dst = append(dst, key...)
	dst = append(dst, '"', ':')
	return appendString(dst, value)
}

// intMember appends `"key":n`.
func intMember(dst []byte, key string, n int64) []byte {
	dst = sep(dst)
	dst = append(dst, '"')
	dst = append(dst, key...)
	dst = append(dst, '"', ':')
	return strconv.AppendInt(dst, n, 10)
}

// appendString appends s as a JSON string. Invalid UTF-8 (which the parsers
// never produce) is written as U+FFFD so the output is valid JSON whatever
// s holds.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
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
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += n
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
