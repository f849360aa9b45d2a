package output

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"logpipe/pipeline/event"
)

// recordOverhead is room kept in max_message_bytes for what a record adds
// to its key and value in a batch (lengths, offsets, timestamp, headers),
// generously.
const recordOverhead = 128

// encodeLimited returns ev's JSON in at most limit bytes: when it is
// longer, the message is cut (at a character boundary) and the event
// flagged "truncated".
func encodeLimited(ev *event.Event, limit int) []byte {
	b := ev.AppendJSON(make([]byte, 0, 384+len(ev.Message)))
	if len(b) <= limit {
		return b
	}
	if !slices.Contains(ev.Log.Flags, "truncated") {
		ev.Log.Flags = append(slices.Clip(ev.Log.Flags), "truncated")
	}
	msg := ev.Message
	for len(b) > limit && msg != "" {
		n := len(msg) - (len(b) - limit)
		if n >= len(msg) {
			n = len(msg) - 1
		}
		if n < 0 {
			n = 0
		}
		for n > 0 && !utf8.RuneStart(msg[n]) {
			n--
		}
		msg = msg[:n]
		ev.Message = msg
		b = ev.AppendJSON(b[:0])
	}
	return b
}

// lookup returns a function giving the text of an event field by its
// dotted path, for format strings and hashing.
func lookup(ev *event.Event) func(string) (string, bool) {
	return func(path string) (string, bool) {
		switch path {
		case "message":
			return ev.Message, true
		case "host.name":
			return ev.Host.Name, true
		case "input.type":
			return ev.Input.Type, true
		case "agent.type":
			return ev.Agent.Type, true
		case "agent.version":
			return ev.Agent.Version, true
		case "log.file.path":
			return ev.Log.File.Path, true
		case "log.offset":
			return strconv.FormatInt(ev.Log.Offset, 10), true
		case "event.id":
			return ev.Event.ID, true
		case "tags":
			return strings.Join(ev.Tags, ","), len(ev.Tags) > 0
		}
		rest, under := strings.CutPrefix(path, "fields.")
		if !under {
			if !ev.FieldsUnderRoot {
				return "", false
			}
			rest = path
		}
		return fieldText(ev.Fields, rest)
	}
}

// fieldText walks nested maps by a dotted path; a key that itself holds a
// dot is found too.
func fieldText(m map[string]any, path string) (string, bool) {
	if v, ok := m[path]; ok {
		return text(v)
	}
	for i := 0; i < len(path); i++ {
		if path[i] != '.' {
			continue
		}
		if sub, ok := m[path[:i]].(map[string]any); ok {
			if s, ok := fieldText(sub, path[i+1:]); ok {
				return s, true
			}
		}
	}
	return "", false
}

func text(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case nil:
		return "", false
	case map[string]any, []any:
		return "", false
	case bool:
		return strconv.FormatBool(x), true
	case int:
		return strconv.Itoa(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	default:
		return fmt.Sprint(x), true
	}
}

// hash32 is FNV-1a over s.
func hash32(parts ...string) uint32 {
	h := fnv.New32a()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(p))
	}
	return h.Sum32()
}
