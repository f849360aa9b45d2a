package devstack

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// HTTPDLog makes Apache httpd log lines as a busy site's server writes
// them: access lines in the combined format and error lines in httpd
// 2.4's default ErrorLogFormat, with the time and a marker the caller
// gives, the rest (clients, methods, paths, statuses, sizes, referrers,
// user agents, modules, pids) varied. `make run`'s generator writes them
// with the current time; tests give each line a unique marker to find its
// document by. An HTTPDLog is not safe for concurrent use.
type HTTPDLog struct {
	r *rand.Rand
}

// NewHTTPDLog returns an HTTPDLog whose choices follow from seed.
func NewHTTPDLog(seed uint64) *HTTPDLog {
	return &HTTPDLog{r: rand.New(rand.NewPCG(seed, seed>>1^0x5851f42d4c957f2d))}
}

// The choices, weighted by repetition.
var (
	httpdMethods  = []string{"GET", "GET", "GET", "GET", "GET", "GET", "POST", "POST", "HEAD", "PUT", "DELETE", "OPTIONS"}
	httpdStatuses = []int{200, 200, 200, 200, 200, 200, 200, 200, 200, 304, 304, 301, 302, 404, 404, 403, 400, 500, 503, 206, 201}
	httpdSections = []string{"products", "catalog", "blog", "api/v2/orders", "api/v2/users", "static/css", "static/js", "images", "search", "cart", "account", "help"}
	httpdSuffixes = []string{"", "", ".html", ".php", ".json", ".css", ".js", ".png", ".jpg", ".svg", ".woff2"}
	httpdQueries  = []string{"", "", "", "", "?page=2", "?q=running+shoes&sort=price", "?utm_source=newsletter&utm_medium=email", "?lang=en&ref=home"}
	httpdUsers    = []string{"-", "-", "-", "-", "-", "-", "-", "alice", "bob", "deploy"}
	httpdReferers = []string{"-", "-", "https://www.example.com/", "https://www.google.com/", "https://shop.example.org/cart", "https://t.co/x1y2z3"}
	httpdAgents   = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
		"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"curl/8.5.0",
		"Prometheus/2.48.0",
		"-",
	}
	// httpdErrors are error messages after the client bracket, each with
	// its module and level; %s is a path under the document root.
	httpdErrors = []struct{ module, level, text string }{
		{"core", "info", "AH00128: File does not exist: /var/www/html/%s"},
		{"authz_core", "error", "AH01630: client denied by server configuration: /var/www/html/%s"},
		{"proxy_fcgi", "error", "AH01071: Got error 'Primary script unknown' for /var/www/html/%s"},
		{"php", "warn", "PHP Warning:  Undefined array key \"id\" in /var/www/html/%s on line 42"},
		{"core", "error", "AH00082: an unknown filter was not added: DEFLATE, while serving /var/www/html/%s"},
		{"ssl", "error", "AH02032: Hostname www.example.com provided via SNI and hostname shop.example.org provided via HTTP are different for /%s"},
	}
)

func pickOne[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

// path returns a requested path, /section/marker-or-number[suffix].
func (g *HTTPDLog) path(marker string) string {
	name := marker
	if name == "" {
		name = fmt.Sprint(g.r.IntN(100000))
	}
	return pickOne(g.r, httpdSections) + "/" + name + pickOne(g.r, httpdSuffixes)
}

// client returns an IPv4 address from a few busy networks or anywhere.
func (g *HTTPDLog) client() string {
	first := pickOne(g.r, []int{10, 172, 192, 203, 198, 1 + g.r.IntN(223)})
	return fmt.Sprintf("%d.%d.%d.%d", first, g.r.IntN(256), g.r.IntN(256), 1+g.r.IntN(254))
}

// Access returns an access line, without its newline, for a request at t
// (written in t's zone, with its offset); the requested path holds marker
// unless it is empty.
func (g *HTTPDLog) Access(t time.Time, marker string) string {
	status := pickOne(g.r, httpdStatuses)
	size := "-"
	if status != 304 && g.r.IntN(20) != 0 {
		size = fmt.Sprint(g.r.IntN(g.r.IntN(200000) + 200))
	}
	return fmt.Sprintf(`%s - %s [%s] "%s /%s%s HTTP/%s" %d %s "%s" "%s"`,
		g.client(), pickOne(g.r, httpdUsers), t.Format("02/Jan/2006:15:04:05 -0700"),
		pickOne(g.r, httpdMethods), g.path(marker), pickOne(g.r, httpdQueries), pickOne(g.r, []string{"1.1", "1.1", "2.0", "1.0"}),
		status, size, pickOne(g.r, httpdReferers), pickOne(g.r, httpdAgents))
}

// Error returns an error line, without its newline, logged at t (httpd
// writes no zone: t's wall clock is written); the path in its message
// holds marker unless it is empty.
func (g *HTTPDLog) Error(t time.Time, marker string) string {
	e := pickOne(g.r, httpdErrors)
	pid := 1000 + g.r.IntN(60000)
	return fmt.Sprintf("[%s] [%s:%s] [pid %d:tid %d] [client %s:%d] %s",
		t.Format("Mon Jan 02 15:04:05.000000 2006"), e.module, e.level, pid, 139900000000000+g.r.Int64N(1e12),
		g.client(), 1024+g.r.IntN(64000), fmt.Sprintf(e.text, g.path(marker)))
}

// ErrorTrace returns an error line followed by the lines of a PHP stack
// trace that PHP-FPM lets through, which do not start with "[": one event
// for a shipper whose multiline pattern joins such lines to the one
// before, as configs/shipper.yml's error input does. The lines are joined
// with "\n", without a final one.
func (g *HTTPDLog) ErrorTrace(t time.Time, marker string) string {
	lines := []string{g.Error(t, marker), "PHP Stack trace:"}
	for i := range 1 + g.r.IntN(3) {
		lines = append(lines, fmt.Sprintf("PHP   %d. {main}() /var/www/html/%s:%d", i+1, g.path(""), 1+g.r.IntN(300)))
	}
	return strings.Join(lines, "\n")
}
