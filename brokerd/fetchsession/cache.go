// Package fetchsession is a broker's cache of fetch sessions (KIP-227).
//
// A fetcher that opens a session sends the full list of its partitions
// once; the broker remembers each partition's fetch parameters, and what it
// last answered about it. Later requests of the session (incremental ones,
// each with the next epoch) list only the partitions whose parameters
// changed, add or forget partitions, and their answers carry only the
// partitions that have something new to say. Sessions belong to the broker,
// not to a connection, so a fetcher may carry on after reconnecting.
//
// The request's session fields decide what a Fetch is (Open):
//
//	id 0, epoch -1              sessionless: a full request, nothing kept
//	id 0, epoch 0               full: a new session if the cache admits one
//	id N, epoch -1              closes session N, then sessionless
//	id N, epoch 0               closes session N, then full (a new session)
//	id N, any other epoch       incremental, if N is cached at that epoch;
//	                            else FETCH_SESSION_ID_NOT_FOUND or
//	                            INVALID_FETCH_SESSION_EPOCH, with no data
//
// The cache holds at most its number of slots. A new session is admitted
// when there is a free slot, or by evicting one (admit): first the least
// recently used session, if it has not been used for the eviction time;
// otherwise the least valuable session the newcomer outranks, as Kafka
// decides it: a follower's session outranks a consumer's, and among equals
// a session with more partitions outranks one with fewer. A session
// younger than the eviction time is only evicted by a follower's session,
// and only if it is a consumer's. Among equally valuable candidates the
// least recently used goes first.
package fetchsession

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DefaultEvictAfter is how long a session must be unused before any new
// session may evict it, and how old a session must be before one with more
// partitions may: Kafka's min.incremental.fetch.session.eviction.ms.
const DefaultEvictAfter = 120 * time.Second

// The session epochs with a meaning of their own.
const (
	finalEpoch   = -1 // no session, or closing one
	initialEpoch = 0  // opening a session
)

// NextEpoch is the session epoch after e: epochs count from 1 and wrap
// from the largest int32 back to 1; the final epoch stays final.
func NextEpoch(e int32) int32 {
	switch {
	case e < 0:
		return finalEpoch
	case e == math.MaxInt32:
		return 1
	default:
		return e + 1
	}
}

// Kind is how a Fetch is served.
type Kind uint8

const (
	// Sessionless is a full fetch outside any session.
	Sessionless Kind = iota
	// Full is a full fetch that asks for a new session.
	Full
	// Incremental is a fetch of an existing session.
	Incremental
	// Failed is a fetch refused for its session fields: its answer is a
	// top-level error and no partitions.
	Failed
)

// String names the kind as the metrics do.
func (k Kind) String() string {
	switch k {
	case Sessionless:
		return "sessionless"
	case Full:
		return "full"
	case Incremental:
		return "incremental"
	default:
		return "failed"
	}
}

// key names a partition.
type key struct {
	topic     string
	partition int32
}

// cached is one partition of a session: its fetch parameters as the
// fetcher last sent them, and what the broker last answered about it (-1
// for unknown, so that the first answer always differs).
type cached struct {
	topic                   string
	req                     kmsg.FetchRequestTopicPartition
	hw, lso, logStartOffset int64
}

func newCached(topic string, rp kmsg.FetchRequestTopicPartition) *cached {
	c := &cached{topic: topic, hw: -1, lso: -1, logStartOffset: -1}
	c.setRequest(rp)
	return c
}

// setRequest takes a partition's parameters from a request.
func (c *cached) setRequest(rp kmsg.FetchRequestTopicPartition) {
	rp.UnknownTags = kmsg.Tags{} // nothing the broker reads; not kept
	c.req = rp
}

