package main

import (
	"fmt"
	"strconv"
	"time"
)

// logKind says which of the two logs the shipper tails a line goes to.
type logKind uint8

// The logs, as configs/shipper.yml names them: its two inputs.
const (
	accessLog logKind = iota // access_log, tagged access
	errorLog                 // error_log, tagged error, with multiline
	numLogs
)

// fileName is the log's file name.
func (k logKind) fileName() string {
	if k == errorLog {
		return "error_log"
	}
	return "access_log"
}

// agents are the user agents the lines cycle through.
var agents = []string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
	"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
}

// requestTarget is the URL of line n of a run, holding its unique marker
// lb=<run>-<id>; the indexer stores it as url.original.
func requestTarget(run, id string, n int) string {
	return "/shop/items/" + strconv.Itoa(1000+n%9000) + "?ref=home&lb=" + run + "-" + id
}

// accessLine appends to dst an Apache httpd combined-format access line,
// with its newline, for a GET of target at t by client n.
func accessLine(dst []byte, t time.Time, n int, target string) []byte {
	dst = fmt.Appendf(dst, "198.51.%d.%d - - [", n/250%250, n%250+1)
	dst = t.UTC().AppendFormat(dst, "02/Jan/2006:15:04:05 -0700")
	dst = append(dst, `] "GET `...)
	dst = append(dst, target...)
	dst = fmt.Appendf(dst, ` HTTP/1.1" 200 %d "https://www.example.com/shop/" "%s"`, 2000+n*7919%30000, agents[n%len(agents)])
	return append(dst, '\n')
}

// errorReferrer is the referrer of error line n of a run, holding its
// unique marker lb=<run>-<id>; the indexer stores it as
// http.request.referrer.
func errorReferrer(run, id string) string {
	return "https://www.example.com/shop/?lb=" + run + "-" + id
}

// errorLine appends to dst an Apache httpd 2.4 error line, with its
// newline, at t (in UTC, as the indexer's parse.timezone reads it) about
// client n, naming referrer.
func errorLine(dst []byte, t time.Time, n int, referrer string) []byte {
	dst = append(dst, '[')
	dst = t.UTC().AppendFormat(dst, "Mon Jan 02 15:04:05.000000 2006")
	dst = fmt.Appendf(dst, "] [core:error] [pid %d:tid %d] [client 198.51.%d.%d:%d] AH00128: File does not exist: /srv/www/shop/items/%d, referer: ",
		4000+n%64, 140000+n%8, n/250%250, n%250+1, 40000+n%20000, 1000+n%9000)
	dst = append(dst, referrer...)
	return append(dst, '\n')
}

// marker is the marker id of line i of a steady run: s<i> for access
// lines, e<i> for error lines.
func marker(k logKind, i int) string {
	if k == errorLog {
		return "e" + strconv.Itoa(i)
	}
	return "s" + strconv.Itoa(i)
}

// steadyMarked is what identifies line i of kind k in its document: the
// url.original of an access line, the http.request.referrer of an error
// line.
func steadyMarked(run string, k logKind, i int) string {
	if k == errorLog {
		return errorReferrer(run, marker(k, i))
	}
	return requestTarget(run, marker(k, i), i)
}

// appendSteadyLine appends line i of kind k, appended at t, to dst.
func appendSteadyLine(dst []byte, run string, k logKind, i int, t time.Time) []byte {
	if k == errorLog {
		return errorLine(dst, t, i, steadyMarked(run, k, i))
	}
	return accessLine(dst, t, i, steadyMarked(run, k, i))
}
