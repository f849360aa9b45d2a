package input

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"logpipe/pipeline/config"
	"logpipe/shipper/lines"
	"logpipe/shipper/multiline"
)

// Defaults of the per-input keys, as Filebeat's log input has them.
const (
	DefaultMaxBytes      = 10 << 20
	DefaultCloseInactive = 5 * time.Minute
	DefaultScanFrequency = 10 * time.Second
)

// Config is one entry of `filebeat.inputs` (or the legacy
// `filebeat.prospectors`), written as a Filebeat user writes it. Both input
// types, log and filestream, read files the same way here; the filestream
// spellings of a few keys (parsers, prospector.scanner.*, close.on_state_change.*,
// message_max_bytes) are accepted beside the log input's.
//
// Zero values mean the documented default; use Resolve for the effective
// settings.
type Config struct {
	// Type is log (the default) or filestream.
	Type string `yaml:"type"`
	// ID names the input in logs and metrics (filestream requires one in
	// Filebeat; here it is optional).
	ID string `yaml:"id"`
	// Enabled turns the input off when false (default true).
	Enabled *bool `yaml:"enabled"`
	// Paths are glob patterns of the files to read; `**` matches any depth
	// of folders.
	Paths []string `yaml:"paths"`
	// ExcludeFiles are regular expressions; a path that any matches is
	// not read.
	ExcludeFiles []string `yaml:"exclude_files"`
	// Tags are added to every event.
	Tags []string `yaml:"tags"`
	// Fields are added to every event under "fields", or at the top level
	// with FieldsUnderRoot.
	Fields          map[string]any `yaml:"fields"`
	FieldsUnderRoot bool           `yaml:"fields_under_root"`
	// IncludeLines and ExcludeLines are regular expressions applied to each
	// event after multiline joining: when IncludeLines is set only matching
	// events are sent, then any event ExcludeLines matches is dropped.
	IncludeLines []string `yaml:"include_lines"`
	ExcludeLines []string `yaml:"exclude_lines"`
	// Multiline joins several lines into one event.
	Multiline *multiline.Config `yaml:"multiline"`
	// Encoding of the file: utf-8 (the default), plain, or latin1.
	Encoding string `yaml:"encoding"`
	// MaxBytes is the longest message sent (default 10 MiB); the rest of a
	// longer line is skipped and the event flagged "truncated".
	MaxBytes config.ByteSize `yaml:"max_bytes"`
	// IgnoreOlder skips files not modified for this long (0: off).
	IgnoreOlder config.Duration `yaml:"ignore_older"`
	// CloseInactive closes a file that has not grown for this long
	// (default 5m); it is opened again when it changes.
	CloseInactive config.Duration `yaml:"close_inactive"`
	// CloseRemoved closes a removed file once it is read to its end
	// (default true); false keeps it open until CloseInactive.
	CloseRemoved *bool `yaml:"close_removed"`
	// CloseRenamed closes a renamed file once it is read to its end
	// (default false).
	CloseRenamed bool `yaml:"close_renamed"`
	// CloseEOF closes a file as soon as it is read to its end.
	CloseEOF bool `yaml:"close_eof"`
	// CleanRemoved forgets the registry state of files that are gone from
	// disk (default true).
	CleanRemoved *bool `yaml:"clean_removed"`
	// CleanInactive forgets the state of files not modified for this long
	// (0: off). It must exceed ignore_older + scan_frequency.
	CleanInactive config.Duration `yaml:"clean_inactive"`
	// ScanFrequency is how often paths are globbed again (default 10s);
	// file system notifications make most changes visible sooner.
	ScanFrequency config.Duration `yaml:"scan_frequency"`
	// HarvesterLimit caps the files this input reads at once (0: no cap).
	HarvesterLimit int `yaml:"harvester_limit"`
	// TailFiles starts files found at the first start at their end
	// instead of their beginning. Files that appear later are always read
	// from the beginning.
	TailFiles bool `yaml:"tail_files"`

	// Filestream spellings.

	// Parsers holds filestream's `parsers: [{multiline: {...}}]`.
	Parsers []Parser `yaml:"parsers"`
	// Prospector holds prospector.scanner.check_interval and
	// prospector.scanner.exclude_files.
	Prospector struct {
		Scanner struct {
			CheckInterval config.Duration `yaml:"check_interval"`
			ExcludeFiles  []string        `yaml:"exclude_files"`
		} `yaml:"scanner"`
	} `yaml:"prospector"`
	// Close holds close.on_state_change.{inactive,removed,renamed}.
	Close struct {
		OnStateChange struct {
			Inactive config.Duration `yaml:"inactive"`
			Removed  *bool           `yaml:"removed"`
			Renamed  *bool           `yaml:"renamed"`
		} `yaml:"on_state_change"`
	} `yaml:"close"`
	// MessageMaxBytes is filestream's name for max_bytes.
	MessageMaxBytes config.ByteSize `yaml:"message_max_bytes"`
}

