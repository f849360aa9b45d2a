package route

import (
	"errors"
	"strings"
	"testing"
	"time"

	"logpipe/indexer/document"
	"logpipe/pipeline/config"
)

func TestFormat(t *testing.T) {
	ts := time.Date(2026, 1, 4, 21, 5, 9, 123456789, time.FixedZone("X", -5*3600)) // 2026-01-05T02:05:09Z, a Monday
	body := []byte(`{"host":{"name":"web-1"},"n":42,"obj":{"a":1},"log":{"level":"error"},"nul":null}`)
	cases := []struct {
		format, want string
		err          error
	}{
		{"httpd_access-%{+YYYY.MM.dd}", "httpd_access-2026.01.05", nil},
		{"x-%{+yyyy.MM.dd}", "x-2026.01.05", nil},
		{"x-%{+YYYY.MM}", "x-2026.01", nil},
		{"x-%{+yy}", "x-26", nil},
		{"x-%{+xxxx.ww}", "x-2026.02", nil},
		{"x-%{+D}-%{+DDD}", "x-5-005", nil},
		{"x-%{+e}-%{+EEE}-%{+EEEE}", "x-1-Mon-Monday", nil},
		{"x-%{+MMM}-%{+MMMM}-%{+M}", "x-Jan-January-1", nil},
		{"x-%{+HH.mm.ss.SSS}", "x-02.05.09.123", nil},
		{"x-%{+h a k K}", "x-2 AM 2 2", nil},
		{"x-%{+Z ZZ z G}", "x-+0000 +00:00 UTC AD", nil},
		{"x-%{+yyyy-MM-dd'T'HH}", "x-2026-01-05T02", nil},
		{"x-%{+''yyyy''}", "x-'2026'", nil},
		{"x-%{[host][name]}-%{+YYYY}", "x-web-1-2026", nil},
		{"x-%{host.name}", "x-web-1", nil},
		{"x-%{[log.level]}", "x-error", nil},
		{"x-%{n}", "x-42", nil},
		{"x-%{missing}", "", ErrMissingField},
		{"x-%{obj}", "", ErrMissingField},
		{"x-%{nul}", "", ErrMissingField},
		{"static", "static", nil},
	}
	for _, c := range cases {
		f, err := ParseFormat(c.format)
		if err != nil {
			t.Errorf("ParseFormat(%q): %v", c.format, err)
			continue
		}
		got, err := f.Apply(ts, body)
		if !errors.Is(err, c.err) || (c.err == nil && err != nil) || got != c.want {
			t.Errorf("%q: got %q, %v; want %q, %v", c.format, got, err, c.want, c.err)
		}
	}
	for _, bad := range []string{"x-%{+YYYY", "x-%{+}", "x-%{+YYYY.qq}", "x-%{}", "x-%{+'T}"} {
		if _, err := ParseFormat(bad); err == nil {
			t.Errorf("ParseFormat(%q) accepted", bad)
		}
	}
	f, _ := ParseFormat("httpd_access-%{+YYYY.MM.dd}")
	if f.Pattern() != "httpd_access-*" || f.Prefix() != "httpd_access-" || !f.Static() {
		t.Errorf("pattern %q prefix %q static %v", f.Pattern(), f.Prefix(), f.Static())
	}
	f, _ = ParseFormat("fixed")
	if f.Pattern() != "fixed" {
		t.Errorf("pattern of a fixed name %q", f.Pattern())
	}
}

// TestMidnight is the Logstash behaviour: the date suffix is the UTC day of
// @timestamp, so the last and the first millisecond of two days part.
func TestMidnight(t *testing.T) {
	f, _ := ParseFormat("httpd_access-%{+YYYY.MM.dd}")
	for _, c := range []struct {
		ts   time.Time
		want string
	}{
		{time.Date(2026, 11, 21, 23, 59, 59, 999e6, time.UTC), "httpd_access-2026.11.21"},
		{time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC), "httpd_access-2026.11.22"},
		{time.Date(2026, 11, 22, 0, 30, 0, 0, time.FixedZone("CET", 3600)), "httpd_access-2026.11.21"},
		{time.Date(2026, 12, 31, 23, 59, 59, 999e6, time.UTC), "httpd_access-2026.12.31"},
		{time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), "httpd_access-2027.01.01"},
	} {
		if got, _ := f.Apply(c.ts, nil); got != c.want {
			t.Errorf("%v: %q, want %q", c.ts, got, c.want)
		}
	}
}

