// Package console writes documents to a stream for debugging, as
// Logstash's stdout output does: `rubydebug`, a readable multi-line
// rendering with the keys of each object sorted and aligned on "=>", or
// `json`, one document per line.
package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Codec names a rendering.
type Codec string

// The renderings.
const (
	RubyDebug Codec = "rubydebug"
	JSONLines Codec = "json"
)

// Writer renders documents to W. It is safe for concurrent use; each
// document is written whole.
type Writer struct {
	mu    sync.Mutex
	w     io.Writer
	codec Codec
	buf   bytes.Buffer
}

// New returns a Writer rendering with codec to w.
func New(w io.Writer, codec Codec) *Writer { return &Writer{w: w, codec: codec} }

// Write renders the JSON document body.
func (cw *Writer) Write(body []byte) error {
	cw.mu.Lock()
	defer cw.mu.Unlock()
	cw.buf.Reset()
	if cw.codec == JSONLines {
		cw.buf.Write(body)
		cw.buf.WriteByte('\n')
	} else if err := RenderRubyDebug(&cw.buf, body); err != nil {
		return err
	}
	_, err := cw.w.Write(cw.buf.Bytes())
	return err
}

// RenderRubyDebug writes the JSON document body in the rubydebug style:
//
//	{
//	    "@timestamp" => 2026-11-21T10:00:00.123Z,
//	       "message" => "GET / ...",
//	          "tags" => [
//	        [0] "access"
//	    ]
//	}
//
// Strings are quoted, numbers, booleans and nil bare, and @timestamp bare
// as Logstash prints its timestamp objects.
func RenderRubyDebug(w *bytes.Buffer, body []byte) error {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	render(w, v, 0, false)
	w.WriteByte('\n')
	return nil
}

func render(w *bytes.Buffer, v any, depth int, bare bool) {
	pad := strings.Repeat(" ", 4*depth)
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 {
			w.WriteString("{}")
			return
		}
		keys := make([]string, 0, len(x))
		width := 0
		for k := range x {
			keys = append(keys, k)
			width = max(width, len(strconv.Quote(k)))
		}
		sort.Strings(keys)
		w.WriteString("{\n")
		for i, k := range keys {
			q := strconv.Quote(k)
			w.WriteString(pad)
			w.WriteString("    ")
			w.WriteString(strings.Repeat(" ", width-len(q)))
			w.WriteString(q)
			w.WriteString(" => ")
			render(w, x[k], depth+1, depth == 0 && k == "@timestamp")
			if i < len(keys)-1 {
				w.WriteByte(',')
			}
			w.WriteByte('\n')
		}
		w.WriteString(pad)
		w.WriteByte('}')
	case []any:
		if len(x) == 0 {
			w.WriteString("[]")
			return
		}
		w.WriteString("[\n")
		for i, e := range x {
			w.WriteString(pad)
			fmt.Fprintf(w, "    [%d] ", i)
			render(w, e, depth+1, false)
			if i < len(x)-1 {
				w.WriteByte(',')
			}
			w.WriteByte('\n')
		}
		w.WriteString(pad)
		w.WriteByte(']')
	case string:
		if bare {
			w.WriteString(x)
		} else {
			w.WriteString(strconv.Quote(x))
		}
	case json.Number:
		w.WriteString(x.String())
	case bool:
		w.WriteString(strconv.FormatBool(x))
	case nil:
		w.WriteString("nil")
	}
}
