package httpdlog

import (
	"strings"
	"time"
	"unicode/utf8"
)

// ErrorFormat names the error log format a line was parsed as.
type ErrorFormat uint8

// The error log formats ParseError recognizes.
const (
	// Error22 is httpd 2.2's "[time] [level] [client addr] message".
	Error22 ErrorFormat = iota + 1
	// Error24 is httpd 2.4's default ErrorLogFormat,
	// "[time.usec] [module:level] [pid P:tid T] [client addr:port] message".
	Error24
)

// String returns "httpd-2.2" or "httpd-2.4".
func (f ErrorFormat) String() string {
	switch f {
	case Error22:
		return "httpd-2.2"
	case Error24:
		return "httpd-2.4"
	}
	return "unknown"
}

// Error holds the fields of one error log line. The zero value is ready to
// use and one Error can be reused for line after line. String fields are
// valid UTF-8; an empty string or a zero number means the field is absent.
// They share memory with the parsed line unless unescaping, UTF-8 repair or
// taking out the client bracket made a copy, and stay valid as long as the
// caller keeps them.
type Error struct {
	// Format is the format the line was parsed as.
	Format ErrorFormat

	// Timestamp is the line's time read in the location given to
	// ParseError, microseconds kept: @timestamp.
	Timestamp time.Time
	// Level is the severity as httpd writes it (emerg, alert, crit, error,
	// warn, notice, info, debug, trace1 ... trace8): log.level.
	Level string
	// Module is the module name of the 2.4 format ("core", "ssl"), empty
	// when the line names none: apache.error.module.
	Module string

	// PID is the process id: process.pid.
	PID int64
	// ThreadID is the thread id: process.thread.id.
	ThreadID int64

	// SourceAddress is the address of "[client ...]" or "[remote ...]":
	// source.address.
	SourceAddress string
	// SourceIP is SourceAddress without any IPv6 zone: source.ip.
	SourceIP string
	// SourcePort is the client port: source.port.
	SourcePort int

	// OriginFile and OriginLine are the source file and line httpd names at
	// debug and trace levels ("mod_authz_core.c(820): "):
	// log.origin.file.name and log.origin.file.line.
	OriginFile string
	OriginLine int

	// Code is the AHnnnnn message code: error.code.
	Code string
	// Message is the text after the time, level, pid and file prefixes,
	// with the client bracket taken out and escapes undone: message.
	Message string
	// Referrer is the value of the ", referer: ..." httpd appends to
	// messages about a request: http.request.referrer.
	Referrer string
}

var (
	errErrorTime   = newSyntaxError("error log: line does not start with [Www Mmm dd hh:mm:ss[.usec] yyyy]")
	errErrorLevel  = newSyntaxError("error log: no [level] or [module:level] after the time")
	errErrorPID    = newSyntaxError("error log: malformed [pid N:tid N]")
	errErrorSpaces = newSyntaxError("error log: prefixes are not followed by a space")
)

// ParseError parses an error log line (a trailing newline is ignored) into
// e, reading its time in loc (nil means UTC). On failure it returns an error
// matching ErrNoMatch and leaves e zero.
func ParseError(line string, loc *time.Location, e *Error) error {
	*e = Error{}
	if loc == nil {
		loc = time.UTC
	}
	if err := e.parse(trimEOL(line), loc); err != nil {
		*e = Error{}
		return err
	}
	return nil
}

