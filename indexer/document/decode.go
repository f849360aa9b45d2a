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
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"
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
	badMessage []byte // a message member that is not a string, raw
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
	if i >= len(v) || v[i] != '{' || !json.Valid(v) {
		ev.Message, ev.HasMessage = text(rec.Value), true
		ev.Tags = []string{TagJSONFailure}
		return ev
	}
	eachMember(v, func(rawKey, val []byte) bool {
		switch {
		case keyIs(rawKey, "@timestamp"):
			if s, ok := stringValue(val); ok {
				if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
					ev.Timestamp = t
					return true
				}
			}
			ev.badTime = val
		case keyIs(rawKey, "message"):
			if s, ok := stringValue(val); ok {
				ev.Message, ev.HasMessage = s, true
			} else if string(val) != "null" {
				ev.badMessage = val
			}
		case keyIs(rawKey, "tags"):
			ev.Tags = readTags(val)
		case keyIs(rawKey, "event") && isObject(val):
			eachMember(val, func(k, v []byte) bool {
				if keyIs(k, "id") {
					if s, ok := Text(v); ok {
						ev.ID = s
						return true
					}
					k = []byte(`"_id"`)
				}
				ev.eventRest = append(ev.eventRest, member{k, v})
				return true
			})
		case keyIs(rawKey, "log") && isObject(val):
			ev.hasLog = true
			eachMember(val, func(k, v []byte) bool {
				ev.logRest = append(ev.logRest, member{k, v})
				return true
			})
		case keyIs(rawKey, "event"):
			ev.members = append(ev.members, member{[]byte(`"_event"`), val})
		case keyIs(rawKey, "log"):
			ev.members = append(ev.members, member{[]byte(`"_log"`), val})
		default:
			ev.members = append(ev.members, member{rawKey, val})
		}
		return true
	})
	if ev.badTime != nil {
		ev.AddTag(TagTimestampFailure)
	}
	return ev
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
func (ev *Event) HasTag(tag string) bool {
	for _, t := range ev.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

// AddTag adds tag unless the event has it already.
func (ev *Event) AddTag(tag string) {
	if !ev.HasTag(tag) {
		ev.Tags = append(ev.Tags, tag)
	}
}
