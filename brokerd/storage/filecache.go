package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// ErrTooManyOpenFiles means a file could not be opened because the process
// is out of descriptors, even after the FileCache closed every idle file
// and tried again. Nothing was written; the operation may be retried once
// descriptors are free (Kafka: KAFKA_STORAGE_ERROR).
var ErrTooManyOpenFiles = errors.New("storage: too many open files")

// DefaultIdleTimeout is how long a segment file may stay open unused before
// a FileCache closes it.
const DefaultIdleTimeout = 10 * time.Minute

// FileCache keeps the segment files (.log) of every log opened through it
// open on demand: a file is opened when it is appended to or read, stays
// open while it is in use (an append, a read, a fetch response being sent
// with sendfile), and is closed once it is idle and either the cache holds
// more than its bound or it was not used for the idle timeout. So open
// descriptors follow the partitions in use, not the partitions hosted.
//
// Index files hold no descriptor: their entries are kept in memory and
// written when a segment is rolled or its log closed; checkpoints and
// indexes are opened only for the write. Every open done by a Log goes
// through its cache: when the process is out of descriptors (EMFILE,
// ENFILE), the cache closes its idle files and tries once more, then fails
// with ErrTooManyOpenFiles.
//
// A FileCache is safe for concurrent use. Its lock is taken after the
// locks of a Log and held only for bookkeeping, never for I/O.
type FileCache struct {
	max  int
	idle time.Duration
	now  func() time.Time

	mu         sync.Mutex
	head, tail *cachedFile // idle open files, least recently used first
	open       int         // open files, in use or idle
	inUse      int         // open files with at least one user
	opened     uint64
	evicted    uint64
	retried    uint64
	exhausted  uint64
}

// FileCacheConfig says how a FileCache bounds its files.
type FileCacheConfig struct {
	// MaxOpen is how many files may stay open while idle (Kafka has no
	// such bound; brokerd's key is log.max.open.files). Files in use are
	// never closed, so the count may exceed it while they are. Zero means
	// DefaultMaxOpenFiles.
	MaxOpen int
	// IdleTimeout closes a file unused this long (checked whenever the
	// cache is used). Zero means DefaultIdleTimeout; negative, never.
	IdleTimeout time.Duration
	// Clock tells the time for the idle timeout; nil means time.Now.
	Clock func() time.Time
}

// DefaultMaxOpenFiles is half of the process's soft limit on open files
// (RLIMIT_NOFILE, which the Go runtime raises to the hard limit at
// start), leaving the other half for connections and everything else;
// at least 16.
func DefaultMaxOpenFiles() int {
	return max(processFileLimit()/2, 16)
}

// processFileLimit returns the soft RLIMIT_NOFILE, or MaxInt32 when it is
// unlimited or unknown.
func processFileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(rl.Cur)
}

