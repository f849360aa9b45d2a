package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// accessIndices are the indices the indexer's access route writes to
// (configs/indexer.yml: httpd_access-%{+YYYY.MM.dd}); logIndices adds
// those of the error route.
const (
	accessIndices = "httpd_access-*"
	logIndices    = accessIndices + ",httpd_error-*"
)

// pageSize is the most documents one steady-mode search returns.
const pageSize = 10000

// searcher talks to the Elasticsearch node over its REST API. It never
// asks for a refresh: what it finds is what a user's search would.
type searcher struct {
	url    string
	client *http.Client
}

// do sends a request with body (JSON-encoded when not nil) and decodes a
// 200 answer into out.
func (s *searcher) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("latencybench: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.url+path, rd)
	if err != nil {
		return fmt.Errorf("latencybench: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return fmt.Errorf("latencybench: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("latencybench: %s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("latencybench: %s %s: %s: %.500s", method, path, resp.Status, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("latencybench: %s %s: %w", method, path, err)
	}
	return nil
}

// version returns the node's version number.
func (s *searcher) version(ctx context.Context) (string, error) {
	var info struct {
		Version struct {
			Number string `json:"number"`
		} `json:"version"`
	}
	err := s.do(ctx, http.MethodGet, "/", nil, &info)
	return info.Version.Number, err
}

// countTarget returns how many access documents have url.original target.
// Before the first access index exists it finds none.
func (s *searcher) countTarget(ctx context.Context, target string) (int, error) {
	q := map[string]any{
		"size":             0,
		"track_total_hits": true,
		"query":            map[string]any{"term": map[string]any{"url.original": target}},
	}
	// The shard request cache would keep a count until the next refresh,
	// which is right, but it is left out so every poll is a real search.
	return s.totalHits(ctx, "/"+accessIndices+"/_search?request_cache=false", q)
}

// totalHits runs the search q at path and returns its hits.total.value.
func (s *searcher) totalHits(ctx context.Context, path string, q map[string]any) (int, error) {
	var resp struct {
		Hits struct {
			Total struct {
				Value int `json:"value"`
			} `json:"total"`
		} `json:"hits"`
	}
	err := s.do(ctx, http.MethodPost, path, q, &resp)
	return resp.Hits.Total.Value, err
}

// refresh describes when Elasticsearch makes new documents searchable.
type refresh struct {
	interval  string // index.refresh_interval
	explicit  bool   // set on the index (by a template), not the default
	idleAfter string // index.search.idle.after
	index     string // the index read
}

// refreshInterval reads the refresh settings of the (first) access index.
func (s *searcher) refreshInterval(ctx context.Context) (refresh, error) {
	var resp map[string]struct {
		Settings map[string]any `json:"settings"`
		Defaults map[string]any `json:"defaults"`
	}
	if err := s.do(ctx, http.MethodGet, "/"+accessIndices+"/_settings?include_defaults=true&flat_settings=true", nil, &resp); err != nil {
		return refresh{}, err
	}
	if len(resp) == 0 {
		return refresh{}, fmt.Errorf("latencybench: no index matches %s", accessIndices)
	}
	names := slices.Sorted(maps.Keys(resp))
	ix := resp[names[0]]
	get := func(key string) (string, bool) {
		if v, ok := ix.Settings[key]; ok {
			return fmt.Sprint(v), true
		}
		if v, ok := ix.Defaults[key]; ok {
			return fmt.Sprint(v), false
		}
		return "unknown", false
	}
	r := refresh{index: names[0]}
	r.interval, r.explicit = get("index.refresh_interval")
	r.idleAfter, _ = get("index.search.idle.after")
	return r, nil
}

// hit is one searchable document of a steady run's logs.
type hit struct {
	log    logKind
	offset int64  // log.offset: where its line starts in the file
	marked string // what carries the marker: url.original or http.request.referrer
	// ingested is event.ingested: when the indexer built the document.
	ingested time.Time
}

// The fields a hit is read from; all have doc values.
const (
	pathField     = "log.file.path"
	offsetField   = "log.offset"
	urlField      = "url.original"
	referrerField = "http.request.referrer"
	ingestedField = "event.ingested"
)

// linesQuery matches the documents of the logs at paths whose lines start
// in ranges, per log offset ranges with both ends included.
func linesQuery(paths [numLogs]string, ranges [numLogs][][2]int64) map[string]any {
	var should []any
	for k := range numLogs {
		for _, r := range ranges[k] {
			should = append(should, map[string]any{"bool": map[string]any{"filter": []any{
				map[string]any{"term": map[string]any{pathField: paths[k]}},
				map[string]any{"range": map[string]any{offsetField: map[string]any{"gte": r[0], "lte": r[1]}}},
			}}})
		}
	}
	return map[string]any{"bool": map[string]any{"should": should, "minimum_should_match": 1}}
}

// visible returns the searchable documents of the logs at paths whose
// lines start in ranges (see linesQuery), fetched in pages of pageSize
// sorted by offset and path.
func (s *searcher) visible(ctx context.Context, paths [numLogs]string, ranges [numLogs][][2]int64) ([]hit, error) {
	var out []hit
	var after []any
	for {
		q := map[string]any{
			"size":             pageSize,
			"_source":          false,
			"track_total_hits": false,
			"query":            linesQuery(paths, ranges),
			"sort":             []any{map[string]any{offsetField: "asc"}, map[string]any{pathField: "asc"}},
			"docvalue_fields": []any{pathField, offsetField, urlField, referrerField,
				map[string]any{"field": ingestedField, "format": "epoch_millis"}},
		}
		if after != nil {
			q["search_after"] = after
		}
		var resp struct {
			Hits struct {
				Hits []struct {
					Fields map[string][]any `json:"fields"`
					Sort   []any            `json:"sort"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if err := s.do(ctx, http.MethodPost, "/"+logIndices+"/_search", q, &resp); err != nil {
			return nil, err
		}
		for _, h := range resp.Hits.Hits {
			got, err := readHit(paths, h.Fields)
			if err != nil {
				return nil, err
			}
			out = append(out, got)
		}
		if len(resp.Hits.Hits) < pageSize {
			return out, nil
		}
		after = resp.Hits.Hits[len(resp.Hits.Hits)-1].Sort
	}
}

// readHit reads a hit's doc values: one path among paths, one offset, and
// one value of the field that carries its log's marker.
func readHit(paths [numLogs]string, fields map[string][]any) (hit, error) {
	bad := func(what string) (hit, error) {
		return hit{}, fmt.Errorf("latencybench: a document with fields %v: %s", fields, what)
	}
	path, off := fields[pathField], fields[offsetField]
	if len(path) != 1 || len(off) != 1 {
		return bad("want one log.file.path and one log.offset")
	}
	k := slices.Index(paths[:], fmt.Sprint(path[0]))
	if k < 0 {
		return bad("from neither log")
	}
	h := hit{log: logKind(k)}
	f, ok := off[0].(float64)
	if !ok {
		return bad("log.offset is not a number")
	}
	h.offset = int64(f)
	field := urlField
	if h.log == errorLog {
		field = referrerField
	}
	if m := fields[field]; len(m) == 1 {
		h.marked = fmt.Sprint(m[0])
	} else {
		return bad("want one " + field)
	}
	in := fields[ingestedField]
	if len(in) != 1 {
		return bad("want one " + ingestedField)
	}
	millis, err := strconv.ParseInt(fmt.Sprint(in[0]), 10, 64)
	if err != nil {
		return bad(ingestedField + " is not in milliseconds")
	}
	h.ingested = time.UnixMilli(millis)
	return h, nil
}

// count returns how many documents the logs at paths have whose lines
// start at from or later (per log).
func (s *searcher) count(ctx context.Context, paths [numLogs]string, from [numLogs]int64) (int, error) {
	var ranges [numLogs][][2]int64
	for k := range numLogs {
		ranges[k] = [][2]int64{{from[k], math.MaxInt64}}
	}
	var resp struct {
		Count int `json:"count"`
	}
	err := s.do(ctx, http.MethodPost, "/"+logIndices+"/_count", map[string]any{"query": linesQuery(paths, ranges)}, &resp)
	return resp.Count, err
}

// refresh makes everything indexed so far searchable. Only the final count
// uses it, after the measuring.
func (s *searcher) refresh(ctx context.Context) error {
	var resp map[string]any
	return s.do(ctx, http.MethodPost, "/"+logIndices+"/_refresh", nil, &resp)
}

// esStats is what Elasticsearch reports having spent on the log indices,
// and the bulk operations its node ran.
type esStats struct {
	searches int64         // shard query phases run (cached ones not)
	search   time.Duration // query and fetch phases
	cached   int64         // shard queries answered from the request cache
	indexed  int64         // documents
	indexing time.Duration
	bulks    int64 // shard bulk operations (the write thread pool's tasks)
}

// minus is what was spent from b to s.
func (s esStats) minus(b esStats) esStats {
	return esStats{searches: s.searches - b.searches, search: s.search - b.search, cached: s.cached - b.cached,
		indexed: s.indexed - b.indexed, indexing: s.indexing - b.indexing, bulks: s.bulks - b.bulks}
}

// stats reads the search, request cache and indexing totals of the log
// indices (all shards) from the index stats API, and the tasks the node's
// write thread pool has run from the node stats API.
func (s *searcher) stats(ctx context.Context) (esStats, error) {
	var resp struct {
		All struct {
			Total struct {
				Search struct {
					QueryTotal  int64 `json:"query_total"`
					QueryMillis int64 `json:"query_time_in_millis"`
					FetchMillis int64 `json:"fetch_time_in_millis"`
				} `json:"search"`
				RequestCache struct {
					Hits int64 `json:"hit_count"`
				} `json:"request_cache"`
				Indexing struct {
					IndexTotal  int64 `json:"index_total"`
					IndexMillis int64 `json:"index_time_in_millis"`
				} `json:"indexing"`
			} `json:"total"`
		} `json:"_all"`
	}
	if err := s.do(ctx, http.MethodGet, "/"+logIndices+"/_stats/search,request_cache,indexing", nil, &resp); err != nil {
		return esStats{}, err
	}
	var nodes struct {
		Nodes map[string]struct {
			ThreadPool struct {
				Write struct {
					Completed int64 `json:"completed"`
				} `json:"write"`
			} `json:"thread_pool"`
		} `json:"nodes"`
	}
	if err := s.do(ctx, http.MethodGet, "/_nodes/stats/thread_pool", nil, &nodes); err != nil {
		return esStats{}, err
	}
	t := resp.All.Total
	st := esStats{searches: t.Search.QueryTotal, search: time.Duration(t.Search.QueryMillis+t.Search.FetchMillis) * time.Millisecond, cached: t.RequestCache.Hits,
		indexed: t.Indexing.IndexTotal, indexing: time.Duration(t.Indexing.IndexMillis) * time.Millisecond}
	for _, n := range nodes.Nodes {
		st.bulks += n.ThreadPool.Write.Completed
	}
	return st, nil
}

// anyVisible reports whether a document of the logs at paths whose line
// starts in ranges is searchable, with a search of no hits that
// Elasticsearch's shard request cache answers until the next refresh
// changes the shard: a cheap question to ask every poll interval.
func (s *searcher) anyVisible(ctx context.Context, paths [numLogs]string, ranges [numLogs][][2]int64) (bool, error) {
	q := map[string]any{"size": 0, "track_total_hits": 1, "query": linesQuery(paths, ranges)}
	n, err := s.totalHits(ctx, "/"+logIndices+"/_search?request_cache=true", q)
	return n > 0, err
}
