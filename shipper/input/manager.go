package input

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"logpipe/pipeline/event"
	"logpipe/shipper/fileid"
	"logpipe/shipper/registry"
)

// Options is what a Manager needs besides its inputs.
type Options struct {
	Registry *registry.Registry
	Sink     Sink
	Log      *slog.Logger
	Host     Host
	Agent    event.Agent
	Hooks    Hooks
	// Poll is how often an idle harvester looks at its file without being
	// told by a notification (default 1s).
	Poll time.Duration
}

// devIno names an open file on disk.
type devIno struct{ dev, ino uint64 }

// Manager runs the inputs: it scans their paths, starts a harvester per
// file and stops them all when its Run context ends.
type Manager struct {
	cfg    Options
	log    *slog.Logger
	inputs []*input

	watcher *fsnotify.Watcher
	watched map[string]bool
	rescan  chan struct{}
	// Only the Run goroutine touches watched, warned, found and the
	// inputs' scan fields.
	warned map[string]string // path -> last problem logged
	found  map[string]bool   // identities whose "found" line was logged
	// deferred holds paths not yet taken for new files because they may
	// be copies of a file still being read, with when that was first
	// decided.
	deferred map[string]time.Time
	first    bool // the registry was empty at start

	mu         sync.Mutex
	harvesters map[devIno]*harvester
	byPath     map[string]*harvester

	nonce atomic.Uint64
	wg    sync.WaitGroup
}

// NewManager prepares the inputs; Run starts them.
func NewManager(inputs []*Settings, cfg Options) (*Manager, error) {
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	m := &Manager{
		cfg:        cfg,
		log:        cfg.Log,
		watched:    map[string]bool{},
		rescan:     make(chan struct{}, 1),
		warned:     map[string]string{},
		found:      map[string]bool{},
		deferred:   map[string]time.Time{},
		harvesters: map[devIno]*harvester{},
		byPath:     map[string]*harvester{},
	}
	for _, s := range inputs {
		abs := *s
		abs.Paths = make([]string, len(s.Paths))
		for i, p := range s.Paths {
			a, err := filepath.Abs(p)
			if err != nil {
				return nil, fmt.Errorf("input: %w", err)
			}
			abs.Paths[i] = a
		}
		in, err := newInput(&abs, cfg.Agent)
		if err != nil {
			return nil, err
		}
		m.inputs = append(m.inputs, in)
	}
	return m, nil
}

// Run scans and reads until ctx ends, then stops every harvester and
// waits for them. Events a harvester was waiting to hand over are not
// sent; the registry still holds their offsets as unacknowledged, so they
// are read again at the next start.
func (m *Manager) Run(ctx context.Context) error {
	m.first = m.cfg.Registry.Len() == 0
	w, err := fsnotify.NewBufferedWatcher(1024)
	if err != nil {
		m.log.Warn("no file system notifications; relying on periodic scans", "err", err)
	} else {
		m.watcher = w
		defer w.Close()
	}
	var events <-chan fsnotify.Event
	var errs <-chan error
	if m.watcher != nil {
		events, errs = m.watcher.Events, m.watcher.Errors
	}

	m.scan(ctx, true)
	timer := time.NewTimer(m.untilNextScan())
	defer timer.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			m.notified(ev)
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				m.log.Debug("file notifications overflowed; scanning")
			} else {
				m.log.Warn("file notification error; scanning", "err", err)
			}
			m.scan(ctx, true)
		case <-m.rescan:
			m.scan(ctx, true)
		case <-timer.C:
			m.scan(ctx, len(m.deferred) > 0)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(m.untilNextScan())
	}
	m.wg.Wait()
	return nil
}

// requestScan asks Run for a scan of every input soon.
func (m *Manager) requestScan() {
	select {
	case m.rescan <- struct{}{}:
	default:
	}
}

// deferFor is the longest a new file that may be a copy of a file still
// being read waits to be recognised.
const deferFor = time.Second

func (m *Manager) untilNextScan() time.Duration {
	if len(m.deferred) > 0 {
		return 50 * time.Millisecond
	}
	var next time.Time
	for _, in := range m.inputs {
		if next.IsZero() || in.nextScan.Before(next) {
			next = in.nextScan
		}
	}
	if next.IsZero() {
		return time.Hour
	}
	return max(time.Until(next), time.Millisecond)
}

// notified handles one file system notification.
func (m *Manager) notified(ev fsnotify.Event) {
	m.mu.Lock()
	h := m.byPath[ev.Name]
	m.mu.Unlock()
	if h != nil {
		h.poke()
	}
	if ev.Has(fsnotify.Write) && h != nil {
		return
	}
	if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Rename) || ev.Has(fsnotify.Remove) {
		m.requestScan()
		return
	}
	// A write or a permission change to a file no harvester has open.
	for _, in := range m.inputs {
		if in.matches(ev.Name) {
			m.requestScan()
			return
		}
	}
}

