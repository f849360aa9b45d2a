// Package document turns Kafka records into the JSON documents the indexer
// writes to Elasticsearch.
//
// A record is decoded (Decode) into an Event: the shipper's JSON event, or,
// for the plain codec and for records that are not JSON objects, an event
// holding the raw text as message. A Builder then parses the message as an
// httpd access or error line (package httpdlog) and writes the document:
// the event's own members kept as they came, the parsed ECS fields merged
// in, @timestamp taken from the line, event.ingested set.
//
// The package is pure: no I/O, and the clock is a function the caller
// gives. Field decisions are listed on Builder.Build.
package document

import (
	"bytes"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"logpipe/pipeline/event"
)

// Tags the indexer adds to events it could not fully read, as Logstash
// names them.
const (
	// TagJSONFailure marks a record that is not a JSON object under the json
	// codec; its raw text is the event's message.
	TagJSONFailure = "_jsonparsefailure"
	// TagHTTPDFailure marks a message that is no httpd access or error line.
	TagHTTPDFailure = "_httpdparsefailure"
	// TagTimestampFailure marks an event whose @timestamp was not an RFC
	// 3339 time; the value is kept in _@timestamp and the record's Kafka
	// timestamp is used instead.
	TagTimestampFailure = "_timestampparsefailure"
)

// Codec says how record values are read.
type Codec uint8

// The codecs.
const (
	// JSON reads each record as one JSON object (the shipper's event).
	JSON Codec = iota
	// Plain takes each record's value as the message text.
	Plain
)

// Record is a Kafka record as the indexer handles it.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	// Timestamp is the record's Kafka timestamp (producer create time, or
	// broker append time). It stands in for @timestamp when the event has
	// none: it is the same on every delivery of the record, so a redelivered
	// record still lands in the same date-suffixed index.
	Timestamp time.Time
}

// member is one member of a JSON object, its value raw.
type member struct {
	key []byte // raw, quotes included
	val []byte
	// renamed marks a member kept under another name than it came with
	// (event → _event when it is no object, ...).
	renamed bool
}

// Event is a decoded record, before parsing. Its raw members share the
// record value's memory.
type Event struct {
	// Timestamp is @timestamp, or the record's timestamp when the event has
	// none or an unreadable one.
	Timestamp time.Time
	// Message is the message text; HasMessage is false when the event has
	// no string message.
	Message    string
	HasMessage bool
	// Tags are the event's tags, with any the indexer added.
	Tags []string
	// ID is event.id as sent, empty when absent.
	ID string

	members    []member // other top-level members, in order
	eventRest  []member // members of "event" other than id
	logRest    []member // members of "log"
	hasLog     bool
	badTime    []byte // an unreadable @timestamp, raw
	badTimeKey []byte // the raw key it is kept under, "_@timestamp" unless taken
	badMessage []byte // a message member that is not a string, raw
	// rawMessage is the message's JSON string as the record spelt it, when
	// it is valid UTF-8, so that writing the message again is a copy.
	rawMessage []byte
}

// appendMessage appends the message as a JSON string.
func (ev *Event) appendMessage(buf []byte) []byte {
	if ev.rawMessage != nil {
		return append(buf, ev.rawMessage...)
	}
	return event.AppendString(buf, ev.Message)
}

// Decode reads a record under codec. It never fails: a value that is no
// JSON object (under JSON) becomes an event whose message is the raw text,
// tagged _jsonparsefailure. Invalid UTF-8 in such text is replaced with
// U+FFFD.
func Decode(rec *Record, codec Codec) *Event {
	ev := &Event{Timestamp: rec.Timestamp}
	if codec == Plain {
		ev.Message, ev.HasMessage = text(rec.Value), true
		return ev
	}
	v := rec.Value
	i := skipSpace(v, 0)
	if i >= len(v) || v[i] != '{' {
		return notJSON(ev, rec)
	}
	// One pass checks the record and finds its top-level members.
	c := checkers.Get().(*checker)
	defer c.release()
	valid, dupKeys := c.check(v, true)
	switch {
	case !valid:
		return notJSON(ev, rec)
	case dupKeys:
		// Elasticsearch refuses a key given twice; keep the last value, in
		// the first one's place, as JSON parsers that build maps do.
		eachMember(appendDeduped(nil, v), func(rawKey, val []byte) bool {
			ev.take(rawKey, val)
			return true
		})
	default:
		for _, m := range c.top {
			ev.take(m.key, m.val)
		}
	}
	// A member kept under a new name must not meet one already called so.
	uniqueRenames(ev.members)
	uniqueRenames(ev.eventRest)
	if ev.badTime != nil {
		ev.badTimeKey = freeKey(ev.members, "_@timestamp", -1)
		ev.AddTag(TagTimestampFailure)
	}
	return ev
}

