package document

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// validCases are inputs on both sides of encoding/json.Valid's line.
var validCases = []string{
	`{}`, ` {"a" : [1, -2.5e+3, 0, true, false, null, "x\u00e9\n"] } `, `[]`, `[ ]`, `"s"`, `-0`, `0.5E-7`,
	`{"a":1,}`, `[1,]`, `{"a"}`, `{"a":}`, `{,}`, `01`, `-`, `1.`, `.5`, `1e`, `1e+`, `+1`, `tru`, `nul`, `True`,
	`"\x"`, `"\u12"`, `"\u12G4"`, "\"ctl\x01\"", "\"bad \xff utf8\"", `"unterminated`, `{"a":1}x`, `[1 2]`, ``, ` `,
	`{"a":{"b":[{"c":"\""}]}}`, `[[[[]]]]`, `[[[[]]]`, `{"a":1`, "\t\r\n[1]\n",
}

func TestValidJSONMatchesEncodingJSON(t *testing.T) {
	for _, c := range validCases {
		if got, want := validJSON([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("validJSON(%q) = %v, encoding/json says %v", c, got, want)
		}
	}
	// encoding/json refuses nesting beyond 10,000 levels.
	for _, depth := range []int{maxDepth, maxDepth + 1} {
		for _, open := range []string{"[", `{"k":`} {
			closeBy := map[string]string{"[": "]", `{"k":`: "}"}[open]
			v := []byte(strings.Repeat(open, depth) + "1" + strings.Repeat(closeBy, depth))
			if got, want := validJSON(v), json.Valid(v); got != want {
				t.Errorf("validJSON at depth %d of %q = %v, encoding/json says %v", depth, open, got, want)
			}
		}
	}
}

// FuzzValidJSON checks validJSON against encoding/json.Valid, and its
// finding of repeated keys against encoding/json's tokens (on UTF-8 input:
// encoding/json turns every invalid byte into the same U+FFFD).
func FuzzValidJSON(f *testing.F) {
	for _, c := range validCases {
		f.Add([]byte(c))
	}
	f.Add(shipped(accessLine, "access"))
	f.Add([]byte(`{"a":{"b":1,"\u0062":2}}`))
	f.Fuzz(func(t *testing.T, v []byte) {
		valid, dup := checkJSON(v)
		if want := json.Valid(v); valid != want {
			t.Fatalf("validJSON(%q) = %v, encoding/json says %v", v, valid, want)
		}
		if valid && utf8.Valid(v) {
			err := checkDuplicates(v)
			if err != nil && !strings.HasPrefix(err.Error(), "duplicate key") {
				return // a token encoding/json cannot hold (a number past float64)
			}
			if want := err != nil; dup != want {
				t.Fatalf("checkJSON(%q) finds repeated keys: %v, encoding/json's tokens: %v", v, dup, want)
			}
		}
	})
}

// BenchmarkValidJSON compares validJSON with encoding/json.Valid on record
// values as the shipper writes them: an access line, an error line, and a
// line with escapes and non-ASCII text. The figures in valid.go's comment
// come from it.
func BenchmarkValidJSON(b *testing.B) {
	values := []struct {
		name  string
		value []byte
	}{
		{"access", shipped(accessLine, "access")},
		{"error", shipped(errorLine, "error")},
		{"escaped", shipped("GET /caf\u00e9 \"Ünïcödé\"\twith\ttabs \x01 and 日本語 text", "access", "odd")},
	}
	checks := []struct {
		name  string
		valid func([]byte) bool
	}{
		{"validJSON", validJSON},
		{"encoding-json", json.Valid},
	}
	for _, v := range values {
		for _, c := range checks {
			b.Run(v.name+"/"+c.name, func(b *testing.B) {
				b.SetBytes(int64(len(v.value)))
				for b.Loop() {
					if !c.valid(v.value) {
						b.Fatalf("%s refused %s", c.name, v.value)
					}
				}
			})
		}
	}
}
