package route

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"logpipe/indexer/document"
)

// Format is a compiled index name pattern in Logstash's sprintf syntax:
// literal text with %{+DATE} (a Joda-Time date pattern applied to the
// event's @timestamp in UTC) and %{[field][path]} or %{field.path} (a field
// of the document) inserted.
//
// Date pattern letters, as Joda-Time reads them (and so Logstash):
// y or Y year (yy two digits), x week-year, M month (MM 01, MMM Jan, MMMM
// January), w week of week-year, d day of month, D day of year, e day of
// week (1 = Monday), E day name (EEE Mon, EEEE Monday), a AM/PM, H hour
// 0-23, k hour 1-24, h hour 1-12, K hour 0-11, m minute, s second, S
// fraction of a second, Z offset (always +0000; ZZ +00:00), z zone (UTC),
// G era (AD). Other letters are refused; other characters are copied, and
// text in single quotes ('T') is copied as it is (” is a quote).
type Format struct {
	src   string
	parts []part
	// prefix is the literal text before the first %{...}.
	prefix string
	// dated reports a date pattern among the parts.
	dated bool
	// fields lists the field references, for validation.
	fields []document.Path
	// daily reports a format whose names depend on nothing but the UTC
	// date: no fields, and no date letter finer than a day.
	daily bool
}

type partKind uint8

const (
	literal partKind = iota
	date
	field
)

type part struct {
	kind  partKind
	text  string        // literal text
	date  []dateToken   // date pattern
	field document.Path // field reference
}

type dateToken struct {
	letter byte // 0 for literal text
	count  int
	text   string
}

// ParseFormat compiles a format string.
func ParseFormat(s string) (*Format, error) {
	f := &Format{src: s}
	rest := s
	for rest != "" {
		i := strings.Index(rest, "%{")
		if i < 0 {
			f.parts = append(f.parts, part{kind: literal, text: rest})
			break
		}
		if i > 0 {
			f.parts = append(f.parts, part{kind: literal, text: rest[:i]})
		}
		end := strings.IndexByte(rest[i:], '}')
		// A field reference "[a][b]" holds no '}', so the first one closes it.
		if end < 0 {
			return nil, fmt.Errorf("route: %q: %%{ at byte %d is not closed by }", s, len(s)-len(rest)+i)
		}
		inner := rest[i+2 : i+end]
		rest = rest[i+end+1:]
		if pat, ok := strings.CutPrefix(inner, "+"); ok {
			toks, err := parseDate(pat)
			if err != nil {
				return nil, fmt.Errorf("route: %q: %w", s, err)
			}
			f.parts = append(f.parts, part{kind: date, date: toks})
			f.dated = true
			continue
		}
		p := document.ParsePath(inner)
		if len(p) == 0 || strings.ContainsAny(inner, "{%") {
			return nil, fmt.Errorf("route: %q: %%{%s} names no field", s, inner)
		}
		f.parts = append(f.parts, part{kind: field, field: p})
		f.fields = append(f.fields, p)
	}
	for _, p := range f.parts {
		if p.kind != literal {
			break
		}
		f.prefix += p.text
	}
	f.daily = len(f.fields) == 0
	for _, p := range f.parts {
		for _, tk := range p.date {
			if !strings.ContainsRune("\x00yYxMwdDeE", rune(tk.letter)) {
				f.daily = false
			}
		}
	}
	return f, nil
}

// Daily reports whether the names the format makes depend on nothing but
// the UTC date of @timestamp, so that one name serves a whole day.
func (f *Format) Daily() bool { return f.daily }

// String returns the format as written.
func (f *Format) String() string { return f.src }

// Prefix returns the literal text before the first %{...}: "httpd_access-"
// for "httpd_access-%{+YYYY.MM.dd}".
func (f *Format) Prefix() string { return f.prefix }

// Static reports whether the format has no field references, so that its
// name depends only on the time.
func (f *Format) Static() bool { return len(f.fields) == 0 }

// Pattern returns an index pattern covering every name the format makes:
// the literal prefix followed by "*", or the whole text when it has no
// %{...} at all.
func (f *Format) Pattern() string {
	if len(f.parts) == 1 && f.parts[0].kind == literal {
		return f.src
	}
	return f.prefix + "*"
}

// ErrMissingField is matched by Apply's error when the document lacks a
// field the format inserts, or the field is an object or array.
var ErrMissingField = errors.New("route: field for index name is missing")