// mustAnswer reports whether an incremental answer includes the partition
// answered sp, and takes sp's values: records, an error, a diverging epoch
// or a preferred replica are always news, and so is a high watermark, last
// stable offset or log start offset other than the one last answered. An
// error forgets the high watermark, so the partition is answered again
// once the error is gone.
func (c *cached) mustAnswer(sp *kmsg.FetchResponseTopicPartition) bool {
	news := len(sp.RecordBatches) > 0 ||
		sp.DivergingEpoch.Epoch >= 0 || sp.DivergingEpoch.EndOffset >= 0 ||
		sp.PreferredReadReplica >= 0 ||
		sp.HighWatermark != c.hw || sp.LastStableOffset != c.lso || sp.LogStartOffset != c.logStartOffset
	c.hw, c.lso, c.logStartOffset = sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset
	if sp.ErrorCode != 0 {
		c.hw = -1
		news = true
	}
	return news
}

// session is one fetch session. Its fields are guarded by the cache's
// lock.
type session struct {
	id         int32
	privileged bool  // a follower's
	epoch      int32 // the epoch the next request must carry
	// parts are the session's partitions in the order they are read;
	// those answered move to the end, so that max_bytes does not always
	// favour the same ones.
	parts         []*cached
	index         map[key]*cached
	created, used time.Time
	gone          bool // no longer in the cache
}

// add appends a partition, or updates it if the session has it.
func (s *session) add(topic string, rp kmsg.FetchRequestTopicPartition) {
	k := key{topic, rp.Partition}
	if c := s.index[k]; c != nil {
		c.setRequest(rp)
		return
	}
	c := newCached(topic, rp)
	s.index[k] = c
	s.parts = append(s.parts, c)
}

// forget removes the forgotten partitions.
func (s *session) forget(forgotten []kmsg.FetchRequestForgottenTopic) {
	removed := false
	for _, ft := range forgotten {
		for _, p := range ft.Partitions {
			k := key{ft.Topic, p}
			if _, ok := s.index[k]; ok {
				delete(s.index, k)
				removed = true
			}
		}
	}
	if removed {
		s.parts = compact(s.parts, s.index)
	}
}

// compact keeps the parts still in index, in order.
func compact(parts []*cached, index map[key]*cached) []*cached {
	kept := parts[:0]
	for _, c := range parts {
		if index[key{c.topic, c.req.Partition}] == c {
			kept = append(kept, c)
		}
	}
	clear(parts[len(kept):])
	return kept
}

// topics returns the session's partitions as request topics, in order,
// consecutive partitions of one topic sharing an entry.
func (s *session) topics() []kmsg.FetchRequestTopic {
	var out []kmsg.FetchRequestTopic
	for _, c := range s.parts {
		if n := len(out); n == 0 || out[n-1].Topic != c.topic {
			t := kmsg.NewFetchRequestTopic()
			t.Topic = c.topic
			out = append(out, t)
		}
		last := &out[len(out)-1]
		last.Partitions = append(last.Partitions, c.req)
	}
	return out
}

// Counts are fetch requests by how they were served.
type Counts struct {
	Sessionless, Full, Incremental, Failed uint64
}

// Kinds are the kinds of fetch, in order.
var Kinds = []Kind{Sessionless, Full, Incremental, Failed}

// Of returns the count of requests of kind k.
func (c *Counts) Of(k Kind) uint64 { return *c.of(k) }

func (c *Counts) of(k Kind) *uint64 {
	switch k {
	case Sessionless:
		return &c.Sessionless
	case Full:
		return &c.Full
	case Incremental:
		return &c.Incremental
	default:
		return &c.Failed
	}
}

// Stats describe a cache, for metrics.
type Stats struct {
	// Sessions and Partitions are the sessions cached and their
	// partitions (Kafka's NumIncrementalFetchSessions and
	// NumIncrementalFetchPartitionsCached).
	Sessions, Partitions int
	// Evictions counts sessions evicted to admit others (Kafka's
	// IncrementalFetchSessionEvictionsPerSec, as a total).
	Evictions uint64
	// Consumers and Followers count the fetch requests of each.
	Consumers, Followers Counts
}

// Cache is a broker's fetch sessions. It is safe for concurrent use.
type Cache struct {
	slots      int
	evictAfter time.Duration
	now        func() time.Time

	mu       sync.Mutex
	sessions map[int32]*session
	stats    Stats
}

