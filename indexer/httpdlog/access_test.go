package httpdlog

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// at builds a time in a fixed zone off seconds east of UTC.
func at(y int, mon time.Month, d, hh, mm, ss, nsec, off int) time.Time {
	return time.Date(y, mon, d, hh, mm, ss, nsec, time.FixedZone("", off))
}

var longURL = "/search?q=" + strings.Repeat("a%20b", 20000)

var accessCases = []struct {
	name string
	line string
	want Access
}{
	{
		name: "common from the httpd manual",
		line: `127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326`,
		want: Access{Format: Common, SourceAddress: "127.0.0.1", SourceIP: "127.0.0.1", UserName: "frank",
			Timestamp: at(2000, 10, 10, 13, 55, 36, 0, -7*3600), Method: "GET", URL: "/apache_pb.gif",
			HTTPVersion: "1.0", StatusCode: 200, BodyBytes: 2326},
	},
	{
		name: "combined from the httpd manual",
		line: `127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"`,
		want: Access{Format: Combined, SourceAddress: "127.0.0.1", SourceIP: "127.0.0.1", UserName: "frank",
			Timestamp: at(2000, 10, 10, 13, 55, 36, 0, -7*3600), Method: "GET", URL: "/apache_pb.gif",
			HTTPVersion: "1.0", StatusCode: 200, BodyBytes: 2326, Referrer: "http://www.example.com/start.html",
			UserAgent: "Mozilla/4.08 [en] (Win98; I ;Nav)"},
	},
	{
		name: "vhost_combined with dashes",
		line: `www.example.com:443 203.0.113.5 - - [21/Nov/2026:10:00:00 +0100] "POST /api/v1/items?id=7 HTTP/1.1" 201 512 "-" "curl/8.5.0"`,
		want: Access{Format: VhostCombined, SourceAddress: "203.0.113.5", SourceIP: "203.0.113.5",
			Timestamp: at(2026, 11, 21, 10, 0, 0, 0, 3600), Method: "POST", URL: "/api/v1/items?id=7",
			HTTPVersion: "1.1", StatusCode: 201, BodyBytes: 512, UserAgent: "curl/8.5.0",
			DestinationAddress: "www.example.com", DestinationDomain: "www.example.com", DestinationPort: 443},
	},
	{
		name: "vhost with IPv6 address and IPv6 client",
		line: `[2001:db8::10]:8080 2001:db8::1 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/2.0" 304 - "-" "-"`,
		want: Access{Format: VhostCombined, SourceAddress: "2001:db8::1", SourceIP: "2001:db8::1",
			Timestamp: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Method: "GET", URL: "/",
			HTTPVersion: "2.0", StatusCode: 304, DestinationAddress: "2001:db8::10",
			DestinationIP: "2001:db8::10", DestinationPort: 8080},
	},
	{
		name: "vhost on common",
		line: `10.0.0.1:80 10.0.0.2 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1`,
		want: Access{Format: VhostCommon, SourceAddress: "10.0.0.2", SourceIP: "10.0.0.2",
			Timestamp: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Method: "GET", URL: "/",
			HTTPVersion: "1.1", StatusCode: 200, BodyBytes: 1, DestinationAddress: "10.0.0.1",
			DestinationIP: "10.0.0.1", DestinationPort: 80},
	},
	{
		name: "IPv6 loopback, 404 is a failure",
		line: `::1 - - [05/Mar/2024:23:59:59 +0530] "GET /missing HTTP/1.1" 404 196 "-" "Wget/1.21"`,
		want: Access{Format: Combined, SourceAddress: "::1", SourceIP: "::1",
			Timestamp: at(2024, 3, 5, 23, 59, 59, 0, 5*3600+1800), Method: "GET", URL: "/missing",
			HTTPVersion: "1.1", StatusCode: 404, BodyBytes: 196, UserAgent: "Wget/1.21"},
	},
	{
		name: "IPv6 with zone: no zone in source.ip",
		line: `fe80::1%eth0 - - [05/Mar/2024:23:59:59 +0000] "GET / HTTP/1.1" 200 5`,
		want: Access{Format: Common, SourceAddress: "fe80::1%eth0", SourceIP: "fe80::1",
			Timestamp: time.Date(2024, 3, 5, 23, 59, 59, 0, time.UTC), Method: "GET", URL: "/",
			HTTPVersion: "1.1", StatusCode: 200, BodyBytes: 5},
	},
	{
		name: "host name client (HostnameLookups On)",
		line: `client-7.example.org - - [29/Feb/2024:12:00:00 -0000] "HEAD / HTTP/1.1" 200 -`,
		want: Access{Format: Common, SourceAddress: "client-7.example.org", SourceDomain: "client-7.example.org",
			Timestamp: time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC), Method: "HEAD", URL: "/",
			HTTPVersion: "1.1", StatusCode: 200},
	},
	{
		name: "request line - (408, nothing sent)",
		line: `192.0.2.9 - - [10/Oct/2000:13:55:36 -0700] "-" 408 - "-" "-"`,
		want: Access{Format: Combined, SourceAddress: "192.0.2.9", SourceIP: "192.0.2.9",
			Timestamp: at(2000, 10, 10, 13, 55, 36, 0, -7*3600), StatusCode: 408},
	},
	{
		name: "HTTP/0.9 request without protocol",
		line: `192.0.2.9 - - [10/Oct/2000:13:55:36 -0700] "GET /old.html" 200 100`,
		want: Access{Format: Common, SourceAddress: "192.0.2.9", SourceIP: "192.0.2.9",
			Timestamp: at(2000, 10, 10, 13, 55, 36, 0, -7*3600), Method: "GET", URL: "/old.html",
			StatusCode: 200, BodyBytes: 100},
	},
	{
		name: "TLS handshake on a plain port: garbage request",
		line: `198.51.100.7 - - [10/Oct/2000:13:55:36 -0700] "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" 400 226 "-" "-"`,
		want: Access{Format: Combined, SourceAddress: "198.51.100.7", SourceIP: "198.51.100.7",
			Timestamp: at(2000, 10, 10, 13, 55, 36, 0, -7*3600), StatusCode: 400, BodyBytes: 226},
	},
	{
		name: "escaped quotes and backslashes in request, referrer and user agent",
		line: `203.0.113.9 - - [10/Oct/2000:13:55:36 -0700] "GET /q?x=\"a\"&p=C:\\temp HTTP/1.1" 200 10 "http://e.com/\"r\"" "Mozilla \"X\" \\o/"`,
		want: Access{Format: Combined, SourceAddress: "203.0.113.9", SourceIP: "203.0.113.9",
			Timestamp: at(2000, 10, 10, 13, 55, 36, 0, -7*3600), Method: "GET", URL: `/q?x="a"&p=C:\temp`,
			HTTPVersion: "1.1", StatusCode: 200, BodyBytes: 10, Referrer: `http://e.com/"r"`,
			UserAgent: `Mozilla "X" \o/`},
	},
	{
		name: "escaped UTF-8 decodes, escaped invalid byte stays \\xhh, control escapes decode",
		line: `203.0.113.9 - - [10/Oct/2000:13:55:36 -0700] "GET /caf\xc3\xa9\xff HTTP/1.1" 200 10 "-" "Bot\xe2\x80\x99s\tagent\\x41"`,
		want: Access{Format: Combined, SourceAddress: "203.0.113.9", SourceIP: "203.0.113.9",
			Timestamp: at(2000, 10, 10, 13, 55, 36, 0, -7*3600), Method: "GET", URL: `/café\xff`,
			HTTPVersion: "1.1", StatusCode: 200, BodyBytes: 10, UserAgent: "Bot’s\tagent\\x41"},
	},
	{
		name: "raw invalid UTF-8 in the line is written as \\xhh",
		line: "203.0.113.9 - - [10/Oct/2000:13:55:36 -0700] \"GET /a HTTP/1.1\" 200 10 \"-\" \"Mozi\xe9lla\"",
		want: Access{Format: Combined, SourceAddress: "203.0.113.9", SourceIP: "203.0.113.9",
			Timestamp: at(2000, 10, 10, 13, 55, 36, 0, -7*3600), Method: "GET", URL: "/a",
			HTTPVersion: "1.1", StatusCode: 200, BodyBytes: 10, UserAgent: `Mozi\xe9lla`},
	},
	{
		name: "unescaped quote inside the request (old servers)",
		line: `203.0.113.9 - - [10/Oct/2000:13:55:36 -0700] "GET /"quoted" HTTP/1.0" 200 10`,
		want: Access{Format: Common, SourceAddress: "203.0.113.9", SourceIP: "203.0.113.9",
			Timestamp: at(2000, 10, 10, 13, 55, 36, 0, -7*3600), Method: "GET", URL: `/"quoted"`,
			HTTPVersion: "1.0", StatusCode: 200, BodyBytes: 10},
	},
	{
		name: "URL with spaces is kept whole",
		line: `203.0.113.9 - - [10/Oct/2000:13:55:36 -0700] "GET /a b c HTTP/1.1" 400 10`,
		want: Access{Format: Common, SourceAddress: "203.0.113.9", SourceIP: "203.0.113.9",
			Timestamp: at(2000, 10, 10, 13, 55, 36, 0, -7*3600), Method: "GET", URL: "/a b c",
			HTTPVersion: "1.1", StatusCode: 400, BodyBytes: 10},
	},
	{
		name: "request without target",
		line: `203.0.113.9 - - [10/Oct/2000:13:55:36 -0700] "GET HTTP/1.1" 400 10`,
		want: Access{Format: Common, SourceAddress: "203.0.113.9", SourceIP: "203.0.113.9",
			Timestamp: at(2000, 10, 10, 13, 55, 36, 0, -7*3600), Method: "GET", HTTPVersion: "1.1",
			StatusCode: 400, BodyBytes: 10},
	},
	{
		name: "very long URL",
		line: `203.0.113.9 - - [10/Oct/2000:13:55:36 -0700] "GET ` + longURL + ` HTTP/1.1" 414 250`,
		want: Access{Format: Common, SourceAddress: "203.0.113.9", SourceIP: "203.0.113.9",
			Timestamp: at(2000, 10, 10, 13, 55, 36, 0, -7*3600), Method: "GET", URL: longURL,
			HTTPVersion: "1.1", StatusCode: 414, BodyBytes: 250},
	},
	{
		name: "empty user name is logged as \"\"",
		line: `203.0.113.9 - "" [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 401 381`,
		want: Access{Format: Common, SourceAddress: "203.0.113.9", SourceIP: "203.0.113.9",
			Timestamp: at(2000, 10, 10, 13, 55, 36, 0, -7*3600), Method: "GET", URL: "/",
			HTTPVersion: "1.1", StatusCode: 401, BodyBytes: 381},
	},
	{
		name: "user name with a space and an escape",
		line: `203.0.113.9 - john \"jd\" doe [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1`,
		want: Access{Format: Common, SourceAddress: "203.0.113.9", SourceIP: "203.0.113.9",
			UserName: `john "jd" doe`, Timestamp: at(2000, 10, 10, 13, 55, 36, 0, -7*3600), Method: "GET",
			URL: "/", HTTPVersion: "1.1", StatusCode: 200, BodyBytes: 1},
	},
	{
		name: "extra fields after the user agent are ignored",
		line: `203.0.113.9 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 500 1 "-" "UA" 12345 "198.51.100.1"` + "\r\n",
		want: Access{Format: Combined, SourceAddress: "203.0.113.9", SourceIP: "203.0.113.9",
			Timestamp: at(2000, 10, 10, 13, 55, 36, 0, -7*3600), Method: "GET", URL: "/",
			HTTPVersion: "1.1", StatusCode: 500, BodyBytes: 1, UserAgent: "UA"},
	},
	{
		name: "combined line cut in the referrer keeps the common fields only",
		line: `203.0.113.9 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 1 "http://exa`,
		want: Access{Format: Common, SourceAddress: "203.0.113.9", SourceIP: "203.0.113.9",
			Timestamp: at(2000, 10, 10, 13, 55, 36, 0, -7*3600), Method: "GET", URL: "/",
			HTTPVersion: "1.1", StatusCode: 200, BodyBytes: 1},
	},
	{
		name: "extended method token",
		line: `203.0.113.9 - - [10/Oct/2000:13:55:36 -0700] "PROPFIND /dav/ HTTP/1.1" 207 900`,
		want: Access{Format: Common, SourceAddress: "203.0.113.9", SourceIP: "203.0.113.9",
			Timestamp: at(2000, 10, 10, 13, 55, 36, 0, -7*3600), Method: "PROPFIND", URL: "/dav/",
			HTTPVersion: "1.1", StatusCode: 207, BodyBytes: 900},
	},
	{
		name: "CONNECT with authority form",
		line: `203.0.113.9 - - [10/Oct/2000:13:55:36 -0700] "CONNECT example.com:443 HTTP/1.1" 405 230`,
		want: Access{Format: Common, SourceAddress: "203.0.113.9", SourceIP: "203.0.113.9",
			Timestamp: at(2000, 10, 10, 13, 55, 36, 0, -7*3600), Method: "CONNECT", URL: "example.com:443",
			HTTPVersion: "1.1", StatusCode: 405, BodyBytes: 230},
	},
}

