// Package accesslog makes Apache httpd access-log lines in the combined
// format for benchmarks: client addresses, users, times, methods, paths,
// query strings, statuses, sizes, referrers and user agents varied the
// way a busy web server's are, about 200 bytes a line on average, and the
// same lines for the same seed on every run and machine.
//
//	203.0.113.7 - - [21/Nov/2026:10:00:00 +0000] "GET /products/4711?page=2 HTTP/1.1" 200 5123 "https://www.example.com/" "Mozilla/5.0 (...)"
package accesslog

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"
)

// Start is the time of the first line of every Generator; each line is a
// few milliseconds after the one before.
var Start = time.Date(2026, time.November, 21, 10, 0, 0, 0, time.UTC)

// Generator makes access-log lines. Two Generators made with the same seed
// give the same lines. It is not safe for concurrent use.
type Generator struct {
	r   *rand.Rand
	now time.Time
	// stamp caches the formatted time of the current second.
	stampSec int64
	stamp    []byte
}

// New returns a Generator whose lines are determined by seed.
func New(seed uint64) *Generator {
	return &Generator{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: Start, stampSec: -1}
}

var (
	methods = []string{"GET", "GET", "GET", "GET", "GET", "GET", "GET", "POST", "POST", "HEAD", "PUT", "DELETE", "OPTIONS"}
	// statuses are weighted by repetition, as a healthy site's are.
	statuses = []int{200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 200, 304, 304, 301, 302, 404, 404, 403, 400, 500, 503, 206, 201}
	sections = []string{"products", "catalog", "blog", "api/v2/orders", "api/v2/users", "static/css", "static/js", "images", "search", "cart", "account", "help/articles", "news"}
	suffixes = []string{"", "", ".html", ".php", ".json", ".css", ".js", ".png", ".jpg", ".svg", ".woff2"}
	queries  = []string{"", "", "", "", "?page=2", "?q=running+shoes&sort=price", "?utm_source=newsletter&utm_medium=email", "?id=%d", "?lang=en&ref=home", "?session=%x", "?offset=%d&limit=50"}
	users    = []string{"-", "-", "-", "-", "-", "-", "-", "-", "alice", "bob", "carol", "deploy"}
	refHosts = []string{"https://www.example.com", "https://www.google.com", "https://shop.example.org", "https://news.example.net", "http://localhost:8080", "https://t.co"}
	// agents are mostly browsers, as on a site people visit.
	agents = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36 Edg/119.0.2151.97",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.43 Mobile Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
		"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
		"curl/7.88.1",
		"python-requests/2.31.0",
		"Go-http-client/1.1",
		"Wget/1.21.3",
		"Prometheus/2.48.0",
		"-",
	}
	monthNames = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// Append appends one line, with its "\n", to dst and returns the extended
// slice.
func (g *Generator) Append(dst []byte) []byte {
	r := g.r
	g.now = g.now.Add(time.Duration(r.IntN(5000)) * time.Microsecond)

	// Client address: mostly from a few busy networks, some from anywhere.
	if r.IntN(4) == 0 {
		dst = strconv.AppendInt(dst, int64(1+r.IntN(223)), 10)
	} else {
		dst = append(dst, pick(r, []string{"10", "172", "192", "203", "198"})...)
	}
	for i := 0; i < 3; i++ {
		dst = append(dst, '.')
		dst = strconv.AppendInt(dst, int64(r.IntN(256)), 10)
	}
	dst = append(dst, " - "...)
	dst = append(dst, pick(r, users)...)
	dst = append(dst, " ["...)
	dst = append(dst, g.timestamp()...)
	dst = append(dst, "] \""...)
	dst = append(dst, pick(r, methods)...)
	dst = append(dst, " /"...)
	dst = append(dst, pick(r, sections)...)
	dst = append(dst, '/')
	dst = strconv.AppendInt(dst, int64(r.IntN(100000)), 10)
	dst = append(dst, pick(r, suffixes)...)
	if q := pick(r, queries); q != "" {
		switch {
		case strings.Contains(q, "%d"):
			dst = fmt.Appendf(dst, q, r.IntN(1000000))
		case strings.Contains(q, "%x"):
			dst = fmt.Appendf(dst, q, r.Uint64())
		default:
			dst = append(dst, q...)
		}
	}
	dst = append(dst, pick(r, []string{" HTTP/1.1\" ", " HTTP/1.1\" ", " HTTP/2.0\" ", " HTTP/1.0\" "})...)
	status := pick(r, statuses)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	if status == 304 || status == 204 || r.IntN(20) == 0 {
		dst = append(dst, '-')
	} else {
		dst = strconv.AppendInt(dst, int64(r.IntN(r.IntN(200000)+200)), 10)
	}
	dst = append(dst, " \""...)
	if r.IntN(3) == 0 {
		dst = append(dst, '-')
	} else {
		dst = append(dst, pick(r, refHosts)...)
		dst = append(dst, '/')
		dst = append(dst, pick(r, sections)...)
	}
	dst = append(dst, "\" \""...)
	dst = append(dst, pick(r, agents)...)
	return append(dst, "\"\n"...)
}

// timestamp returns the current time as httpd writes it,
// 21/Nov/2026:10:00:00 +0000.
func (g *Generator) timestamp() []byte {
	sec := g.now.Unix()
	if sec == g.stampSec {
		return g.stamp
	}
	t := g.now
	b := g.stamp[:0]
	b = appendTwo(b, t.Day())
	b = append(b, '/')
	b = append(b, monthNames[t.Month()-1]...)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(t.Year()), 10)
	b = append(b, ':')
	b = appendTwo(b, t.Hour())
	b = append(b, ':')
	b = appendTwo(b, t.Minute())
	b = append(b, ':')
	b = appendTwo(b, t.Second())
	b = append(b, " +0000"...)
	g.stamp, g.stampSec = b, sec
	return b
}

func appendTwo(b []byte, v int) []byte {
	return append(b, byte('0'+v/10), byte('0'+v%10))
}

// WriteFile creates (or truncates) the file at path and writes n lines of
// a Generator seeded with seed to it. It returns the bytes written.
func WriteFile(path string, n int, seed uint64) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, fmt.Errorf("accesslog: %w", err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	g := New(seed)
	var total int64
	var line []byte
	for i := 0; i < n; i++ {
		line = g.Append(line[:0])
		total += int64(len(line))
		if _, err := w.Write(line); err != nil {
			f.Close()
			return total, fmt.Errorf("accesslog: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return total, fmt.Errorf("accesslog: %w", err)
	}
	if err := f.Close(); err != nil {
		return total, fmt.Errorf("accesslog: %w", err)
	}
	return total, nil
}
