package config

import (
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// expandEnv replaces ${VAR} and ${VAR:default} in every scalar value below
// n. A variable that is unset and has no default is an error naming the key.
// A plain (unquoted) scalar that changed loses its tag, so "${PORT}" can
// fill an integer field.
func (d *decoder) expandEnv(n *yaml.Node) {
	switch n.Kind {
	case yaml.ScalarNode:
		if !strings.Contains(n.Value, "${") {
			return
		}
		out, missing := Expand(n.Value, os.LookupEnv)
		if missing != "" {
			d.errAt(n, "", "environment variable %s is not set and has no default (write ${%s:default})", missing, missing)
			return
		}
		if out != n.Value {
			n.Value = out
			if n.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
				n.Tag = ""
			}
		}
	case yaml.MappingNode:
		// Only values are expanded; keys stay as written.
		for i := 1; i < len(n.Content); i += 2 {
			d.expandEnv(n.Content[i])
		}
	case yaml.SequenceNode, yaml.DocumentNode:
		for _, c := range n.Content {
			d.expandEnv(c)
		}
	}
}

// Expand replaces ${VAR} and ${VAR:default} in s using lookup; "$${" is a
// literal "${". It returns the first variable that is unset and has no
// default, if any.
func Expand(s string, lookup func(string) (string, bool)) (out, missing string) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), missing
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			b.WriteString(s)
			return b.String(), missing
		}
		b.WriteString(s[:i])
		expr := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(expr, ":")
		if v, ok := lookup(name); ok {
			b.WriteString(v)
		} else if hasDef {
			b.WriteString(def)
		} else if missing == "" {
			missing = name
		}
		s = s[i+end+1:]
	}
}
