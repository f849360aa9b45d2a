package quorum

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"logpipe/brokerd/metadata"
)

// fsm applies the committed entries of the Raft log to the metadata image.
// Raft calls Apply, Snapshot and Restore from one goroutine; Image and
// Changed may be read from any.
type fsm struct {
	img     atomic.Pointer[metadata.Image]
	changed atomic.Pointer[chan struct{}]

	mu sync.Mutex
	// fatal is set when an entry cannot be applied (a newer format); from
	// then on nothing more is applied, so the image never diverges from
	// the other nodes' by skipping an entry.
	fatal error
	// fatalCh is closed when fatal is set.
	fatalCh chan struct{}
}

func newFSM() *fsm {
	f := &fsm{fatalCh: make(chan struct{})}
	f.img.Store(metadata.Empty(""))
	ch := make(chan struct{})
	f.changed.Store(&ch)
	return f
}

func (f *fsm) publish(img *metadata.Image) {
	f.img.Store(img)
	ch := make(chan struct{})
	close(*f.changed.Swap(&ch))
}

func (f *fsm) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fatal == nil {
		f.fatal = err
		close(f.fatalCh)
	}
}

func (f *fsm) failed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fatal
}

// applied is what Apply returns for an entry: the error the image gave the
// first refused record, if any.
type applied struct{ err error }

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) any {
	if f.failed() != nil {
		return applied{f.failed()}
	}
	recs, err := metadata.DecodeEntry(l.Data)
	if err != nil {
		err = fmt.Errorf("quorum: entry %d: %w", l.Index, err)
		f.fail(err)
		return applied{err}
	}
	b := metadata.NewBatch(f.img.Load())
	var first error
	for _, r := range recs {
		if err := b.Apply(int64(l.Index), r); err != nil && first == nil {
			first = err
		}
	}
	f.publish(b.Image())
	return applied{first}
}

// Snapshot implements raft.FSM. The image is immutable, so the snapshot
// only holds on to it.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.failed(); err != nil {
		return nil, err
	}
	return imageSnapshot{f.img.Load()}, nil
}

// Restore implements raft.FSM.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("quorum: reading snapshot: %w", err)
	}
	img, err := metadata.DecodeSnapshot(b)
	if err != nil {
		if errors.Is(err, metadata.ErrNewerFormat) {
			f.fail(err)
		}
		return err
	}
	f.publish(img)
	return nil
}

type imageSnapshot struct{ img *metadata.Image }

func (s imageSnapshot) Persist(sink raft.SnapshotSink) error {
	b, err := s.img.EncodeSnapshot()
	if err == nil {
		_, err = sink.Write(b)
	}
	if err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (imageSnapshot) Release() {}