// New returns a cache of at most slots sessions (0: none, so every fetch
// is sessionless); evictAfter is the eviction time described in the
// package comment, and now the clock.
func New(slots int, evictAfter time.Duration, now func() time.Time) *Cache {
	return &Cache{slots: max(slots, 0), evictAfter: evictAfter, now: now, sessions: map[int32]*session{}}
}

// Stats returns the cache's figures now.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Fetch is one Fetch request as its session serves it: Open decides it,
// the broker reads Topics, and Finish writes the session's part of the
// answer.
type Fetch struct {
	// Kind is how the request is served.
	Kind Kind
	// Topics are the partitions to read, in order: the request's, or for
	// an incremental fetch every partition of the session, with the
	// parameters it holds for them.
	Topics []kmsg.FetchRequestTopic

	c         *Cache
	errorCode int16
	// req is the request, for a full fetch's new session.
	req *kmsg.FetchRequest
	// s and epoch are an incremental fetch's session and the epoch Open
	// moved it to.
	s     *session
	epoch int32
}

// Open decides how req is served and applies it to its session: it
// closes the session a full request names, and adds, updates and forgets
// the partitions an incremental one lists, moving the session to its next
// epoch. An incremental request that leaves its session empty closes it
// and is served sessionless.
func (c *Cache) Open(req *kmsg.FetchRequest) *Fetch {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.open(req)
	if req.ReplicaID >= 0 {
		*c.stats.Followers.of(f.Kind)++
	} else {
		*c.stats.Consumers.of(f.Kind)++
	}
	return f
}

func (c *Cache) open(req *kmsg.FetchRequest) *Fetch {
	f := &Fetch{Kind: Sessionless, Topics: req.Topics, c: c}
	if req.Version < 7 {
		return f // no session fields on the wire
	}
	id, epoch := req.SessionID, req.SessionEpoch
	if epoch == finalEpoch || epoch == initialEpoch {
		if s := c.sessions[id]; s != nil {
			c.remove(s)
		}
		if epoch == initialEpoch {
			f.Kind, f.req = Full, req
		}
		return f
	}
	s := c.sessions[id]
	switch {
	case s == nil:
		f.Kind, f.Topics, f.errorCode = Failed, nil, kerr.FetchSessionIDNotFound.Code
		return f
	case s.epoch != epoch:
		f.Kind, f.Topics, f.errorCode = Failed, nil, kerr.InvalidFetchSessionEpoch.Code
		return f
	}
	before := len(s.parts)
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			s.add(rt.Topic, rp)
		}
	}
	s.forget(req.ForgottenTopics)
	c.stats.Partitions += len(s.parts) - before
	if len(s.parts) == 0 {
		c.remove(s)
		return f
	}
	s.used = c.now()
	s.epoch = NextEpoch(s.epoch)
	f.Kind, f.Topics, f.s, f.epoch = Incremental, s.topics(), s, s.epoch
	return f
}

// Finish writes the session's part of resp, the answer read from
// f.Topics: the session id and error code; for a full fetch it opens the
// session if the cache admits it; for an incremental one it leaves out the
// partitions with nothing new. A fetch that failed, or an incremental one
// whose session moved on meanwhile (another request with the same epoch),
// is answered with the error alone: resp keeps no partitions, and its
// ErrorCode is set.
func (f *Fetch) Finish(resp *kmsg.FetchResponse) {
	resp.SessionID, resp.ErrorCode = 0, 0
	switch f.Kind {
	case Failed:
		resp.ErrorCode, resp.Topics = f.errorCode, nil
	case Full:
		f.c.mu.Lock()
		defer f.c.mu.Unlock()
		if s := f.c.create(f.req, resp); s != nil {
			resp.SessionID = s.id
		}
	case Incremental:
		f.c.mu.Lock()
		defer f.c.mu.Unlock()
		if f.s.epoch != f.epoch {
			resp.ErrorCode, resp.Topics = kerr.InvalidFetchSessionEpoch.Code, nil
			return
		}
		f.s.omitUnchanged(resp)
		resp.SessionID = f.s.id
	}
}

