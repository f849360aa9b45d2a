package httpdlog

import (
	"strings"
	"time"
	"unicode/utf8"
)

// AccessFormat names the access log format a line was parsed as.
type AccessFormat uint8

// The access log formats ParseAccess recognizes.
const (
	// Common is %h %l %u %t "%r" %>s %b, with anything after it ignored.
	Common AccessFormat = iota + 1
	// Combined is Common followed by "%{Referer}i" "%{User-agent}i".
	Combined
	// VhostCommon is Common prefixed by "%v:%p ".
	VhostCommon
	// VhostCombined is Combined prefixed by "%v:%p " (httpd's vhost_combined).
	VhostCombined
)

// String returns the format's name as httpd's sample configuration spells it.
func (f AccessFormat) String() string {
	switch f {
	case Common:
		return "common"
	case Combined:
		return "combined"
	case VhostCommon:
		return "vhost_common"
	case VhostCombined:
		return "vhost_combined"
	}
	return "unknown"
}

// Access holds the fields of one access log line. The zero value is ready to
// use, and one Access can be reused for line after line (it keeps the last
// time zone it built, so a run of lines with one offset allocates none).
// String fields are valid UTF-8; an empty string means the field is absent.
// They share memory with the parsed line unless unescaping or UTF-8 repair
// made a copy, and stay valid as long as the caller keeps them, whatever
// later parses do.
type Access struct {
	// Format is the format the line was parsed as.
	Format AccessFormat

	// SourceAddress is the client host (%h): source.address.
	SourceAddress string
	// SourceIP is SourceAddress when it is an IP address, without any IPv6
	// zone: source.ip.
	SourceIP string
	// SourceDomain is SourceAddress when it is a host name: source.domain.
	SourceDomain string

	// UserName is the authenticated user (%u): user.name.
	UserName string

	// Timestamp is the request time (%t) in its logged zone offset:
	// @timestamp.
	Timestamp time.Time

	// Method is the request method: http.request.method.
	Method string
	// URL is the request target as sent: url.original.
	URL string
	// HTTPVersion is the protocol version, "1.1" for HTTP/1.1: http.version.
	HTTPVersion string

	// StatusCode is the final status (%>s), 100 to 999:
	// http.response.status_code.
	StatusCode int
	// BodyBytes is the response size (%b, "-" read as 0):
	// http.response.body.bytes.
	BodyBytes int64

	// Referrer is the Referer header: http.request.referrer.
	Referrer string
	// UserAgent is the User-Agent header: user_agent.original.
	UserAgent string

	// DestinationAddress is the virtual host (%v) of the vhost formats:
	// destination.address.
	DestinationAddress string
	// DestinationIP is DestinationAddress when it is an IP address:
	// destination.ip.
	DestinationIP string
	// DestinationDomain is DestinationAddress when it is a host name:
	// destination.domain.
	DestinationDomain string
	// DestinationPort is the server port (%p), 0 when absent:
	// destination.port.
	DestinationPort int

	zone    *time.Location // last zone built, reused while the offset repeats
	zoneOff int            // offset of zone in seconds
}

// accessTimeLen is the length of "[10/Oct/2000:13:55:36 -0700]".
const accessTimeLen = 28

var (
	errAccessTime    = newSyntaxError("access log: no [dd/Mon/yyyy:hh:mm:ss +hhmm] time after host, ident and user")
	errAccessPrefix  = newSyntaxError("access log: host, ident and user are not three space-separated words")
	errAccessRequest = newSyntaxError(`access log: no quoted request line followed by a status after the time`)
	errAccessBytes   = newSyntaxError("access log: response size is neither a number nor -")
)

// ParseAccess parses an access log line (a trailing newline is ignored) into
// a. On failure it returns an error matching ErrNoMatch and leaves a's
// exported fields zero.
func ParseAccess(line string, a *Access) error {
	zone, zoneOff := a.zone, a.zoneOff
	*a = Access{zone: zone, zoneOff: zoneOff}
	if err := a.parse(trimEOL(line)); err != nil {
		zone, zoneOff = a.zone, a.zoneOff
		*a = Access{zone: zone, zoneOff: zoneOff}
		return err
	}
	return nil
}

