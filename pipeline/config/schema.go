package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
)

// schema describes where each configuration key lands in a Go value. A
// struct field's yaml tag may contain dots ("log.retention.hours"); the
// schema then holds virtual levels "log" and "retention" so that both the
// dotted and the nested spelling reach the field.
type schema struct {
	// children of a mapping level, by key component. Nil for leaves.
	children map[string]*schema
	// field is the index path to the struct field, for leaves and for
	// struct-typed fields that are also levels; nil for virtual levels.
	field []int
	// typ is the field's type (nil for virtual levels).
	typ reflect.Type
	// required marks fields tagged `config:"required"`.
	required bool
	// name is the full dotted key from the root of the struct type.
	name string
}

var schemaCache sync.Map // reflect.Type -> *schema

// schemaOf returns the schema of struct type t, building it once.
func schemaOf(t reflect.Type) *schema {
	if s, ok := schemaCache.Load(t); ok {
		return s.(*schema)
	}
	root := &schema{children: map[string]*schema{}}
	addFields(root, t, nil, "")
	s, _ := schemaCache.LoadOrStore(t, root)
	return s.(*schema)
}

func addFields(level *schema, t reflect.Type, index []int, prefix string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		idx := append(append([]int(nil), index...), i)
		if opts == "inline" || (f.Anonymous && name == "") {
			ft := f.Type
			if ft.Kind() == reflect.Struct {
				addFields(level, ft, idx, prefix)
				continue
			}
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		parts := strings.Split(name, ".")
		node := level
		full := prefix
		for j, p := range parts {
			if full != "" {
				full += "."
			}
			full += p
			child := node.children[p]
			if child == nil {
				child = &schema{name: full}
				if node.children == nil {
					node.children = map[string]*schema{}
				}
				node.children[p] = child
			}
			if j == len(parts)-1 {
				if child.field != nil {
					panic(fmt.Sprintf("config: key %q is declared twice in %s", full, t))
				}
				child.field = idx
				child.typ = f.Type
				child.required = strings.Contains(f.Tag.Get("config"), "required")
			}
			node = child
		}
		// A struct-typed field (not a decoder of its own) is also a level:
		// its own fields are its children.
		lt := f.Type
		if lt.Kind() == reflect.Pointer {
			lt = lt.Elem()
		}
		if isLevelStruct(lt) {
			addFields(node, lt, nil, node.name)
			node.typ = f.Type
		}
	}
}

// isLevelStruct reports whether t is a struct whose fields are addressed by
// key (rather than a value type with its own YAML decoding, like Duration).
func isLevelStruct(t reflect.Type) bool {
	if t.Kind() != reflect.Struct {
		return false
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return false
	}
	return t.PkgPath() != "time"
}

// childNames lists the immediate child keys of s.
func (s *schema) childNames() []string {
	out := make([]string, 0, len(s.children))
	for k := range s.children {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
