// Package telemetry sets up what every logpipe binary reports about itself:
// structured logs (log/slog) and an HTTP server with Prometheus /metrics,
// /healthz and /readyz.
package telemetry

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"logpipe/pipeline/config"
)

// LogConfig is the `logging` section of every binary's config.
type LogConfig struct {
	// Level is debug, info (the default), warn or error.
	Level string `yaml:"level"`
	// Format is text (the default) or json.
	Format string `yaml:"format"`
	// JSON is Filebeat's spelling of format: json.
	JSON bool `yaml:"json"`
}

// Validate checks the level and format names.
func (c *LogConfig) Validate() error {
	if _, err := parseLevel(c.Level); err != nil {
		return config.Errorf("level", "%v", err)
	}
	switch strings.ToLower(c.Format) {
	case "", "text", "json":
	default:
		return config.Errorf("format", "want text or json, got %q", c.Format)
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("unknown level %q (want debug, info, warn or error)", s)
}

// NewLogger returns a logger writing to w as c says. The binary's name is
// attached to every record as "service".
func NewLogger(c LogConfig, service string, w io.Writer) (*slog.Logger, error) {
	lvl, err := parseLevel(c.Level)
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	var h slog.Handler
	if c.JSON || strings.EqualFold(c.Format, "json") {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h).With("service", service), nil
}

// Config is the telemetry part every binary's config embeds (inline):
// `logging.*` and `http.*`.
type Config struct {
	Logging LogConfig  `yaml:"logging"`
	HTTP    HTTPConfig `yaml:"http"`
}

// Telemetry returns c itself; binaries embed Config so that their config
// types provide it to cli.Main.
func (c *Config) Telemetry() *Config { return c }
