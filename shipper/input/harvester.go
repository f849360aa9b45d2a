package input

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"logpipe/pipeline/event"
	"logpipe/shipper/fileid"
	"logpipe/shipper/lines"
	"logpipe/shipper/multiline"
	"logpipe/shipper/publish"
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

// readSize is how much a harvester reads at once. Lines read are handed
// on before the next read, straight from the read buffer, so a harvester
// waiting for room in the queue holds little more than it.
const readSize = 32 << 10

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
	stopped  bool // the Sink refused a batch: the context ended

	// src is what the file's events share; batch collects the events
	// read since the last hand-over to the Sink, and is reused.
	src   publish.Source
	batch publish.Batch
	// readBuf is what the last read filled: lines within it go into the
	// batch without a copy.
	readBuf []byte

	// head collects the file's first bytes as read, until it holds a
	// fingerprint's worth, so the identity learns the fingerprint from the
	// bytes actually read (a copy may be looked up any moment).
	head     []byte
	headDone bool
	// headBuf is where stale reads the file's head again.
	headBuf [fileid.FingerprintSize]byte
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
	h.src = publish.Source{
		Template: event.Event{
			Tags:            in.s.Tags,
			Input:           event.Input{Type: in.s.Type},
			Host:            event.Host{Name: m.cfg.Host.Name},
			Agent:           in.agent,
			Fields:          in.s.Fields,
			FieldsUnderRoot: in.s.FieldsUnderRoot,
		},
		HostID: m.cfg.Host.ID,
		FileID: id,
	}
	h.batch = publish.Batch{Source: &h.src, Register: h.register}
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
	// The read buffer is held while there is something to read, and given
	// back while the file is idle, so idle files cost little memory.
	var bp *[]byte
	defer func() {
		if bp != nil {
			readBufs.Put(bp)
		}
	}()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if ctx.Err() != nil || h.stopped {
			return reasonShutdown
		}
		if bp == nil {
			bp = readBufs.Get().(*[]byte)
		}
		n, err := h.f.Read(*bp)
		if n > 0 {
			if h.stale() {
				h.m.log.Info("file content replaced while read; reading it as a new file", "path", h.path(), "offset", h.split.Pos())
				return reasonReplaced
			}
			h.lastData = time.Now()
			h.feed((*bp)[:n])
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			h.m.log.Error("cannot read file; closing it", "path", h.path(), "err", err)
			return reasonError
		}
		if reason := h.atEnd(); reason != "" {
			return reason
		}
		readBufs.Put(bp)
		bp = nil
		h.batch.Trim(idleBatchBytes)
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
	h.readBuf = p
	h.split.Feed(p, func(l lines.Line) {
		n++
		h.line(l)
	})
	// The batch refers to p, which the next read overwrites.
	h.flush()
	h.readBuf = nil
	if hk := h.m.cfg.Hooks.LinesRead; hk != nil && n > 0 {
		hk(n)
	}
}

// stale reports whether the bytes just read may not belong to the content
// the file's identity names: the file no longer starts with the head
// already known, so it was truncated and written again (copytruncate
// rotation) since the scan that found it or the previous read, and the
// bytes may be of the new content. Such bytes are not sent: the new content
// is read as a new file, and the old one, if a copy of it turns up, is read
// on from what was sent of it. A read made just before the rewrite is
// dropped too, which only means its bytes are read again from the copy.
func (h *harvester) stale() bool {
	known := h.head[:min(len(h.head), len(h.headBuf))]
	if len(known) == 0 {
		return false
	}
	now := h.headBuf[:len(known)]
	n, _ := h.f.ReadAt(now, 0)
	return !bytes.Equal(now[:n], known)
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

// Bounds of a batch: it is handed to the Sink when it reaches either, and
// after every read. While the file is idle the batch keeps at most
// idleBatchBytes of room.
const (
	maxBatchEvents = 1024
	maxBatchBytes  = 64 << 10
	idleBatchBytes = 16 << 10
)

// send filters an event and adds it to the batch.
func (h *harvester) send(e multiline.Event) {
	if h.stopped {
		return
	}
	b := &h.batch
	if b.Len() == 0 {
		b.Time = time.Now()
		b.Path = h.path()
	}
	if !h.in.filter.Keep(e.Text) {
		b.AddSkip(e.Offset, e.End)
		if hk := h.m.cfg.Hooks.Filtered; hk != nil {
			hk()
		}
	} else {
		var flags publish.Flags
		if e.Truncated {
			flags |= publish.Truncated
		}
		if e.Lines > 1 {
			flags |= publish.Multiline
		}
		if within(e.Text, h.readBuf) {
			b.AddRef(e.Text, e.Offset, e.End, flags)
		} else {
			b.Add(e.Text, e.Offset, e.End, flags)
		}
	}
	if b.Len() >= maxBatchEvents || b.TextBytes() >= maxBatchBytes {
		h.flush()
	}
}

// flush hands the batch to the Sink, which waits for room in its queue.
func (h *harvester) flush() {
	if h.batch.Len() == 0 {
		return
	}
	if !h.stopped {
		if err := h.m.cfg.Sink.Publish(h.ctx, &h.batch); err != nil {
			h.stopped = true
		}
	}
	h.batch.Reset()
}

// register records a batch's events in the registry once the Sink has
// room for them; its receipt is their registry.Span.
func (h *harvester) register(b *publish.Batch) any {
	return h.m.cfg.Registry.PublishAll(h.st, b.Len(), func(i int) (int64, bool) {
		e := &b.Events[i]
		return e.End, e.Skip
	})
}

// within reports whether text lies inside buf (the read buffer), so that it
// stays valid until buf is read into again.
func within(text, buf []byte) bool {
	if len(text) == 0 || len(buf) == 0 {
		return false
	}
	t := uintptr(unsafe.Pointer(unsafe.SliceData(text)))
	b := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	return t >= b && t+uintptr(len(text)) <= b+uintptr(len(buf))
}

// flushPending sends a held incomplete last line and a pending multiline
// group, for a file that will not be read on.
func (h *harvester) flushPending() {
	h.split.Flush(h.line)
	if h.agg != nil {
		h.agg.Flush(h.send)
	}
	h.flush()
}

// atEnd runs when the harvester has read all there is: it sends a timed
// out multiline group and applies the rules for truncated, replaced,
// removed, renamed and inactive files. It returns why to stop, or "".
func (h *harvester) atEnd() string {
	now := time.Now()
	if d, ok := h.aggDeadline(); ok && !now.Before(d) {
		h.agg.Flush(h.send)
		h.flush()
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
