// Package event defines the JSON event that travels through the Kafka topic
// from the shipper to the indexer, and its stable id.
//
// One event is one log line (or one multiline group) of one file on one
// host. Its JSON is ECS-shaped:
//
//	{"@timestamp":"2026-11-21T10:00:00.123Z","message":"<the raw line>",
//	 "tags":["access"],"event":{"id":"<stable id>"},
//	 "log":{"file":{"path":"/var/log/httpd/access_log"},"offset":12345},
//	 "input":{"type":"log"},"host":{"name":"web-1"},
//	 "agent":{"type":"shipper","version":"…"},"fields":{…}}
//
// Encoding is hand-written (AppendJSON) because the shipper encodes every
// line; decoding uses encoding/json through the struct tags.
package event

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"
	"unsafe"
)

// Event is one shipped log line.
type Event struct {
	// Timestamp is when the shipper read the line. The indexer replaces it
	// with the time written in the line when it can parse one.
	Timestamp time.Time `json:"@timestamp"`
	// Message is the raw line, without its line terminator. It must be
	// valid UTF-8; AppendJSON replaces invalid bytes with U+FFFD.
	Message string   `json:"message"`
	Tags    []string `json:"tags,omitempty"`
	Event   Meta     `json:"event"`
	Log     Log      `json:"log"`
	Input   Input    `json:"input"`
	Host    Host     `json:"host"`
	Agent   Agent    `json:"agent"`
	// Fields are the input's custom fields. With FieldsUnderRoot they are
	// written at the top level of the JSON instead of under "fields".
	Fields          map[string]any `json:"fields,omitempty"`
	FieldsUnderRoot bool           `json:"-"`
}

// Meta holds the ECS event.* fields the shipper sets.
type Meta struct {
	// ID is the stable id, see ID.
	ID string `json:"id"`
}

// Log holds the ECS log.* fields: where the line came from.
type Log struct {
	File   File     `json:"file"`
	Offset int64    `json:"offset"`
	Flags  []string `json:"flags,omitempty"`
}

// File names the file a line was read from.
type File struct {
	Path string `json:"path"`
}

// Input names the kind of input that read the line ("log", "filestream").
type Input struct {
	Type string `json:"type"`
}

// Host names the machine the line was read on.
type Host struct {
	Name string `json:"name"`
}

// Agent names the program that shipped the line.
type Agent struct {
	Type    string `json:"type"`
	Version string `json:"version"`
}

// ID returns the stable id of the line that starts at byte offset of the
// file with identity fileID on host hostID: the first 128 bits of a SHA-256
// over the three, as 32 lowercase hex digits.
//
// The same inputs always give the same id, across restarts and machines, so
// a line shipped twice after a crash becomes the same Elasticsearch document
// (its _id). fileID must follow the file's content, not its name (the
// shipper uses a fingerprint of the first bytes), so that a line keeps its id
// when the file is renamed by rotation. Each input is length-prefixed, so no
// two different triples hash the same bytes.
func ID(hostID, fileID string, offset int64) string {
	var buf [96]byte
	b := buf[:0]
	b = binary.AppendUvarint(b, uint64(len(hostID)))
	b = append(b, hostID...)
	b = binary.AppendUvarint(b, uint64(len(fileID)))
	b = append(b, fileID...)
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// TimeLayout is the layout of @timestamp: RFC 3339 in UTC with milliseconds,
// as Filebeat and Logstash write it.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// AppendJSON appends the event's JSON to dst and returns the extended
// slice. Invalid UTF-8 in strings is replaced with U+FFFD, so the output is
// always valid JSON.
func (e *Event) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"@timestamp":"`...)
	dst = e.Timestamp.UTC().AppendFormat(dst, TimeLayout)
	dst = append(dst, `","message":`...)
	dst = AppendString(dst, e.Message)
	if len(e.Tags) > 0 {
		dst = append(dst, `,"tags":[`...)
		for i, t := range e.Tags {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, t)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"event":{"id":`...)
	dst = AppendString(dst, e.Event.ID)
	dst = append(dst, `},"log":{"file":{"path":`...)
	dst = AppendString(dst, e.Log.File.Path)
	dst = append(dst, `},"offset":`...)
	dst = strconv.AppendInt(dst, e.Log.Offset, 10)
	if len(e.Log.Flags) > 0 {
		dst = append(dst, `,"flags":[`...)
		for i, f := range e.Log.Flags {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, f)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `},"input":{"type":`...)
	dst = AppendString(dst, e.Input.Type)
	dst = append(dst, `},"host":{"name":`...)
	dst = AppendString(dst, e.Host.Name)
	dst = append(dst, `},"agent":{"type":`...)
	dst = AppendString(dst, e.Agent.Type)
	dst = append(dst, `,"version":`...)
	dst = AppendString(dst, e.Agent.Version)
	dst = append(dst, '}')
	if len(e.Fields) > 0 {
		if b, err := json.Marshal(e.Fields); err == nil {
			if !e.FieldsUnderRoot {
				dst = append(dst, `,"fields":`...)
				dst = append(dst, b...)
			} else if len(b) > 2 {
				// The members of the object, spliced into the event.
				dst = append(dst, ',')
				dst = append(dst, b[1:len(b)-1]...)
			}
		}
	}
	return append(dst, '}')
}

// MarshalJSON implements json.Marshaler with AppendJSON.
func (e *Event) MarshalJSON() ([]byte, error) {
	return e.AppendJSON(make([]byte, 0, 256+len(e.Message))), nil
}

// AppendString appends s to dst as a JSON string, as AppendBytes does.
func AppendString(dst []byte, s string) []byte {
	// AppendBytes only reads text, so s's bytes can be lent without a copy.
	return AppendBytes(dst, unsafe.Slice(unsafe.StringData(s), len(s)))
}
