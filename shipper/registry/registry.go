// Package registry keeps the shipper's memory of the files it reads: per
// file identity, the offset up to which every line has been acknowledged
// by the broker. That offset advances only on acknowledgement (Tracker
// holds acknowledgements that arrive early until the gap before them
// fills), is saved atomically to one file (Save), and is all a restart
// trusts.
package registry

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"logpipe/shipper/fileid"
)

// State is what the registry knows of one file. Its fields are guarded by
// the Registry's lock; use the Registry's methods.
type State struct {
	known   fileid.Known
	path    string
	input   string
	read    int64 // in memory: where the next line to publish starts
	updated time.Time
	seen    time.Time
	claimed bool
	// gone marks a file whose content left its inode (truncated or
	// replaced) while it was read: a copy of it may turn up under another
	// name (copytruncate rotation).
	gone bool
}

// Info is a copy of a State's fields, for decisions outside the lock.
type Info struct {
	Known   fileid.Known
	Path    string
	Input   string
	Read    int64
	Acked   int64
	Pending int
	Updated time.Time
	Seen    time.Time
	Claimed bool
}

// Hooks are told what the registry does, for metrics. Nil fields are
// skipped.
type Hooks struct {
	// Written is called after each attempt to write the registry file.
	Written func(err error, took time.Duration)
}

// Registry holds the state of every known file and saves it. It is safe
// for concurrent use.
type Registry struct {
	path  string
	log   *slog.Logger
	hooks Hooks

	mu      sync.Mutex
	states  map[string]*State // by identity
	tracker Tracker
	dirty   bool
	changed chan struct{} // a token when dirty became true
}

// Open loads the registry file at path (none yet is fine).
func Open(path string, log *slog.Logger, hooks Hooks) (*Registry, error) {
	entries, err := Load(path)
	if err != nil {
		return nil, err
	}
	r := &Registry{path: path, log: log, hooks: hooks, states: map[string]*State{}, changed: make(chan struct{}, 1)}
	for _, e := range entries {
		r.states[e.ID] = &State{known: e.Known, path: e.Path, input: e.Input, read: e.Offset, updated: e.Updated}
		r.tracker.Start(e.ID, e.Offset)
	}
	return r, nil
}

// Path returns the registry file's path.
func (r *Registry) Path() string { return r.path }

// Len returns how many files the registry knows.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.states)
}

// markDirty notes a change to save. Callers hold r.mu.
func (r *Registry) markDirty() {
	if !r.dirty {
		r.dirty = true
		select {
		case r.changed <- struct{}{}:
		default:
		}
	}
}

// Lookup returns the state of the file o is, or nil for a file not seen
// before. A file is recognised by its fingerprint, or while short by its
// inode and head; failing that, a file whose content was truncated away
// from its inode while it was short is recognised in a file that starts
// with that content (its copy).
func (r *Registry) Lookup(o fileid.Observed) *State {
	fp, long := o.Fingerprint()
	r.mu.Lock()
	defer r.mu.Unlock()
	var best, copied *State
	for _, st := range r.states {
		k := &st.known
		if k.Fingerprinted() {
			if !long || fp != k.HeadHash {
				continue
			}
		} else if !o.Matches(k) {
			if st.gone && !st.claimed && k.HeadLen > 0 && prefixMatches(o, k) {
				copied = st
			}
			continue
		}
		// Two states can match when a short file grew into the
		// fingerprint of a known one; prefer the one on this inode.
		if best == nil || (k.Dev == o.Dev && k.Ino == o.Ino) {
			best = st
		}
	}
	if best == nil {
		best = copied
	}
	return best
}

// prefixMatches reports whether o starts with the head k remembers,
// wherever o is on disk.
func prefixMatches(o fileid.Observed, k *fileid.Known) bool {
	return len(o.Head) >= k.HeadLen && fileid.Hash(o.Head[:k.HeadLen]) == k.HeadHash
}

// Gone records that st's content left the inode it was read from.
func (r *Registry) Gone(st *State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st.gone = true
}

// Create adds the state of a file seen for the first time at now, last
// modified at modified, to be read from offset, which counts as
// acknowledged (0, or the size of a file skipped).
func (r *Registry) Create(o fileid.Observed, nonce, path, input string, offset int64, modified, now time.Time) *State {
	st := &State{known: fileid.New(o, nonce), path: path, input: input, read: offset, updated: modified, seen: now}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states[st.known.ID] = st
	r.tracker.Forget(st.known.ID)
	r.tracker.Start(st.known.ID, offset)
	r.markDirty()
	return st
}

// ID returns the file's identity, which names it in events and their ids.
func (r *Registry) ID(st *State) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return st.known.ID
}

// Info returns a copy of st's fields.
func (r *Registry) Info(st *State) Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.info(st)
}

func (r *Registry) info(st *State) Info {
	id := st.known.ID
	return Info{Known: st.known, Path: st.path, Input: st.input, Read: st.read, Acked: r.tracker.Acked(id),
		Pending: r.tracker.Pending(id), Updated: st.updated, Seen: st.seen, Claimed: st.claimed}
}

