package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"logpipe/pipeline/event"
)

// generator makes the events the shipper would send for httpd access logs
// in the combined format: hostCount web servers, each with one access_log
// whose lines land on one partition (hosts share partitions round-robin,
// as the shipper's default partitioner spreads files). Events come from the
// hosts in turn, their line times rising through one UTC day. The same seed
// always gives the same events, byte for byte.
//
// Each event's id is event.ID of its host, its file identity and the
// line's byte offset in the file, as the shipper derives it, so every id is
// distinct.
type generator struct {
	rng        *rand.Rand
	partitions int
	hosts      []genHost
	start      time.Time
	step       time.Duration
	n          int
	line       []byte
}

// genHost is one web server's access_log.
type genHost struct {
	name   string
	fileID string
	zone   *time.Location
	offset int64 // byte offset of the next line
	lastAt time.Time
}

// hostCount is how many web servers (files) the events come from.
const hostCount = 12

// generatorStart is the first line's time; the lines of a run span
// generatorSpan from there, within one UTC day, so they go to one daily
// index.
var (
	generatorStart = time.Date(2026, 11, 21, 6, 0, 0, 0, time.UTC)
	generatorSpan  = 12 * time.Hour
)

// newGenerator returns a generator of total events over partitions
// partitions.
func newGenerator(seed uint64, total, partitions int) *generator {
	g := &generator{
		rng:        rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		partitions: partitions,
		start:      generatorStart,
		step:       generatorSpan / time.Duration(max(total, 1)),
	}
	zones := []*time.Location{
		time.FixedZone("", -7*3600), time.FixedZone("", 0), time.FixedZone("", 3600), time.FixedZone("", 5*3600+1800),
	}
	for h := 0; h < hostCount; h++ {
		g.hosts = append(g.hosts, genHost{
			name:   fmt.Sprintf("web-%02d", h+1),
			fileID: fmt.Sprintf("fingerprint-%016x", g.rng.Uint64()),
			zone:   zones[h%len(zones)],
		})
	}
	return g
}

// next returns the next event and the partition it goes to.
func (g *generator) next() (event.Event, int32) {
	hi := g.n % len(g.hosts)
	h := &g.hosts[hi]
	at := g.start.Add(time.Duration(g.n) * g.step).Truncate(time.Second)
	g.n++
	if at.Before(h.lastAt) {
		at = h.lastAt
	}
	h.lastAt = at
	g.line = g.appendLine(g.line[:0], at.In(h.zone))
	ev := event.Event{
		// The shipper stamps the time it read the line, a moment after
		// httpd wrote it.
		Timestamp: at.Add(time.Duration(5+g.rng.IntN(400)) * time.Millisecond),
		Message:   string(g.line),
		Tags:      []string{"access"},
		Event:     event.Meta{ID: event.ID(h.name, h.fileID, h.offset)},
		Log:       event.Log{File: event.File{Path: "/var/log/httpd/access_log"}, Offset: h.offset},
		Input:     event.Input{Type: "log"},
		Host:      event.Host{Name: h.name},
		Agent:     event.Agent{Type: "shipper", Version: "0.1.0"},
	}
	h.offset += int64(len(g.line)) + 1
	return ev, int32(hi % g.partitions)
}

// pick returns one of choices, each weighted by its weight.
func pick[T any](rng *rand.Rand, choices []weighted[T]) T {
	total := 0
	for _, c := range choices {
		total += c.weight
	}
	n := rng.IntN(total)
	for _, c := range choices {
		if n < c.weight {
			return c.v
		}
		n -= c.weight
	}
	return choices[len(choices)-1].v
}

type weighted[T any] struct {
	v      T
	weight int
}

var (
	methods = []weighted[string]{{"GET", 850}, {"POST", 80}, {"HEAD", 40}, {"PUT", 15}, {"DELETE", 8}, {"OPTIONS", 7}}
	protos  = []weighted[string]{{"1.1", 80}, {"2.0", 18}, {"1.0", 2}}
	statusW = []weighted[int]{{200, 700}, {304, 100}, {404, 70}, {301, 25}, {302, 30}, {206, 10}, {403, 20}, {401, 10}, {500, 10}, {503, 5}, {201, 15}, {400, 5}}
	users   = []weighted[string]{{"-", 950}, {"alice", 20}, {"bob", 15}, {"carol.ng", 10}, {"svc-backup", 5}}
	agents  = []weighted[string]{
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", 300},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15", 150},
		{"Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0", 80},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", 150},
		{"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36", 120},
		{"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", 60},
		{"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", 30},
		{"curl/8.5.0", 40},
		{"python-requests/2.32.3", 30},
		{"Prometheus/2.55.0", 20},
		{"-", 20},
	}
	words = []string{"shoes", "red+dress", "laptop", "usb-c+cable", "garden+chair", "coffee", "headphones", "tent", "kids+bike", "lamp"}
	slugs = []string{"how-we-ship", "winter-sale", "new-store-opening", "release-notes", "careers", "privacy-update"}
)

