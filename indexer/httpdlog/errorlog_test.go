package httpdlog

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var plus2 = time.FixedZone("CEST", 2*3600)

func utc(y int, mon time.Month, d, hh, mm, ss, usec int) time.Time {
	return time.Date(y, mon, d, hh, mm, ss, usec*1000, time.UTC)
}

var errorCases = []struct {
	name string
	line string
	loc  *time.Location
	want Error
}{
	{
		name: "2.2 with client",
		line: `[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] client denied by server configuration: /export/home/live/ap/htdocs/test`,
		want: Error{Format: Error22, Timestamp: utc(2000, 10, 11, 14, 32, 52, 0), Level: "error",
			SourceAddress: "127.0.0.1", SourceIP: "127.0.0.1",
			Message: "client denied by server configuration: /export/home/live/ap/htdocs/test"},
	},
	{
		name: "2.2 without client, read in a given location",
		line: `[Wed Oct 11 14:32:52 2000] [notice] Apache/2.2.22 (Unix) configured -- resuming normal operations`,
		loc:  plus2,
		want: Error{Format: Error22, Timestamp: time.Date(2000, 10, 11, 14, 32, 52, 0, plus2), Level: "notice",
			Message: "Apache/2.2.22 (Unix) configured -- resuming normal operations"},
	},
	{
		name: "2.2 with IPv6 client and referer",
		line: `[Sat Jan 02 03:04:05 2010] [error] [client 2001:db8::1] File does not exist: /var/www/favicon.ico, referer: http://example.com/`,
		want: Error{Format: Error22, Timestamp: utc(2010, 1, 2, 3, 4, 5, 0), Level: "error",
			SourceAddress: "2001:db8::1", SourceIP: "2001:db8::1", Referrer: "http://example.com/",
			Message: "File does not exist: /var/www/favicon.ico, referer: http://example.com/"},
	},
	{
		name: "2.4 from the httpd manual",
		line: `[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187:64033] AH00128: File does not exist: /usr/local/apache2/htdocs/favicon.ico`,
		want: Error{Format: Error24, Timestamp: utc(2011, 9, 9, 10, 42, 29, 902022), Level: "error",
			Module: "core", PID: 35708, ThreadID: 4328636416, SourceAddress: "72.15.99.187",
			SourceIP: "72.15.99.187", SourcePort: 64033, Code: "AH00128",
			Message: "AH00128: File does not exist: /usr/local/apache2/htdocs/favicon.ico"},
	},
	{
		name: "2.4 prefork: pid without tid",
		line: `[Sun Mar 06 08:15:31.222222 2016] [php7:error] [pid 1234] [client 10.0.0.1:5555] PHP Warning:  Division by zero in /var/www/index.php on line 3`,
		want: Error{Format: Error24, Timestamp: utc(2016, 3, 6, 8, 15, 31, 222222), Level: "error",
			Module: "php7", PID: 1234, SourceAddress: "10.0.0.1", SourceIP: "10.0.0.1", SourcePort: 5555,
			Message: "PHP Warning:  Division by zero in /var/www/index.php on line 3"},
	},
	{
		name: "2.4 without client",
		line: `[Tue Nov 21 10:00:00.000001 2026] [mpm_event:notice] [pid 1:tid 140245678] AH00489: Apache/2.4.58 (Unix) configured -- resuming normal operations`,
		want: Error{Format: Error24, Timestamp: utc(2026, 11, 21, 10, 0, 0, 1), Level: "notice",
			Module: "mpm_event", PID: 1, ThreadID: 140245678, Code: "AH00489",
			Message: "AH00489: Apache/2.4.58 (Unix) configured -- resuming normal operations"},
	},
	{
		name: "2.4 IPv6 client as httpd writes it",
		line: `[Tue Nov 21 10:00:00.500000 2026] [authz_core:error] [pid 9:tid 10] [client 2001:db8::1:1234] AH01630: client denied by server configuration: /srv/www/private`,
		want: Error{Format: Error24, Timestamp: utc(2026, 11, 21, 10, 0, 0, 500000), Level: "error",
			Module: "authz_core", PID: 9, ThreadID: 10, SourceAddress: "2001:db8::1", SourceIP: "2001:db8::1",
			SourcePort: 1234, Code: "AH01630",
			Message: "AH01630: client denied by server configuration: /srv/www/private"},
	},
	{
		name: "2.4 IPv6 client in brackets",
		line: `[Tue Nov 21 10:00:00.500000 2026] [ssl:info] [pid 9:tid 10] [client [2001:db8::1]:1234] AH01964: Connection to child 3 established (server www.example.com:443)`,
		want: Error{Format: Error24, Timestamp: utc(2026, 11, 21, 10, 0, 0, 500000), Level: "info",
			Module: "ssl", PID: 9, ThreadID: 10, SourceAddress: "2001:db8::1", SourceIP: "2001:db8::1",
			SourcePort: 1234, Code: "AH01964",
			Message: "AH01964: Connection to child 3 established (server www.example.com:443)"},
	},
	{
		name: "2.4 IPv6 loopback client",
		line: `[Tue Nov 21 10:00:00.500000 2026] [core:info] [pid 9:tid 10] [client ::1:50000] AH00566: request failed: malformed request line`,
		want: Error{Format: Error24, Timestamp: utc(2026, 11, 21, 10, 0, 0, 500000), Level: "info",
			Module: "core", PID: 9, ThreadID: 10, SourceAddress: "::1", SourceIP: "::1", SourcePort: 50000,
			Code: "AH00566", Message: "AH00566: request failed: malformed request line"},
	},
	{
		name: "2.4 remote instead of client, port 0 is absent",
		line: `[Tue Nov 21 10:00:00.500000 2026] [proxy_http:error] [pid 9:tid 10] [remote 10.1.2.3:0] AH01102: error reading status line from remote server 10.1.2.3:8080`,
		want: Error{Format: Error24, Timestamp: utc(2026, 11, 21, 10, 0, 0, 500000), Level: "error",
			Module: "proxy_http", PID: 9, ThreadID: 10, SourceAddress: "10.1.2.3", SourceIP: "10.1.2.3",
			Code: "AH01102", Message: "AH01102: error reading status line from remote server 10.1.2.3:8080"},
	},
	{
		name: "2.4 status prefix before the client",
		line: `[Tue Nov 21 10:00:00.500000 2026] [core:error] [pid 9:tid 10] (13)Permission denied: [client 192.0.2.1:40000] AH00035: access to /index.html denied (filesystem path '/srv/www/index.html') because search permissions are missing on a component of the path`,
		want: Error{Format: Error24, Timestamp: utc(2026, 11, 21, 10, 0, 0, 500000), Level: "error",
			Module: "core", PID: 9, ThreadID: 10, SourceAddress: "192.0.2.1", SourceIP: "192.0.2.1",
			SourcePort: 40000, Code: "AH00035",
			Message: "(13)Permission denied: AH00035: access to /index.html denied (filesystem path '/srv/www/index.html') because search permissions are missing on a component of the path"},
	},
	{
		name: "2.4 status prefix without client",
		line: `[Tue Nov 21 10:00:00.500000 2026] [core:emerg] [pid 9] (28)No space left on device: AH00023: Couldn't create the proxy mutex`,
		want: Error{Format: Error24, Timestamp: utc(2026, 11, 21, 10, 0, 0, 500000), Level: "emerg",
			Module: "core", PID: 9, Code: "AH00023",
			Message: "(28)No space left on device: AH00023: Couldn't create the proxy mutex"},
	},
	{
		name: "2.4 trace level with source file, referer",
		line: `[Tue Nov 21 10:00:00.123456 2026] [http2:trace3] [pid 7:tid 8] h2_session.c(1234): [client 1.2.3.4:443] h2_stream(7-1): closed, referer: https://example.com/a?b=c`,
		want: Error{Format: Error24, Timestamp: utc(2026, 11, 21, 10, 0, 0, 123456), Level: "trace3",
			Module: "http2", PID: 7, ThreadID: 8, SourceAddress: "1.2.3.4", SourceIP: "1.2.3.4", SourcePort: 443,
			OriginFile: "h2_session.c", OriginLine: 1234, Referrer: "https://example.com/a?b=c",
			Message: "h2_stream(7-1): closed, referer: https://example.com/a?b=c"},
	},
	{
		name: "2.4 debug with source file and no client",
		line: `[Tue Nov 21 10:00:00.123456 2026] [ssl:debug] [pid 7:tid 8] ssl_engine_init.c(270): AH01886: SSL FIPS mode disabled`,
		want: Error{Format: Error24, Timestamp: utc(2026, 11, 21, 10, 0, 0, 123456), Level: "debug",
			Module: "ssl", PID: 7, ThreadID: 8, OriginFile: "ssl_engine_init.c", OriginLine: 270,
			Code: "AH01886", Message: "AH01886: SSL FIPS mode disabled"},
	},
	{
		name: "2.4 all trace levels: trace8",
		line: `[Tue Nov 21 10:00:00.123456 2026] [core:trace8] [pid 7:tid 8] core_filters.c(650): [client 1.2.3.4:5] core_output_filter_nonblocking: sending 10 bytes`,
		want: Error{Format: Error24, Timestamp: utc(2026, 11, 21, 10, 0, 0, 123456), Level: "trace8",
			Module: "core", PID: 7, ThreadID: 8, SourceAddress: "1.2.3.4", SourceIP: "1.2.3.4", SourcePort: 5,
			OriginFile: "core_filters.c", OriginLine: 650,
			Message: "core_output_filter_nonblocking: sending 10 bytes"},
	},
	{
		name: "2.4 empty module (php5's mod_php)",
		line: `[Mon Feb 01 09:00:00.000000 2016] [:error] [pid 100] [client 10.0.0.5:1000] PHP Notice:  Undefined index: q in /var/www/a.php on line 2, referer: http://x.example/`,
		want: Error{Format: Error24, Timestamp: utc(2016, 2, 1, 9, 0, 0, 0), Level: "error",
			PID: 100, SourceAddress: "10.0.0.5", SourceIP: "10.0.0.5", SourcePort: 1000, Referrer: "http://x.example/",
			Message: "PHP Notice:  Undefined index: q in /var/www/a.php on line 2, referer: http://x.example/"},
	},
	{
		name: "escapes in the message are undone",
		line: `[Mon Feb 01 09:00:00.000000 2016] [cgi:error] [pid 100] [client 10.0.0.5:1000] AH01215: C:\\www\\a.pl line 1\tcaf\xc3\xa9 \xff "q"`,
		want: Error{Format: Error24, Timestamp: utc(2016, 2, 1, 9, 0, 0, 0), Level: "error", Module: "cgi",
			PID: 100, SourceAddress: "10.0.0.5", SourceIP: "10.0.0.5", SourcePort: 1000, Code: "AH01215",
			Message: "AH01215: C:\\www\\a.pl line 1\tcafé \\xff \"q\""},
	},
	{
		name: "space-padded day, time without fraction",
		line: `[Thu Oct  1 01:02:03 2015] [warn] child process 123 still did not exit, sending a SIGTERM`,
		want: Error{Format: Error22, Timestamp: utc(2015, 10, 1, 1, 2, 3, 0), Level: "warn",
			Message: "child process 123 still did not exit, sending a SIGTERM"},
	},
	{
		name: "malformed client bracket stays in the message",
		line: `[Thu Oct 01 01:02:03 2015] [error] [client not-an-ip] odd`,
		want: Error{Format: Error22, Timestamp: utc(2015, 10, 1, 1, 2, 3, 0), Level: "error",
			Message: "[client not-an-ip] odd"},
	},
	{
		name: "thread id too large for a long is left out",
		line: `[Thu Oct 01 01:02:03.000000 2015] [core:crit] [pid 5:tid 18446744073709551615] AH00000: x` + "\n",
		want: Error{Format: Error24, Timestamp: utc(2015, 10, 1, 1, 2, 3, 0), Level: "crit", Module: "core",
			PID: 5, Code: "AH00000", Message: "AH00000: x"},
	},
	{
		name: "no message",
		line: `[Thu Oct 01 01:02:03.000000 2015] [core:alert] [pid 5]`,
		want: Error{Format: Error24, Timestamp: utc(2015, 10, 1, 1, 2, 3, 0), Level: "alert", Module: "core", PID: 5},
	},
}