// Seen records that a scan of input found st's file at path now.
func (r *Registry) Seen(st *State, path, input string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st.seen = now
	if st.path != path || st.input != input {
		st.path, st.input = path, input
		r.markDirty()
	}
}

// Observe records a newer sighting of st's file (which Matches it): its
// inode and, while it is short, its longer head.
func (r *Registry) Observe(st *State, o fileid.Observed) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st.known.Update(o) {
		r.markDirty()
	}
}

// Touch records that st's file changed at t.
func (r *Registry) Touch(st *State, t time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t.After(st.updated) {
		st.updated = t
	}
}

// Claim gives the caller the right to read st's file, and reports false if
// someone else has it. Release gives it back.
func (r *Registry) Claim(st *State) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if st.claimed {
		return false
	}
	if r.states[st.known.ID] != st {
		return false // removed meanwhile
	}
	st.claimed = true
	st.gone = false
	return true
}

// Release ends a Claim.
func (r *Registry) Release(st *State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st.claimed = false
}

// Publish records that the event of st's file ending at end is being sent
// and returns the ticket to Ack it with. Ends must grow.
func (r *Registry) Publish(st *State, end int64) Ticket {
	r.mu.Lock()
	defer r.mu.Unlock()
	st.read = end
	return r.tracker.Publish(st.known.ID, end)
}

// PublishAll records that n events of st's file are being sent, in order,
// and returns their tickets. event(i) gives event i's end, and whether it
// was consumed without an event to acknowledge (a filtered line). Ends
// must grow.
func (r *Registry) PublishAll(st *State, n int, event func(i int) (end int64, skip bool)) Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n > 0 {
		st.read, _ = event(n - 1)
	}
	id := st.known.ID
	before := r.tracker.Acked(id)
	span := r.tracker.PublishAll(id, n, event)
	if r.tracker.Acked(id) != before {
		r.markDirty()
	}
	return span
}

// AckEach records the broker's acknowledgement of n events, whose tickets
// ticket(i) returns, under one lock.
func (r *Registry) AckEach(n int, ticket func(i int) Ticket) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range n {
		if _, moved := r.tracker.Ack(ticket(i)); moved {
			r.markDirty()
		}
	}
}

// Skip records that the bytes of st's file up to end were consumed
// without an event to acknowledge (a filtered line).
func (r *Registry) Skip(st *State, end int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st.read = end
	id := st.known.ID
	before := r.tracker.Acked(id)
	r.tracker.Skip(id, end)
	if r.tracker.Acked(id) != before {
		r.markDirty()
	}
}

// Ack records the broker's acknowledgement of a ticket's event.
func (r *Registry) Ack(tk Ticket) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, moved := r.tracker.Ack(tk); moved {
		r.markDirty()
	}
}

// Remove forgets st (clean_removed, clean_inactive). It reports false,
// removing nothing, while st is claimed or has events in flight.
func (r *Registry) Remove(st *State) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := st.known.ID
	if st.claimed || r.tracker.Pending(id) > 0 || r.states[id] != st {
		return false
	}
	delete(r.states, id)
	r.tracker.Forget(id)
	r.markDirty()
	return true
}

// States returns the states of input's files (all files for "").
func (r *Registry) States(input string) []*State {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*State
	for _, st := range r.states {
		if input == "" || st.input == input {
			out = append(out, st)
		}
	}
	return out
}

// Entries returns what the registry file holds: every state with its
// acknowledged offset, sorted by path.
func (r *Registry) Entries() []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.entries()
}

func (r *Registry) entries() []Entry {
	out := make([]Entry, 0, len(r.states))
	for id, st := range r.states {
		out = append(out, Entry{Known: st.known, Path: st.path, Input: st.input, Offset: r.tracker.Acked(id), Updated: st.updated})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Flush writes the registry file if anything changed since it was last
// written.
func (r *Registry) Flush() error {
	r.mu.Lock()
	if !r.dirty {
		r.mu.Unlock()
		return nil
	}
	entries := r.entries()
	r.dirty = false
	r.mu.Unlock()

	start := time.Now()
	err := Save(r.path, entries, start)
	if r.hooks.Written != nil {
		r.hooks.Written(err, time.Since(start))
	}
	if err != nil {
		r.mu.Lock()
		r.markDirty()
		r.mu.Unlock()
	}
	return err
}

// Run writes the registry file whenever it changed, at most once per
// every, until ctx ends; then it writes once more. A failed write is
// logged and tried again on the next change or tick.
func (r *Registry) Run(ctx context.Context, every time.Duration) error {
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return r.Flush()
		case <-r.changed:
		}
		if wait := every - time.Since(last); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return r.Flush()
			case <-t.C:
			}
		}
		last = time.Now()
		if err := r.Flush(); err != nil {
			// Flush marked the registry changed again: the next turn
			// tries again once the interval has passed.
			r.log.Error("cannot write the registry; will try again", "path", r.path, "err", err)
		}
	}
}