// omitUnchanged drops from resp the partitions with nothing new and moves
// those answered to the end of the session's order.
func (s *session) omitUnchanged(resp *kmsg.FetchResponse) {
	var answered []*cached
	topics := resp.Topics[:0]
	for _, rt := range resp.Topics {
		parts := rt.Partitions[:0]
		for i := range rt.Partitions {
			sp := &rt.Partitions[i]
			c := s.index[key{rt.Topic, sp.Partition}]
			if c != nil && !c.mustAnswer(sp) {
				continue
			}
			parts = append(parts, *sp)
			if c != nil {
				answered = append(answered, c)
			}
		}
		if len(parts) > 0 {
			rt.Partitions = parts
			topics = append(topics, rt)
		}
	}
	resp.Topics = topics
	if len(answered) == 0 || s.gone {
		return
	}
	moved := make(map[*cached]bool, len(answered))
	for _, c := range answered {
		moved[c] = true
	}
	order := make([]*cached, 0, len(s.parts))
	for _, c := range s.parts {
		if !moved[c] {
			order = append(order, c)
		}
	}
	s.parts = append(order, answered...)
}

// create opens a session for a full request answered resp, if the cache
// admits it; mu is held.
func (c *Cache) create(req *kmsg.FetchRequest, resp *kmsg.FetchResponse) *session {
	privileged := req.ReplicaID >= 0
	now := c.now()
	s := &session{privileged: privileged, epoch: NextEpoch(initialEpoch), index: map[key]*cached{}, created: now, used: now}
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			s.add(rt.Topic, rp)
		}
	}
	if len(s.parts) == 0 || !c.admit(privileged, len(s.parts), now) {
		return nil
	}
	for _, rt := range resp.Topics {
		for i := range rt.Partitions {
			if cp := s.index[key{rt.Topic, rt.Partitions[i].Partition}]; cp != nil {
				cp.mustAnswer(&rt.Partitions[i])
			}
		}
	}
	s.id = c.newID()
	c.sessions[s.id] = s
	c.stats.Sessions++
	c.stats.Partitions += len(s.parts)
	return s
}

// newID returns an unused session id, never 0.
func (c *Cache) newID() int32 {
	for {
		id := rand.Int32N(math.MaxInt32) + 1
		if c.sessions[id] == nil {
			return id
		}
	}
}

// admit makes room for a new session of size partitions, evicting one if
// the rules of the package comment allow, and reports whether there is
// room; mu is held.
func (c *Cache) admit(privileged bool, size int, now time.Time) bool {
	if len(c.sessions) < c.slots {
		return true
	}
	if len(c.sessions) == 0 {
		return false // no slots at all
	}
	var lru, victim *session
	for _, s := range c.sessions {
		if lru == nil || usedBefore(s, lru) {
			lru = s
		}
		young := now.Sub(s.created) <= c.evictAfter
		if young && (!privileged || s.privileged) {
			continue
		}
		if victim == nil || lessValuable(s, victim) {
			victim = s
		}
	}
	switch {
	case now.Sub(lru.used) > c.evictAfter:
		victim = lru
	case victim == nil:
		return false
	case victim.privileged && !privileged,
		victim.privileged == privileged && len(victim.parts) >= size:
		return false
	}
	c.remove(victim)
	c.stats.Evictions++
	return true
}

// usedBefore orders sessions by last use, then id.
func usedBefore(a, b *session) bool {
	if !a.used.Equal(b.used) {
		return a.used.Before(b.used)
	}
	return a.id < b.id
}

// lessValuable orders sessions for eviction: a consumer's before a
// follower's, fewer partitions before more, the least recently used first.
func lessValuable(a, b *session) bool {
	if a.privileged != b.privileged {
		return !a.privileged
	}
	if len(a.parts) != len(b.parts) {
		return len(a.parts) < len(b.parts)
	}
	return usedBefore(a, b)
}

// remove takes s out of the cache; mu is held.
func (c *Cache) remove(s *session) {
	if s.gone {
		return
	}
	s.gone = true
	delete(c.sessions, s.id)
	c.stats.Sessions--
	c.stats.Partitions -= len(s.parts)
}