func (a *Access) parse(line string) error {
	valid := utf8.ValidString(line)

	// The time is the first " [" that starts a well-formed time and ends
	// with `] "`. Everything before it is host, ident and user.
	ts := -1
	for from := 0; ; {
		i := strings.Index(line[from:], " [")
		if i < 0 {
			return errAccessTime
		}
		i += from
		if end := i + 1 + accessTimeLen; end+2 <= len(line) && line[end] == ' ' && line[end+1] == '"' &&
			a.parseTime(line[i+1:end]) {
			ts = i
			break
		}
		from = i + 1
	}
	if err := a.parsePrefix(line[:ts], valid); err != nil {
		return err
	}

	// The request ends at the first unescaped quote followed by " ddd" and a
	// space or the end, so that an unescaped quote inside (logs of old
	// servers) does not cut it short.
	rest := line[ts+1+accessTimeLen+2:]
	end := closingQuote(rest, statusFollows)
	if end < 0 {
		return errAccessRequest
	}
	a.parseRequest(field(rest[:end], true, valid))
	a.StatusCode = int(rest[end+2]-'0')*100 + int(rest[end+3]-'0')*10 + int(rest[end+4]-'0')
	rest = rest[end+5:]
	if rest == "" {
		return errAccessBytes
	}
	rest = rest[1:]
	sp := strings.IndexByte(rest, ' ')
	if sp < 0 {
		sp = len(rest)
	}
	if b := rest[:sp]; b != "-" {
		n, ok := digits(b, 18)
		if !ok {
			return errAccessBytes
		}
		a.BodyBytes = n
	}
	rest = rest[sp:]

	combined := false
	if strings.HasPrefix(rest, ` "`) {
		rest = rest[2:]
		if re := closingQuote(rest, quoteFollows); re >= 0 {
			ua := rest[re+3:]
			if ue := closingQuote(ua, endFollows); ue >= 0 {
				combined = true
				a.Referrer = optional(rest[:re], valid)
				a.UserAgent = optional(ua[:ue], valid)
			}
		}
	}
	switch {
	case combined && a.DestinationAddress != "":
		a.Format = VhostCombined
	case combined:
		a.Format = Combined
	case a.DestinationAddress != "":
		a.Format = VhostCommon
	default:
		a.Format = Common
	}
	return nil
}

// parseTime parses "[10/Oct/2000:13:55:36 -0700]" into a.Timestamp.
func (a *Access) parseTime(s string) bool {
	if len(s) != accessTimeLen || s[0] != '[' || s[3] != '/' || s[7] != '/' || s[12] != ':' ||
		s[15] != ':' || s[18] != ':' || s[21] != ' ' || s[27] != ']' {
		return false
	}
	d, ok1 := digits(s[1:3], 2)
	mon := month(s[4:7])
	y, ok2 := digits(s[8:12], 4)
	hh, ok3 := digits(s[13:15], 2)
	mm, ok4 := digits(s[16:18], 2)
	ss, ok5 := digits(s[19:21], 2)
	zh, ok6 := digits(s[23:25], 2)
	zm, ok7 := digits(s[25:27], 2)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || !validDate(y, int64(mon), d, hh, mm, ss) ||
		zh > 23 || zm > 59 {
		return false
	}
	off := int(zh*3600 + zm*60)
	switch s[22] {
	case '-':
		off = -off
	case '+':
	default:
		return false
	}
	a.Timestamp = time.Date(int(y), time.Month(mon), int(d), int(hh), int(mm), int(ss), 0, a.location(off))
	return true
}

// location returns a fixed zone for off seconds east of UTC, reusing the one
// built for the previous line when the offset is the same.
func (a *Access) location(off int) *time.Location {
	if off == 0 {
		return time.UTC
	}
	if a.zone == nil || a.zoneOff != off {
		a.zone, a.zoneOff = time.FixedZone("", off), off
	}
	return a.zone
}

// parsePrefix splits "host ident user" or "vhost:port host ident user". A
// user name may contain spaces; ident is not kept.
func (a *Access) parsePrefix(p string, valid bool) error {
	sp1 := strings.IndexByte(p, ' ')
	if sp1 <= 0 {
		return errAccessPrefix
	}
	first, rest := p[:sp1], p[sp1+1:]
	sp2 := strings.IndexByte(rest, ' ')
	if sp2 <= 0 || sp2 == len(rest)-1 {
		return errAccessPrefix
	}
	host, user := first, rest[sp2+1:]
	if sp3 := strings.IndexByte(user, ' '); sp3 > 0 && sp3 < len(user)-1 {
		if vhost, vport, ok := splitVhost(first); ok {
			a.DestinationAddress = field(vhost, false, valid)
			a.DestinationIP, a.DestinationDomain = classifyHost(vhost)
			a.DestinationPort = vport
			host, user = rest[:sp2], user[sp3+1:]
		}
	}
	a.SourceAddress = field(host, false, valid)
	a.SourceIP, a.SourceDomain = classifyHost(host)
	if user != `""` {
		a.UserName = optional(user, valid)
	}
	return nil
}

