package httpdlog

import (
	"testing"
	"time"
)

const (
	benchCombined = `203.0.113.42 - - [21/Nov/2026:10:00:00 +0100] "GET /static/app.css?v=3 HTTP/1.1" 200 5120 "https://shop.example.com/index.html" "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"`
	benchVhost    = `www.example.com:443 2001:db8::1 - alice [21/Nov/2026:10:00:00 +0100] "POST /api/v1/items HTTP/2.0" 201 512 "-" "okhttp/4.12.0"`
	benchCommon   = `127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326`
	benchEscaped  = `203.0.113.9 - - [21/Nov/2026:10:00:16 +0100] "GET /q?s=\"quoted\" HTTP/1.1" 200 10 "http://e.example/" "Bot\xe2\x80\x99s \"agent\""`
	benchError24  = `[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187:64033] AH00128: File does not exist: /usr/local/apache2/htdocs/favicon.ico`
	benchError22  = `[Wed Oct 11 14:32:52 2000] [error] [client 127.0.0.1] client denied by server configuration: /export/home/live/ap/htdocs/test`
	benchErrorSt  = `[Tue Nov 21 10:00:14.777777 2026] [core:error] [pid 14:tid 140245644444444] (13)Permission denied: [client 192.0.2.1:40000] AH00035: access to /index.html denied`
)

func benchAccess(b *testing.B, line string) {
	var a Access
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseAccess(line, &a); err != nil {
			b.Fatal(err)
		}
	}
}

func benchError(b *testing.B, line string) {
	var e Error
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseError(line, time.UTC, &e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseAccess measures the common path: a combined line with no
// escapes, parsed into a reused Access.
func BenchmarkParseAccess(b *testing.B)        { benchAccess(b, benchCombined) }
func BenchmarkParseAccessCommon(b *testing.B)  { benchAccess(b, benchCommon) }
func BenchmarkParseAccessVhost(b *testing.B)   { benchAccess(b, benchVhost) }
func BenchmarkParseAccessEscaped(b *testing.B) { benchAccess(b, benchEscaped) }
func BenchmarkParseError(b *testing.B)         { benchError(b, benchError24) }
func BenchmarkParseError22(b *testing.B)       { benchError(b, benchError22) }
func BenchmarkParseErrorStatus(b *testing.B)   { benchError(b, benchErrorSt) }
func BenchmarkParseAccessRefused(b *testing.B) {
	benchRefused(b, "not an access line at all, but long enough to scan [x] \"y\"")
}

func benchRefused(b *testing.B, line string) {
	var a Access
	b.ReportAllocs()
	for b.Loop() {
		if ParseAccess(line, &a) == nil {
			b.Fatal("accepted")
		}
	}
}

// BenchmarkAppendAccess measures parsing plus writing the JSON members into
// a reused buffer, what the indexer does per access line.
func BenchmarkAppendAccess(b *testing.B) {
	var a Access
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(benchCombined)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseAccess(benchCombined, &a); err != nil {
			b.Fatal(err)
		}
		buf = a.AppendEventMembers(buf[:0])
		buf = a.AppendJSONFields(buf)
	}
}

func BenchmarkAppendError(b *testing.B) {
	var e Error
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(benchError24)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ParseError(benchError24, nil, &e); err != nil {
			b.Fatal(err)
		}
		buf = e.AppendLogMembers(buf[:0])
		buf = e.AppendJSONFields(buf)
	}
}

// BenchmarkParseCorpus runs Parse over every line of testdata/*.log.
func BenchmarkParseCorpus(b *testing.B) {
	lines := append(readLines(b, "access.log"), readLines(b, "error.log")...)
	var a Access
	var e Error
	b.ReportAllocs()
	for b.Loop() {
		for _, l := range lines {
			if _, err := Parse(l, nil, &a, &e); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(lines)), "ns/line")
}
