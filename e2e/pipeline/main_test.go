// Package pipeline_test runs the whole of logpipe as `make run` runs it:
// the real binaries from the shipped configs, three brokerd nodes and the
// harness's real Elasticsearch. TestMakeRun runs the `make run` launcher
// itself (e2e/cmd/stack) twice on one run folder; TestPipelineUnderFaults
// sends 100,000 lines with a rotation through kill -9 of a broker, the
// shipper and the indexer, an Elasticsearch outage and hostile lines, and
// checks that every line is one document in the right index.
package pipeline_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"logpipe/e2e/harness"
	"logpipe/internal/devstack"
)

// The binaries, built once: brokerd, the shipper and the indexer without
// the race detector (100,000 lines through race builds would take many
// times as long; their own packages' tests run them with it), and the
// launcher with it.
var binDir, stackBin string

func TestMain(m *testing.M) {
	paths, err := harness.BuildPrograms(
		devstack.Program{Package: "logpipe/brokerd"},
		devstack.Program{Package: "logpipe/shipper"},
		devstack.Program{Package: "logpipe/indexer"},
		devstack.Program{Package: "logpipe/e2e/cmd/stack", Race: true},
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir, stackBin = filepath.Dir(paths[0]), paths[3]
	harness.Main(m)
}

// configs returns the folder of the shipped configs.
func configs(t *testing.T) string {
	t.Helper()
	root, err := devstack.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "configs")
}

// search is a client of the Elasticsearch node for the checks.
type search struct {
	t   *testing.T
	url string
	c   *http.Client
}

func newSearch(t *testing.T, url string) *search {
	return &search{t: t, url: url, c: &http.Client{Timeout: time.Minute}}
}

// do sends a request with a JSON body (none if nil) and decodes the JSON
// answer into out (if not nil); it returns the status, or an error when the
// node cannot be reached.
func (s *search) do(method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := s.c.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, err
	}
	if out != nil && res.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			return 0, fmt.Errorf("%s %s: %w: %.300s", method, path, err, b)
		}
	}
	if res.StatusCode != http.StatusOK {
		return res.StatusCode, fmt.Errorf("%s %s: %d: %.500s", method, path, res.StatusCode, b)
	}
	return res.StatusCode, nil
}

// lenient are the query parameters that let a pattern match no index yet.
const lenient = "ignore_unavailable=true&allow_no_indices=true"

// count refreshes the indices matching pattern and returns how many of
// their documents match query (all when nil).
func (s *search) count(pattern string, query any) (int, error) {
	if _, err := s.do(http.MethodPost, "/"+pattern+"/_refresh?"+lenient, nil, nil); err != nil {
		return 0, err
	}
	var out struct {
		Count int `json:"count"`
	}
	var body any
	if query != nil {
		body = map[string]any{"query": query}
	}
	_, err := s.do(http.MethodPost, "/"+pattern+"/_count?"+lenient, body, &out)
	return out.Count, err
}

// doc is one search hit.
type doc struct {
	Index  string         `json:"_index"`
	ID     string         `json:"_id"`
	Source map[string]any `json:"_source"`
	Sort   []any          `json:"sort"`
}

// all returns every document of the indices matching pattern that matches
// query (all when nil), with the source fields named, after a refresh. It
// pages through them with search_after on event.id and _index.
func (s *search) all(pattern string, query any, fields ...string) []doc {
	s.t.Helper()
	if _, err := s.do(http.MethodPost, "/"+pattern+"/_refresh?"+lenient, nil, nil); err != nil {
		s.t.Fatal(err)
	}
	const page = 10000
	var out []doc
	var after []any
	for {
		q := map[string]any{"size": page, "_source": fields, "track_total_hits": false,
			"sort": []any{map[string]any{"event.id": "asc"}, map[string]any{"_index": "asc"}}}
		if query != nil {
			q["query"] = query
		}
		if after != nil {
			q["search_after"] = after
		}
		var res struct {
			Hits struct {
				Hits []doc `json:"hits"`
			} `json:"hits"`
		}
		if _, err := s.do(http.MethodPost, "/"+pattern+"/_search?"+lenient, q, &res); err != nil {
			s.t.Fatal(err)
		}
		out = append(out, res.Hits.Hits...)
		if len(res.Hits.Hits) < page {
			return out
		}
		after = res.Hits.Hits[len(res.Hits.Hits)-1].Sort
	}
}