// sameAccess compares two results: exported fields, the instant and the
// zone offset of the timestamp.
func sameAccess(t *testing.T, got, want Access) {
	t.Helper()
	if !got.Timestamp.Equal(want.Timestamp) {
		t.Errorf("Timestamp = %v, want %v", got.Timestamp, want.Timestamp)
	}
	_, gotOff := got.Timestamp.Zone()
	_, wantOff := want.Timestamp.Zone()
	if gotOff != wantOff {
		t.Errorf("Timestamp offset = %d, want %d", gotOff, wantOff)
	}
	got.Timestamp, want.Timestamp = time.Time{}, time.Time{}
	got.zone, got.zoneOff, want.zone, want.zoneOff = nil, 0, nil, 0
	if got != want {
		if len(got.URL) > 200 || len(want.URL) > 200 {
			t.Errorf("URL lengths %d, %d; equal=%v", len(got.URL), len(want.URL), got.URL == want.URL)
			got.URL, want.URL = "", ""
		}
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestParseAccess(t *testing.T) {
	var reused Access
	for _, c := range accessCases {
		t.Run(c.name, func(t *testing.T) {
			var a Access
			if err := ParseAccess(c.line, &a); err != nil {
				t.Fatalf("ParseAccess: %v", err)
			}
			sameAccess(t, a, c.want)
			// Reusing one Access across lines gives the same result.
			if err := ParseAccess(c.line, &reused); err != nil {
				t.Fatalf("ParseAccess (reused): %v", err)
			}
			sameAccess(t, reused, c.want)
			wantOutcome := "success"
			if c.want.StatusCode >= 400 {
				wantOutcome = "failure"
			}
			if got := a.Outcome(); got != wantOutcome {
				t.Errorf("Outcome = %q, want %q", got, wantOutcome)
			}
			k, err := Parse(c.line, nil, &reused, &Error{})
			if k != KindAccess || err != nil {
				t.Errorf("Parse = %v, %v; want access", k, err)
			}
		})
	}
}

var badAccessLines = []struct{ name, line string }{
	{"empty", ""},
	{"plain text", "hello world"},
	{"error log line", `[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] denied`},
	{"cut in the request", `127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTT`},
	{"cut in the status", `127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 20`},
	{"no size", `127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200`},
	{"size not a number", `127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 12a`},
	{"size too big", `127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 12345678901234567890`},
	{"status of four digits", `127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 2000 1`},
	{"status 099", `127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 099 1`},
	{"bad month", `127.0.0.1 - - [10/Okt/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1`},
	{"30 February", `127.0.0.1 - - [30/Feb/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1`},
	{"29 February of 1900", `127.0.0.1 - - [29/Feb/1900:13:55:36 -0700] "GET / HTTP/1.0" 200 1`},
	{"hour 24", `127.0.0.1 - - [10/Oct/2000:24:55:36 -0700] "GET / HTTP/1.0" 200 1`},
	{"zone without sign", `127.0.0.1 - - [10/Oct/2000:13:55:36 0700] "GET / HTTP/1.0" 200 1`},
	{"zone minutes 60", `127.0.0.1 - - [10/Oct/2000:13:55:36 -0760] "GET / HTTP/1.0" 200 1`},
	{"missing ident and user", `127.0.0.1 [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1`},
	{"missing user", `127.0.0.1 - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1`},
	{"double space in prefix", `127.0.0.1  - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1`},
	{"request not quoted", `127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] GET / HTTP/1.0 200 1`},
	{"nginx-style time", `127.0.0.1 - - [2000-10-10T13:55:36-07:00] "GET / HTTP/1.0" 200 1`},
}

func TestParseAccessRefuses(t *testing.T) {
	for _, c := range badAccessLines {
		t.Run(c.name, func(t *testing.T) {
			a := Access{Method: "stale"}
			err := ParseAccess(c.line, &a)
			if err == nil {
				t.Fatalf("ParseAccess accepted %q: %+v", c.line, a)
			}
			if !errors.Is(err, ErrNoMatch) || !strings.HasPrefix(err.Error(), "httpdlog: ") {
				t.Errorf("error %q does not match ErrNoMatch with the package prefix", err)
			}
			a.zone, a.zoneOff = nil, 0
			if a != (Access{}) {
				t.Errorf("refused line left fields: %+v", a)
			}
			if a.AppendJSONFields(nil) != nil || a.AppendEventMembers(nil) != nil || a.Fields() != nil {
				t.Errorf("empty Access emits fields")
			}
		})
	}
}

func TestAccessZoneReuse(t *testing.T) {
	var a Access
	lines := []string{
		`1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1`,
		`1.2.3.4 - - [10/Oct/2000:13:55:36 +0200] "GET / HTTP/1.0" 200 1`,
		`1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1`,
	}
	offs := []int{-7 * 3600, 2 * 3600, -7 * 3600}
	var first time.Time
	for i, l := range lines {
		if err := ParseAccess(l, &a); err != nil {
			t.Fatal(err)
		}
		if _, off := a.Timestamp.Zone(); off != offs[i] {
			t.Errorf("line %d: offset %d, want %d", i, off, offs[i])
		}
		if i == 0 {
			first = a.Timestamp
		}
	}
	// A time kept from an earlier line keeps its own offset.
	if _, off := first.Zone(); off != -7*3600 {
		t.Errorf("earlier timestamp changed offset to %d", off)
	}
	if got := first.UTC().Format(time.RFC3339); got != "2000-10-10T20:55:36Z" {
		t.Errorf("UTC = %s", got)
	}
}

func TestAccessFormatString(t *testing.T) {
	for f, want := range map[AccessFormat]string{Common: "common", Combined: "combined",
		VhostCommon: "vhost_common", VhostCombined: "vhost_combined", 0: "unknown"} {
		if f.String() != want {
			t.Errorf("%d.String() = %q, want %q", f, f.String(), want)
		}
	}
}