// splitVhost splits "%v:%p": a host name, IPv4 address or bracketed IPv6
// address, a colon and a port.
func splitVhost(s string) (host string, p int, ok bool) {
	c := strings.LastIndexByte(s, ':')
	if c <= 0 {
		return "", 0, false
	}
	p, ok = port(s[c+1:])
	if !ok {
		return "", 0, false
	}
	host = s[:c]
	if host[0] == '[' {
		if len(host) < 3 || host[len(host)-1] != ']' {
			return "", 0, false
		}
		host = host[1 : len(host)-1]
		if ip, _ := classifyHost(host); ip == "" || !strings.Contains(host, ":") {
			return "", 0, false
		}
		return host, p, true
	}
	if ip, domain := classifyHost(host); ip == "" && domain == "" || strings.IndexByte(host, ':') >= 0 {
		return "", 0, false
	}
	return host, p, true
}

// parseRequest splits the unescaped request line r.
func (a *Access) parseRequest(r string) {
	sp := strings.IndexByte(r, ' ')
	if sp <= 0 || !isToken(r[:sp]) {
		return
	}
	a.Method, r = r[:sp], r[sp+1:]
	if v, ok := protocol(r); ok {
		a.HTTPVersion = v
		return
	}
	if ls := strings.LastIndexByte(r, ' '); ls >= 0 {
		if v, ok := protocol(r[ls+1:]); ok {
			a.HTTPVersion, r = v, r[:ls]
		}
	}
	a.URL = r
}

// protocol returns the version of "HTTP/1.1" and the like.
func protocol(s string) (string, bool) {
	if len(s) < 6 || s[:5] != "HTTP/" {
		return "", false
	}
	v := s[5:]
	if v[0] < '0' || v[0] > '9' || v[len(v)-1] == '.' {
		return "", false
	}
	for i := 1; i < len(v); i++ {
		if (v[i] < '0' || v[i] > '9') && v[i] != '.' {
			return "", false
		}
	}
	return v, true
}

// optional unescapes a quoted header or user field, "-" and "" meaning
// absent.
func optional(s string, valid bool) string {
	if s == "-" {
		return ""
	}
	return field(s, true, valid)
}

// closingQuote returns the index in s of the first double quote that is not
// escaped by a backslash and after which follows(s[i+1:]) holds, or -1. A
// quote is escaped when an odd number of backslashes runs up to it (httpd
// writes a backslash as \\), which is what a left-to-right scan of the
// escapes finds, but lets IndexByte do the scanning.
func closingQuote(s string, follows func(string) bool) int {
	for from := 0; from < len(s); {
		i := strings.IndexByte(s[from:], '"')
		if i < 0 {
			return -1
		}
		i += from
		bs := 0
		for j := i - 1; j >= 0 && s[j] == '\\'; j-- {
			bs++
		}
		if bs%2 == 0 && follows(s[i+1:]) {
			return i
		}
		from = i + 1
	}
	return -1
}

// statusFollows: " ddd" then a space or the end.
func statusFollows(s string) bool {
	return len(s) >= 4 && s[0] == ' ' && '1' <= s[1] && s[1] <= '9' && '0' <= s[2] && s[2] <= '9' &&
		'0' <= s[3] && s[3] <= '9' && (len(s) == 4 || s[4] == ' ')
}

// quoteFollows: ` "`, the start of the next quoted field.
func quoteFollows(s string) bool { return len(s) >= 2 && s[0] == ' ' && s[1] == '"' }

// endFollows: the end of the line or a space before fields of its own.
func endFollows(s string) bool { return len(s) == 0 || s[0] == ' ' }

// Outcome returns event.outcome: "failure" for a status of 400 or more,
// else "success"; "" when a holds no parsed line.
func (a *Access) Outcome() string {
	switch {
	case a.StatusCode >= 400:
		return "failure"
	case a.StatusCode > 0:
		return "success"
	}
	return ""
}

