// Package config loads logpipe's YAML configuration files into plain Go
// structs, the way Filebeat and Kafka users expect to write them:
//
//   - Dotted and nested keys mean the same: `output.kafka.hosts: [...]` and
//     `output: {kafka: {hosts: [...]}}` fill the same field. A struct field's
//     yaml tag may itself be dotted (`yaml:"log.retention.hours"`), which is
//     how Kafka-style keys are declared.
//   - Keys the struct does not declare are errors, with the nearest known
//     key suggested. Inside a map-typed field keys are free.
//   - `${VAR}` and `${VAR:default}` in values are replaced from the
//     environment before decoding; `$${` stands for a literal `${`.
//   - Duration and ByteSize accept "10s" and "10MiB" forms.
//   - A field tagged `config:"required"` must be present.
//   - `-E key=value` overrides (Load's overrides) are applied after the file.
//
// Every problem found is reported, each on one line of the form
// `FILE:LINE:COL: KEY: message`, and all of them together in one error.
// After decoding, any struct in the value that implements Validator is
// checked; a KeyError it returns gets the key's position filled in.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Validator is implemented by config structs that check their own values
// after decoding. Return KeyErrors (joined with errors.Join for several) so
// that messages name the key and its place in the file.
type Validator interface {
	Validate() error
}

// KeyError is one configuration problem tied to a key. File, Line and
// Column are zero when the key does not appear in any file (a default).
type KeyError struct {
	File   string
	Line   int
	Column int
	Key    string
	Msg    string
}

// Error formats the problem as FILE:LINE:COL: KEY: message.
func (e *KeyError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errorf returns a KeyError for key, for use in Validate methods.
func Errorf(key, format string, args ...any) *KeyError {
	return &KeyError{Key: key, Msg: fmt.Sprintf(format, args...)}
}

// Errors is the list of problems Load found. Its Error is one line per
// problem.
type Errors []*KeyError

// Error joins the problems, one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes the individual problems to errors.As and errors.Is.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Position is where a key was written.
type Position struct {
	File   string
	Line   int
	Column int
}

// Load reads the YAML file at path (skipped when path is empty) and then
// the -E style overrides ("key=value", value in YAML syntax) into dst, which
// must be a pointer to a struct already holding the defaults. It returns the
// position of every key that was set, for later messages.
func Load(path string, overrides []string, dst any) (map[string]Position, error) {
	var data []byte
	if path != "" {
		var err error
		data, err = os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	return LoadBytes(path, data, overrides, dst)
}

// LoadBytes is Load with the file's content given; name is used in
// messages.
func LoadBytes(name string, data []byte, overrides []string, dst any) (map[string]Position, error) {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		panic("config: Load needs a pointer to a struct")
	}
	d := &decoder{file: name, pos: map[string]Position{}}
	root := rv.Elem()
	sch := schemaOf(root.Type())

	if len(bytes.TrimSpace(data)) > 0 {
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			return nil, Errors{syntaxError(name, err)}
		}
		if len(doc.Content) > 0 {
			top := doc.Content[0]
			d.expandEnv(top)
			if top.Kind == yaml.MappingNode {
				d.mapping(sch, root, top, "")
			} else if !isNull(top) {
				d.errAt(top, "", "the top level must be a mapping of keys to values")
			}
		}
	}
	for _, ov := range overrides {
		d.override(sch, root, ov)
	}
	if len(d.errs) == 0 {
		d.required(sch, root, "")
	}
	if len(d.errs) == 0 {
		d.validate(root, "")
	}
	if len(d.errs) > 0 {
		return d.pos, d.errs
	}
	return d.pos, nil
}

func syntaxError(file string, err error) *KeyError {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, tail, ok := strings.Cut(rest, ":"); ok {
			if v, err := strconv.Atoi(n); err == nil {
				line = v
				msg = strings.TrimSpace(tail)
			}
		}
	}
	return &KeyError{File: file, Line: line, Column: 1, Msg: "invalid YAML: " + msg}
}

