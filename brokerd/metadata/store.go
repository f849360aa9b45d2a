package metadata

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
)

// Store orders, persists and applies metadata records. Image and Changed
// are safe for concurrent use with everything else.
type Store interface {
	// Image returns the latest applied image.
	Image() *Image
	// Propose appends recs in order and returns once they are durable and
	// applied here. It returns the error Apply gave the first refused
	// record (the others are still applied), or why they could not be
	// appended.
	Propose(ctx context.Context, recs ...Record) error
	// Changed returns a channel that is closed at the next change of the
	// image.
	Changed() <-chan struct{}
	// Close releases the store.
	Close() error
}

// LocalFile is the name of the Local store's log in its folder.
const LocalFile = "logpipe-metadata.log"

// Local is the single-node Store: records are appended as JSON lines to
// one file, fsynced before Propose returns, and replayed at Open.
type Local struct {
	mu      sync.Mutex // serialises Propose and Close
	f       *os.File
	size    int64 // bytes of whole records in f
	next    int64
	img     atomic.Pointer[Image]
	changed atomic.Pointer[chan struct{}]
}

type localEntry struct {
	Offset int64  `json:"offset"`
	Record Record `json:"record"`
}

// OpenLocal opens (or creates) the store in dir. A torn last line, left by
// a crash in the middle of a write, is cut off; a corrupt line before the
// end is an error, since the records after it cannot be trusted.
func OpenLocal(dir string) (*Local, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	path := filepath.Join(dir, LocalFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	s := &Local{f: f}
	ch := make(chan struct{})
	s.changed.Store(&ch)
	replay := NewBatch(Empty(""))
	br := bufio.NewReader(f)
	var good int64
	for {
		line, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			if len(line) > 0 {
				// Torn tail: drop it.
				if terr := f.Truncate(good); terr != nil {
					f.Close()
					return nil, fmt.Errorf("metadata: truncating torn tail of %s: %w", path, terr)
				}
			}
			break
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("metadata: reading %s: %w", path, err)
		}
		var e localEntry
		if err := json.Unmarshal(bytes.TrimSpace(line), &e); err != nil || e.Offset != s.next {
			rest, _ := io.ReadAll(br)
			if len(bytes.TrimSpace(rest)) == 0 && !bytes.HasSuffix(line, []byte("\n")) {
				_ = f.Truncate(good)
				break
			}
			f.Close()
			return nil, fmt.Errorf("metadata: %s is corrupt at byte %d (record %d)", path, good, s.next)
		}
		_ = replay.Apply(e.Offset, e.Record)
		s.next++
		good += int64(len(line))
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("metadata: %w", err)
	}
	s.size = good
	img := replay.Image()
	s.img.Store(img)
	if img.ClusterID == "" {
		id := NewClusterID()
		if err := s.Propose(context.Background(), Record{SetClusterID: &id}); err != nil {
			f.Close()
			return nil, err
		}
	}
	return s, nil
}

// NewClusterID returns a new random cluster id in Kafka's form.
func NewClusterID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Image implements Store.
func (s *Local) Image() *Image { return s.img.Load() }

// Changed implements Store.
func (s *Local) Changed() <-chan struct{} { return *s.changed.Load() }

// Propose implements Store.
func (s *Local) Propose(ctx context.Context, recs ...Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return errors.New("metadata: store is closed")
	}
	var buf bytes.Buffer
	for i, r := range recs {
		b, err := json.Marshal(localEntry{Offset: s.next + int64(i), Record: r})
		if err != nil {
			return fmt.Errorf("metadata: encoding record: %w", err)
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	_, err := s.f.Write(buf.Bytes())
	if err == nil {
		err = s.f.Sync()
	}
	if err != nil {
		// Cut what may have been written so the next record does not
		// follow half of this one.
		_ = s.f.Truncate(s.size)
		_, _ = s.f.Seek(s.size, io.SeekStart)
		return fmt.Errorf("metadata: appending: %w", err)
	}
	s.size += int64(buf.Len())
	b := NewBatch(s.img.Load())
	var first error
	for _, r := range recs {
		if err := b.Apply(s.next, r); err != nil && first == nil {
			first = err
		}
		s.next++
	}
	s.img.Store(b.Image())
	ch := make(chan struct{})
	old := s.changed.Swap(&ch)
	close(*old)
	return first
}

// Close implements Store.
func (s *Local) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