func (e *Error) parse(line string, loc *time.Location) error {
	valid := utf8.ValidString(line)

	// [time]
	if len(line) == 0 || line[0] != '[' {
		return errErrorTime
	}
	end := strings.IndexByte(line, ']')
	if end < 0 || !e.parseTime(line[1:end], loc) {
		return errErrorTime
	}
	rest := line[end+1:]

	// [level] or [module:level]
	if !strings.HasPrefix(rest, " [") {
		return errErrorLevel
	}
	end = strings.IndexByte(rest, ']')
	if end < 0 {
		return errErrorLevel
	}
	lv := rest[2:end]
	rest = rest[end+1:]
	e.Format = Error22
	if c := strings.LastIndexByte(lv, ':'); c >= 0 {
		e.Format = Error24
		e.Module, lv = lv[:c], lv[c+1:]
		if !isModule(e.Module) {
			return errErrorLevel
		}
	}
	if !isLevel(lv) {
		return errErrorLevel
	}
	e.Level = lv

	// [pid P] or [pid P:tid T]
	if strings.HasPrefix(rest, " [pid") {
		end = strings.IndexByte(rest, ']')
		if end < 6 || rest[5] != ' ' || !e.parsePID(rest[6:end]) {
			return errErrorPID
		}
		rest = rest[end+1:]
	}
	if rest != "" {
		if rest[0] != ' ' {
			return errErrorSpaces
		}
		rest = rest[1:]
	}

	// file.c(123): at debug and trace levels.
	if lv == "debug" || strings.HasPrefix(lv, "trace") {
		if name, ln, n := originPrefix(rest); n > 0 {
			e.OriginFile, e.OriginLine = name, ln
			rest = rest[n:]
		}
	}

	// (13)Permission denied: before the client.
	status := statusPrefix(rest)
	text := rest[status:]
	msg := rest
	if n := e.parseClient(text); n > 0 {
		text = text[n:]
		msg = text
		if status > 0 {
			msg = rest[:status] + text
		}
		if c := strings.LastIndex(text, ", referer: "); c >= 0 {
			if r := text[c+len(", referer: "):]; r != "" && strings.IndexByte(r, ' ') < 0 {
				e.Referrer = field(r, true, valid)
			}
		}
	}
	if len(text) >= 7 && text[0] == 'A' && text[1] == 'H' && (len(text) == 7 || text[7] == ':') {
		if _, ok := digits(text[2:7], 5); ok {
			e.Code = text[:7]
		}
	}
	e.Message = field(msg, true, valid)
	return nil
}

// parseTime parses "Wed Oct 11 14:32:52 2000" or "Fri Sep 09 10:42:29.902022
// 2011" (the day may also be space-padded or unpadded).
func (e *Error) parseTime(s string, loc *time.Location) bool {
	if len(s) < 20 || !isWeekday(s[:3]) || s[3] != ' ' || s[7] != ' ' {
		return false
	}
	mon := month(s[4:7])
	i := 8
	if s[i] == ' ' {
		i++
	}
	j := i
	for j < len(s) && j < i+2 && '0' <= s[j] && s[j] <= '9' {
		j++
	}
	d, ok := digits(s[i:j], 2)
	if !ok || j+9 > len(s) || s[j] != ' ' || s[j+3] != ':' || s[j+6] != ':' {
		return false
	}
	hh, ok1 := digits(s[j+1:j+3], 2)
	mm, ok2 := digits(s[j+4:j+6], 2)
	ss, ok3 := digits(s[j+7:j+9], 2)
	if !(ok1 && ok2 && ok3) {
		return false
	}
	k := j + 9
	var nsec int64
	if k < len(s) && s[k] == '.' {
		f := k + 1
		for k = f; k < len(s) && '0' <= s[k] && s[k] <= '9'; k++ {
		}
		if k == f || k-f > 9 {
			return false
		}
		nsec, _ = digits(s[f:k], 9)
		for n := k - f; n < 9; n++ {
			nsec *= 10
		}
	}
	if k+5 != len(s) || s[k] != ' ' {
		return false
	}
	y, ok := digits(s[k+1:], 4)
	if !ok || !validDate(y, int64(mon), d, hh, mm, ss) {
		return false
	}
	e.Timestamp = time.Date(int(y), time.Month(mon), int(d), int(hh), int(mm), int(ss), int(nsec), loc)
	return true
}

// parsePID parses "35708" or "35708:tid 4328636416". A thread id too large
// for process.thread.id (a signed 64-bit number) is left out.
func (e *Error) parsePID(s string) bool {
	pid, tid, hasTID := s, "", false
	if c := strings.IndexByte(s, ':'); c >= 0 {
		if !strings.HasPrefix(s[c:], ":tid ") {
			return false
		}
		pid, tid, hasTID = s[:c], s[c+5:], true
	}
	n, ok := digits(pid, 18)
	if !ok {
		return false
	}
	e.PID = n
	if hasTID {
		if tid == "" || strings.TrimLeft(tid, "0123456789") != "" {
			return false
		}
		if n, ok = digits(tid, 18); ok {
			e.ThreadID = n
		}
	}
	return true
}