type decoder struct {
	file string
	errs Errors
	pos  map[string]Position
}

func (d *decoder) errAt(n *yaml.Node, key, format string, args ...any) {
	d.errs = append(d.errs, &KeyError{File: d.file, Line: n.Line, Column: n.Column, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

// mapping decodes the pairs of a YAML mapping into the struct sv at the
// schema level lvl. prefix is the full key of the mapping itself.
func (d *decoder) mapping(lvl *schema, sv reflect.Value, n *yaml.Node, prefix string) {
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errAt(k, prefix, "keys must be plain strings")
			continue
		}
		d.assign(lvl, sv, k, k.Value, v, prefix)
	}
}

// assign resolves a (possibly dotted) key below lvl and decodes v into the
// field it names.
func (d *decoder) assign(lvl *schema, sv reflect.Value, keyNode *yaml.Node, key string, v *yaml.Node, prefix string) {
	parts := strings.Split(key, ".")
	cur, curStruct, full := lvl, sv, prefix
	for i, p := range parts {
		child := cur.children[p]
		full = join(full, p)
		if child == nil {
			d.unknown(keyNode, cur, full, p)
			return
		}
		if child.field != nil {
			fv := curStruct.FieldByIndex(child.field)
			last := i == len(parts)-1
			if last {
				d.pos[full] = Position{d.file, keyNode.Line, keyNode.Column}
				d.value(fv, v, full)
				return
			}
			// More key parts follow: descend into a struct field or a map.
			switch {
			case child.children != nil:
				curStruct = settableStruct(fv)
			case fv.Kind() == reflect.Map:
				rest := strings.Join(parts[i+1:], ".")
				d.pos[join(full, rest)] = Position{d.file, keyNode.Line, keyNode.Column}
				d.mapEntry(fv, rest, v, join(full, rest))
				return
			default:
				d.errAt(keyNode, full, "is a single value, so %q cannot be set below it", strings.Join(parts[i+1:], "."))
				return
			}
		}
		cur = child
	}
	// The key named a level (a struct or a virtual level): v must map it.
	d.pos[full] = Position{d.file, keyNode.Line, keyNode.Column}
	if isNull(v) {
		return
	}
	if v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	if v.Kind != yaml.MappingNode {
		d.errAt(v, full, "want a mapping of keys (%s), got %s", strings.Join(cur.childNames(), ", "), describe(v))
		return
	}
	d.mapping(cur, curStruct, v, full)
}

// settableStruct returns the struct behind fv, allocating a nil pointer.
func settableStruct(fv reflect.Value) reflect.Value {
	if fv.Kind() == reflect.Pointer {
		if fv.IsNil() {
			fv.Set(reflect.New(fv.Type().Elem()))
		}
		return fv.Elem()
	}
	return fv
}

func (d *decoder) unknown(keyNode *yaml.Node, lvl *schema, full, part string) {
	msg := "unknown key"
	if s := suggest(part, lvl.childNames()); s != "" {
		prefix := strings.TrimSuffix(full, part)
		msg += fmt.Sprintf("; did you mean %q?", prefix+s)
	} else if len(lvl.children) > 0 {
		msg += fmt.Sprintf(" (known here: %s)", strings.Join(lvl.childNames(), ", "))
	}
	d.errAt(keyNode, full, "%s", msg)
}

func (d *decoder) mapEntry(mv reflect.Value, key string, v *yaml.Node, full string) {
	if mv.IsNil() {
		mv.Set(reflect.MakeMap(mv.Type()))
	}
	if mv.Type().Key().Kind() != reflect.String {
		d.errAt(v, full, "internal: map keys must be strings")
		return
	}
	ev := reflect.New(mv.Type().Elem()).Elem()
	if old := mv.MapIndex(reflect.ValueOf(key).Convert(mv.Type().Key())); old.IsValid() {
		ev.Set(old)
	}
	d.value(ev, v, full)
	mv.SetMapIndex(reflect.ValueOf(key).Convert(mv.Type().Key()), ev)
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		return fmt.Sprintf("%s %q", strings.TrimPrefix(n.ShortTag(), "!!"), n.Value)
	}
	return "an unsupported node"
}