// watch adds a folder to the notifications, once.
func (m *Manager) watch(dir string) {
	if m.watcher == nil || m.watched[dir] {
		return
	}
	if err := m.watcher.Add(dir); err != nil {
		m.warnOnce(dir, "cannot watch folder; its files are found by the periodic scan", err)
		return
	}
	m.watched[dir] = true
}

// warnOnce logs a problem with path unless the same one was logged last.
func (m *Manager) warnOnce(path, msg string, err error) {
	key := msg
	if err != nil {
		key += err.Error()
	}
	if m.warned[path] == key {
		return
	}
	m.warned[path] = key
	m.log.Warn(msg, "path", path, "err", err)
}

// scan globs the inputs that are due (all with force) and starts
// harvesters for files with something to read.
func (m *Manager) scan(ctx context.Context, force bool) {
	now := time.Now()
	for p, first := range m.deferred {
		if now.Sub(first) > 2*deferFor {
			delete(m.deferred, p) // gone meanwhile
		}
	}
	for _, in := range m.inputs {
		if ctx.Err() != nil {
			return
		}
		if !force && now.Before(in.nextScan) {
			continue
		}
		m.scanInput(ctx, in, now)
		in.nextScan = now.Add(in.s.ScanFrequency)
		in.scanned = true
	}
}

func (m *Manager) scanInput(ctx context.Context, in *input, now time.Time) {
	seen := map[string]bool{}
	for _, g := range in.globs {
		g.expand(m.watch, func(path string) {
			if seen[path] || ctx.Err() != nil {
				return
			}
			seen[path] = true
			if in.excluded(path) {
				return
			}
			m.consider(ctx, in, path, now)
		})
	}
	m.clean(in, now)
}

// consider looks at one path an input matched.
func (m *Manager) consider(ctx context.Context, in *input, path string, now time.Time) {
	fi, err := os.Stat(path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			m.warnOnce(path, "cannot read file information; skipping it", err)
		}
		return
	}
	if fi.IsDir() {
		m.warnOnce(path, "the input's paths match a folder, which is not read (write a glob that matches the files in it)", nil)
		return
	}
	if !fi.Mode().IsRegular() {
		m.warnOnce(path, fmt.Sprintf("not a regular file (%s); skipping it", fi.Mode().Type()), nil)
		return
	}
	sys, _ := fi.Sys().(*syscall.Stat_t)
	if sys == nil {
		return
	}
	key := devIno{uint64(sys.Dev), sys.Ino}
	m.mu.Lock()
	h := m.harvesters[key]
	m.mu.Unlock()
	if h != nil {
		// Already being read, perhaps under another name now.
		m.mu.Lock()
		if old := h.path(); old != path {
			if m.byPath[old] == h {
				delete(m.byPath, old)
			}
			h.setPath(path)
		}
		m.byPath[path] = h
		m.mu.Unlock()
		m.cfg.Registry.Seen(h.st, path, in.s.ID, now)
		return
	}

	f, err := os.Open(path)
	if err != nil {
		m.warnOnce(path, "cannot open file; skipping it, the other files are read", err)
		return
	}
	keep := false
	defer func() {
		if !keep {
			f.Close()
		}
	}()
	// Identity comes from the open file, so a rename between Stat and
	// Open cannot mix two files up.
	fi, err = f.Stat()
	if err != nil {
		m.warnOnce(path, "cannot read file information; skipping it", err)
		return
	}
	sys, _ = fi.Sys().(*syscall.Stat_t)
	key = devIno{uint64(sys.Dev), sys.Ino}
	head, err := readHead(f)
	if err != nil {
		m.warnOnce(path, "cannot read file; skipping it, the other files are read", err)
		return
	}
	delete(m.warned, path)
	obs := fileid.Observed{Dev: key.dev, Ino: key.ino, Head: head}
	reg := m.cfg.Registry
	st := reg.Lookup(obs)
	size := fi.Size()
	if st == nil && m.maybeCopy(obs) {
		// Perhaps a copy of a file whose reader has not yet learnt its
		// fingerprint: look again shortly, for a while.
		first, waiting := m.deferred[path]
		if !waiting {
			first = now
			m.deferred[path] = now
		}
		if now.Sub(first) < deferFor {
			return
		}
	}
	delete(m.deferred, path)
	how := "resuming"
	if st == nil {
		start := int64(0)
		how = "new file, reading from its start"
		switch {
		case in.s.IgnoreOlder > 0 && now.Sub(fi.ModTime()) > in.s.IgnoreOlder:
			start, how = size, "new file older than ignore_older, only lines added from now on are read"
		case in.s.TailFiles && m.first && !in.scanned:
			start, how = size, "existing file at first start with tail_files, reading from its end"
		}
		nonce := strconv.FormatInt(now.UnixNano(), 36) + "." + strconv.FormatUint(m.nonce.Add(1), 36)
		st = reg.Create(obs, nonce, path, in.s.ID, start, fi.ModTime(), now)
	} else {
		reg.Seen(st, path, in.s.ID, now)
	}
	info := reg.Info(st)
	id := info.Known.ID
	skip := ""
	switch {
	case info.Claimed:
		// Another open file has this content: a copy being made by
		// copytruncate rotation while the original is still read.
		skip = "its content is being read from another file"
	case size < info.Read:
		skip = "a copy shorter than what was read of the original"
	case size == info.Read:
		// A write makes a notification, which brings the file back.
		skip = "read to its end"
	}
	if skip == "" {
		m.mu.Lock()
		full := in.s.HarvesterLimit > 0 && in.active >= in.s.HarvesterLimit
		m.mu.Unlock()
		if full {
			skip = "harvester_limit reached; tried again at the next scan"
		} else if !reg.Claim(st) {
			skip = "its content is being read from another file"
		}
	}
	if !m.found[id] {
		m.found[id] = true
		if skip == "" {
			m.log.Info("file found", "path", path, "offset", info.Read, "size", size, "id", id, "input", in.s.ID, "start", how)
		} else {
			m.log.Info("file found, not read now", "path", path, "offset", info.Read, "size", size, "id", id, "input", in.s.ID, "why", skip)
		}
	}
	if skip != "" {
		return
	}
	reg.Observe(st, obs)
	reg.Touch(st, fi.ModTime())
	if _, err := f.Seek(info.Read, io.SeekStart); err != nil {
		reg.Release(st)
		m.warnOnce(path, "cannot seek in file; skipping it", err)
		return
	}
	m.log.Debug("harvesting file", "path", path, "offset", info.Read, "size", size, "id", id)
	h = newHarvester(m, in, st, id, f, key, path, info.Read, head)
	keep = true
	m.mu.Lock()
	m.harvesters[key] = h
	m.byPath[path] = h
	in.active++
	m.mu.Unlock()
	if m.cfg.Hooks.Harvesters != nil {
		m.cfg.Hooks.Harvesters(1)
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		reason := h.run(ctx)
		h.close(reason)
		m.mu.Lock()
		delete(m.harvesters, key)
		if p := h.path(); m.byPath[p] == h {
			delete(m.byPath, p)
		}
		m.mu.Unlock()
		m.cfg.Registry.Release(st)
		m.harvesterDone(in)
		if m.cfg.Hooks.Harvesters != nil {
			m.cfg.Hooks.Harvesters(-1)
		}
		if reason == reasonTruncated || reason == reasonReplaced {
			m.cfg.Registry.Gone(st)
			m.requestScan()
		}
	}()
}