// take reads one top-level member of the record into ev.
func (ev *Event) take(rawKey, val []byte) {
	name := rawKey[1 : len(rawKey)-1]
	if bytes.IndexByte(name, '\\') >= 0 {
		name = []byte(keyString(rawKey))
	}
	switch string(name) {
	case "@timestamp":
		if s, ok := stringValue(val); ok {
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
				ev.Timestamp = t
				return
			}
		}
		ev.badTime = val
	case "message":
		if s, ok := stringValue(val); ok {
			ev.Message, ev.HasMessage = s, true
			if utf8.Valid(val) {
				ev.rawMessage = val
			}
		} else if string(val) != "null" {
			ev.badMessage = val
		}
	case "tags":
		ev.Tags = readTags(val)
	case "event":
		if !isObject(val) {
			ev.members = append(ev.members, member{key: []byte(`"_event"`), val: val, renamed: true})
			return
		}
		eachMember(val, func(k, v []byte) bool {
			if keyIs(k, "id") {
				// An id that is not valid UTF-8 cannot be the document's
				// _id as it is; it is kept as event._id like any id that
				// is not text, and the document gets a derived id.
				if s, ok := Text(v); ok && utf8.ValidString(s) {
					ev.ID = s
					return true
				}
				ev.eventRest = append(ev.eventRest, member{key: []byte(`"_id"`), val: v, renamed: true})
				return true
			}
			ev.eventRest = append(ev.eventRest, member{key: k, val: v})
			return true
		})
	case "log":
		if !isObject(val) {
			ev.members = append(ev.members, member{key: []byte(`"_log"`), val: val, renamed: true})
			return
		}
		ev.hasLog = true
		eachMember(val, func(k, v []byte) bool {
			ev.logRest = append(ev.logRest, member{key: k, val: v})
			return true
		})
	default:
		ev.members = append(ev.members, member{key: rawKey, val: val})
	}
}

// notJSON makes ev the event of a record that is no JSON object: its raw
// text is the message, tagged _jsonparsefailure.
func notJSON(ev *Event, rec *Record) *Event {
	ev.Message, ev.HasMessage = text(rec.Value), true
	ev.Tags = []string{TagJSONFailure}
	return ev
}

// uniqueRenames gives each renamed member of ms a name no other member
// has, prefixing underscores ("_event" taken: "__event").
func uniqueRenames(ms []member) {
	for i := range ms {
		if ms[i].renamed {
			ms[i].key = freeKey(ms, keyString(ms[i].key), i)
		}
	}
}

// freeKey returns the raw key for name, with underscores prefixed until no
// member of ms but ms[self] has it.
func freeKey(ms []member, name string, self int) []byte {
	for {
		taken := false
		for j := range ms {
			if j != self && keyIs(ms[j].key, name) {
				taken = true
				break
			}
		}
		if !taken {
			return []byte(`"` + name + `"`)
		}
		name = "_" + name
	}
}

// appendDeduped appends the valid JSON value v with every object's
// repeated keys merged: the last value, in the first one's place.
func appendDeduped(dst, v []byte) []byte {
	v = v[skipSpace(v, 0):]
	if len(v) == 0 {
		return dst
	}
	switch v[0] {
	case '{':
		type kv struct {
			key []byte
			val []byte
		}
		var ms []kv
		var at map[string]int // for large objects: key → index in ms
		eachMember(v, func(k, val []byte) bool {
			if at != nil {
				name := keyString(k)
				if i, ok := at[name]; ok {
					ms[i].val = val
				} else {
					at[name] = len(ms)
					ms = append(ms, kv{k, val})
				}
				return true
			}
			for i := range ms {
				if sameKey(ms[i].key, k) {
					ms[i].val = val
					return true
				}
			}
			ms = append(ms, kv{k, val})
			if len(ms) > 32 {
				at = make(map[string]int, 2*len(ms))
				for i, m := range ms {
					at[keyString(m.key)] = i
				}
			}
			return true
		})
		dst = append(dst, '{')
		for i, m := range ms {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, m.key...)
			dst = append(dst, ':')
			dst = appendDeduped(dst, m.val)
		}
		return append(dst, '}')
	case '[':
		dst = append(dst, '[')
		for i, e := range Elements(v) {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendDeduped(dst, e)
		}
		return append(dst, ']')
	}
	return append(dst, v[:skipValue(v, 0)]...)
}

// readTags reads tags given as an array of strings or as one string; other
// elements are kept in their JSON spelling.
func readTags(val []byte) []string {
	if s, ok := stringValue(val); ok {
		return []string{s}
	}
	var tags []string
	for _, e := range Elements(val) {
		if s, ok := Text(e); ok {
			tags = append(tags, s)
		} else {
			tags = append(tags, string(e))
		}
	}
	return tags
}

// text returns b as a string, invalid UTF-8 replaced.
func text(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// HasTag reports whether the event carries tag.
func (ev *Event) HasTag(tag string) bool { return slices.Contains(ev.Tags, tag) }

// AddTag adds tag unless the event has it already.
func (ev *Event) AddTag(tag string) {
	if !ev.HasTag(tag) {
		ev.Tags = append(ev.Tags, tag)
	}
}
