package document

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"time"

	"logpipe/indexer/httpdlog"
	"logpipe/pipeline/event"
)

// Options configures a Builder. The zero value parses nothing and does not
// decorate.
type Options struct {
	// ParseHTTPD parses messages as httpd access and error lines.
	ParseHTTPD bool
	// ParseTags limits parsing to events carrying at least one of these
	// tags; empty means every event that has a message.
	ParseTags []string
	// Location is the zone error-log times are read in (they carry none);
	// nil means UTC.
	Location *time.Location
	// Decorate adds kafka.topic, partition, offset, key, timestamp and
	// consumer_group to every document.
	Decorate bool
	// Group is the consumer group written as kafka.consumer_group.
	Group string
	// Now returns the time written as event.ingested; nil means time.Now.
	Now func() time.Time
}

// Doc is a document ready for Elasticsearch.
type Doc struct {
	// ID is the document's _id: event.id, or DerivedID of the record.
	ID string
	// Timestamp is the document's @timestamp; index names take their date
	// from it, in UTC.
	Timestamp time.Time
	// Tags are the document's tags.
	Tags []string
	// Kind is what the message was parsed as (KindNone when it was not
	// parsed or did not parse).
	Kind httpdlog.Kind
	// Parsed reports that parsing was attempted; with Kind KindNone it
	// means the line matched no format.
	Parsed bool
	// Body is the document's JSON.
	Body []byte
}

// Builder turns events into documents. It keeps parser state between calls,
// so each goroutine needs its own; NewBuilder is cheap.
type Builder struct {
	opts    Options
	access  httpdlog.Access
	errline httpdlog.Error
	scratch []byte
	keys    [][]byte // raw keys of the parsed members; aliases scratch

	// The last @timestamp and event.ingested written, and their text:
	// documents in a row mostly repeat them.
	tsAt, inAt     time.Time
	tsText, inText []byte
}

// appendTimestamp appends AppendTime(t), reusing the text of the last call
// when t is the same instant.
func (b *Builder) appendTimestamp(buf []byte, t time.Time) []byte {
	if b.tsText == nil || !t.Equal(b.tsAt) {
		b.tsAt, b.tsText = t, AppendTime(b.tsText[:0], t)
	}
	return append(buf, b.tsText...)
}

// appendIngested appends now, truncated to the millisecond, reusing the
// text of the last call within the same millisecond.
func (b *Builder) appendIngested(buf []byte, now time.Time) []byte {
	now = now.Truncate(time.Millisecond)
	if b.inText == nil || !now.Equal(b.inAt) {
		b.inAt, b.inText = now, AppendTime(b.inText[:0], now)
	}
	return append(buf, b.inText...)
}

// NewBuilder returns a Builder for opts.
func NewBuilder(opts Options) *Builder {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Builder{opts: opts}
}

func (b *Builder) wantsParse(ev *Event) bool {
	if !b.opts.ParseHTTPD || !ev.HasMessage {
		return false
	}
	if len(b.opts.ParseTags) == 0 {
		return true
	}
	for _, t := range b.opts.ParseTags {
		if ev.HasTag(t) {
			return true
		}
	}
	return false
}