// maybeCopy reports whether o, a file that matches no known identity, may
// be a copy being made of a file that is being read (copytruncate rotation
// copies the live file to its rotated name): its bytes so far are the
// start of that file, and the copy is still too short to show a
// fingerprint, or the reader has not yet learnt it.
func (m *Manager) maybeCopy(o fileid.Observed) bool {
	m.mu.Lock()
	open := make([]*harvester, 0, len(m.harvesters))
	for _, h := range m.harvesters {
		if h.key != (devIno{o.Dev, o.Ino}) {
			open = append(open, h)
		}
	}
	m.mu.Unlock()
	buf := make([]byte, len(o.Head))
	for _, h := range open {
		// A harvester closing its file meanwhile makes ReadAt fail: no match.
		if n, _ := h.f.ReadAt(buf, 0); n == len(buf) && bytes.Equal(buf, o.Head) {
			return true
		}
	}
	return false
}

// harvesterDone lowers the input's count of running harvesters. Run's
// goroutine reads active in scans; the decrement goes through the lock.
func (m *Manager) harvesterDone(in *input) {
	m.mu.Lock()
	in.active--
	m.mu.Unlock()
}

// readHead reads the first bytes of f that identity uses.
func readHead(f *os.File) ([]byte, error) {
	buf := make([]byte, fileid.FingerprintSize)
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:n], nil
}

// clean forgets files of the input that are gone (clean_removed) or have
// not changed for too long (clean_inactive).
func (m *Manager) clean(in *input, scanStart time.Time) {
	reg := m.cfg.Registry
	for _, st := range reg.States(in.s.ID) {
		info := reg.Info(st)
		if info.Claimed || info.Pending > 0 {
			continue
		}
		why := ""
		switch {
		case in.s.CleanRemoved && info.Seen.Before(scanStart):
			why = "file is gone (clean_removed)"
		case in.s.CleanInactive > 0 && scanStart.Sub(info.Updated) > in.s.CleanInactive:
			why = "file unchanged for longer than clean_inactive"
		}
		if why != "" && reg.Remove(st) {
			delete(m.found, info.Known.ID)
			m.log.Debug("forgetting file", "path", info.Path, "id", info.Known.ID, "offset", info.Acked, "why", why)
		}
	}
}
