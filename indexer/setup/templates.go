// Package setup installs what Elasticsearch and Kibana need before the
// indexer's documents arrive, as `filebeat setup` does: composable index
// templates with explicit ECS mappings for the indices the routes write, one
// for the dead-letter index, and Kibana data views for both.
//
// Everything it sends is idempotent: templates are PUT under fixed names (a
// second run replaces them with the same content), and data views are
// created only when Kibana has none with the same title.
package setup

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"

	"github.com/elastic/go-elasticsearch/v8"
)

//go:embed templates/*.json
var files embed.FS

// Names of the component templates every index template is composed of.
const (
	SettingsComponent   = "logpipe-settings"
	ECSComponent        = "logpipe-ecs-mappings"
	DeadLetterComponent = "logpipe-dead-letter-mappings"
)

// Priority of the index templates: above the 100 of Elasticsearch's own
// built-in templates (logs-*-*, metrics-*-*), so that ours win for the
// patterns they cover.
const Priority = 200

// Version is written in each template's _meta, so that an operator can see
// which indexer release installed it.
const Version = 1

// Config says which templates to make.
type Config struct {
	// Patterns are the index patterns of the routes (httpd_access-*,
	// httpd_error-*); each gets an index template with the ECS mappings.
	Patterns []string
	// DeadLetterPattern is the pattern of the dead-letter indices.
	DeadLetterPattern string
	// Settings are index settings for every index the templates cover, in
	// flat ("index.number_of_shards") or nested form.
	Settings map[string]any
}

// Template is one template to install.
type Template struct {
	// Kind is "component" or "index".
	Kind string
	Name string
	Body []byte
}

// Path returns the template's REST path.
func (t Template) Path() string {
	if t.Kind == "component" {
		return "/_component_template/" + t.Name
	}
	return "/_index_template/" + t.Name
}

// TemplateName returns the index template name for an index pattern:
// "logpipe-" and the pattern's text before the first wildcard, without
// trailing separators ("httpd_access-*" gives "logpipe-httpd_access").
func TemplateName(pattern string) string {
	p := pattern
	if i := strings.IndexAny(p, "*?"); i >= 0 {
		p = p[:i]
	}
	p = strings.TrimRight(p, "-_.")
	if p == "" {
		p = "all"
	}
	if strings.HasPrefix(p, "logpipe-") {
		return p
	}
	return "logpipe-" + p
}

// Templates returns the templates for cfg, component templates first (an
// index template can only name components that exist).
func Templates(cfg Config) ([]Template, error) {
	ecs, err := files.ReadFile("templates/ecs-mappings.json")
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	dlq, err := files.ReadFile("templates/dead-letter-mappings.json")
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	settings := cfg.Settings
	if settings == nil {
		settings = map[string]any{}
	}
	sb, err := json.Marshal(map[string]any{
		"template": map[string]any{"settings": settings},
		"_meta":    map[string]any{"managed_by": "logpipe-indexer", "version": Version},
	})
	if err != nil {
		return nil, fmt.Errorf("setup: index settings: %w", err)
	}
	out := []Template{
		{Kind: "component", Name: SettingsComponent, Body: sb},
		{Kind: "component", Name: ECSComponent, Body: ecs},
		{Kind: "component", Name: DeadLetterComponent, Body: dlq},
	}
	seen := map[string]bool{}
	add := func(pattern, mappings string) error {
		name := TemplateName(pattern)
		if seen[name] {
			return nil
		}
		seen[name] = true
		b, err := json.Marshal(map[string]any{
			"index_patterns": []string{pattern},
			"composed_of":    []string{SettingsComponent, mappings},
			"priority":       Priority,
			"_meta":          map[string]any{"managed_by": "logpipe-indexer", "version": Version},
		})
		if err != nil {
			return fmt.Errorf("setup: %w", err)
		}
		out = append(out, Template{Kind: "index", Name: name, Body: b})
		return nil
	}
	patterns := append([]string(nil), cfg.Patterns...)
	sort.Strings(patterns)
	for _, p := range patterns {
		if p == cfg.DeadLetterPattern {
			continue
		}
		if err := add(p, ECSComponent); err != nil {
			return nil, err
		}
	}
	if cfg.DeadLetterPattern != "" {
		if err := add(cfg.DeadLetterPattern, DeadLetterComponent); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ErrUnreachable is matched by errors that come from not reaching
// Elasticsearch (or Kibana) at all, which are worth retrying.
var ErrUnreachable = errors.New("setup: not reachable")

// ErrRefused is matched by errors that come from Elasticsearch refusing
// the credentials (401) or the privileges (403): an operator can put that
// right on the Elasticsearch side, so the indexer waits rather than exits.
var ErrRefused = errors.New("setup: refused")

// statusErr returns the error for an answer that is neither success nor
// one the caller expects, wrapping ErrUnreachable or ErrRefused where
// those apply.
func statusErr(method, path, status string, code int, body []byte) error {
	b := bytes.TrimSpace(body)
	switch {
	case code >= 500:
		return fmt.Errorf("%w: %s %s: %s: %.300s", ErrUnreachable, method, path, status, b)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fmt.Errorf("%w: %s %s: %s: %.300s", ErrRefused, method, path, status, b)
	}
	return fmt.Errorf("%s %s: %s: %.300s", method, path, status, b)
}

// Install puts the templates of cfg into Elasticsearch. With overwrite false
// a template that exists already is left as it is (the indexer's start-up
// check); with true every template is written (`indexer setup`). It returns
// the names written.
func Install(ctx context.Context, client *elasticsearch.Client, cfg Config, overwrite bool, log *slog.Logger) ([]string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ts, err := Templates(cfg)
	if err != nil {
		return nil, err
	}
	var written []string
	for _, t := range ts {
		if !overwrite {
			exists, err := exists(ctx, client, t.Path())
			if err != nil {
				return written, fmt.Errorf("setup: %s template %s: %w", t.Kind, t.Name, err)
			}
			if exists {
				continue
			}
		}
		if err := put(ctx, client, t.Path(), t.Body); err != nil {
			return written, fmt.Errorf("setup: %s template %s: %w", t.Kind, t.Name, err)
		}
		log.Info("installed template", "kind", t.Kind, "name", t.Name)
		written = append(written, t.Name)
	}
	return written, nil
}

func exists(ctx context.Context, client *elasticsearch.Client, path string) (bool, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, path, nil)
	res, err := client.Perform(req)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
	switch res.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, statusErr(http.MethodGet, path, res.Status, res.StatusCode, b)
}

func put(ctx context.Context, client *elasticsearch.Client, path string, body []byte) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Perform(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4<<10))
	if res.StatusCode != http.StatusOK {
		return statusErr(http.MethodPut, path, res.Status, res.StatusCode, b)
	}
	return nil
}