// Parser is one entry of filestream's parsers list. Only multiline is
// supported.
type Parser struct {
	Multiline *multiline.Config `yaml:"multiline"`
}

// Settings are an input's effective settings, with defaults applied and
// regular expressions compiled.
type Settings struct {
	Type            string
	ID              string
	Enabled         bool
	Paths           []string
	ExcludeFiles    []*regexp.Regexp
	Tags            []string
	Fields          map[string]any
	FieldsUnderRoot bool
	IncludeLines    []*regexp.Regexp
	ExcludeLines    []*regexp.Regexp
	Multiline       *multiline.Config
	Encoding        lines.Encoding
	MaxBytes        int
	IgnoreOlder     time.Duration
	CloseInactive   time.Duration
	CloseRemoved    bool
	CloseRenamed    bool
	CloseEOF        bool
	CleanRemoved    bool
	CleanInactive   time.Duration
	ScanFrequency   time.Duration
	HarvesterLimit  int
	TailFiles       bool
}

// Validate checks the input; every problem is reported.
func (c *Config) Validate() error {
	_, err := c.Resolve()
	return err
}

// Resolve returns the effective settings, or every problem found as
// config KeyErrors.
func (c *Config) Resolve() (*Settings, error) {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, config.Errorf(key, format, args...))
	}
	s := &Settings{
		Type:            strings.ToLower(c.Type),
		ID:              c.ID,
		Enabled:         c.Enabled == nil || *c.Enabled,
		Paths:           c.Paths,
		Tags:            c.Tags,
		Fields:          c.Fields,
		FieldsUnderRoot: c.FieldsUnderRoot,
		Multiline:       c.Multiline,
		MaxBytes:        int(c.MaxBytes),
		IgnoreOlder:     c.IgnoreOlder.D(),
		CloseInactive:   c.CloseInactive.D(),
		CloseRemoved:    c.CloseRemoved == nil || *c.CloseRemoved,
		CloseRenamed:    c.CloseRenamed,
		CloseEOF:        c.CloseEOF,
		CleanRemoved:    c.CleanRemoved == nil || *c.CleanRemoved,
		CleanInactive:   c.CleanInactive.D(),
		ScanFrequency:   c.ScanFrequency.D(),
		HarvesterLimit:  c.HarvesterLimit,
		TailFiles:       c.TailFiles,
	}
	switch s.Type {
	case "":
		s.Type = "log"
	case "log", "filestream":
	default:
		bad("type", "unsupported input type %q (want log or filestream)", c.Type)
	}

	// Filestream spellings, each refused when its log-input twin is set too.
	both := func(a, b string) { bad(b, "is the filestream spelling of %s; set only one of them", a) }
	for i, p := range c.Parsers {
		if p.Multiline == nil {
			bad(fmt.Sprintf("parsers[%d]", i), "only the multiline parser is supported")
			continue
		}
		if s.Multiline != nil {
			both("multiline", fmt.Sprintf("parsers[%d].multiline", i))
			continue
		}
		s.Multiline = p.Multiline
	}
	if sc := c.Prospector.Scanner; sc.CheckInterval != 0 {
		if s.ScanFrequency != 0 {
			both("scan_frequency", "prospector.scanner.check_interval")
		}
		s.ScanFrequency = sc.CheckInterval.D()
	}
	excludeFiles := c.ExcludeFiles
	if sc := c.Prospector.Scanner; len(sc.ExcludeFiles) > 0 {
		if len(excludeFiles) > 0 {
			both("exclude_files", "prospector.scanner.exclude_files")
		}
		excludeFiles = sc.ExcludeFiles
	}
	osc := c.Close.OnStateChange
	if osc.Inactive != 0 {
		if s.CloseInactive != 0 {
			both("close_inactive", "close.on_state_change.inactive")
		}
		s.CloseInactive = osc.Inactive.D()
	}
	if osc.Removed != nil {
		if c.CloseRemoved != nil {
			both("close_removed", "close.on_state_change.removed")
		}
		s.CloseRemoved = *osc.Removed
	}
	if osc.Renamed != nil {
		s.CloseRenamed = *osc.Renamed
	}
	if c.MessageMaxBytes != 0 {
		if s.MaxBytes != 0 {
			both("max_bytes", "message_max_bytes")
		}
		s.MaxBytes = int(c.MessageMaxBytes)
	}

	// Defaults.
	if s.MaxBytes == 0 {
		s.MaxBytes = DefaultMaxBytes
	}
	if s.CloseInactive == 0 {
		s.CloseInactive = DefaultCloseInactive
	}
	if s.ScanFrequency == 0 {
		s.ScanFrequency = DefaultScanFrequency
	}

	if s.Enabled && len(c.Paths) == 0 {
		bad("paths", "required key is missing: list the files to read (globs allowed)")
	}
	for i, p := range c.Paths {
		if err := checkGlob(p); err != nil {
			bad(fmt.Sprintf("paths[%d]", i), "%v", err)
		}
	}
	compileAll := func(key string, exprs []string) []*regexp.Regexp {
		var out []*regexp.Regexp
		for i, e := range exprs {
			re, err := regexp.Compile(e)
			if err != nil {
				bad(fmt.Sprintf("%s[%d]", key, i), "bad regular expression: %v", err)
				continue
			}
			out = append(out, re)
		}
		return out
	}
	exKey := "exclude_files"
	if len(c.ExcludeFiles) == 0 && len(c.Prospector.Scanner.ExcludeFiles) > 0 {
		exKey = "prospector.scanner.exclude_files"
	}
	s.ExcludeFiles = compileAll(exKey, excludeFiles)
	s.IncludeLines = compileAll("include_lines", c.IncludeLines)
	s.ExcludeLines = compileAll("exclude_lines", c.ExcludeLines)

	enc, err := lines.ParseEncoding(c.Encoding)
	if err != nil {
		bad("encoding", "%v", err)
	}
	s.Encoding = enc

	if s.MaxBytes < 0 {
		bad("max_bytes", "must not be negative")
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"ignore_older", s.IgnoreOlder}, {"close_inactive", s.CloseInactive}, {"clean_inactive", s.CleanInactive}, {"scan_frequency", s.ScanFrequency}} {
		if d.v < 0 {
			bad(d.key, "must not be negative")
		}
	}
	if s.HarvesterLimit < 0 {
		bad("harvester_limit", "must not be negative (0 means no limit)")
	}
	if s.CleanInactive > 0 {
		if s.IgnoreOlder == 0 {
			bad("clean_inactive", "needs ignore_older, and must be greater than ignore_older + scan_frequency")
		} else if s.CleanInactive <= s.IgnoreOlder+s.ScanFrequency {
			bad("clean_inactive", "must be greater than ignore_older + scan_frequency (%v + %v)", s.IgnoreOlder, s.ScanFrequency)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}