// value decodes n into v, whatever v's type.
func (d *decoder) value(v reflect.Value, n *yaml.Node, full string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		if isNull(n) {
			return
		}
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.errAt(n, full, "%s", cleanYAMLError(err))
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.value(v.Elem(), n, full)
		return
	case reflect.Struct:
		if isLevelStruct(v.Type()) {
			if isNull(n) {
				return
			}
			if n.Kind != yaml.MappingNode {
				d.errAt(n, full, "want a mapping, got %s", describe(n))
				return
			}
			d.mapping(schemaOf(v.Type()), v, n, full)
			return
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			break // []byte decodes from a scalar
		}
		if isNull(n) {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		items := n.Content
		if n.Kind == yaml.ScalarNode {
			items = []*yaml.Node{n} // a single value stands for a one-item list
		} else if n.Kind != yaml.SequenceNode {
			d.errAt(n, full, "want a list, got %s", describe(n))
			return
		}
		out := reflect.MakeSlice(v.Type(), len(items), len(items))
		for i, item := range items {
			d.pos[fmt.Sprintf("%s[%d]", full, i)] = Position{d.file, item.Line, item.Column}
			d.value(out.Index(i), item, fmt.Sprintf("%s[%d]", full, i))
		}
		v.Set(out)
		return
	case reflect.Map:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.errAt(n, full, "want a mapping, got %s", describe(n))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			d.mapEntry(v, k.Value, n.Content[i+1], join(full, k.Value))
		}
		return
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			d.errAt(n, full, "%s", cleanYAMLError(err))
			return
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		} else {
			v.Set(reflect.Zero(v.Type()))
		}
		return
	}
	if isNull(n) {
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.errAt(n, full, "want %s, got %s", kindName(v.Type()), describe(n))
		return
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		d.errAt(n, full, "want %s, got %s", kindName(v.Type()), describe(n))
	}
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return "a " + t.String()
}

func cleanYAMLError(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n")
	return strings.TrimSpace(msg)
}

// override applies one -E key=value.
func (d *decoder) override(sch *schema, root reflect.Value, ov string) {
	key, val, ok := strings.Cut(ov, "=")
	key = strings.TrimSpace(key)
	ovFile := d.file
	d.file = "-E"
	defer func() { d.file = ovFile }()
	if !ok || key == "" {
		d.errs = append(d.errs, &KeyError{File: "-E", Msg: fmt.Sprintf("%q is not key=value", ov)})
		return
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(val), &doc); err != nil {
		d.errs = append(d.errs, &KeyError{File: "-E", Key: key, Msg: "invalid YAML value: " + strings.TrimPrefix(err.Error(), "yaml: ")})
		return
	}
	v := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: ""}
	if len(doc.Content) > 0 {
		v = doc.Content[0]
	}
	d.expandEnv(v)
	kn := &yaml.Node{Kind: yaml.ScalarNode, Value: key}
	n := len(d.errs)
	d.assign(sch, root, kn, key, v, "")
	// Positions inside a one-line override mean nothing: drop them.
	for _, e := range d.errs[n:] {
		e.File, e.Line, e.Column = "-E", 0, 0
	}
}

// required reports required fields that no key set.
func (d *decoder) required(lvl *schema, sv reflect.Value, prefix string) {
	for _, name := range lvl.childNames() {
		c := lvl.children[name]
		full := join(prefix, name)
		if c.required {
			if _, ok := d.pos[full]; !ok {
				fv := sv.FieldByIndex(c.field)
				if fv.IsZero() {
					d.errs = append(d.errs, d.missing(full))
				}
			}
		}
		next := sv
		if c.field != nil {
			if c.children == nil {
				d.requiredIn(sv.FieldByIndex(c.field), full)
				continue
			}
			next = sv.FieldByIndex(c.field)
			if next.Kind() == reflect.Pointer {
				if next.IsNil() {
					continue
				}
				next = next.Elem()
			}
		}
		d.required(c, next, full)
	}
}

