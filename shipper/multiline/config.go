package multiline

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"logpipe/pipeline/config"
)

// Defaults for the keys a multiline section may leave out, as Filebeat has
// them.
const (
	DefaultMaxLines = 500
	DefaultTimeout  = 5 * time.Second
)

// Config is an input's `multiline` section, in Filebeat's words:
//
//	multiline:
//	  pattern: '^[[:space:]]'   # a Go regexp (RE2), with POSIX classes
//	  negate: false
//	  match: after              # or before
//	  max_lines: 500
//	  timeout: 5s
//
// A line "matches" when pattern finds it, inverted by negate. With match
// after, consecutive matching lines are appended to the line before them
// that does not match; with match before, consecutive matching lines are
// put in front of the next line that does not match.
type Config struct {
	// Type is "pattern", the only kind supported; empty means pattern.
	Type string `yaml:"type"`
	// Pattern is the regular expression; required.
	Pattern string `yaml:"pattern"`
	// Negate inverts the pattern.
	Negate bool `yaml:"negate"`
	// Match is "after" or "before"; required.
	Match string `yaml:"match"`
	// MaxLines is the most lines joined into one event (default 500); the
	// lines beyond it are left out of the event, which is flagged
	// "truncated".
	MaxLines int `yaml:"max_lines"`
	// Timeout sends a pending group when no line has come for this long
	// (default 5s).
	Timeout config.Duration `yaml:"timeout"`
}

// Validate checks the section and compiles its pattern.
func (c *Config) Validate() error {
	var errs []error
	switch strings.ToLower(c.Type) {
	case "", "pattern":
	default:
		errs = append(errs, config.Errorf("type", "only the pattern type is supported, not %q", c.Type))
	}
	if c.Pattern == "" {
		errs = append(errs, config.Errorf("pattern", "required key is missing"))
	} else if _, err := compile(c.Pattern); err != nil {
		errs = append(errs, config.Errorf("pattern", "%v", err))
	}
	switch c.Match {
	case "after", "before":
	case "":
		errs = append(errs, config.Errorf("match", "required key is missing (after or before)"))
	default:
		errs = append(errs, config.Errorf("match", "want after or before, got %q", c.Match))
	}
	if c.MaxLines < 0 {
		errs = append(errs, config.Errorf("max_lines", "must not be negative"))
	}
	if c.Timeout < 0 {
		errs = append(errs, config.Errorf("timeout", "must not be negative"))
	}
	return errors.Join(errs...)
}

// compile compiles a pattern as Filebeat users write them: Go's RE2 syntax,
// which already knows the POSIX classes such as [[:space:]].
func compile(pattern string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return nil, fmt.Errorf("multiline: bad pattern %q: %w", pattern, err)
	}
	return re, nil
}