// parseClient reads "[client addr] " or "[remote addr] " at the start of s
// and returns its length including the space after it, or 0 (and sets
// nothing) when s does not start with a well-formed one.
func (e *Error) parseClient(s string) int {
	if len(s) < 9 || s[0] != '[' || (s[1:8] != "client " && s[1:8] != "remote ") {
		return 0
	}
	inner := s[8:]
	end := strings.IndexByte(inner, ']')
	if end < 0 {
		return 0
	}
	if inner[0] == '[' {
		// [client [2001:db8::1]:1234]
		k := strings.IndexByte(inner[end+1:], ']')
		if k < 0 {
			return 0
		}
		end += 1 + k
	}
	n := 8 + end + 1
	if n < len(s) {
		if s[n] != ' ' {
			return 0
		}
		n++
	}
	addr, p, ok := splitClient(inner[:end], e.Format == Error24)
	if !ok {
		return 0
	}
	e.SourceAddress, e.SourcePort = addr, p
	e.SourceIP, _ = classifyHost(addr)
	return n
}

// splitClient splits the address httpd logs in a client bracket: an IP
// address, "IPv4:port", "[IPv6]:port" or, in the 2.4 format (withPort),
// "IPv6:port" with the port after the last colon. Port 0, which httpd writes
// when it knows none, is returned as 0 too, meaning absent.
func splitClient(s string, withPort bool) (addr string, p int, ok bool) {
	if s == "" {
		return "", 0, false
	}
	if s[0] == '[' {
		k := strings.IndexByte(s, ']')
		if k < 0 {
			return "", 0, false
		}
		addr, tail := s[1:k], s[k+1:]
		if tail != "" {
			if tail[0] != ':' {
				return "", 0, false
			}
			if p, ok = port(tail[1:]); !ok {
				return "", 0, false
			}
		}
		return addr, p, strings.IndexByte(addr, ':') >= 0 && isIP(addr)
	}
	switch strings.Count(s, ":") {
	case 0:
		return s, 0, isIP(s)
	case 1:
		c := strings.IndexByte(s, ':')
		p, ok = port(s[c+1:])
		return s[:c], p, ok && isIP(s[:c])
	}
	if withPort {
		c := strings.LastIndexByte(s, ':')
		if p, ok = port(s[c+1:]); ok && isIP(s[:c]) {
			return s[:c], p, true
		}
	}
	return s, 0, isIP(s)
}