// Build writes the document for ev, decoded from rec. ev's tags may gain
// _httpdparsefailure.
//
// The document holds every member of the event as it came, except:
//
//   - @timestamp is the time written in a parsed line (UTC, with the line's
//     precision), else the event's own.
//   - For a parsed line, event.original is the raw line. An access line keeps
//     it in message too; an error line's message is its text after the
//     prefixes. A line that fits no format stays in message alone and the
//     event is tagged _httpdparsefailure.
//   - The parsed ECS objects (source, http, url, user_agent, process, ...)
//     replace members of the same name the event had.
//   - event.id is set (DerivedID when the event had none), event.ingested is
//     the time of indexing, event.outcome comes from an access line's status,
//     log.level and log.origin from an error line.
//   - With Decorate, kafka.* describes the record.
//   - An event or log member that is not an object is kept as _event or
//     _log, and an unreadable @timestamp as _@timestamp (with one more
//     leading underscore while the event has that name already).
//   - A key the record gives twice keeps its last value, in its first place,
//     at any depth (Elasticsearch refuses a document with a repeated key).
func (b *Builder) Build(ev *Event, rec *Record) *Doc {
	d := &Doc{ID: ev.ID, Timestamp: ev.Timestamp}
	if d.ID == "" {
		d.ID = DerivedID(rec.Topic, rec.Partition, rec.Offset)
	}
	message := ev.Message
	original := ""
	// parsed holds the parser's top-level members, wrapped in braces so
	// that their keys can be read back.
	parsed := b.scratch[:0]
	if b.wantsParse(ev) {
		d.Parsed = true
		kind, err := httpdlog.Parse(ev.Message, b.opts.Location, &b.access, &b.errline)
		switch {
		case err != nil:
			ev.AddTag(TagHTTPDFailure)
		case kind == httpdlog.KindAccess:
			d.Kind = kind
			d.Timestamp = b.access.Timestamp
			original = ev.Message
			parsed = append(parsed, '{')
			parsed = append(b.access.AppendJSONFields(parsed), '}')
		case kind == httpdlog.KindError:
			d.Kind = kind
			d.Timestamp = b.errline.Timestamp
			original = ev.Message
			message = b.errline.Message
			parsed = append(parsed, '{')
			parsed = append(b.errline.AppendJSONFields(parsed), '}')
		}
	}
	d.Tags = ev.Tags

	buf := make([]byte, 0, len(rec.Value)+len(original)+len(parsed)+256)
	buf = append(buf, `{"@timestamp":"`...)
	buf = b.appendTimestamp(buf, d.Timestamp)
	buf = append(buf, '"')
	if ev.HasMessage {
		buf = append(buf, `,"message":`...)
		if message == ev.Message {
			buf = ev.appendMessage(buf)
		} else {
			buf = event.AppendString(buf, message)
		}
	} else if ev.badMessage != nil {
		buf = append(buf, `,"message":`...)
		buf = append(buf, ev.badMessage...)
	}
	if len(d.Tags) > 0 {
		buf = append(buf, `,"tags":[`...)
		for i, t := range d.Tags {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = event.AppendString(buf, t)
		}
		buf = append(buf, ']')
	}
	// The parsed members' keys, read (once) only when a member of the event
	// has a name the parser may write.
	keys, read := b.keys[:0], false
	for _, m := range ev.members {
		if len(parsed) > 0 && mayBeParsed(m.key) {
			if !read {
				eachMember(parsed, func(rk, _ []byte) bool {
					keys = append(keys, rk)
					return true
				})
				b.keys, read = keys, true
			}
			if hasRawKey(keys, m.key) {
				continue
			}
		}
		if b.opts.Decorate && keyIs(m.key, "kafka") {
			continue
		}
		buf = appendMember(buf, m)
	}

	// event
	buf = append(buf, `,"event":{"id":`...)
	buf = event.AppendString(buf, d.ID)
	for _, m := range ev.eventRest {
		if keyIs(m.key, "ingested") || (original != "" && keyIs(m.key, "original")) ||
			(d.Kind == httpdlog.KindAccess && keyIs(m.key, "outcome")) {
			continue
		}
		buf = appendMember(buf, m)
	}
	if original != "" {
		buf = append(buf, `,"original":`...)
		buf = ev.appendMessage(buf) // original is the event's message
	}
	if d.Kind == httpdlog.KindAccess {
		buf = b.access.AppendEventMembers(buf)
	}
	buf = append(buf, `,"ingested":"`...)
	buf = b.appendIngested(buf, b.opts.Now())
	buf = append(buf, `"}`...)

	// log
	if ev.hasLog || d.Kind == httpdlog.KindError {
		buf = append(buf, `,"log":{`...)
		n := len(buf)
		for _, m := range ev.logRest {
			if d.Kind == httpdlog.KindError && (keyIs(m.key, "level") || keyIs(m.key, "origin")) {
				continue
			}
			if len(buf) > n {
				buf = append(buf, ',')
			}
			buf = append(buf, m.key...)
			buf = append(buf, ':')
			buf = append(buf, m.val...)
		}
		if d.Kind == httpdlog.KindError {
			buf = b.errline.AppendLogMembers(buf)
		}
		buf = append(buf, '}')
	}

	if len(parsed) > 2 {
		buf = append(buf, ',')
		buf = append(buf, parsed[1:len(parsed)-1]...)
	}
	if b.opts.Decorate {
		buf = append(buf, `,"kafka":{"topic":`...)
		buf = event.AppendString(buf, rec.Topic)
		buf = append(buf, `,"partition":`...)
		buf = strconv.AppendInt(buf, int64(rec.Partition), 10)
		buf = append(buf, `,"offset":`...)
		buf = strconv.AppendInt(buf, rec.Offset, 10)
		if rec.Key != nil {
			buf = append(buf, `,"key":`...)
			buf = event.AppendString(buf, string(rec.Key))
		}
		if !rec.Timestamp.IsZero() {
			buf = append(buf, `,"timestamp":"`...)
			buf = AppendTime(buf, rec.Timestamp)
			buf = append(buf, '"')
		}
		if b.opts.Group != "" {
			buf = append(buf, `,"consumer_group":`...)
			buf = event.AppendString(buf, b.opts.Group)
		}
		buf = append(buf, '}')
	}
	if ev.badTime != nil {
		buf = append(buf, ',')
		buf = append(buf, ev.badTimeKey...)
		buf = append(buf, ':')
		buf = append(buf, ev.badTime...)
	}
	buf = append(buf, '}')
	d.Body = buf
	b.scratch = parsed[:0]
	return d
}

