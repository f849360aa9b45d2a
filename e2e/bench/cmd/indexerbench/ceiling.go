package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"logpipe/indexer/bulk"
	"logpipe/indexer/document"
	"logpipe/indexer/httpdlog"
	"logpipe/indexer/route"
)

// spool holds bulk request bodies in a file: the documents the indexer
// would write for the run's events, cut into requests as the indexer's
// sink cuts them. Building them happens before anything is timed, so the
// ceiling's timed part only reads bytes and sends them.
type spool struct {
	f        *os.File
	requests []spooled
	// docs counts the documents, docBytes their JSON bodies, bodyBytes the
	// request bodies (action lines included).
	docs      int
	docBytes  int64
	bodyBytes int64

	// Being filled: the open request and what the sink would count for it.
	cur      bytes.Buffer
	curItems int
	curSize  int
	flushAt  int
}

// spooled is one bulk request body in the spool file.
type spooled struct {
	off   int64
	len   int
	items int
}

// newSpool creates the spool file in dir; requests are cut when the
// sink's count of their items reaches flushBytes.
func newSpool(dir string, flushBytes int) (*spool, error) {
	f, err := os.CreateTemp(dir, "indexerbench-bulk-*.ndjson")
	if err != nil {
		return nil, fmt.Errorf("indexerbench: %w", err)
	}
	return &spool{f: f, flushAt: flushBytes}, nil
}

// sinkItemOverhead is what indexer/bulk's gatherer adds to an item's body,
// index and id lengths when it decides that a request is full.
const sinkItemOverhead = 48

// add appends one create item, written by the indexer's sink's own code.
func (s *spool) add(index, id string, body []byte) error {
	s.cur.Write(bulk.AppendCreate(s.cur.AvailableBuffer(), index, id, body))
	s.curItems++
	s.curSize += len(body) + len(index) + len(id) + sinkItemOverhead
	s.docs++
	s.docBytes += int64(len(body))
	if s.curSize >= s.flushAt {
		return s.cut()
	}
	return nil
}

// cut ends the open request.
func (s *spool) cut() error {
	if s.curItems == 0 {
		return nil
	}
	off := s.bodyBytes
	if _, err := s.f.Write(s.cur.Bytes()); err != nil {
		return fmt.Errorf("indexerbench: spool: %w", err)
	}
	s.requests = append(s.requests, spooled{off: off, len: s.cur.Len(), items: s.curItems})
	s.bodyBytes += int64(s.cur.Len())
	s.cur.Reset()
	s.curItems, s.curSize = 0, 0
	return nil
}

// finish ends the last request.
func (s *spool) finish() error { return s.cut() }

// read returns request i's body in buf's memory.
func (s *spool) read(i int, buf []byte) ([]byte, error) {
	r := s.requests[i]
	if cap(buf) < r.len {
		buf = make([]byte, r.len)
	}
	buf = buf[:r.len]
	if _, err := s.f.ReadAt(buf, r.off); err != nil {
		return nil, fmt.Errorf("indexerbench: spool: %w", err)
	}
	return buf, nil
}

// close removes the spool file. Calling it again does nothing.
func (s *spool) close() {
	if s.f == nil {
		return
	}
	name := s.f.Name()
	s.f.Close()
	os.Remove(name)
	s.f = nil
}

// docMaker turns event values into the indexer's documents with the
// indexer's own code (package document), under the indexer's defaults:
// JSON codec, httpd parsing on, error-log zone UTC, no decoration.
type docMaker struct {
	b      *document.Builder
	router *route.Router
	ts     []route.Target
}

func newDocMaker(indexFormat string) (*docMaker, error) {
	r, err := route.New([]route.Spec{{Tag: "access", Index: indexFormat}})
	if err != nil {
		return nil, fmt.Errorf("indexerbench: %w", err)
	}
	return &docMaker{
		b:      document.NewBuilder(document.Options{ParseHTTPD: true, Location: time.UTC}),
		router: r,
	}, nil
}