// originPrefix reads "name.c(123): " at the start of s.
func originPrefix(s string) (name string, line, n int) {
	i := 0
	for i < len(s) && (isAlnum(s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-' || s[i] == '/') {
		i++
	}
	if i == 0 || i >= len(s) || s[i] != '(' {
		return "", 0, 0
	}
	j := i + 1
	for j < len(s) && '0' <= s[j] && s[j] <= '9' {
		j++
	}
	ln, ok := digits(s[i+1:j], 9)
	if !ok || !strings.HasPrefix(s[j:], "): ") {
		return "", 0, 0
	}
	return s[:i], int(ln), j + 3
}

// statusPrefix returns the length of an APR status prefix such as
// "(13)Permission denied: " at the start of s, or 0.
func statusPrefix(s string) int {
	if len(s) < 5 || s[0] != '(' {
		return 0
	}
	cp := strings.IndexByte(s, ')')
	if cp < 2 {
		return 0
	}
	if _, ok := digits(s[1:cp], 9); !ok {
		return 0
	}
	colon := strings.IndexByte(s[cp:], ':')
	if colon < 0 || cp+colon+1 >= len(s) || s[cp+colon+1] != ' ' {
		return 0
	}
	return cp + colon + 2
}

func isLevel(s string) bool {
	switch s {
	case "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
		"trace1", "trace2", "trace3", "trace4", "trace5", "trace6", "trace7", "trace8":
		return true
	}
	return false
}

// isModule reports whether s can be a module name as httpd logs it (the
// module's name without "_module"; empty for modules that have none).
func isModule(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '_' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// AppendJSONFields appends to dst the top-level JSON object members this
// package owns for an error line: source, process, error, apache and http,
// each a nested ECS object holding only the fields present. A comma is
// written first unless dst is empty or ends with '{' or ','. @timestamp,
// message and the log members are left to the caller (see
// AppendLogMembers).
func (e *Error) AppendJSONFields(dst []byte) []byte {
	if e.Format == 0 {
		return dst
	}
	if e.SourceAddress != "" {
		dst = openObject(dst, "source")
		dst = stringMember(dst, "address", e.SourceAddress)
		if e.SourceIP != "" {
			dst = stringMember(dst, "ip", e.SourceIP)
		}
		if e.SourcePort != 0 {
			dst = intMember(dst, "port", int64(e.SourcePort))
		}
		dst = closeObject(dst)
	}
	if e.PID != 0 || e.ThreadID != 0 {
		dst = openObject(dst, "process")
		if e.PID != 0 {
			dst = intMember(dst, "pid", e.PID)
		}
		if e.ThreadID != 0 {
			dst = openObject(dst, "thread")
			dst = intMember(dst, "id", e.ThreadID)
			dst = closeObject(dst)
		}
		dst = closeObject(dst)
	}
	if e.Code != "" {
		dst = openObject(dst, "error")
		dst = stringMember(dst, "code", e.Code)
		dst = closeObject(dst)
	}
	if e.Module != "" {
		dst = openObject(dst, "apache")
		dst = openObject(dst, "error")
		dst = stringMember(dst, "module", e.Module)
		dst = closeObject(closeObject(dst))
	}
	if e.Referrer != "" {
		dst = openObject(dst, "http")
		dst = openObject(dst, "request")
		dst = stringMember(dst, "referrer", e.Referrer)
		dst = closeObject(closeObject(dst))
	}
	return dst
}

// AppendLogMembers appends the members of the log object this package
// fills, "level" and, when present, "origin":{"file":{"name","line"}}, for
// the caller to write inside its own log object (next to log.file.path and
// log.offset). A comma is written first unless dst is empty or ends with '{'
// or ','.
func (e *Error) AppendLogMembers(dst []byte) []byte {
	if e.Level == "" {
		return dst
	}
	dst = stringMember(dst, "level", e.Level)
	if e.OriginFile != "" {
		dst = openObject(dst, "origin")
		dst = openObject(dst, "file")
		dst = stringMember(dst, "name", e.OriginFile)
		dst = intMember(dst, "line", int64(e.OriginLine))
		dst = closeObject(closeObject(dst))
	}
	return dst
}

// Fields returns every field of the line as nested maps keyed by ECS names,
// the shared ones included: "@timestamp" (a time.Time), "message" and
// "log": {"level", "origin"}. It returns nil when e holds no parsed line.
// Numbers are int64.
func (e *Error) Fields() map[string]any {
	if e.Format == 0 {
		return nil
	}
	log := map[string]any{"level": e.Level}
	if e.OriginFile != "" {
		log["origin"] = map[string]any{"file": map[string]any{"name": e.OriginFile, "line": int64(e.OriginLine)}}
	}
	m := map[string]any{
		"@timestamp": e.Timestamp,
		"message":    e.Message,
		"log":        log,
	}
	if e.SourceAddress != "" {
		s := map[string]any{"address": e.SourceAddress}
		if e.SourceIP != "" {
			s["ip"] = e.SourceIP
		}
		if e.SourcePort != 0 {
			s["port"] = int64(e.SourcePort)
		}
		m["source"] = s
	}
	if e.PID != 0 || e.ThreadID != 0 {
		p := map[string]any{}
		if e.PID != 0 {
			p["pid"] = e.PID
		}
		if e.ThreadID != 0 {
			p["thread"] = map[string]any{"id": e.ThreadID}
		}
		m["process"] = p
	}
	if e.Code != "" {
		m["error"] = map[string]any{"code": e.Code}
	}
	if e.Module != "" {
		m["apache"] = map[string]any{"error": map[string]any{"module": e.Module}}
	}
	if e.Referrer != "" {
		m["http"] = map[string]any{"request": map[string]any{"referrer": e.Referrer}}
	}
	return m
}