// appendLine appends one combined-format line written at t (in the host's
// zone) to dst.
func (g *generator) appendLine(dst []byte, t time.Time) []byte {
	r := g.rng
	// %h: mostly IPv4 clients from a few networks, some IPv6.
	if r.IntN(10) == 0 {
		dst = fmt.Appendf(dst, "2001:db8:%x:%x::%x", r.IntN(0x10000), r.IntN(0x100), 1+r.IntN(0xfffe))
	} else {
		nets := [...][2]int{{203, 0}, {198, 51}, {192, 0}, {100, 64}, {172, 16}, {81, 2}}
		n := nets[r.IntN(len(nets))]
		dst = fmt.Appendf(dst, "%d.%d.%d.%d", n[0], n[1]+r.IntN(4), r.IntN(256), 1+r.IntN(254))
	}
	dst = append(dst, " - "...)
	dst = append(dst, pick(r, users)...)
	dst = append(dst, " ["...)
	dst = t.AppendFormat(dst, "02/Jan/2006:15:04:05 -0700")
	dst = append(dst, "] \""...)
	method := pick(r, methods)
	dst = append(dst, method...)
	dst = append(dst, ' ')
	dst = g.appendPath(dst, method)
	dst = append(dst, " HTTP/"...)
	dst = append(dst, pick(r, protos)...)
	dst = append(dst, "\" "...)
	status := pick(r, statusW)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	switch {
	case status == 304 || method == "HEAD" || status == 204:
		dst = append(dst, '-')
	case status >= 400:
		dst = strconv.AppendInt(dst, int64(150+r.IntN(600)), 10)
	default:
		// Response sizes are roughly log-normal around 8 KiB.
		size := math.Exp(9 + 1.5*r.NormFloat64())
		dst = strconv.AppendInt(dst, int64(min(size, 50<<20)), 10)
	}
	dst = append(dst, " \""...)
	switch n := r.IntN(10); {
	case n < 4:
		dst = append(dst, '-')
	case n < 5:
		dst = append(dst, "https://www.google.com/"...)
	default:
		dst = append(dst, "https://shop.example.com"...)
		dst = g.appendPath(dst, "GET")
	}
	dst = append(dst, "\" \""...)
	dst = append(dst, pick(r, agents)...)
	return append(dst, '"')
}

// appendPath appends a request target such as a shop's web site sees.
func (g *generator) appendPath(dst []byte, method string) []byte {
	r := g.rng
	if method != "GET" && method != "HEAD" {
		switch r.IntN(3) {
		case 0:
			return fmt.Appendf(dst, "/api/v1/orders/%d", 100000+r.IntN(900000))
		case 1:
			return fmt.Appendf(dst, "/api/v1/cart/items?session=%016x", r.Uint64())
		default:
			return append(dst, "/api/v1/events"...)
		}
	}
	switch r.IntN(14) {
	case 0:
		return append(dst, '/')
	case 1:
		return fmt.Appendf(dst, "/static/css/site.%08x.css", r.Uint32())
	case 2, 3:
		return fmt.Appendf(dst, "/static/js/app.%08x.js", r.Uint32())
	case 4, 5, 6:
		return fmt.Appendf(dst, "/images/products/%d/%d-%dx%d.jpg", r.IntN(5000), r.IntN(8), 200*(1+r.IntN(4)), 200*(1+r.IntN(4)))
	case 7:
		return fmt.Appendf(dst, "/products/%d?ref=%s&utm_source=newsletter&utm_medium=email", 1000+r.IntN(90000), words[r.IntN(len(words))])
	case 8:
		return fmt.Appendf(dst, "/search?q=%s&page=%d&sort=price_asc", words[r.IntN(len(words))], 1+r.IntN(9))
	case 9:
		return fmt.Appendf(dst, "/blog/2026/%02d/%s", 1+r.IntN(11), slugs[r.IntN(len(slugs))])
	case 10:
		return append(dst, "/favicon.ico"...)
	case 11:
		return fmt.Appendf(dst, "/api/v1/products/%d/reviews?limit=20&offset=%d", 1000+r.IntN(90000), 20*r.IntN(10))
	case 12:
		return append(dst, "/robots.txt"...)
	default:
		return fmt.Appendf(dst, "/category/%s?page=%d", words[r.IntN(len(words))], 1+r.IntN(20))
	}
}