// make returns the document of one record value, and its index.
func (m *docMaker) make(topic string, partition int32, offset int64, value []byte, ts time.Time) (index string, d *document.Doc, err error) {
	rec := &document.Record{Topic: topic, Partition: partition, Offset: offset, Value: value, Timestamp: ts}
	d = m.b.Build(document.Decode(rec, document.JSON), rec)
	if d.Kind != httpdlog.KindAccess {
		return "", nil, fmt.Errorf("indexerbench: event %s did not parse as an access line", d.ID)
	}
	m.ts = m.router.Route(m.ts[:0], d)
	if len(m.ts) != 1 || m.ts[0].Err != nil {
		return "", nil, fmt.Errorf("indexerbench: event %s routes to %v", d.ID, m.ts)
	}
	return m.ts[0].Index, d, nil
}

// loadResult is what a direct bulk load measured.
type loadResult struct {
	docs      int
	requests  int
	bodyBytes int64
	elapsed   time.Duration
	// retried counts requests sent again (whole, after a failure or a 429
	// item); duplicates counts items answered 409 on such a resend.
	retried    int
	duplicates int
}

// bulkLoad sends the spool's requests from first to last (exclusive) with
// workers goroutines, each sending one request at a time, as the
// indexer's sink does, and checks every item's answer. A request that fails
// or has items Elasticsearch could not take now (429, 5xx) is sent again
// whole after a second; its created items then answer 409, which counts as
// done. Any other item failure is an error: the ceiling must load exactly
// the documents the pipeline does.
func bulkLoad(ctx context.Context, es *elasticsearch.Client, sp *spool, first, last, workers int, progress func(docs int)) (loadResult, error) {
	var next atomic.Int64
	next.Store(int64(first))
	var done, dups, retried atomic.Int64
	var (
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return firstErr != nil
	}
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for !failed() && ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= last {
					return
				}
				var err error
				if buf, err = sp.read(i, buf); err != nil {
					fail(err)
					return
				}
				for attempt := 0; ; attempt++ {
					created, dup, again, err := sendBulk(ctx, es, buf, sp.requests[i].items)
					if err != nil {
						fail(err)
						return
					}
					if !again {
						done.Add(int64(created + dup))
						if attempt > 0 {
							dups.Add(int64(dup))
						}
						if progress != nil {
							progress(int(done.Load()))
						}
						break
					}
					retried.Add(1)
					if attempt >= 100 {
						fail(fmt.Errorf("indexerbench: bulk request %d still refused after %d attempts", i, attempt+1))
						return
					}
					select {
					case <-ctx.Done():
						fail(ctx.Err())
						return
					case <-time.After(time.Second):
					}
				}
			}
		}()
	}
	wg.Wait()
	res := loadResult{
		docs: int(done.Load()), requests: last - first, elapsed: time.Since(start),
		retried: int(retried.Load()), duplicates: int(dups.Load()),
	}
	for _, r := range sp.requests[first:last] {
		res.bodyBytes += int64(r.len)
	}
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return res, firstErr
}

// bulkFilter keeps only what bulkLoad reads in the answer, as the indexer's
// sink asks for.
var bulkFilter = []string{"errors", "items.*.status", "items.*.error.type", "items.*.error.reason", "items.*.error.caused_by.type", "items.*.error.caused_by.reason"}

