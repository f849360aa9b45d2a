package output

import (
	"errors"
	"testing"
)

func TestFormat(t *testing.T) {
	fields := map[string]string{"fields.log_topic": "httpd_access", "host.name": "web-1"}
	lookup := func(p string) (string, bool) { v, ok := fields[p]; return v, ok }
	cases := []struct {
		format, want string
		static       bool
		missing      bool
	}{
		{format: "httpd", want: "httpd", static: true},
		{format: "%{[fields.log_topic]}", want: "httpd_access"},
		{format: "logs-%{[host.name]}-x", want: "logs-web-1-x"},
		{format: "%{[fields.nope]:fallback}", want: "fallback"},
		{format: "%{[fields.nope]:}", want: ""},
		{format: "%{[fields.nope]}", missing: true},
	}
	for _, c := range cases {
		f, err := ParseFormat(c.format)
		if err != nil {
			t.Fatalf("%q: %v", c.format, err)
		}
		if _, ok := f.Static(); ok != c.static {
			t.Errorf("%q: static %v", c.format, ok)
		}
		got, err := f.Eval(lookup)
		if c.missing {
			if !errors.Is(err, ErrMissingField) {
				t.Errorf("%q: err %v", c.format, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %q %v", c.format, got, err)
		}
	}
	for _, bad := range []string{"%{fields.x}", "%{[fields.x", "%{[]}", "%{[a]x}", "%{+yyyy.MM.dd}"} {
		if _, err := ParseFormat(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
