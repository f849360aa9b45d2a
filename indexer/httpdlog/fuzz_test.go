package httpdlog

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"
)

// seedAccess and seedError add the table and corpus lines to a fuzz target's
// seeds, besides the files under testdata/fuzz.
func seedAccess(f *testing.F) {
	for _, c := range accessCases {
		f.Add(c.line)
	}
	for _, c := range badAccessLines {
		f.Add(c.line)
	}
	for _, l := range readLines(f, "access.log") {
		f.Add(l)
	}
}

func seedError(f *testing.F) {
	for _, c := range errorCases {
		f.Add(c.line)
	}
	for _, c := range badErrorLines {
		f.Add(c.line)
	}
	for _, l := range readLines(f, "error.log") {
		f.Add(l)
	}
}

// validStrings fails unless every string field of the struct v points to is
// valid UTF-8.
func validStrings(t *testing.T, v any) {
	t.Helper()
	rv := reflect.ValueOf(v).Elem()
	for i := 0; i < rv.NumField(); i++ {
		if f := rv.Field(i); f.Kind() == reflect.String && !utf8.ValidString(f.String()) {
			t.Errorf("%s is not valid UTF-8: %q", rv.Type().Field(i).Name, f.String())
		}
	}
}

func FuzzParseAccess(f *testing.F) {
	seedAccess(f)
	f.Fuzz(func(t *testing.T, line string) {
		var a Access
		err := ParseAccess(line, &a)

		// Deterministic, and the same with a reused Access whose last line
		// had another zone.
		reused := Access{}
		_ = ParseAccess(`1.2.3.4 - - [10/Oct/2000:13:55:36 +0930] "GET / HTTP/1.0" 200 1`, &reused)
		err2 := ParseAccess(line, &reused)
		if (err == nil) != (err2 == nil) {
			t.Fatalf("errors differ: %v / %v", err, err2)
		}
		doc := accessDoc(&a)
		if doc2 := accessDoc(&reused); !bytes.Equal(doc, doc2) {
			t.Fatalf("documents differ:\n%s\n%s", doc, doc2)
		}
		if !a.Timestamp.Equal(reused.Timestamp) {
			t.Fatalf("timestamps differ: %v / %v", a.Timestamp, reused.Timestamp)
		}

		if err != nil {
			if !errors.Is(err, ErrNoMatch) {
				t.Fatalf("error %v does not match ErrNoMatch", err)
			}
			a.zone, a.zoneOff = nil, 0
			if a != (Access{}) {
				t.Fatalf("refused line left fields: %+v", a)
			}
			return
		}
		validStrings(t, &a)
		if err := checkDoc(doc); err != nil {
			t.Fatal(err)
		}
		if a.StatusCode < 100 || a.StatusCode > 999 || a.BodyBytes < 0 || a.SourceAddress == "" {
			t.Fatalf("implausible fields: %+v", a)
		}
		if a.Format == 0 {
			t.Fatalf("no format: %+v", a)
		}
		// A trailing newline changes nothing.
		var nl Access
		if endsEOL(line) {
			return
		}
		if err := ParseAccess(line+"\n", &nl); err != nil || !bytes.Equal(accessDoc(&nl), doc) {
			t.Fatalf("with newline: %v\n%s\n%s", err, accessDoc(&nl), doc)
		}
	})
}

func FuzzParseError(f *testing.F) {
	seedError(f)
	loc := time.FixedZone("X", -3*3600-1800)
	f.Fuzz(func(t *testing.T, line string) {
		var e Error
		err := ParseError(line, loc, &e)

		reused := Error{Message: "stale", PID: 9}
		err2 := ParseError(line, loc, &reused)
		if (err == nil) != (err2 == nil) || e != reused {
			t.Fatalf("not deterministic: %v / %v\n%+v\n%+v", err, err2, e, reused)
		}
		if err != nil {
			if !errors.Is(err, ErrNoMatch) {
				t.Fatalf("error %v does not match ErrNoMatch", err)
			}
			if e != (Error{}) {
				t.Fatalf("refused line left fields: %+v", e)
			}
			return
		}
		validStrings(t, &e)
		if err := checkDoc(errorDoc(&e)); err != nil {
			t.Fatal(err)
		}
		if e.Format == 0 || e.Level == "" || e.Timestamp.Location() != loc {
			t.Fatalf("no format, level or location: %+v", e)
		}
		if e.SourcePort < 0 || e.SourcePort > 65535 || (e.SourceIP != "" && e.SourceAddress == "") {
			t.Fatalf("implausible source: %+v", e)
		}
		var nl Error
		if endsEOL(line) {
			return
		}
		if err := ParseError(line+"\r\n", loc, &nl); err != nil || nl != e {
			t.Fatalf("with CRLF: %v\n%+v\n%+v", err, nl, e)
		}
	})
}

// FuzzParse checks the dispatcher: it never panics, and what it accepts is
// what the parser of that kind accepts.
func FuzzParse(f *testing.F) {
	seedAccess(f)
	seedError(f)
	f.Fuzz(func(t *testing.T, line string) {
		var a, a2 Access
		var e, e2 Error
		k, err := Parse(line, nil, &a, &e)
		switch k {
		case KindAccess:
			if err != nil || ParseAccess(line, &a2) != nil || !bytes.Equal(accessDoc(&a), accessDoc(&a2)) {
				t.Fatalf("access: %v", err)
			}
		case KindError:
			if err != nil || ParseError(line, nil, &e2) != nil || e != e2 {
				t.Fatalf("error: %v", err)
			}
		default:
			if err == nil || ParseAccess(line, &a2) == nil || ParseError(line, nil, &e2) == nil {
				t.Fatalf("none: %v", err)
			}
		}
	})
}

func endsEOL(s string) bool {
	return len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r')
}
