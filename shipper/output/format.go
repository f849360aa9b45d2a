package output

import (
	"errors"
	"fmt"
	"strings"
)

// Format is a Beats format string: literal text with field references
// %{[path.to.field]} and, for events without the field,
// %{[path.to.field]:default}.
type Format struct {
	text  string
	parts []formatPart
}

type formatPart struct {
	lit    string // literal text, when field is ""
	field  string
	def    string
	hasDef bool
}

// ParseFormat compiles a format string.
func ParseFormat(s string) (*Format, error) {
	f := &Format{text: s}
	rest := s
	for rest != "" {
		i := strings.Index(rest, "%{")
		if i < 0 {
			f.parts = append(f.parts, formatPart{lit: rest})
			break
		}
		if i > 0 {
			f.parts = append(f.parts, formatPart{lit: rest[:i]})
		}
		rest = rest[i+2:]
		j := strings.IndexByte(rest, '}')
		if j < 0 {
			return nil, fmt.Errorf("output: format %q: %%{ without its closing }", s)
		}
		ref := rest[:j]
		rest = rest[j+1:]
		if !strings.HasPrefix(ref, "[") {
			return nil, fmt.Errorf("output: format %q: want a field reference such as %%{[fields.name]}, got %%{%s}", s, ref)
		}
		end := strings.IndexByte(ref, ']')
		if end < 0 {
			return nil, fmt.Errorf("output: format %q: [ without its closing ]", s)
		}
		p := formatPart{field: ref[1:end]}
		if p.field == "" {
			return nil, fmt.Errorf("output: format %q: empty field name", s)
		}
		tail := ref[end+1:]
		switch {
		case tail == "":
		case strings.HasPrefix(tail, ":"):
			p.def, p.hasDef = tail[1:], true
		default:
			return nil, fmt.Errorf("output: format %q: unexpected %q after the field reference", s, tail)
		}
		f.parts = append(f.parts, p)
	}
	return f, nil
}

// String returns the format as written.
func (f *Format) String() string { return f.text }

// Static returns the format's text and true when it has no field
// references.
func (f *Format) Static() (string, bool) {
	for _, p := range f.parts {
		if p.field != "" {
			return "", false
		}
	}
	return f.text, true
}

// ErrMissingField is returned by Eval for a field that the event lacks and
// the format gives no default for.
var ErrMissingField = errors.New("output: event has no such field")

// Eval fills in the format with lookup, which returns the text of a field
// by its dotted path and whether the event has it.
func (f *Format) Eval(lookup func(path string) (string, bool)) (string, error) {
	if len(f.parts) == 1 && f.parts[0].field == "" {
		return f.parts[0].lit, nil
	}
	var b strings.Builder
	for _, p := range f.parts {
		if p.field == "" {
			b.WriteString(p.lit)
			continue
		}
		v, ok := lookup(p.field)
		if !ok {
			if !p.hasDef {
				return "", fmt.Errorf("%w: %s", ErrMissingField, p.field)
			}
			v = p.def
		}
		b.WriteString(v)
	}
	return b.String(), nil
}