// requiredIn descends into slices and maps of structs.
func (d *decoder) requiredIn(v reflect.Value, full string) {
	switch v.Kind() {
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			d.requiredIn(v.Index(i), fmt.Sprintf("%s[%d]", full, i))
		}
	case reflect.Map:
		it := v.MapRange()
		for it.Next() {
			d.requiredIn(it.Value(), join(full, fmt.Sprint(it.Key().Interface())))
		}
	case reflect.Pointer:
		if !v.IsNil() {
			d.requiredIn(v.Elem(), full)
		}
	case reflect.Struct:
		if isLevelStruct(v.Type()) {
			d.required(schemaOf(v.Type()), v, full)
		}
	}
}

// missing reports a missing key at the position of its closest written
// parent, or at the top of the file.
func (d *decoder) missing(full string) *KeyError {
	e := &KeyError{File: d.file, Line: 1, Column: 1, Key: full, Msg: "required key is missing"}
	for p := full; p != ""; {
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
		if pos, ok := d.pos[p]; ok {
			e.File, e.Line, e.Column = pos.File, pos.Line, pos.Column
			break
		}
	}
	return e
}

// validate calls Validate on every Validator in the value, innermost
// first, and places their KeyErrors.
func (d *decoder) validate(v reflect.Value, prefix string) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			d.validate(v.Elem(), prefix)
		}
		return
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.Uint8 {
			for i := 0; i < v.Len(); i++ {
				d.validate(v.Index(i), fmt.Sprintf("%s[%d]", prefix, i))
			}
		}
		return
	case reflect.Map:
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, k := range keys {
			d.validate(v.MapIndex(k), join(prefix, fmt.Sprint(k.Interface())))
		}
		return
	case reflect.Struct:
		if !isLevelStruct(v.Type()) {
			break
		}
		sch := schemaOf(v.Type())
		d.validateFields(sch, v, prefix)
		d.validateInline(v, prefix)
	default:
		return
	}
	if v.CanAddr() {
		if val, ok := v.Addr().Interface().(Validator); ok {
			d.place(val.Validate(), prefix)
		}
	}
}

// validateInline calls Validate on structs inlined into v: their fields
// were visited as v's own, but their Validate method was not.
func (d *decoder) validateInline(v reflect.Value, prefix string) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		_, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || f.Type.Kind() != reflect.Struct || !(opts == "inline" || f.Anonymous && f.Tag.Get("yaml") == "") {
			continue
		}
		fv := v.Field(i)
		d.validateInline(fv, prefix)
		if val, ok := fv.Addr().Interface().(Validator); ok {
			d.place(val.Validate(), prefix)
		}
	}
}

func (d *decoder) validateFields(lvl *schema, sv reflect.Value, prefix string) {
	for _, name := range lvl.childNames() {
		c := lvl.children[name]
		full := join(prefix, name)
		if c.field == nil {
			d.validateFields(c, sv, full)
			continue
		}
		d.validate(sv.FieldByIndex(c.field), full)
	}
}

// place adds the errors a Validate returned, with positions.
func (d *decoder) place(err error, prefix string) {
	if err == nil {
		return
	}
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	for _, e := range list {
		var ke *KeyError
		if !errors.As(e, &ke) {
			ke = &KeyError{Key: prefix, Msg: e.Error()}
		} else {
			c := *ke
			ke = &c
			ke.Key = join(prefix, ke.Key)
		}
		if pos, ok := d.pos[ke.Key]; ok {
			ke.File, ke.Line, ke.Column = pos.File, pos.Line, pos.Column
		} else if ke.File == "" {
			m := d.missing(ke.Key)
			ke.File, ke.Line, ke.Column = m.File, m.Line, m.Column
		}
		d.errs = append(d.errs, ke)
	}
}

func typeOf[T any]() reflect.Type { return reflect.TypeOf((*T)(nil)).Elem() }