// AppendJSONFields appends to dst the top-level JSON object members this
// package owns for an access line: source, destination, user, http, url and
// user_agent, each a nested ECS object holding only the fields present. A
// comma is written first unless dst is empty or ends with '{' or ','.
// @timestamp and event.outcome are left to the caller (see
// AppendEventMembers).
func (a *Access) AppendJSONFields(dst []byte) []byte {
	if a.Format == 0 {
		return dst
	}
	dst = openObject(dst, "source")
	dst = stringMember(dst, "address", a.SourceAddress)
	if a.SourceIP != "" {
		dst = stringMember(dst, "ip", a.SourceIP)
	}
	if a.SourceDomain != "" {
		dst = stringMember(dst, "domain", a.SourceDomain)
	}
	dst = closeObject(dst)

	if a.DestinationAddress != "" {
		dst = openObject(dst, "destination")
		dst = stringMember(dst, "address", a.DestinationAddress)
		if a.DestinationIP != "" {
			dst = stringMember(dst, "ip", a.DestinationIP)
		}
		if a.DestinationDomain != "" {
			dst = stringMember(dst, "domain", a.DestinationDomain)
		}
		if a.DestinationPort != 0 {
			dst = intMember(dst, "port", int64(a.DestinationPort))
		}
		dst = closeObject(dst)
	}

	if a.UserName != "" {
		dst = openObject(dst, "user")
		dst = stringMember(dst, "name", a.UserName)
		dst = closeObject(dst)
	}

	dst = openObject(dst, "http")
	if a.Method != "" || a.Referrer != "" {
		dst = openObject(dst, "request")
		if a.Method != "" {
			dst = stringMember(dst, "method", a.Method)
		}
		if a.Referrer != "" {
			dst = stringMember(dst, "referrer", a.Referrer)
		}
		dst = closeObject(dst)
	}
	if a.HTTPVersion != "" {
		dst = stringMember(dst, "version", a.HTTPVersion)
	}
	dst = openObject(dst, "response")
	dst = intMember(dst, "status_code", int64(a.StatusCode))
	dst = openObject(dst, "body")
	dst = intMember(dst, "bytes", a.BodyBytes)
	dst = closeObject(closeObject(closeObject(dst)))

	if a.URL != "" {
		dst = openObject(dst, "url")
		dst = stringMember(dst, "original", a.URL)
		dst = closeObject(dst)
	}
	if a.UserAgent != "" {
		dst = openObject(dst, "user_agent")
		dst = stringMember(dst, "original", a.UserAgent)
		dst = closeObject(dst)
	}
	return dst
}

// AppendEventMembers appends the members of the event object this package
// fills, `"outcome":"success"` or `"outcome":"failure"`, for the caller to
// write inside its own event object (next to event.id). A comma is written
// first unless dst is empty or ends with '{' or ','.
func (a *Access) AppendEventMembers(dst []byte) []byte {
	if o := a.Outcome(); o != "" {
		dst = stringMember(dst, "outcome", o)
	}
	return dst
}

// Fields returns every field of the line as nested maps keyed by ECS names,
// the shared ones included: "@timestamp" (a time.Time) and
// "event": {"outcome"}. It returns nil when a holds no parsed line. Numbers
// are int64.
func (a *Access) Fields() map[string]any {
	if a.Format == 0 {
		return nil
	}
	source := map[string]any{"address": a.SourceAddress}
	if a.SourceIP != "" {
		source["ip"] = a.SourceIP
	}
	if a.SourceDomain != "" {
		source["domain"] = a.SourceDomain
	}
	request := map[string]any{}
	if a.Method != "" {
		request["method"] = a.Method
	}
	if a.Referrer != "" {
		request["referrer"] = a.Referrer
	}
	http := map[string]any{"response": map[string]any{
		"status_code": int64(a.StatusCode),
		"body":        map[string]any{"bytes": a.BodyBytes},
	}}
	if len(request) > 0 {
		http["request"] = request
	}
	if a.HTTPVersion != "" {
		http["version"] = a.HTTPVersion
	}
	m := map[string]any{
		"@timestamp": a.Timestamp,
		"event":      map[string]any{"outcome": a.Outcome()},
		"source":     source,
		"http":       http,
	}
	if a.DestinationAddress != "" {
		d := map[string]any{"address": a.DestinationAddress}
		if a.DestinationIP != "" {
			d["ip"] = a.DestinationIP
		}
		if a.DestinationDomain != "" {
			d["domain"] = a.DestinationDomain
		}
		if a.DestinationPort != 0 {
			d["port"] = int64(a.DestinationPort)
		}
		m["destination"] = d
	}
	if a.UserName != "" {
		m["user"] = map[string]any{"name": a.UserName}
	}
	if a.URL != "" {
		m["url"] = map[string]any{"original": a.URL}
	}
	if a.UserAgent != "" {
		m["user_agent"] = map[string]any{"original": a.UserAgent}
	}
	return m
}
