package input

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"logpipe/pipeline/event"
	"logpipe/shipper/fileid"
	"logpipe/shipper/lines"
	"logpipe/shipper/multiline"
	"logpipe/shipper/registry"
)

// Why a harvester stopped.
const (
	reasonShutdown  = "shutdown"
	reasonInactive  = "inactive"
	reasonRemoved   = "removed"
	reasonRenamed   = "renamed"
	reasonEOF       = "eof"
	reasonTruncated = "truncated"
	reasonReplaced  = "content replaced"
	reasonError     = "read error"
)

// readSize is how much a harvester reads at once.
const readSize = 64 << 10

var readBufs = sync.Pool{New: func() any { b := make([]byte, readSize); return &b }}

// harvester reads one open file from an offset to its end, and on as it
// grows, until a close rule or the shutdown stops it.
type harvester struct {
	m   *Manager
	in  *input
	st  *registry.State
	id  string // the file's identity
	f   *os.File
	key devIno

	pathMu  sync.Mutex
	curPath string

	split    *lines.Splitter
	agg      *multiline.Aggregator
	wake     chan struct{}
	lastData time.Time // when the file last had new bytes
	ctx      context.Context
	stopped  bool // the Sink refused an event: the context ended

	ev event.Event // reused for every event

	// head collects the file's first bytes as read, until it holds a
	// fingerprint's worth, so the identity learns the fingerprint from the
	// bytes actually read (a copy may be looked up any moment).
	head     []byte
	headDone bool
}

func newHarvester(m *Manager, in *input, st *registry.State, id string, f *os.File, key devIno, path string, offset int64, head []byte) *harvester {
	h := &harvester{m: m, in: in, st: st, id: id, f: f, key: key, curPath: path,
		split: lines.NewSplitter(offset, in.s.MaxBytes, in.s.Encoding), wake: make(chan struct{}, 1), lastData: time.Now(),
		head: head, headDone: len(head) >= fileid.FingerprintSize}
	if int64(len(head)) < offset {
		// Bytes before the offset were read in an earlier run; their head
		// is what the scan saw.
		h.head = append([]byte(nil), head...)
	}
	if in.s.Multiline != nil {
		// Validated with the config, so New cannot fail here.
		h.agg, _ = multiline.New(in.s.Multiline, in.s.MaxBytes)
	}
	h.ev = event.Event{
		Tags:            in.s.Tags,
		Input:           event.Input{Type: in.s.Type},
		Host:            event.Host{Name: m.cfg.Host.Name},
		Agent:           in.agent,
		Fields:          in.s.Fields,
		FieldsUnderRoot: in.s.FieldsUnderRoot,
	}
	return h
}

func (h *harvester) path() string {
	h.pathMu.Lock()
	defer h.pathMu.Unlock()
	return h.curPath
}

func (h *harvester) setPath(p string) {
	h.pathMu.Lock()
	defer h.pathMu.Unlock()
	h.curPath = p
}

// poke wakes the harvester if it waits for its file to change.
func (h *harvester) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *harvester) close(reason string) {
	h.f.Close()
	if reason != reasonShutdown {
		h.m.log.Debug("closing file", "path", h.path(), "id", h.id, "offset", h.split.Offset(), "why", reason)
	}
	if hk := h.m.cfg.Hooks.BytesBehind; hk != nil {
		hk(h.path(), -1)
	}
}

