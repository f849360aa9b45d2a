package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
)

// accessIndices are the indices the indexer's access route writes to
// (configs/indexer.yml: httpd_access-%{+YYYY.MM.dd}).
const accessIndices = "httpd_access-*"

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
	var resp struct {
		Hits struct {
			Total struct {
				Value int `json:"value"`
			} `json:"total"`
		} `json:"hits"`
	}
	// The shard request cache would keep a count until the next refresh,
	// which is right, but it is left out so every poll is a real search.
	err := s.do(ctx, http.MethodPost, "/"+accessIndices+"/_search?request_cache=false", q, &resp)
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

// hit is one searchable access document of the steady mode's log.
type hit struct {
	offset int64  // log.offset: where its line starts in the file
	target string // url.original
}

// visible returns the searchable documents of the log at path whose line
// starts at offset from or later, in the order of their offsets, fetched
// in pages of pageSize.
func (s *searcher) visible(ctx context.Context, path string, from int64) ([]hit, error) {
	var out []hit
	var after []int64
	for {
		q := map[string]any{
			"size":             pageSize,
			"_source":          false,
			"track_total_hits": false,
			"query": map[string]any{"bool": map[string]any{"filter": []any{
				map[string]any{"term": map[string]any{"log.file.path": path}},
				map[string]any{"range": map[string]any{"log.offset": map[string]any{"gte": from}}},
			}}},
			"sort":            []any{map[string]any{"log.offset": "asc"}},
			"docvalue_fields": []string{"log.offset", "url.original"},
		}
		if after != nil {
			q["search_after"] = after
		}
		var resp struct {
			Hits struct {
				Hits []struct {
					Fields struct {
						Offset []int64  `json:"log.offset"`
						URL    []string `json:"url.original"`
					} `json:"fields"`
				} `json:"hits"`
			} `json:"hits"`
		}
		if err := s.do(ctx, http.MethodPost, "/"+accessIndices+"/_search", q, &resp); err != nil {
			return nil, err
		}
		for _, h := range resp.Hits.Hits {
			if len(h.Fields.Offset) != 1 || len(h.Fields.URL) != 1 {
				return nil, fmt.Errorf("latencybench: a document of %s has log.offset %v and url.original %v, want one of each", path, h.Fields.Offset, strings.Join(h.Fields.URL, ", "))
			}
			out = append(out, hit{offset: h.Fields.Offset[0], target: h.Fields.URL[0]})
		}
		if len(resp.Hits.Hits) < pageSize {
			return out, nil
		}
		after = []int64{out[len(out)-1].offset}
	}
}