// NewFileCache returns an empty cache.
func NewFileCache(cfg FileCacheConfig) *FileCache {
	c := &FileCache{max: cfg.MaxOpen, idle: cfg.IdleTimeout, now: cfg.Clock}
	if c.max <= 0 {
		c.max = DefaultMaxOpenFiles()
	}
	if c.idle == 0 {
		c.idle = DefaultIdleTimeout
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// defaultFiles is the cache of the logs opened with the package's Open.
var defaultFiles = sync.OnceValue(func() *FileCache { return NewFileCache(FileCacheConfig{}) })

// FileCacheStats is a FileCache's state, for metrics.
type FileCacheStats struct {
	// Open counts the segment files open now; InUse those of them in use.
	Open, InUse int
	// MaxOpen is the bound on idle open files.
	MaxOpen int
	// Opened counts opens so far; Evicted the files closed because the
	// bound was reached or they were idle too long.
	Opened, Evicted uint64
	// Retried counts opens that ran out of descriptors and were tried
	// again after idle files were closed; Exhausted those that failed
	// with ErrTooManyOpenFiles all the same.
	Retried, Exhausted uint64
}

// Stats returns the cache's counters.
func (c *FileCache) Stats() FileCacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return FileCacheStats{Open: c.open, InUse: c.inUse, MaxOpen: c.max,
		Opened: c.opened, Evicted: c.evicted, Retried: c.retried, Exhausted: c.exhausted}
}

// Open opens the partition log in dir (see the package function Open)
// with its segment files kept by c.
func (c *FileCache) Open(dir string, cfg Config) (*Log, error) {
	return open(dir, cfg, c)
}

// cachedFile is one segment file known to a FileCache: open or not, with
// the users that need it open. All fields but c and path are guarded by
// c.mu.
type cachedFile struct {
	c    *FileCache
	path string

	f       *os.File      // nil while closed
	users   int           // acquires not yet released
	dropped bool          // the segment left its log: never reopen
	opening chan struct{} // closed when an open in progress ends
	lastUse time.Time
	// prev and next link the cache's idle list while listed.
	prev, next *cachedFile
	listed     bool
}

// file returns a handle on path, not open yet.
func (c *FileCache) file(path string) *cachedFile {
	return &cachedFile{c: c, path: path}
}

// adopt returns a handle on f, just opened by the caller, in use: the
// caller releases it.
func (c *FileCache) adopt(path string, f *os.File) *cachedFile {
	h := &cachedFile{c: c, path: path}
	c.mu.Lock()
	victims := c.installLocked(h, f)
	c.mu.Unlock()
	closeAll(victims)
	return h
}

// installLocked makes f the open file of h, with one user, and trims the
// cache, returning the files to close.
func (c *FileCache) installLocked(h *cachedFile, f *os.File) []*os.File {
	h.f = f
	c.open++
	c.opened++
	h.useLocked()
	return c.trimLocked(c.now())
}

// acquire returns the open file, opening it if needed; the file stays open
// until release. A dropped file that is closed cannot be acquired
// (errSegmentGone).
func (h *cachedFile) acquire() (*os.File, error) {
	c := h.c
	c.mu.Lock()
	for h.opening != nil {
		ch := h.opening
		c.mu.Unlock()
		<-ch
		c.mu.Lock()
	}
	if h.f != nil {
		h.useLocked()
		c.mu.Unlock()
		return h.f, nil
	}
	if h.dropped {
		c.mu.Unlock()
		return nil, errSegmentGone
	}
	ch := make(chan struct{})
	h.opening = ch
	c.mu.Unlock()

	var f *os.File
	err := c.retry(func() error {
		var err error
		f, err = os.OpenFile(h.path, os.O_RDWR, 0)
		return err
	})

	c.mu.Lock()
	h.opening = nil
	close(ch)
	if err == nil && h.dropped {
		// Dropped while opening: the path may name a newer file now.
		c.mu.Unlock()
		f.Close()
		return nil, errSegmentGone
	}
	if err != nil {
		c.mu.Unlock()
		return nil, err
	}
	victims := c.installLocked(h, f)
	c.mu.Unlock()
	closeAll(victims)
	return f, nil
}

// errSegmentGone means a segment that left its log (retention, truncation,
// compaction, Close) and whose file is closed: a reader that finds it
// waits for the writer and looks again, a Compact that listed it gives up
// this round.
var errSegmentGone = errors.New("storage: segment deleted")

// useLocked adds a user to an open file.
func (h *cachedFile) useLocked() {
	if h.users == 0 {
		h.c.inUse++
		h.c.unlinkLocked(h)
	}
	h.users++
}

// release ends one acquire. The last user puts the file on the idle list,
// or closes it if it was dropped.
func (h *cachedFile) release() {
	c := h.c
	c.mu.Lock()
	h.users--
	if h.users > 0 {
		c.mu.Unlock()
		return
	}
	c.inUse--
	if h.dropped {
		f := h.f
		h.f = nil
		c.open--
		c.mu.Unlock()
		f.Close()
		return
	}
	victims := c.idleLocked(h)
	c.mu.Unlock()
	closeAll(victims)
}

// drop is called when the segment leaves its log (deleted, or the log
// closed): the file is closed now if idle, else by its last user, and is
// never opened again.
func (h *cachedFile) drop() {
	c := h.c
	c.mu.Lock()
	h.dropped = true
	var f *os.File
	if h.users == 0 && h.f != nil {
		c.unlinkLocked(h)
		f = h.f
		h.f = nil
		c.open--
	}
	c.mu.Unlock()
	if f != nil {
		f.Close()
	}
}

// idleLocked lists an open file with no user as the most recently used
// idle one, then trims the cache.
func (c *FileCache) idleLocked(h *cachedFile) []*os.File {
	now := c.now()
	h.lastUse = now
	h.prev, h.next, h.listed = c.tail, nil, true
	if c.tail != nil {
		c.tail.next = h
	} else {
		c.head = h
	}
	c.tail = h
	return c.trimLocked(now)
}

// trimLocked detaches the idle files beyond the bound and those idle for
// longer than the idle timeout, and returns them to be closed outside the
// lock.
func (c *FileCache) trimLocked(now time.Time) []*os.File {
	var out []*os.File
	for h := c.head; h != nil && (c.open > c.max || c.idle > 0 && now.Sub(h.lastUse) >= c.idle); h = c.head {
		out = append(out, c.evictLocked(h))
	}
	return out
}

// evictLocked closes the bookkeeping of an idle file and returns it.
func (c *FileCache) evictLocked(h *cachedFile) *os.File {
	c.unlinkLocked(h)
	f := h.f
	h.f = nil
	c.open--
	c.evicted++
	return f
}

func (c *FileCache) unlinkLocked(h *cachedFile) {
	if !h.listed {
		return
	}
	if h.prev != nil {
		h.prev.next = h.next
	} else {
		c.head = h.next
	}
	if h.next != nil {
		h.next.prev = h.prev
	} else {
		c.tail = h.prev
	}
	h.prev, h.next, h.listed = nil, nil, false
}

// shed closes every idle file, to free descriptors.
func (c *FileCache) shed() {
	c.mu.Lock()
	var victims []*os.File
	for c.head != nil {
		victims = append(victims, c.evictLocked(c.head))
	}
	c.mu.Unlock()
	closeAll(victims)
}

func closeAll(fs []*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// retry runs fn, which opens a file; when it runs out of descriptors, the
// idle files are closed and fn runs once more. If that fails the same way,
// the error is ErrTooManyOpenFiles with the limits.
func (c *FileCache) retry(fn func() error) error {
	err := fn()
	if !outOfDescriptors(err) {
		return err
	}
	c.mu.Lock()
	c.retried++
	c.mu.Unlock()
	c.shed()
	if err = fn(); !outOfDescriptors(err) {
		return err
	}
	c.mu.Lock()
	c.exhausted++
	c.mu.Unlock()
	what := err.Error()
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		what = pe.Op + " " + pe.Path
	}
	return fmt.Errorf("%w (the process limit is %d; log.max.open.files is %d): %s", ErrTooManyOpenFiles, processFileLimit(), c.max, what)
}

func outOfDescriptors(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// The helpers below are the package's only ways to open a file other than
// a segment's .log, each going through retry.

// openFile is os.OpenFile through retry.
func (c *FileCache) openFile(path string, flag int, perm os.FileMode) (*os.File, error) {
	var f *os.File
	err := c.retry(func() error {
		var err error
		f, err = os.OpenFile(path, flag, perm)
		return err
	})
	return f, err
}

// readFile is os.ReadFile through retry.
func (c *FileCache) readFile(path string) ([]byte, error) {
	var b []byte
	err := c.retry(func() error {
		var err error
		b, err = os.ReadFile(path)
		return err
	})
	return b, err
}

// readDir is os.ReadDir through retry.
func (c *FileCache) readDir(dir string) ([]os.DirEntry, error) {
	var es []os.DirEntry
	err := c.retry(func() error {
		var err error
		es, err = os.ReadDir(dir)
		return err
	})
	return es, err
}

// syncDir fsyncs a folder so that creations, renames and removals in it
// are durable.
func (c *FileCache) syncDir(dir string) error {
	d, err := c.openFile(dir, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeFile replaces path with data, fsyncing it when sync is set (not
// atomically: for indexes, which can always be rebuilt from the log).
func (c *FileCache) writeFile(path string, data []byte, sync bool) error {
	f, err := c.openFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// appendFile appends data to path and fsyncs it; nothing to append does
// nothing.
func (c *FileCache) appendFile(path string, data []byte) error {
	if len(data) == 0 {
		return nil
	}
	f, err := c.openFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeFileAtomic replaces dir/name with data: write a temporary file,
// fsync it, rename it over the old one, fsync the folder.
func (c *FileCache) writeFileAtomic(dir, name string, data []byte) error {
	path := filepath.Join(dir, name)
	tmp := path + tmpSuffix
	if err := c.writeFile(tmp, data, true); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return c.syncDir(dir)
}
