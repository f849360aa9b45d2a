package route

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"

	"logpipe/indexer/document"
)

// Router applies an ordered list of routes. It is immutable and safe for
// concurrent use.
type Router struct {
	routes []compiled
	orElse *compiled
}

type compiled struct {
	spec   Spec
	format *Format
	path   document.Path
	// day holds the target of the latest day, for a daily format: most
	// documents in a row fall on the same day, and formatting and checking
	// the name each time is a good part of routing.
	day *atomic.Pointer[dayTarget]
}

// dayTarget is a daily format's target for one UTC day.
type dayTarget struct {
	day    int64 // days since 1970-01-01 UTC
	target Target
}

// New compiles specs, which must have passed Validate.
func New(specs []Spec) (*Router, error) {
	r := &Router{}
	for i, s := range specs {
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("route: routes[%d]: %w", i, err)
		}
		f, err := ParseFormat(s.Index)
		if err != nil {
			return nil, err
		}
		c := compiled{spec: s, format: f, path: document.ParsePath(s.Field), day: new(atomic.Pointer[dayTarget])}
		if s.Else {
			if r.orElse != nil {
				return nil, errors.New("route: more than one else route")
			}
			r.orElse = &c
			continue
		}
		r.routes = append(r.routes, c)
	}
	return r, nil
}

// Formats returns the index formats of every route, in order, the else
// route last.
func (r *Router) Formats() []*Format {
	var out []*Format
	for _, c := range r.routes {
		out = append(out, c.format)
	}
	if r.orElse != nil {
		out = append(out, r.orElse.format)
	}
	return out
}

// Target is one index a document goes to.
type Target struct {
	// Index is the formatted index name; when Err is set it is the name
	// that was refused, or the format when no name could be made.
	Index string
	// Err says why the document cannot go to Index (a name Elasticsearch
	// would refuse, a field the format needs is missing); such documents
	// go to the dead-letter index with the reason.
	Err error
}

// Route appends to dst the targets of d, one per matching route in order
// (the else route when none matched), and returns the extended slice. No
// target appended means the document matched no route. Two routes that
// make the same index name give one target.
func (r *Router) Route(dst []Target, d *document.Doc) []Target {
	start := len(dst)
	for i := range r.routes {
		c := &r.routes[i]
		if c.match(d) {
			dst = appendTarget(dst, start, c.target(d))
		}
	}
	if len(dst) == start && r.orElse != nil {
		dst = append(dst, r.orElse.target(d))
	}
	return dst
}

func appendTarget(dst []Target, start int, t Target) []Target {
	for _, have := range dst[start:] {
		if have.Index == t.Index && have.Err == nil && t.Err == nil {
			return dst
		}
	}
	return append(dst, t)
}

func (c *compiled) target(d *document.Doc) Target {
	if !c.format.Daily() {
		return c.make(d)
	}
	day := d.Timestamp.Unix() / 86400
	if d.Timestamp.Unix()%86400 < 0 {
		day-- // before 1970: round down
	}
	if dt := c.day.Load(); dt != nil && dt.day == day {
		return dt.target
	}
	t := c.make(d)
	c.day.Store(&dayTarget{day: day, target: t})
	return t
}

// make formats and checks the index name for d.
func (c *compiled) make(d *document.Doc) Target {
	name, err := c.format.Apply(d.Timestamp, d.Body)
	if err != nil {
		return Target{Index: c.format.String(), Err: err}
	}
	if err := ValidateIndexName(name); err != nil {
		return Target{Index: name, Err: err}
	}
	return Target{Index: name}
}

func (c *compiled) match(d *document.Doc) bool {
	s := &c.spec
	if s.Tag != "" {
		return slices.Contains(d.Tags, s.Tag)
	}
	raw, ok := document.Lookup(d.Body, c.path)
	if ok && string(raw) == "null" {
		ok = false
	}
	switch {
	case s.Exists != nil:
		return ok == *s.Exists
	case !ok:
		return false
	case s.Equals != nil:
		v, scalar := document.Text(raw)
		return scalar && v == *s.Equals
	case s.Contains != nil:
		if v, scalar := document.Text(raw); scalar {
			return strings.Contains(v, *s.Contains)
		}
		for _, e := range document.Elements(raw) {
			if v, scalar := document.Text(e); scalar && v == *s.Contains {
				return true
			}
		}
	}
	return false
}