func sameError(t *testing.T, got, want Error) {
	t.Helper()
	if !got.Timestamp.Equal(want.Timestamp) || got.Timestamp.Location() != want.Timestamp.Location() {
		t.Errorf("Timestamp = %v, want %v", got.Timestamp, want.Timestamp)
	}
	got.Timestamp, want.Timestamp = time.Time{}, time.Time{}
	if got != want {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestParseError(t *testing.T) {
	var reused Error
	for _, c := range errorCases {
		t.Run(c.name, func(t *testing.T) {
			var e Error
			if err := ParseError(c.line, c.loc, &e); err != nil {
				t.Fatalf("ParseError: %v", err)
			}
			sameError(t, e, c.want)
			if err := ParseError(c.line, c.loc, &reused); err != nil {
				t.Fatalf("ParseError (reused): %v", err)
			}
			sameError(t, reused, c.want)
			k, err := Parse(c.line, c.loc, &Access{}, &reused)
			if k != KindError || err != nil {
				t.Errorf("Parse = %v, %v; want error", k, err)
			}
			sameError(t, reused, c.want)
		})
	}
}

var badErrorLines = []struct{ name, line string }{
	{"empty", ""},
	{"access line", `127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1`},
	{"startup message without prefix", `AH00558: httpd: Could not reliably determine the server's fully qualified domain name`},
	{"PHP stderr", `PHP Fatal error:  Uncaught Error in /var/www/x.php:3`},
	{"bad weekday", `[Wod Oct 11 14:32:52 2000] [error] x`},
	{"bad month", `[Wed Okt 11 14:32:52 2000] [error] x`},
	{"31 September", `[Wed Sep 31 14:32:52 2000] [error] x`},
	{"second 60", `[Wed Oct 11 14:32:60 2000] [error] x`},
	{"fraction too long", `[Wed Oct 11 14:32:52.1234567890 2000] [error] x`},
	{"empty fraction", `[Wed Oct 11 14:32:52. 2000] [error] x`},
	{"two-digit year", `[Wed Oct 11 14:32:52 00] [error] x`},
	{"unclosed time", `[Wed Oct 11 14:32:52 2000 [error] x`},
	{"unknown level", `[Wed Oct 11 14:32:52 2000] [fatal] x`},
	{"unknown 2.4 level", `[Wed Oct 11 14:32:52.000000 2000] [core:trace9] x`},
	{"module with a space", `[Wed Oct 11 14:32:52.000000 2000] [co re:error] x`},
	{"no level", `[Wed Oct 11 14:32:52 2000] message only`},
	{"cut in the level", `[Wed Oct 11 14:32:52 2000] [err`},
	{"pid not a number", `[Wed Oct 11 14:32:52.000000 2000] [core:error] [pid abc] x`},
	{"tid not a number", `[Wed Oct 11 14:32:52.000000 2000] [core:error] [pid 1:tid x] x`},
	{"pid bracket cut", `[Wed Oct 11 14:32:52.000000 2000] [core:error] [pid 1`},
	{"no space after the level", `[Wed Oct 11 14:32:52 2000] [error]x`},
}

func TestParseErrorRefuses(t *testing.T) {
	for _, c := range badErrorLines {
		t.Run(c.name, func(t *testing.T) {
			e := Error{Message: "stale"}
			err := ParseError(c.line, nil, &e)
			if err == nil {
				t.Fatalf("ParseError accepted %q: %+v", c.line, e)
			}
			if !errors.Is(err, ErrNoMatch) || !strings.HasPrefix(err.Error(), "httpdlog: ") {
				t.Errorf("error %q does not match ErrNoMatch with the package prefix", err)
			}
			if e != (Error{}) {
				t.Errorf("refused line left fields: %+v", e)
			}
			if e.AppendJSONFields(nil) != nil || e.AppendLogMembers(nil) != nil || e.Fields() != nil {
				t.Errorf("empty Error emits fields")
			}
		})
	}
}

func TestParseDispatch(t *testing.T) {
	var a Access
	var e Error
	for _, c := range badAccessLines {
		if strings.HasPrefix(c.line, "[Wed Oct 11") {
			continue // a valid error line
		}
		if k, err := Parse(c.line, nil, &a, &e); k != KindNone || !errors.Is(err, ErrNoMatch) {
			t.Errorf("Parse(%q) = %v, %v; want none", c.line, k, err)
		}
	}
	for _, c := range badErrorLines {
		if strings.HasPrefix(c.line, "127.0.0.1") {
			continue // a valid access line
		}
		if k, err := Parse(c.line, nil, &a, &e); k != KindNone || !errors.Is(err, ErrNoMatch) {
			t.Errorf("Parse(%q) = %v, %v; want none", c.line, k, err)
		}
	}
	for k, want := range map[Kind]string{KindNone: "none", KindAccess: "access", KindError: "error"} {
		if k.String() != want {
			t.Errorf("Kind(%d).String() = %q", k, k.String())
		}
	}
	for f, want := range map[ErrorFormat]string{Error22: "httpd-2.2", Error24: "httpd-2.4", 0: "unknown"} {
		if f.String() != want {
			t.Errorf("ErrorFormat(%d).String() = %q", f, f.String())
		}
	}
}
