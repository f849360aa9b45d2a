package httpdlog

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:                 `plain`,
		`a\"b`:                  `a"b`,
		`a\\b`:                  `a\b`,
		`\\\"`:                  `\"`,
		`\b\n\r\t\v`:            "\b\n\r\t\v",
		`\x41\x4a\x4A`:          `AJJ`,
		`\xc3\xa9`:              `é`,
		`\xe2\x80\x99`:          `’`,
		`\xe2\x80`:              `\xe2\x80`, // cut sequence: not UTF-8, kept escaped
		`\xff\xfe`:              `\xff\xfe`,
		`\xc3\xa9\xff`:          `é\xff`,
		`\x00`:                  "\x00",
		`\q \x4 \xzz \`:         `\q \x4 \xzz \`,
		`trailing\`:             `trailing\`,
		`\\x41`:                 `\x41`,
		"raw\xff" + `\x41`:      `raw\xffA`,
		"raw é and \\\"q\\\"":   `raw é and "q"`,
		`\xf0\x9f\x98\x80 ok`:   "😀 ok",
		`\xed\xa0\x80surrogate`: `\xed\xa0\x80surrogate`,
	} {
		got := unescape(in)
		if got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
		if !utf8.ValidString(got) {
			t.Errorf("unescape(%q) is not valid UTF-8", in)
		}
	}
}

func TestField(t *testing.T) {
	if got := field(`a\"b`, false, true); got != `a\"b` {
		t.Errorf("no unescaping asked, got %q", got)
	}
	if got := field("a\xffb", false, false); got != `a\xffb` {
		t.Errorf("raw invalid byte: %q", got)
	}
	s := "shared"
	if got := field(s, true, true); got != s {
		t.Errorf("field changed %q", got)
	}
	if n := testing.AllocsPerRun(100, func() { field(s, true, true) }); n != 0 {
		t.Errorf("field without escapes allocates %v times", n)
	}
}

func TestClassifyHost(t *testing.T) {
	for _, c := range []struct{ in, ip, domain string }{
		{"192.0.2.1", "192.0.2.1", ""},
		{"::1", "::1", ""},
		{"2001:db8::1", "2001:db8::1", ""},
		{"fe80::1%eth0", "fe80::1", ""},
		{"::ffff:192.0.2.1", "::ffff:192.0.2.1", ""},
		{"localhost", "", "localhost"},
		{"www.example.com", "", "www.example.com"},
		{"dead.beef", "", "dead.beef"},
		{"cafe", "", "cafe"},
		{"1.2.3", "", ""},
		{"256.1.1.1", "", ""},
		{"123", "", ""},
		{"host.example.", "", ""},
		{"web-1", "", "web-1"},
		{"2001:db8::zz", "", ""},
		{"-", "", ""},
		{"", "", ""},
		{"a b", "", ""},
		{"-leading", "", ""},
		{strings.Repeat("a", 300) + ":", "", ""},
	} {
		ip, domain := classifyHost(c.in)
		if ip != c.ip || domain != c.domain {
			t.Errorf("classifyHost(%q) = %q, %q; want %q, %q", c.in, ip, domain, c.ip, c.domain)
		}
	}
}

func TestSplitClient(t *testing.T) {
	for _, c := range []struct {
		in       string
		withPort bool
		addr     string
		port     int
		ok       bool
	}{
		{"127.0.0.1", false, "127.0.0.1", 0, true},
		{"127.0.0.1:80", true, "127.0.0.1", 80, true},
		{"127.0.0.1:0", true, "127.0.0.1", 0, true},
		{"127.0.0.1:65536", true, "", 0, false},
		{"2001:db8::1", false, "2001:db8::1", 0, true},
		{"2001:db8::1:1234", true, "2001:db8::1", 1234, true},
		{"2001:db8::1:1234", false, "2001:db8::1:1234", 0, true},
		{"2001:db8:0:0:0:0:1:2", true, "2001:db8:0:0:0:0:1:2", 0, true},
		{"::1:50000", true, "::1", 50000, true},
		{"::ffff:1.2.3.4:80", true, "::ffff:1.2.3.4", 80, true},
		{"[2001:db8::1]:1234", true, "2001:db8::1", 1234, true},
		{"[2001:db8::1]", true, "2001:db8::1", 0, true},
		{"[1.2.3.4]:80", true, "", 0, false},
		{"[2001:db8::1]x", true, "", 0, false},
		{"[2001:db8::1", true, "", 0, false},
		{"host.example:80", true, "", 0, false},
		{"", true, "", 0, false},
	} {
		addr, port, ok := splitClient(c.in, c.withPort)
		if ok != c.ok || ok && (addr != c.addr || port != c.port) {
			t.Errorf("splitClient(%q, %v) = %q, %d, %v; want %q, %d, %v", c.in, c.withPort, addr, port, ok,
				c.addr, c.port, c.ok)
		}
	}
}

func TestSplitVhost(t *testing.T) {
	for _, c := range []struct {
		in   string
		host string
		port int
		ok   bool
	}{
		{"www.example.com:443", "www.example.com", 443, true},
		{"10.0.0.1:80", "10.0.0.1", 80, true},
		{"[2001:db8::1]:80", "2001:db8::1", 80, true},
		{"[1.2.3.4]:80", "", 0, false},
		{"::1", "", 0, false},
		{"2001:db8::1", "", 0, false},
		{"www.example.com", "", 0, false},
		{"www.example.com:http", "", 0, false},
		{":80", "", 0, false},
		{"[]:80", "", 0, false},
	} {
		host, port, ok := splitVhost(c.in)
		if ok != c.ok || ok && (host != c.host || port != c.port) {
			t.Errorf("splitVhost(%q) = %q, %d, %v; want %q, %d, %v", c.in, host, port, ok, c.host, c.port, c.ok)
		}
	}
}

// closingQuoteScan is the plain left-to-right definition closingQuote must
// agree with.
func closingQuoteScan(s string, follows func(string) bool) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			if follows(s[i+1:]) {
				return i
			}
		}
	}
	return -1
}

func TestClosingQuote(t *testing.T) {
	for _, s := range []string{``, `"`, `\"`, `\\"`, `\\\"`, `\\\\" x`, `a\"b" `, `a\\\\\" b" c`, `\`, `x\\`, `"" "`, `\"\" "`} {
		for _, f := range []func(string) bool{endFollows, quoteFollows, statusFollows} {
			if got, want := closingQuote(s, f), closingQuoteScan(s, f); got != want {
				t.Errorf("closingQuote(%q) = %d, want %d", s, got, want)
			}
		}
	}
}

func FuzzClosingQuote(f *testing.F) {
	f.Add(`GET /\"a\\" 200 x`)
	f.Add(`\\\" "`)
	f.Fuzz(func(t *testing.T, s string) {
		for _, fn := range []func(string) bool{endFollows, quoteFollows, statusFollows} {
			if got, want := closingQuote(s, fn), closingQuoteScan(s, fn); got != want {
				t.Fatalf("closingQuote(%q) = %d, want %d", s, got, want)
			}
		}
	})
}
