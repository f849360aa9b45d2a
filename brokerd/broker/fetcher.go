package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/fetchsession"
	"logpipe/brokerd/producers"
	"logpipe/brokerd/recordbatch"
	"logpipe/brokerd/storage"
	"logpipe/brokerd/wire"
)

// A follower replicates its partitions with one fetcher per leader: one
// goroutine and one connection that fetch every partition it follows from
// that leader, as Kafka's replica fetcher threads do. Each Fetch carries
// the follower's id (replica_id), its log end offset (fetch_offset) and
// the epoch of its last batch (last_fetched_epoch): the leader answers with
// the records after it, its high watermark, or, when the follower's log
// diverged from its own (a returning old leader's unreplicated tail), the
// point where they part (diverging_epoch), and the follower truncates to
// it before it fetches again.
//
// Each fetcher keeps a fetch session (KIP-227) with its leader, as Kafka's
// replica fetcher does: its first request lists every partition and opens
// the session; the next ones, each with the next session epoch, list only
// the partitions whose fetch parameters changed (those that got records,
// were truncated, or follow a new leader epoch), add the partitions it
// started following and forget those it stopped. The leader remembers the
// rest, and answers only the partitions with news. After a session error,
// a failed request or a new connection, the next request is a full one
// again, which closes the old session and opens a new one.

// fetchers are a node's replica fetchers, one per leader.
type fetchers struct {
	b  *Broker
	mu sync.Mutex
	// by is the fetcher of each leader; a fetcher ends when it has no
	// partition left.
	by map[int32]*fetcher
}

// follow makes p fetched from leader at leaderEpoch, moving it from
// another fetcher if needed.
func (fs *fetchers) follow(p *partition, leader, epoch int32) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for id, f := range fs.by {
		if id != leader {
			f.remove(p)
		}
	}
	if fs.by == nil {
		fs.by = map[int32]*fetcher{}
	}
	f := fs.by[leader]
	if f == nil || f.ended() {
		f = &fetcher{b: fs.b, leader: leader, parts: map[*partition]int32{}, wake: make(chan struct{}, 1), done: make(chan struct{})}
		fs.by[leader] = f
		fs.b.wg.Add(1)
		go f.run()
	}
	f.add(p, epoch)
}

// remove stops fetching p.
func (fs *fetchers) remove(p *partition) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for _, f := range fs.by {
		f.remove(p)
	}
}

// fetcher fetches from one leader.
type fetcher struct {
	b      *Broker
	leader int32

	mu sync.Mutex
	// parts are the partitions fetched, with the leader epoch they follow.
	parts map[*partition]int32
	wake  chan struct{}
	done  chan struct{}

	// session is the fetch session with the leader; only run uses it.
	session replicaSession
}

// replicaSession is a fetcher's side of its fetch session: the session id
// and the epoch of the next request (0: the next request is a full one,
// opening a session), and what the leader's session holds for each
// partition, as the fetcher last sent it.
type replicaSession struct {
	id, epoch int32
	sent      map[tp]sentFetch
}

// sentFetch is what a request tells the leader about one partition.
type sentFetch struct {
	offset                   int64
	leaderEpoch, lastFetched int32
}

// restart makes the next request a full one, which closes the session
// (the leader may still hold it) and opens a new one.
func (s *replicaSession) restart() {
	s.epoch, s.sent = 0, nil
}

// answered moves the session on after the leader answered a request
// without a session error: a full request opened the session the answer
// names (none if 0: the next request tries again), an incremental one
// moves to the next epoch; want is what the leader's session now holds.
func (s *replicaSession) answered(req *kmsg.FetchRequest, resp *kmsg.FetchResponse, want map[tp]sentFetch) {
	if resp.SessionID == 0 || req.SessionEpoch != 0 && resp.SessionID != req.SessionID {
		s.id = 0
		s.restart()
		return
	}
	s.id, s.sent = resp.SessionID, want
	s.epoch = fetchsession.NextEpoch(s.epoch)
}

func (f *fetcher) add(p *partition, epoch int32) {
	f.mu.Lock()
	f.parts[p] = epoch
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fetcher) remove(p *partition) {
	f.mu.Lock()
	delete(f.parts, p)
	f.mu.Unlock()
}

func (f *fetcher) ended() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// replicaFetchWait is how long a follower's fetch waits at the leader for
// new records (Kafka's replica.fetch.wait.max.ms default).
const replicaFetchWait = 500 * time.Millisecond

