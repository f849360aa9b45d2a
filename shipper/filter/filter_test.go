package filter

import (
	"regexp"
	"testing"
)

func res(exprs ...string) []*regexp.Regexp {
	var out []*regexp.Regexp
	for _, e := range exprs {
		out = append(out, regexp.MustCompile(e))
	}
	return out
}

func TestLines(t *testing.T) {
	cases := []struct {
		name             string
		include, exclude []string
		keep, drop       []string
	}{
		{"none keeps all", nil, nil, []string{"a", ""}, nil},
		{"include", []string{"^GET", "^POST"}, nil, []string{"GET /", "POST /x"}, []string{"HEAD /", " GET"}},
		{"exclude", nil, []string{"healthcheck"}, []string{"GET /"}, []string{"GET /healthcheck"}},
		{"include then exclude", []string{"^GET"}, []string{"\\.png"}, []string{"GET /a"}, []string{"GET /a.png", "POST /b"}},
	}
	for _, c := range cases {
		f := Lines{Include: res(c.include...), Exclude: res(c.exclude...)}
		for _, s := range c.keep {
			if !f.Keep([]byte(s)) {
				t.Errorf("%s: dropped %q", c.name, s)
			}
		}
		for _, s := range c.drop {
			if f.Keep([]byte(s)) {
				t.Errorf("%s: kept %q", c.name, s)
			}
		}
	}
}