// sendBulk sends one request body of items items. It returns the items
// created and those already there (409), or again when the request must be
// sent again (it failed as a whole, or some item got 429 or 5xx).
func sendBulk(ctx context.Context, es *elasticsearch.Client, body []byte, items int) (created, dup int, again bool, err error) {
	rctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	res, err := es.Bulk(bytes.NewReader(body), es.Bulk.WithContext(rctx), es.Bulk.WithFilterPath(bulkFilter...))
	if err != nil {
		if ctx.Err() != nil {
			return 0, 0, false, ctx.Err()
		}
		log.Printf("bulk request failed, sending it again: %v", err)
		return 0, 0, true, nil
	}
	raw, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500 {
		log.Printf("bulk request answered %d (%v), sending it again", res.StatusCode, err)
		return 0, 0, true, nil
	}
	if res.StatusCode != http.StatusOK {
		return 0, 0, false, fmt.Errorf("indexerbench: bulk answered %d: %.300s", res.StatusCode, raw)
	}
	var br struct {
		Items []map[string]struct {
			Status int `json:"status"`
			Error  *struct {
				Type   string `json:"type"`
				Reason string `json:"reason"`
			} `json:"error"`
		} `json:"items"`
	}
	if err := json.Unmarshal(raw, &br); err != nil {
		return 0, 0, false, fmt.Errorf("indexerbench: bulk answer: %w", err)
	}
	if len(br.Items) != items {
		return 0, 0, false, fmt.Errorf("indexerbench: bulk answered %d items for %d", len(br.Items), items)
	}
	for _, it := range br.Items {
		for _, r := range it {
			switch st := r.Status; {
			case st >= 200 && st < 300:
				created++
			case st == http.StatusConflict:
				dup++
			case st == http.StatusTooManyRequests || st >= 500:
				again = true
			default:
				reason := ""
				if r.Error != nil {
					reason = r.Error.Type + ": " + r.Error.Reason
				}
				return 0, 0, false, fmt.Errorf("indexerbench: a document was refused (%d %s)", st, reason)
			}
		}
	}
	return created, dup, again, nil
}

// esClient returns a client set up as the indexer sets up its own: its
// retries off, workers+2 idle connections kept.
func esClient(url string, workers int) (*elasticsearch.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = workers + 2
	c, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{url}, Transport: tr, DisableRetry: true})
	if err != nil {
		return nil, fmt.Errorf("indexerbench: %w", err)
	}
	return c, nil
}

// esDo sends a request to Elasticsearch and decodes a JSON answer into out
// (when not nil); a status of 300 or more is an error.
func esDo(ctx context.Context, es *elasticsearch.Client, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, path, nil)
	if err != nil {
		return fmt.Errorf("indexerbench: %w", err)
	}
	res, err := es.Perform(req)
	if err != nil {
		return fmt.Errorf("indexerbench: %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		return fmt.Errorf("indexerbench: %s %s: %d %.300s", method, path, res.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("indexerbench: %s %s: %w", method, path, err)
		}
	}
	return nil
}

// countDocs refreshes the indices matching pattern and counts their
// documents.
func countDocs(ctx context.Context, es *elasticsearch.Client, pattern string) (int, error) {
	if err := esDo(ctx, es, http.MethodPost, "/"+pattern+"/_refresh", nil); err != nil {
		return 0, err
	}
	var c struct {
		Count int `json:"count"`
	}
	if err := esDo(ctx, es, http.MethodGet, "/"+pattern+"/_count", &c); err != nil {
		return 0, err
	}
	return c.Count, nil
}

// deleteIndices deletes the indices matching pattern, one by name
// (Elasticsearch 8 refuses wildcard deletes by default).
func deleteIndices(ctx context.Context, es *elasticsearch.Client, pattern string) error {
	var rows []struct {
		Index string `json:"index"`
	}
	if err := esDo(ctx, es, http.MethodGet, "/_cat/indices/"+pattern+"?format=json&expand_wildcards=all", &rows); err != nil {
		return err
	}
	for _, r := range rows {
		if err := esDo(ctx, es, http.MethodDelete, "/"+r.Index, nil); err != nil {
			return err
		}
	}
	return nil
}

// mappingOf returns the mappings of the one index matching pattern, as
// canonical JSON (keys sorted), so that two phases' indices can be checked
// to have the same fields.
func mappingOf(ctx context.Context, es *elasticsearch.Client, pattern string) (string, error) {
	var byIndex map[string]struct {
		Mappings any `json:"mappings"`
	}
	if err := esDo(ctx, es, http.MethodGet, "/"+pattern+"/_mapping", &byIndex); err != nil {
		return "", err
	}
	if len(byIndex) != 1 {
		return "", fmt.Errorf("indexerbench: %d indices match %s, want 1", len(byIndex), pattern)
	}
	for _, m := range byIndex {
		b, err := json.Marshal(m.Mappings)
		return string(b), err
	}
	return "", nil
}