func appendMember(buf []byte, m member) []byte {
	buf = append(buf, ',')
	buf = append(buf, m.key...)
	buf = append(buf, ':')
	return append(buf, m.val...)
}

// parsedNames are the top-level members httpdlog writes, as its
// AppendJSONFields methods list them: source, destination, user, http, url
// and user_agent for access lines; source, process, error, apache and http
// for error lines.
var parsedNames = []string{"source", "destination", "user", "http", "url", "user_agent", "process", "error", "apache"}

// mayBeParsed reports whether the raw key names a member the parser may
// write.
func mayBeParsed(rawKey []byte) bool {
	name := rawKey[1 : len(rawKey)-1]
	if bytes.IndexByte(name, '\\') >= 0 {
		name = []byte(keyString(rawKey))
	}
	for _, n := range parsedNames {
		if string(name) == n {
			return true
		}
	}
	return false
}

// hasRawKey reports whether keys (raw JSON keys) hold one naming the same
// member as the raw key k.
func hasRawKey(keys [][]byte, k []byte) bool {
	for _, have := range keys {
		if bytes.Equal(have, k) {
			return true
		}
		if (bytes.IndexByte(have, '\\') >= 0 || bytes.IndexByte(k, '\\') >= 0) && keyString(have) == keyString(k) {
			return true
		}
	}
	return false
}

// AppendTime appends t in UTC as RFC 3339 with milliseconds, or with
// microseconds or nanoseconds when t has them (httpd 2.4 error lines carry
// microseconds). Every document has two such times, so the digits are
// written by hand rather than through time.Format.
func AppendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	if y < 0 || y > 9999 {
		switch ns := t.Nanosecond(); {
		case ns%1e6 == 0:
			return t.AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
		case ns%1e3 == 0:
			return t.AppendFormat(dst, "2006-01-02T15:04:05.000000Z07:00")
		default:
			return t.AppendFormat(dst, "2006-01-02T15:04:05.000000000Z07:00")
		}
	}
	h, mi, sec := t.Clock()
	dst = appendDigits(dst, y, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(mo), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, d, 2)
	dst = append(dst, 'T')
	dst = appendDigits(dst, h, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, mi, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, sec, 2)
	dst = append(dst, '.')
	switch ns := t.Nanosecond(); {
	case ns%1e6 == 0:
		dst = appendDigits(dst, ns/1e6, 3)
	case ns%1e3 == 0:
		dst = appendDigits(dst, ns/1e3, 6)
	default:
		dst = appendDigits(dst, ns, 9)
	}
	return append(dst, 'Z')
}

// appendDigits appends the n lowest decimal digits of v (v >= 0), with
// leading zeros.
func appendDigits(dst []byte, v, n int) []byte {
	var buf [9]byte
	for i := n - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, buf[:n]...)
}

// DerivedID returns the _id of a record whose event has no event.id: a hash
// of its topic, partition and offset, 32 hex digits like event.id. It is the
// same on every delivery of the record, so a redelivered record is still one
// document; a record copied to another topic or partition gets another.
func DerivedID(topic string, partition int32, offset int64) string {
	return event.ID("kafka:"+topic, strconv.Itoa(int(partition)), offset)
}

