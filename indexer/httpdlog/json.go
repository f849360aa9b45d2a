package httpdlog

import (
	"strconv"

	"logpipe/pipeline/event"
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

// appendString appends s as a JSON string, invalid UTF-8 (which the
// parsers never produce) as U+FFFD, with the event encoder's escaping.
func appendString(dst []byte, s string) []byte { return event.AppendString(dst, s) }
