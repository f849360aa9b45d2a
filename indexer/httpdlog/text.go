package httpdlog

import (
	"net/netip"
	"strings"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// field returns s as a valid UTF-8 string, with httpd's escapes undone when
// esc is true. lineValid tells that the whole line s was cut from is valid
// UTF-8 (s is then valid too, since the parsers cut only at ASCII bytes).
// When nothing needs changing, s itself is returned and nothing is allocated.
func field(s string, esc, lineValid bool) string {
	if esc && strings.IndexByte(s, '\\') >= 0 {
		return unescape(s)
	}
	if lineValid || utf8.ValidString(s) {
		return s
	}
	return repairUTF8(s)
}

// unescape undoes httpd's log escapes (\" \\ \b \n \r \t \v \xhh) in s and
// returns valid UTF-8: bytes that do not form UTF-8 are written as \xhh.
// Unknown escapes are kept as written.
func unescape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		switch d := s[i+1]; d {
		case '"', '\\':
			b.WriteByte(d)
			i++
		case 'b':
			b.WriteByte('\b')
			i++
		case 'n':
			b.WriteByte('\n')
			i++
		case 'r':
			b.WriteByte('\r')
			i++
		case 't':
			b.WriteByte('\t')
			i++
		case 'v':
			b.WriteByte('\v')
			i++
		case 'x':
			if i+3 < len(s) {
				hi, ok1 := unhex(s[i+2])
				lo, ok2 := unhex(s[i+3])
				if ok1 && ok2 {
					b.WriteByte(hi<<4 | lo)
					i += 3
					continue
				}
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	out := b.String()
	if utf8.ValidString(out) {
		return out
	}
	return repairUTF8(out)
}

// repairUTF8 returns s with every byte that is not part of a valid UTF-8
// sequence written as the four characters \xhh.
func repairUTF8(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			c := s[i]
			b.WriteString(`\x`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
			i++
			continue
		}
		b.WriteString(s[i : i+n])
		i += n
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// digits parses s, which must be 1 to max decimal digits, as a number.
func digits(s string, max int) (int64, bool) {
	if len(s) == 0 || len(s) > max {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// port parses a TCP port, 0 to 65535.
func port(s string) (int, bool) {
	n, ok := digits(s, 5)
	if !ok || n > 65535 {
		return 0, false
	}
	return int(n), true
}

// trimEOL removes one trailing "\n", "\r\n" or "\r".
func trimEOL(s string) string {
	if n := len(s); n > 0 && s[n-1] == '\n' {
		s = s[:n-1]
	}
	if n := len(s); n > 0 && s[n-1] == '\r' {
		s = s[:n-1]
	}
	return s
}

// classifyHost tells whether host is an IP address or a host name. ip is
// host without any IPv6 zone when it is an address; domain is host when it
// is a name. Both are empty for anything else.
func classifyHost(host string) (ip, domain string) {
	if isIP(host) {
		if z := strings.IndexByte(host, '%'); z >= 0 {
			return host[:z], ""
		}
		return host, ""
	}
	if isHostname(host) {
		return "", host
	}
	return "", ""
}

// isIP reports whether s is an IPv4 or IPv6 address (an IPv6 one may have a
// zone). Strings that cannot be addresses are turned down before
// netip.ParseAddr sees them, because its error allocates.
func isIP(s string) bool {
	if len(s) < 2 || len(s) > 128 {
		return false
	}
	colon, hexLetter := false, false
scan:
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ':':
			colon = true
		case c == '%' && colon:
			break scan // the zone may hold any characters
		case c == '.' || '0' <= c && c <= '9':
		case 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F':
			hexLetter = true
		default:
			return false
		}
	}
	if hexLetter && !colon {
		return false
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}

// isHostname reports whether s looks like a DNS host name: letters, digits,
// '-', '_' and '.', starting with a letter or digit, at most 253 bytes, and
// a last label that is not all digits (so "256.1.1.1" is no host name).
func isHostname(s string) bool {
	if len(s) == 0 || len(s) > 253 || !isAlnum(s[0]) {
		return false
	}
	numeric := true // the current label so far
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			numeric = true
		case '0' <= c && c <= '9':
		case isAlnum(c) || c == '-' || c == '_':
			numeric = false
		default:
			return false
		}
	}
	return !numeric
}

func isAlnum(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// isToken reports whether s is a non-empty HTTP token (RFC 9110 tchar*), the
// syntax of a request method.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isAlnum(c) {
			continue
		}
		switch c {
		case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
			continue
		}
		return false
	}
	return true
}

// month returns the month number of an English three-letter abbreviation.
func month(s string) int {
	switch s {
	case "Jan":
		return 1
	case "Feb":
		return 2
	case "Mar":
		return 3
	case "Apr":
		return 4
	case "May":
		return 5
	case "Jun":
		return 6
	case "Jul":
		return 7
	case "Aug":
		return 8
	case "Sep":
		return 9
	case "Oct":
		return 10
	case "Nov":
		return 11
	case "Dec":
		return 12
	}
	return 0
}

func isWeekday(s string) bool {
	switch s {
	case "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun":
		return true
	}
	return false
}

// validDate reports whether y-m-d hh:mm:ss is a real calendar time, so that
// time.Date never normalizes a bad date into a different, wrong one.
func validDate(y, m, d, hh, mm, ss int64) bool {
	if m < 1 || m > 12 || d < 1 || hh > 23 || mm > 59 || ss > 59 {
		return false
	}
	days := [13]int64{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m]
	if m == 2 && y%4 == 0 && (y%100 != 0 || y%400 == 0) {
		days = 29
	}
	return d <= days
}