// DeadLetterID returns the _id of the dead-letter document for document id
// refused by index: one per document and intended index, so an event routed
// to two indices and refused by both keeps both reasons, and a redelivered
// one is still one dead letter.
func DeadLetterID(id, index string) string {
	var buf [16]byte
	h := sha256.New()
	h.Write(binary.AppendUvarint(buf[:0], uint64(len(id))))
	h.Write([]byte(id))
	h.Write([]byte(index))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Refusal says why a document could not be indexed.
type Refusal struct {
	// Index is the index the document was meant for.
	Index string
	// Status is Elasticsearch's HTTP status for the item, 0 when the
	// indexer refused it before sending (an invalid index name).
	Status int
	// Type and Reason are Elasticsearch's error type and reason, or the
	// indexer's own.
	Type   string
	Reason string
}

// DeadLetterTime is the @timestamp of d's dead letter, whose index is
// named by its date: d's own, unless Elasticsearch cannot take it as a
// date (a year outside 1 to 9999, which may be why d was refused), then
// the record's Kafka timestamp, the same on every delivery, and now only
// if that is unusable too.
func DeadLetterTime(d *Doc, rec *Record, now time.Time) time.Time {
	for _, t := range []time.Time{d.Timestamp, rec.Timestamp} {
		if y := t.UTC().Year(); !t.IsZero() && y >= 1 && y <= 9999 {
			return t
		}
	}
	return now.Truncate(time.Millisecond)
}

// DeadLetter returns the body of the dead-letter document for d, which was
// refused as r says; rec is the record d came from and now the time of
// writing. The document keeps the record's value whole as event.original
// and d's body as text in dead_letter.document (both strings, so that the
// dead-letter index never meets the mapping conflict that sent them there),
// with the intended index and the reason:
//
//	{"@timestamp":…, "message":"<reason>", "tags":[…],
//	 "event":{"id":…, "original":"<record value>", "ingested":…},
//	 "error":{"type":…, "message":…},
//	 "dead_letter":{"index":…, "status":400, "document":"<body>"},
//	 "kafka":{"topic":…, "partition":…, "offset":…}}
func DeadLetter(d *Doc, rec *Record, r Refusal, now time.Time) []byte {
	buf := make([]byte, 0, 2*len(d.Body)+len(rec.Value)+len(r.Reason)*2+512)
	buf = append(buf, `{"@timestamp":"`...)
	buf = AppendTime(buf, DeadLetterTime(d, rec, now))
	buf = append(buf, `","message":`...)
	buf = event.AppendString(buf, r.Reason)
	if len(d.Tags) > 0 {
		buf = append(buf, `,"tags":[`...)
		for i, t := range d.Tags {
			if i > 0 {
				buf = append(buf, ',')
			}
			buf = event.AppendString(buf, t)
		}
		buf = append(buf, ']')
	}
	buf = append(buf, `,"event":{"id":`...)
	buf = event.AppendString(buf, d.ID)
	buf = append(buf, `,"original":`...)
	buf = event.AppendString(buf, string(rec.Value))
	buf = append(buf, `,"ingested":"`...)
	buf = AppendTime(buf, now.Truncate(time.Millisecond))
	buf = append(buf, `"},"error":{"type":`...)
	buf = event.AppendString(buf, r.Type)
	buf = append(buf, `,"message":`...)
	buf = event.AppendString(buf, r.Reason)
	buf = append(buf, `},"dead_letter":{"index":`...)
	buf = event.AppendString(buf, r.Index)
	if r.Status != 0 {
		buf = append(buf, `,"status":`...)
		buf = strconv.AppendInt(buf, int64(r.Status), 10)
	}
	buf = append(buf, `,"document":`...)
	buf = event.AppendString(buf, string(d.Body))
	buf = append(buf, `},"kafka":{"topic":`...)
	buf = event.AppendString(buf, rec.Topic)
	buf = append(buf, `,"partition":`...)
	buf = strconv.AppendInt(buf, int64(rec.Partition), 10)
	buf = append(buf, `,"offset":`...)
	buf = strconv.AppendInt(buf, rec.Offset, 10)
	buf = append(buf, `}}`...)
	return buf
}