func (f *fetcher) run() {
	b := f.b
	defer b.wg.Done()
	defer close(f.done)
	var client *wire.Client
	defer func() {
		if client != nil {
			client.Close()
		}
	}()
	backoff := time.Duration(0)
	for {
		if backoff > 0 {
			select {
			case <-b.quit:
				return
			case <-time.After(backoff):
			}
		}
		f.mu.Lock()
		parts := make(map[*partition]int32, len(f.parts))
		for p, e := range f.parts {
			parts[p] = e
		}
		f.mu.Unlock()
		if len(parts) == 0 {
			select {
			case <-b.quit:
				return
			case <-f.wake:
				continue
			case <-time.After(time.Minute):
				// Nobody to fetch for a while: end; follow starts a new
				// fetcher when needed.
				f.b.fetchers.mu.Lock()
				f.mu.Lock()
				idle := len(f.parts) == 0
				if idle && f.b.fetchers.by[f.leader] == f {
					delete(f.b.fetchers.by, f.leader)
				}
				f.mu.Unlock()
				f.b.fetchers.mu.Unlock()
				if idle {
					return
				}
				continue
			}
		}
		select {
		case <-b.quit:
			return
		default:
		}
		if client == nil {
			addr := b.brokerAddr(f.leader)
			if addr == "" {
				backoff = 200 * time.Millisecond
				continue
			}
			sec, err := b.interBrokerSecurity(addr)
			var c *wire.Client
			if err == nil {
				c, err = wire.DialSecured(addr, fmt.Sprintf("brokerd-%d-replica", b.cfg.NodeID), b.cfg.requestTimeout(), sec)
			}
			if err != nil {
				level := slog.LevelDebug
				if errors.Is(err, wire.ErrAuthentication) {
					level = slog.LevelWarn // a configuration problem, not a passing one
				}
				b.log.Log(context.Background(), level, "replica fetcher: connecting to the leader", "leader", f.leader, "err", err)
				backoff = min(max(2*backoff, 50*time.Millisecond), time.Second)
				continue
			}
			client = c
		}
		req, want := f.request(parts)
		kresp, release, err := client.RequestPooled(req, time.Now().Add(replicaFetchWait+b.cfg.requestTimeout()))
		if err != nil {
			client.Close()
			client = nil
			f.session.restart()
			b.log.Debug("replica fetcher: fetching from the leader", "leader", f.leader, "err", err)
			backoff = min(max(2*backoff, 50*time.Millisecond), time.Second)
			continue
		}
		backoff = 0
		resp := kresp.(*kmsg.FetchResponse)
		if resp.ErrorCode != 0 {
			// A session error (evicted, or an epoch the leader did not
			// expect): start a new session at once.
			b.log.Debug("replica fetcher: fetch session", "leader", f.leader, "session", req.SessionID, "epoch", req.SessionEpoch, "err", kerr.ErrorForCode(resp.ErrorCode))
			f.session.restart()
			release()
			continue
		}
		f.session.answered(req, resp, want)
		if !f.handle(resp, parts) {
			backoff = 100 * time.Millisecond
		}
		release() // the batches are in the log, nothing keeps them
	}
}

