package document

import (
	"bytes"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The scanner below walks JSON that is already known to be valid (checked
// with json.Valid, or written by this package), so it only finds the ends of
// values; it never has to report a syntax error.

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the string that starts at b[i]
// (which is '"').
func skipString(b []byte, i int) int {
	i++
	for i < len(b) {
		switch b[i] {
		case '\\':
			i += 2
		case '"':
			return i + 1
		default:
			i++
		}
	}
	return i
}

// skipValue returns the index just past the value that starts at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default:
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// eachMember calls fn with the raw key (quotes included) and raw value of
// every member of the valid JSON object obj, in order, until fn returns
// false. It does nothing when obj is not an object.
func eachMember(obj []byte, fn func(rawKey, val []byte) bool) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return
	}
	i = skipSpace(obj, i+1)
	for i < len(obj) && obj[i] == '"' {
		ke := skipString(obj, i)
		key := obj[i:ke]
		i = skipSpace(obj, ke)
		if i >= len(obj) || obj[i] != ':' {
			return
		}
		vs := skipSpace(obj, i+1)
		ve := skipValue(obj, vs)
		if !fn(key, obj[vs:ve]) {
			return
		}
		i = skipSpace(obj, ve)
		if i < len(obj) && obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
	}
}

// keyString returns the text of a raw JSON key (quotes included).
func keyString(raw []byte) string {
	if len(raw) < 2 {
		return ""
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner)
	}
	s, ok := unquote(raw)
	if !ok {
		return string(inner)
	}
	return s
}

// keyIs reports whether a raw JSON key names key.
func keyIs(raw []byte, key string) bool {
	if len(raw) == len(key)+2 && string(raw[1:len(raw)-1]) == key {
		return true
	}
	return bytes.IndexByte(raw, '\\') >= 0 && keyString(raw) == key
}

// isObject reports whether the raw JSON value is an object.
func isObject(v []byte) bool { return len(v) > 0 && v[0] == '{' }

// stringValue returns the text of a raw JSON string value, and false when
// the value is no string.
func stringValue(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	inner := v[1 : len(v)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), true
	}
	return unquote(v)
}

// unquote returns the text of the JSON string literal v (quotes included)
// exactly as encoding/json decodes it: escapes resolved, a \u escape that
// is half a surrogate pair and bytes that are not UTF-8 each replaced with
// U+FFFD. It reports false when v is not a well-formed literal. It is the
// hot path of every access line, whose quotes arrive escaped.
func unquote(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return "", false
	}
	in := v[1 : len(v)-1]
	var out strings.Builder
	out.Grow(len(in))
	for i := 0; i < len(in); {
		c := in[i]
		switch {
		case c == '\\':
			if i+1 >= len(in) {
				return "", false
			}
			switch in[i+1] {
			case '"', '\\', '/':
				out.WriteByte(in[i+1])
			case 'b':
				out.WriteByte('\b')
			case 'f':
				out.WriteByte('\f')
			case 'n':
				out.WriteByte('\n')
			case 'r':
				out.WriteByte('\r')
			case 't':
				out.WriteByte('\t')
			case 'u':
				r, ok := hex4(in[i+2:])
				if !ok {
					return "", false
				}
				i += 6
				if utf16.IsSurrogate(r) {
					// Take the second half if it follows; a lone half is
					// U+FFFD and what follows is read on its own.
					if i+1 < len(in) && in[i] == '\\' && in[i+1] == 'u' {
						if r2, ok := hex4(in[i+2:]); ok {
							if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
								out.WriteRune(d)
								i += 6
								continue
							}
						}
					}
					r = utf8.RuneError
				}
				out.WriteRune(r)
				continue
			default:
				return "", false
			}
			i += 2
		case c == '"' || c < 0x20:
			return "", false
		case c < utf8.RuneSelf:
			// Copy the run of plain ASCII at once.
			j := i + 1
			for j < len(in) && in[j] >= 0x20 && in[j] < utf8.RuneSelf && in[j] != '\\' && in[j] != '"' {
				j++
			}
			out.Write(in[i:j])
			i = j
		default:
			r, size := utf8.DecodeRune(in[i:])
			if r == utf8.RuneError && size == 1 {
				out.WriteRune(utf8.RuneError)
			} else {
				out.Write(in[i : i+size])
			}
			i += size
		}
	}
	return out.String(), true
}

// hex4 reads the four hex digits at the start of b as a rune.
func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// Path is a field reference split into its keys: "log.file.path",
// "[log][file][path]" and "[log.file.path]" all give log, file, path.
type Path []string

// ParsePath splits a field reference. Logstash's bracket form names each
// key exactly ("[fields][a.b]" is key "a.b" below "fields"); a single
// bracketed name or a bare name is split on dots, as ECS names nest.
func ParsePath(s string) Path {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		inner := s[1 : len(s)-1]
		if !strings.Contains(inner, "][") {
			return splitDots(inner)
		}
		return Path(strings.Split(inner, "]["))
	}
	return splitDots(s)
}

func splitDots(s string) Path {
	if s == "" {
		return nil
	}
	return Path(strings.Split(s, "."))
}

// String returns the path in dotted form.
func (p Path) String() string { return strings.Join(p, ".") }

// Lookup returns the raw JSON value at path in the JSON object doc, and
// whether it is there. Keys that themselves contain dots are found too
// ("a.b" as one key where a path says a, b), as Elasticsearch treats them
// alike.
func Lookup(doc []byte, path Path) ([]byte, bool) {
	if len(path) == 0 {
		return nil, false
	}
	var found []byte
	ok := false
	eachMember(doc, func(rawKey, val []byte) bool {
		k := keyString(rawKey)
		if k == path[0] {
			if len(path) == 1 {
				found, ok = val, true
				return false
			}
			if v, hit := Lookup(val, path[1:]); hit {
				found, ok = v, true
				return false
			}
			return true
		}
		// A dotted key covering several path components.
		if strings.HasPrefix(k, path[0]+".") {
			n := strings.Count(k, ".") + 1
			if n <= len(path) && k == strings.Join(path[:n], ".") {
				if n == len(path) {
					found, ok = val, true
					return false
				}
				if v, hit := Lookup(val, path[n:]); hit {
					found, ok = v, true
					return false
				}
			}
		}
		return true
	})
	return found, ok
}

// Text returns a raw JSON scalar as text: a string's content, or a number's
// or boolean's JSON spelling. Objects, arrays and null give false.
func Text(v []byte) (string, bool) {
	if len(v) == 0 {
		return "", false
	}
	switch v[0] {
	case '"':
		return stringValue(v)
	case '{', '[', 'n':
		return "", false
	}
	return string(v), true
}

// Elements returns the raw elements of a raw JSON array, or nil when v is
// no array.
func Elements(v []byte) [][]byte {
	if len(v) == 0 || v[0] != '[' {
		return nil
	}
	var out [][]byte
	i := skipSpace(v, 1)
	for i < len(v) && v[i] != ']' {
		e := skipValue(v, i)
		out = append(out, v[i:e])
		i = skipSpace(v, e)
		if i < len(v) && v[i] == ',' {
			i = skipSpace(v, i+1)
		}
	}
	return out
}
