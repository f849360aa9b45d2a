package setup

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
)

// Kibana creates data views through Kibana's HTTP API:
//
//	GET  {url}[/s/{space}]/api/data_views               -> {"data_view":[{"id","title",...}]}
//	POST {url}[/s/{space}]/api/data_views/data_view     <- {"data_view":{"id","title","name","timeFieldName"}}
//
// Every request carries the kbn-xsrf header Kibana requires of API calls
// that change state, and the credentials given (basic or ApiKey).
type Kibana struct {
	// URL is Kibana's base address, e.g. http://127.0.0.1:5601.
	URL string
	// Space is the Kibana space; empty means the default space.
	Space string
	// Username and Password, or APIKey (base64 "id:key", as Elasticsearch
	// issues it), authenticate; all empty means none.
	Username, Password, APIKey string
	// Client sends the requests; nil means http.DefaultClient.
	Client *http.Client
}

// TimeField is the time field of every data view.
const TimeField = "@timestamp"

// DataViewID returns the id given to the data view of pattern, so that a
// second run, or two indexers running setup at once, cannot make two.
func DataViewID(pattern string) string { return TemplateName(pattern) }

func (k *Kibana) endpoint(path string) string {
	base := strings.TrimRight(k.URL, "/")
	if k.Space != "" {
		base += "/s/" + url.PathEscape(k.Space)
	}
	return base + path
}

func (k *Kibana) do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, fmt.Errorf("setup: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, k.endpoint(path), rd)
	if err != nil {
		return 0, nil, fmt.Errorf("setup: kibana: %w", err)
	}
	req.Header.Set("kbn-xsrf", "true")
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case k.APIKey != "":
		req.Header.Set("Authorization", "ApiKey "+k.APIKey)
	case k.Username != "":
		req.SetBasicAuth(k.Username, k.Password)
	}
	c := k.Client
	if c == nil {
		c = http.DefaultClient
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: kibana: %v", ErrUnreachable, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("%w: kibana: %v", ErrUnreachable, err)
	}
	if res.StatusCode >= 500 {
		return res.StatusCode, b, fmt.Errorf("%w: kibana: %s %s: %s %.300s", ErrUnreachable, method, path, res.Status, b)
	}
	return res.StatusCode, b, nil
}

// DataViews returns the titles of the data views Kibana has.
func (k *Kibana) DataViews(ctx context.Context) (map[string]string, error) {
	code, body, err := k.do(ctx, http.MethodGet, "/api/data_views", nil)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("setup: kibana: GET /api/data_views: %d: %.300s", code, body)
	}
	var list struct {
		DataView []struct {
			ID    string `json:"id"`
			Title string `json:"title"`
		} `json:"data_view"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("setup: kibana: GET /api/data_views: %w", err)
	}
	out := map[string]string{}
	for _, v := range list.DataView {
		out[v.Title] = v.ID
	}
	return out, nil
}

// EnsureDataViews creates a data view with @timestamp as its time field for
// each pattern that has none with that title, and returns the patterns it
// created.
func (k *Kibana) EnsureDataViews(ctx context.Context, patterns []string, log *slog.Logger) ([]string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	have, err := k.DataViews(ctx)
	if err != nil {
		return nil, err
	}
	var created []string
	for _, p := range patterns {
		if _, ok := have[p]; ok {
			log.Info("Kibana data view exists", "title", p)
			continue
		}
		req := map[string]any{
			"data_view": map[string]any{
				"id":            DataViewID(p),
				"title":         p,
				"name":          p,
				"timeFieldName": TimeField,
			},
		}
		code, body, err := k.do(ctx, http.MethodPost, "/api/data_views/data_view", req)
		if err != nil {
			return created, err
		}
		switch code {
		case http.StatusOK:
			log.Info("created Kibana data view", "title", p, "id", DataViewID(p))
			created = append(created, p)
			have[p] = DataViewID(p)
		case http.StatusConflict:
			// Made meanwhile (same id), by another indexer's setup.
			log.Info("Kibana data view exists", "title", p)
		default:
			return created, fmt.Errorf("setup: kibana: creating data view %s: %d: %.300s", p, code, body)
		}
	}
	return created, nil
}