func TestValidateIndexName(t *testing.T) {
	ok := []string{"httpd_access-2026.11.21", "a", ".hidden", "ünïcode", "a+b", strings.Repeat("a", 255)}
	for _, n := range ok {
		if err := ValidateIndexName(n); err != nil {
			t.Errorf("%q refused: %v", n, err)
		}
	}
	bad := map[string]string{
		"":                        "empty",
		".":                       `"."`,
		"..":                      `".."`,
		"Httpd":                   "lowercase",
		"_x":                      "start",
		"-x":                      "start",
		"+x":                      "start",
		"a b":                     `' '`,
		"a,b":                     `','`,
		"a:b":                     `':'`,
		"a#b":                     `'#'`,
		"a*b":                     `'*'`,
		`a\b`:                     `'\\'`,
		"a/b":                     `'/'`,
		"a?b":                     `'?'`,
		`a"b`:                     `'"'`,
		"a<b":                     `'<'`,
		"a|b":                     `'|'`,
		strings.Repeat("a", 256):  "256 bytes",
		strings.Repeat("é", 128):  "256 bytes",
		"ÉCOLE":                   "lowercase",
		"\xff":                    "UTF-8",
		"x-%{[missing]}-ok-or-no": "", // % { [ ] are allowed by Elasticsearch
	}
	for n, want := range bad {
		err := ValidateIndexName(n)
		if want == "" {
			if err != nil {
				t.Errorf("%q refused: %v", n, err)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidIndexName) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error about %s", n, err, want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func doc(t *testing.T, ts time.Time, tags []string, body string) *document.Doc {
	t.Helper()
	return &document.Doc{Timestamp: ts, Tags: tags, Body: []byte(body)}
}

func TestRouter(t *testing.T) {
	r, err := New([]Spec{
		{Tag: "access", Index: "httpd_access-%{+YYYY.MM.dd}"},
		{Tag: "error", Index: "httpd_error-%{+YYYY.MM.dd}"},
		{Field: "http.response.status_code", Equals: ptr("500"), Index: "httpd_5xx-%{+YYYY.MM}"},
		{Field: "message", Contains: ptr("panic"), Index: "panics"},
		{Field: "labels", Contains: ptr("blue"), Index: "blue"},
		{Field: "user.name", Exists: ptr(true), Index: "users-%{[user.name]}"},
		{Field: "host.name", Exists: ptr(false), Index: "hostless"},
		{Tag: "dup", Index: "httpd_access-%{+YYYY.MM.dd}"},
		{Else: true, Index: "other-%{+YYYY.MM.dd}"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 11, 21, 23, 59, 59, 999e6, time.UTC)
	host := `"host":{"name":"h"}`
	cases := []struct {
		name string
		tags []string
		body string
		want []string // index names; "!name" for a target with an error
	}{
		{"access", []string{"access"}, `{` + host + `}`, []string{"httpd_access-2026.11.21"}},
		{"both tags go to both", []string{"error", "access"}, `{` + host + `}`, []string{"httpd_access-2026.11.21", "httpd_error-2026.11.21"}},
		{"field equals a number", nil, `{` + host + `,"http":{"response":{"status_code":500}}}`, []string{"httpd_5xx-2026.11"}},
		{"field equals no match", nil, `{` + host + `,"http":{"response":{"status_code":404}}}`, []string{"other-2026.11.21"}},
		{"contains text", nil, `{` + host + `,"message":"kernel panic!"}`, []string{"panics"}},
		{"contains in array", nil, `{` + host + `,"labels":["red","blue"]}`, []string{"blue"}},
		{"contains is no substring match in arrays", nil, `{` + host + `,"labels":["blueish"]}`, []string{"other-2026.11.21"}},
		{"exists with a field in the name", nil, `{` + host + `,"user":{"name":"frank"}}`, []string{"users-frank"}},
		{"a name Elasticsearch refuses", nil, `{` + host + `,"user":{"name":"Frank"}}`, []string{"!users-Frank"}},
		{"exists false", nil, `{}`, []string{"hostless"}},
		{"null does not exist", nil, `{"host":{"name":null}}`, []string{"hostless"}},
		{"same index from two routes is one target", []string{"access", "dup"}, `{` + host + `}`, []string{"httpd_access-2026.11.21"}},
		{"else", []string{"other"}, `{` + host + `}`, []string{"other-2026.11.21"}},
	}
	for _, c := range cases {
		got := r.Route(nil, doc(t, ts, c.tags, c.body))
		var names []string
		for _, tg := range got {
			if tg.Err != nil {
				names = append(names, "!"+tg.Index)
			} else {
				names = append(names, tg.Index)
			}
		}
		if strings.Join(names, " ") != strings.Join(c.want, " ") {
			t.Errorf("%s: %q, want %q", c.name, names, c.want)
		}
	}

	// Without an else route an unmatched document has no target.
	r2, _ := New([]Spec{{Tag: "access", Index: "a"}})
	if got := r2.Route(nil, doc(t, ts, []string{"x"}, `{}`)); len(got) != 0 {
		t.Errorf("unmatched document routed to %v", got)
	}
	// A missing field in the format is an error target.
	r3, _ := New([]Spec{{Tag: "x", Index: "a-%{[nope]}"}})
	if got := r3.Route(nil, doc(t, ts, []string{"x"}, `{}`)); len(got) != 1 || !errors.Is(got[0].Err, ErrMissingField) {
		t.Errorf("missing field: %v", got)
	}
}

func TestSpecValidate(t *testing.T) {
	cases := []struct {
		spec Spec
		want string // "" for valid; else a fragment of the error
	}{
		{Spec{Tag: "a", Index: "a-%{+YYYY}"}, ""},
		{Spec{Field: "a.b", Exists: ptr(true), Index: "a"}, ""},
		{Spec{Else: true, Index: "a"}, ""},
		{Spec{Index: "a"}, "needs a condition"},
		{Spec{Tag: "a", Else: true, Index: "a"}, "exactly one condition"},
		{Spec{Field: "a", Index: "a"}, "field: a field condition needs exactly one"},
		{Spec{Field: "a", Equals: ptr("x"), Exists: ptr(true), Index: "a"}, "field: a field condition needs exactly one"},
		{Spec{Tag: "a", Equals: ptr("x"), Index: "a"}, "equals: applies to a field condition"},
		{Spec{Tag: "a"}, "index: required"},
		{Spec{Tag: "a", Index: "Httpd-%{+YYYY}"}, "index: makes names such as \"Httpd-2026\", which Elasticsearch refuses: the name must be lowercase"},
		{Spec{Tag: "a", Index: "a-%{+YYYY.MM.dd HH}"}, "must not contain ' '"},
		{Spec{Tag: "a", Index: "a-%{+qq}"}, "unknown letter"},
		{Spec{Tag: "a", Index: "_a"}, "must not start"},
	}
	for _, c := range cases {
		err := c.spec.Validate()
		if c.want == "" {
			if err != nil {
				t.Errorf("%+v: %v", c.spec, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%+v accepted, want %q", c.spec, c.want)
			continue
		}
		var msgs []string
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var ke *config.KeyError
			if errors.As(e, &ke) {
				msgs = append(msgs, ke.Key+": "+ke.Msg)
			} else {
				msgs = append(msgs, e.Error())
			}
		}
		if !strings.Contains(strings.Join(msgs, "\n"), c.want) {
			t.Errorf("%+v: %q, want %q", c.spec, msgs, c.want)
		}
	}
	if _, err := New([]Spec{{Else: true, Index: "a"}, {Else: true, Index: "b"}}); err == nil {
		t.Error("two else routes accepted")
	}
}

func BenchmarkRouteDefault(b *testing.B) {
	r, _ := New([]Spec{
		{Tag: "access", Index: "httpd_access-%{+YYYY.MM.dd}"},
		{Tag: "error", Index: "httpd_error-%{+YYYY.MM.dd}"},
	})
	d := &document.Doc{Timestamp: time.Now(), Tags: []string{"access"}, Body: []byte(`{}`)}
	var dst []Target
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		dst = r.Route(dst[:0], d)
	}
}

// TestDailyNames routes documents back and forth across midnights (and
// before 1970) through a daily format, whose name per day the router keeps,
// and checks each name against the format's own; formats with hours or
// fields are not daily.
func TestDailyNames(t *testing.T) {
	r, err := New([]Spec{{Tag: "access", Index: "a-%{+YYYY.MM.dd}"}, {Tag: "access", Index: "b-%{+xxxx.ww}-%{+D}"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range r.Formats() {
		if !f.Daily() {
			t.Fatalf("%s is not daily", f)
		}
	}
	for _, src := range []string{"h-%{+YYYY.MM.dd.HH}", "f-%{[host][name]}-%{+YYYY}", "a-%{+a}"} {
		if f, err := ParseFormat(src); err != nil || f.Daily() {
			t.Fatalf("%s: daily %v, %v", src, f != nil && f.Daily(), err)
		}
	}
	midnight := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	epoch := time.Unix(0, 0).UTC()
	var targets []Target
	for _, ts := range []time.Time{
		midnight.Add(-time.Millisecond), midnight, midnight.Add(-time.Hour), midnight.Add(23 * time.Hour),
		midnight.Add(24 * time.Hour), epoch.Add(-time.Second), epoch, epoch.Add(-time.Second), midnight,
	} {
		targets = r.Route(targets[:0], doc(t, ts, []string{"access"}, `{}`))
		for i, f := range r.Formats() {
			want, _ := f.Apply(ts, nil)
			if len(targets) != 2 || targets[i].Index != want || targets[i].Err != nil {
				t.Fatalf("%v: targets %v, want %s from %s", ts, targets, want, f)
			}
		}
	}
}