// run reads until a close rule applies or ctx ends, and says why it
// stopped.
func (h *harvester) run(ctx context.Context) string {
	h.ctx = ctx
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	buf := *bp
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if ctx.Err() != nil || h.stopped {
			return reasonShutdown
		}
		n, err := h.f.Read(buf)
		if n > 0 {
			h.lastData = time.Now()
			h.feed(buf[:n])
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			h.m.log.Error("cannot read file; closing it", "path", h.path(), "err", err)
			return reasonError
		}
		if reason := h.atEnd(); reason != "" {
			return reason
		}
		wait := h.m.cfg.Poll
		if d, ok := h.aggDeadline(); ok {
			wait = min(wait, time.Until(d))
		}
		wait = min(wait, time.Until(h.lastData.Add(h.in.s.CloseInactive)))
		timer.Reset(max(wait, time.Millisecond))
		select {
		case <-ctx.Done():
		case <-h.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

func (h *harvester) aggDeadline() (time.Time, bool) {
	if h.agg == nil {
		return time.Time{}, false
	}
	return h.agg.Deadline()
}

// feed splits what was read into lines and sends them on.
func (h *harvester) feed(p []byte) {
	if !h.headDone {
		h.growHead(p)
	}
	n := 0
	h.split.Feed(p, func(l lines.Line) {
		n++
		h.line(l)
	})
	if hk := h.m.cfg.Hooks.LinesRead; hk != nil && n > 0 {
		hk(n)
	}
}

// growHead adds the bytes of p that continue the head, and records the
// longer head in the registry.
func (h *harvester) growHead(p []byte) {
	at := h.split.Pos() // where p starts in the file
	have := int64(len(h.head))
	if at > have || at+int64(len(p)) <= have {
		return
	}
	take := p[have-at:]
	take = take[:min(len(take), fileid.FingerprintSize-len(h.head))]
	h.head = append(h.head, take...)
	h.headDone = len(h.head) >= fileid.FingerprintSize
	h.m.cfg.Registry.Observe(h.st, fileid.Observed{Dev: h.key.dev, Ino: h.key.ino, Head: h.head})
}

func (h *harvester) line(l lines.Line) {
	if h.agg != nil {
		h.agg.Add(l, time.Now(), h.send)
		return
	}
	h.send(multiline.Event{Text: l.Text, Offset: l.Offset, End: l.End, Lines: 1, Truncated: l.Truncated})
}

// send filters an event and hands it to the Sink.
func (h *harvester) send(e multiline.Event) {
	if h.stopped {
		return
	}
	reg := h.m.cfg.Registry
	if !h.in.filter.Keep(e.Text) {
		reg.Skip(h.st, e.End)
		if hk := h.m.cfg.Hooks.Filtered; hk != nil {
			hk()
		}
		return
	}
	ev := h.ev // a copy; the template keeps its zero per-event fields
	ev.Timestamp = time.Now()
	ev.Message = string(e.Text)
	ev.Event.ID = event.ID(h.m.cfg.Host.ID, h.id, e.Offset)
	ev.Log = event.Log{File: event.File{Path: h.path()}, Offset: e.Offset}
	if e.Truncated {
		ev.Log.Flags = append(ev.Log.Flags, "truncated")
	}
	if e.Lines > 1 {
		ev.Log.Flags = append(ev.Log.Flags, "multiline")
	}
	end := e.End
	err := h.m.cfg.Sink.Publish(h.ctx, &ev, h.id, func() any { return reg.Publish(h.st, end) })
	if err != nil {
		h.stopped = true
	}
}

// flushPending sends a held incomplete last line and a pending multiline
// group, for a file that will not be read on.
func (h *harvester) flushPending() {
	h.split.Flush(h.line)
	if h.agg != nil {
		h.agg.Flush(h.send)
	}
}

// atEnd runs when the harvester has read all there is: it sends a timed
// out multiline group and applies the rules for truncated, replaced,
// removed, renamed and inactive files. It returns why to stop, or "".
func (h *harvester) atEnd() string {
	now := time.Now()
	if d, ok := h.aggDeadline(); ok && !now.Before(d) {
		h.agg.Flush(h.send)
	}
	fi, err := h.f.Stat()
	if err != nil {
		h.m.log.Error("cannot stat open file; closing it", "path", h.path(), "err", err)
		return reasonError
	}
	pos := h.split.Pos()
	if fi.Size() < pos {
		h.m.log.Info("file truncated; its new content is read from the start", "path", h.path(), "size", fi.Size(), "offset", pos)
		return reasonTruncated
	}
	if h.replaced(fi.Size()) {
		h.m.log.Info("file content replaced; reading it as a new file", "path", h.path())
		return reasonReplaced
	}
	if hk := h.m.cfg.Hooks.BytesBehind; hk != nil {
		hk(h.path(), fi.Size()-h.m.cfg.Registry.Info(h.st).Acked)
	}

	removed, renamed := h.moved(fi)
	switch {
	case removed && h.in.s.CloseRemoved:
		h.flushPending()
		return reasonRemoved
	case renamed && h.in.s.CloseRenamed:
		return reasonRenamed
	case h.in.s.CloseEOF:
		return reasonEOF
	case now.Sub(h.lastData) >= h.in.s.CloseInactive:
		h.flushPending()
		return reasonInactive
	}
	return ""
}

// replaced checks that the file still starts with the bytes its identity
// was made from (a truncate followed by quick rewrites past the offset
// would otherwise go unnoticed), and extends a short identity's head as
// the file grows.
func (h *harvester) replaced(size int64) bool {
	reg := h.m.cfg.Registry
	info := reg.Info(h.st)
	k := info.Known
	n := min(size, fileid.FingerprintSize)
	if int64(k.HeadLen) > n {
		return true
	}
	head := make([]byte, n)
	if _, err := h.f.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return false
	}
	obs := fileid.Observed{Dev: h.key.dev, Ino: h.key.ino, Head: head}
	return !obs.Matches(&k)
}

// moved reports whether the file's path no longer leads to it because it
// was removed or renamed.
func (h *harvester) moved(fi os.FileInfo) (removed, renamed bool) {
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok && sys.Nlink == 0 {
		return true, false
	}
	pfi, err := os.Stat(h.path())
	if err != nil {
		return false, true // gone from this name but linked elsewhere
	}
	if !os.SameFile(fi, pfi) {
		return false, true
	}
	return false, false
}
