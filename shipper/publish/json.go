package publish

import (
	"encoding/json"
	"strconv"
	"time"

	"logpipe/pipeline/event"
)

// encoding holds the parts of the events' JSON that are the same for
// every event of a source (tags, input, host, agent, fields), and those
// that are the same for a batch (@timestamp, path), encoded once.
type encoding struct {
	tags []byte // `,"tags":[...]` or nothing
	tail []byte // from the "input" member to the end of the object

	time time.Time
	path string
	head []byte // `{"@timestamp":"...","message":`
	file []byte // `},"log":{"file":{"path":"..."},"offset":`
}

func newEncoding(t *event.Event) *encoding {
	enc := &encoding{}
	if len(t.Tags) > 0 {
		b := append([]byte(nil), `,"tags":[`...)
		for i, tag := range t.Tags {
			if i > 0 {
				b = append(b, ',')
			}
			b = event.AppendString(b, tag)
		}
		enc.tags = append(b, ']')
	}
	b := append([]byte(nil), `},"input":{"type":`...)
	b = event.AppendString(b, t.Input.Type)
	b = append(b, `},"host":{"name":`...)
	b = event.AppendString(b, t.Host.Name)
	b = append(b, `},"agent":{"type":`...)
	b = event.AppendString(b, t.Agent.Type)
	b = append(b, `,"version":`...)
	b = event.AppendString(b, t.Agent.Version)
	b = append(b, '}')
	if len(t.Fields) > 0 {
		// As event.AppendJSON does it.
		if f, err := json.Marshal(t.Fields); err == nil {
			if !t.FieldsUnderRoot {
				b = append(b, `,"fields":`...)
				b = append(b, f...)
			} else if len(f) > 2 {
				b = append(b, ',')
				b = append(b, f[1:len(f)-1]...)
			}
		}
	}
	enc.tail = append(b, '}')
	return enc
}

// batch brings the per-batch parts up to date for b.
func (enc *encoding) batch(b *Batch) {
	if enc.head == nil || !b.Time.Equal(enc.time) {
		enc.time = b.Time
		enc.head = append(enc.head[:0], `{"@timestamp":"`...)
		enc.head = b.Time.UTC().AppendFormat(enc.head, event.TimeLayout)
		enc.head = append(enc.head, `","message":`...)
	}
	if enc.file == nil || b.Path != enc.path {
		enc.path = b.Path
		enc.file = append(enc.file[:0], `},"log":{"file":{"path":`...)
		enc.file = event.AppendString(enc.file, b.Path)
		enc.file = append(enc.file, `},"offset":`...)
	}
}

// AppendJSON appends the JSON of event i of b, which must be a batch of
// this source, to dst: the same bytes as b.Event(i).AppendJSON(dst).
func (s *Source) AppendJSON(dst []byte, b *Batch, i int) []byte {
	if s.enc == nil {
		s.enc = newEncoding(&s.Template)
	}
	enc := s.enc
	enc.batch(b)
	e := &b.Events[i]
	dst = append(dst, enc.head...)
	dst = event.AppendBytes(dst, b.Text(i))
	dst = append(dst, enc.tags...)
	dst = append(dst, `,"event":{"id":"`...)
	dst = append(dst, event.ID(s.HostID, s.FileID, e.Offset)...)
	dst = append(dst, '"')
	dst = append(dst, enc.file...)
	dst = strconv.AppendInt(dst, e.Offset, 10)
	switch e.Flags & (Truncated | Multiline) {
	case Truncated:
		dst = append(dst, `,"flags":["truncated"]`...)
	case Multiline:
		dst = append(dst, `,"flags":["multiline"]`...)
	case Truncated | Multiline:
		dst = append(dst, `,"flags":["truncated","multiline"]`...)
	}
	return append(dst, enc.tail...)
}
