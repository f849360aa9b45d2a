// Package route decides which Elasticsearch indices a document goes to, as
// the conditionals of a Logstash output section do:
//
//	if "access" in [tags] { elasticsearch { index => "httpd_access-%{+YYYY.MM.dd}" } }
//	if "error"  in [tags] { elasticsearch { index => "httpd_error-%{+YYYY.MM.dd}" } }
//
// Routes are checked in order and every route whose condition holds gets
// the document, so an event tagged both access and error goes to both
// indices. An "else" route gets the documents no other route took. A
// document that no route takes is unrouted: the caller counts and drops it.
//
// Index names are formatted (Format) and checked against Elasticsearch's
// rules (ValidateIndexName) before anything is sent; a name Elasticsearch
// would refuse comes back as a Target with Err set, for the dead-letter
// index.
package route

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"logpipe/indexer/document"
	"logpipe/pipeline/config"
)

// Spec is one route as written in the configuration: exactly one condition
// (tag, field, or else) and an index format:
//
//	routes:
//	  - tag: access
//	    index: "httpd_access-%{+YYYY.MM.dd}"
//	  - field: http.response.status_code
//	    equals: "500"
//	    index: "httpd_5xx-%{+YYYY.MM}"
//	  - else: true
//	    index: "other-%{+YYYY.MM.dd}"
type Spec struct {
	// Tag matches documents whose tags include it.
	Tag string `yaml:"tag"`
	// Field names a document field (log.level or [log][level]) tested by
	// exactly one of Equals, Contains and Exists.
	Field string `yaml:"field"`
	// Equals matches a field whose value, as text, is exactly this (a
	// number compares by its JSON spelling: "404").
	Equals *string `yaml:"equals"`
	// Contains matches a string field holding this text, or an array field
	// with an element equal to it (Logstash's "x" in [field]).
	Contains *string `yaml:"contains"`
	// Exists matches documents that have the field (true) or lack it (false).
	Exists *bool `yaml:"exists"`
	// Else matches documents no other route matched.
	Else bool `yaml:"else"`
	// Index is the index name format (see Format).
	Index string `yaml:"index"`
}

// Validate checks that the route has one condition and a usable index.
func (s *Spec) Validate() error {
	var errs []error
	conds := 0
	if s.Tag != "" {
		conds++
	}
	if s.Field != "" {
		conds++
	}
	if s.Else {
		conds++
	}
	tests := 0
	for _, set := range []bool{s.Equals != nil, s.Contains != nil, s.Exists != nil} {
		if set {
			tests++
		}
	}
	switch {
	case conds == 0:
		errs = append(errs, errors.New("a route needs a condition: tag, field or else"))
	case conds > 1:
		errs = append(errs, errors.New("a route has exactly one condition: tag, field or else"))
	}
	if s.Field != "" && tests != 1 {
		errs = append(errs, config.Errorf("field", "a field condition needs exactly one of equals, contains or exists"))
	}
	if s.Field == "" && tests > 0 {
		key := "equals"
		if s.Contains != nil {
			key = "contains"
		} else if s.Exists != nil {
			key = "exists"
		}
		errs = append(errs, config.Errorf(key, "applies to a field condition; set field too"))
	}
	if s.Field != "" && len(document.ParsePath(s.Field)) == 0 {
		errs = append(errs, config.Errorf("field", "names no field"))
	}
	if s.Index == "" {
		errs = append(errs, config.Errorf("index", "required: the index name format, e.g. httpd_access-%%{+YYYY.MM.dd}"))
	} else if err := CheckFormat(s.Index); err != nil {
		errs = append(errs, config.Errorf("index", "%v", err))
	}
	return errors.Join(errs...)
}

// CheckFormat parses an index format and checks that the names it makes
// can be valid: it formats a sample time, with every field reference
// standing for "x", and validates the result.
func CheckFormat(s string) error {
	f, err := ParseFormat(s)
	if err != nil {
		return err
	}
	sample := []byte("{}")
	if len(f.fields) > 0 {
		var b strings.Builder
		b.WriteString("{")
		for i, p := range f.fields {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, "%q:\"x\"", p.String())
		}
		b.WriteString("}")
		sample = []byte(b.String())
	}
	name, err := f.Apply(time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC), sample)
	if err != nil {
		return err
	}
	if err := ValidateIndexName(name); err != nil {
		return fmt.Errorf("makes names such as %q, which Elasticsearch refuses: the name %v", name, strings.TrimPrefix(err.Error(), "route: "))
	}
	return nil
}

// Elasticsearch's rules for index names (MetadataCreateIndexService).
const maxIndexNameBytes = 255

// ErrInvalidIndexName is matched by every error ValidateIndexName returns.
var ErrInvalidIndexName = errors.New("route: invalid index name")

type nameError struct{ msg string }

func (e *nameError) Error() string        { return "route: " + e.msg }
func (e *nameError) Is(target error) bool { return target == ErrInvalidIndexName }

// ValidateIndexName returns nil when Elasticsearch would accept name as an
// index name, else an error (matching ErrInvalidIndexName) saying why: it
// must be non-empty, lower case, at most 255 bytes, not "." or "..", must
// not start with '_', '-' or '+', and must not contain \ / * ? " < > | , #
// : or a space.
func ValidateIndexName(name string) error {
	switch {
	case name == "":
		return &nameError{"must not be empty"}
	case name == "." || name == "..":
		return &nameError{`must not be "." or ".."`}
	case len(name) > maxIndexNameBytes:
		return &nameError{fmt.Sprintf("is %d bytes long, more than %d", len(name), maxIndexNameBytes)}
	case !utf8.ValidString(name):
		return &nameError{"must be valid UTF-8"}
	case strings.ToLower(name) != name:
		return &nameError{"must be lowercase"}
	case name[0] == '_' || name[0] == '-' || name[0] == '+':
		return &nameError{fmt.Sprintf("must not start with %q", name[0])}
	}
	if i := strings.IndexAny(name, "\\/*?\"<>|, #:"); i >= 0 {
		return &nameError{fmt.Sprintf("must not contain %q", name[i])}
	}
	return nil
}