// Apply formats the name for a document whose @timestamp is ts; body is
// the document, read for field references.
func (f *Format) Apply(ts time.Time, body []byte) (string, error) {
	if len(f.parts) == 1 && f.parts[0].kind == literal {
		return f.parts[0].text, nil
	}
	ts = ts.UTC()
	var b []byte
	for _, p := range f.parts {
		switch p.kind {
		case literal:
			b = append(b, p.text...)
		case date:
			b = appendDate(b, ts, p.date)
		case field:
			raw, ok := document.Lookup(body, p.field)
			if !ok {
				return "", fmt.Errorf("%w: %s is not in the document", ErrMissingField, p.field)
			}
			s, ok := document.Text(raw)
			if !ok {
				return "", fmt.Errorf("%w: %s is not a single value: %.100s", ErrMissingField, p.field, raw)
			}
			b = append(b, s...)
		}
	}
	return string(b), nil
}

func parseDate(pat string) ([]dateToken, error) {
	if pat == "" {
		return nil, errors.New("empty date pattern %{+}")
	}
	var toks []dateToken
	for i := 0; i < len(pat); {
		c := pat[i]
		switch {
		case c == '\'':
			// Quoted text; '' is a quote.
			j := i + 1
			var lit strings.Builder
			closed := false
			for j < len(pat) {
				if pat[j] == '\'' {
					if j+1 < len(pat) && pat[j+1] == '\'' {
						lit.WriteByte('\'')
						j += 2
						continue
					}
					closed = true
					j++
					break
				}
				lit.WriteByte(pat[j])
				j++
			}
			if !closed {
				return nil, fmt.Errorf("date pattern %q: quote not closed", pat)
			}
			if lit.Len() == 0 {
				lit.WriteByte('\'')
			}
			toks = append(toks, dateToken{text: lit.String()})
			i = j
		case isLetter(c):
			if !strings.ContainsRune("yYxMwdDeEaHkhKmsSZzG", rune(c)) {
				return nil, fmt.Errorf("date pattern %q: unknown letter %q", pat, c)
			}
			j := i
			for j < len(pat) && pat[j] == c {
				j++
			}
			toks = append(toks, dateToken{letter: c, count: j - i})
			i = j
		default:
			j := i
			for j < len(pat) && !isLetter(pat[j]) && pat[j] != '\'' {
				j++
			}
			toks = append(toks, dateToken{text: pat[i:j]})
			i = j
		}
	}
	return toks, nil
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// appendNum appends n zero-padded to width digits.
func appendNum(b []byte, n, width int) []byte {
	s := strconv.Itoa(n)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

func appendDate(b []byte, t time.Time, toks []dateToken) []byte {
	for _, tk := range toks {
		if tk.letter == 0 {
			b = append(b, tk.text...)
			continue
		}
		n := tk.count
		switch tk.letter {
		case 'y', 'Y':
			if n == 2 {
				b = appendNum(b, t.Year()%100, 2)
			} else {
				b = appendNum(b, t.Year(), n)
			}
		case 'x':
			y, _ := t.ISOWeek()
			if n == 2 {
				b = appendNum(b, y%100, 2)
			} else {
				b = appendNum(b, y, n)
			}
		case 'M':
			switch {
			case n >= 4:
				b = append(b, t.Month().String()...)
			case n == 3:
				b = append(b, t.Month().String()[:3]...)
			default:
				b = appendNum(b, int(t.Month()), n)
			}
		case 'w':
			_, w := t.ISOWeek()
			b = appendNum(b, w, n)
		case 'd':
			b = appendNum(b, t.Day(), n)
		case 'D':
			b = appendNum(b, t.YearDay(), n)
		case 'e':
			wd := int(t.Weekday())
			if wd == 0 {
				wd = 7
			}
			b = appendNum(b, wd, n)
		case 'E':
			if n >= 4 {
				b = append(b, t.Weekday().String()...)
			} else {
				b = append(b, t.Weekday().String()[:3]...)
			}
		case 'a':
			if t.Hour() < 12 {
				b = append(b, "AM"...)
			} else {
				b = append(b, "PM"...)
			}
		case 'H':
			b = appendNum(b, t.Hour(), n)
		case 'k':
			h := t.Hour()
			if h == 0 {
				h = 24
			}
			b = appendNum(b, h, n)
		case 'h':
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			b = appendNum(b, h, n)
		case 'K':
			b = appendNum(b, t.Hour()%12, n)
		case 'm':
			b = appendNum(b, t.Minute(), n)
		case 's':
			b = appendNum(b, t.Second(), n)
		case 'S':
			frac := appendNum(nil, t.Nanosecond(), 9)
			for i := 0; i < n; i++ {
				if i < len(frac) {
					b = append(b, frac[i])
				} else {
					b = append(b, '0')
				}
			}
		case 'Z':
			if n == 2 {
				b = append(b, "+00:00"...)
			} else if n >= 3 {
				b = append(b, "UTC"...)
			} else {
				b = append(b, "+0000"...)
			}
		case 'z':
			b = append(b, "UTC"...)
		case 'G':
			b = append(b, "AD"...)
		}
	}
	return b
}