// request builds the next Fetch of the session for the partitions: a full
// one, or an incremental one listing what changed since the leader's
// session last heard of it. It returns what the leader's session holds
// once it has taken the request.
func (f *fetcher) request(parts map[*partition]int32) (*kmsg.FetchRequest, map[tp]sentFetch) {
	b := f.b
	req := kmsg.NewPtrFetchRequest()
	req.SetVersion(12)
	req.ReplicaID = b.cfg.NodeID
	req.MaxWaitMillis = int32(replicaFetchWait / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = 10 << 20
	req.SessionID, req.SessionEpoch = f.session.id, f.session.epoch
	want := make(map[tp]sentFetch, len(parts))
	byTopic := map[string]int{}
	for p, epoch := range parts {
		now := sentFetch{offset: p.log.LogEndOffset(), leaderEpoch: epoch, lastFetched: -1}
		if e, ok := p.log.LatestEpoch(); ok {
			now.lastFetched = e
		}
		k := tp{p.topic, p.index}
		want[k] = now
		if was, ok := f.session.sent[k]; ok && was == now && req.SessionEpoch != 0 {
			continue // the leader's session has it as it is
		}
		rp := kmsg.NewFetchRequestTopicPartition()
		rp.Partition = p.index
		rp.CurrentLeaderEpoch = now.leaderEpoch
		rp.FetchOffset = now.offset
		rp.LastFetchedEpoch = now.lastFetched
		rp.LogStartOffset = -1
		rp.PartitionMaxBytes = 1 << 20
		t := entryFor(&req.Topics, byTopic, p.topic, func() kmsg.FetchRequestTopic {
			t := kmsg.NewFetchRequestTopic()
			t.Topic = p.topic
			return t
		})
		t.Partitions = append(t.Partitions, rp)
	}
	if req.SessionEpoch != 0 {
		forgotten := map[string]int{}
		for k := range f.session.sent {
			if _, ok := want[k]; ok {
				continue
			}
			ft := entryFor(&req.ForgottenTopics, forgotten, k.topic, func() kmsg.FetchRequestForgottenTopic {
				ft := kmsg.NewFetchRequestForgottenTopic()
				ft.Topic = k.topic
				return ft
			})
			ft.Partitions = append(ft.Partitions, k.part)
		}
	}
	return req, want
}

// entryFor returns topic's entry in *list, appending one made by add the
// first time; at maps topics to their index in *list.
func entryFor[T any](list *[]T, at map[string]int, topic string, add func() T) *T {
	i, ok := at[topic]
	if !ok {
		i = len(*list)
		at[topic] = i
		*list = append(*list, add())
	}
	return &(*list)[i]
}

// handle applies a Fetch response; it returns false if no partition made
// progress and none is waiting at the leader (so the loop backs off). An
// incremental answer may carry any partition of the session, and carries
// none when the leader held the request for its max wait with nothing new
// to say.
func (f *fetcher) handle(resp *kmsg.FetchResponse, parts map[*partition]int32) bool {
	b := f.b
	byName := make(map[tp]*partition, len(parts))
	for p := range parts {
		byName[tp{p.topic, p.index}] = p
	}
	progress := false
	for _, t := range resp.Topics {
		for _, sp := range t.Partitions {
			p := byName[tp{t.Topic, sp.Partition}]
			if p == nil {
				continue
			}
			f.mu.Lock()
			epoch, still := f.parts[p]
			f.mu.Unlock()
			if !still || epoch != parts[p] {
				continue // moved meanwhile
			}
			ok, err := f.apply(p, &sp)
			if err != nil {
				b.log.Warn("replica fetcher", "topic", p.topic, "partition", p.index, "leader", f.leader, "err", err)
			}
			progress = progress || ok
		}
	}
	return progress || len(resp.Topics) > 0 || resp.SessionID != 0
}

// apply takes one partition's answer: truncation, records, high watermark.
func (f *fetcher) apply(p *partition, sp *kmsg.FetchResponseTopicPartition) (bool, error) {
	switch err := kerr.ErrorForCode(sp.ErrorCode); {
	case err == nil:
	case errors.Is(err, kerr.OffsetOutOfRange):
		// Behind the leader's log start (retention): start over there.
		// Ahead of the leader's end (only after an unclean election):
		// cut back to its high watermark.
		p.appendMu.Lock()
		defer p.appendMu.Unlock()
		var terr error
		if p.log.LogEndOffset() < sp.LogStartOffset {
			terr = p.log.TruncateFullyAndStartAt(sp.LogStartOffset)
		} else if sp.HighWatermark >= 0 {
			terr = p.log.TruncateTo(sp.HighWatermark)
		}
		if terr == nil {
			terr = p.reloadProducerState()
		}
		return terr == nil, terr
	default:
		// Not the leader (yet), another epoch: the metadata will say.
		return false, nil
	}
	if sp.DivergingEpoch.Epoch >= 0 || sp.DivergingEpoch.EndOffset >= 0 {
		end := sp.DivergingEpoch.EndOffset
		if end < 0 {
			// The leader knows no epoch as old as this log's: keep what
			// was committed, fetch the rest again.
			end = p.hw.Load()
		}
		p.appendMu.Lock()
		defer p.appendMu.Unlock()
		if end < p.log.LogEndOffset() {
			f.b.log.Info("truncating a diverged log", "topic", p.topic, "partition", p.index, "from", p.log.LogEndOffset(), "to", end, "leader_epoch", sp.DivergingEpoch.Epoch)
			if err := p.log.TruncateTo(end); err != nil {
				return false, err
			}
			if err := p.reloadProducerState(); err != nil {
				return false, err
			}
		}
		return true, nil
	}
	if len(sp.RecordBatches) > 0 {
		p.appendMu.Lock()
		err := p.log.AppendAsFollower(sp.RecordBatches)
		if err == nil {
			p.trackProducers(sp.RecordBatches)
		}
		p.appendMu.Unlock()
		if err != nil {
			if errors.Is(err, storage.ErrUnexpectedOffset) {
				return false, nil // a fetch answered for an older position
			}
			return false, err
		}
		if f.b.hooks.BytesIn != nil {
			f.b.hooks.BytesIn(p.topic, int64(len(sp.RecordBatches)), 0)
		}
	}
	leo := p.log.LogEndOffset()
	if sp.HighWatermark >= 0 {
		p.hw.Store(min(sp.HighWatermark, leo))
	}
	if sp.HighWatermark >= 0 {
		p.fetchLag.Store(max(sp.HighWatermark-leo, 0))
	}
	p.notify()
	return len(sp.RecordBatches) > 0, nil
}

// trackProducers updates the idempotent producer state with batches a
// follower appended, so that it can check sequences when it leads.
// appendMu is held.
func (p *partition) trackProducers(batches []byte) {
	for rest := batches; len(rest) > 0; {
		batch, r, err := recordbatch.Next(rest)
		if err != nil {
			return
		}
		rest = r
		if h, err := recordbatch.ParseHeader(batch); err == nil && h.HasProducerID() && h.BaseSequence >= 0 {
			p.producers.Update(h.ProducerID, h.ProducerEpoch, batchMeta(h))
		}
	}
}

// reloadProducerState rebuilds the producer state after a truncation.
// appendMu is held.
func (p *partition) reloadProducerState() error {
	p.producers = producers.State{}
	return p.loadProducerState()
}

// brokerAddr returns a registered broker's address on this node's
// inter-broker listener.
func (b *Broker) brokerAddr(id int32) string {
	br, ok := b.meta.Image().Brokers[id]
	if !ok {
		return ""
	}
	ib, _ := b.cfg.interBrokerListener()
	host, port, ok := br.Endpoint(ib.Name)
	if !ok {
		host, port = br.Host, br.Port
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}
