package group

import (
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// CommitError returns an OffsetCommit response with code for every
// partition of req.
func CommitError(req *kmsg.OffsetCommitRequest, code int16) *kmsg.OffsetCommitResponse {
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		st.TopicID = rt.TopicID
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.ErrorCode = code
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// validateCommit is Kafka's validateOffsetCommit: a commit naming a
// member or a generation must come from a current member of the current
// generation; an anonymous one (generation -1, no member: a consumer
// managing its own partitions, or OffsetCommit v0) is only allowed while
// the group has no members.
func (g *Group) validateCommit(req *kmsg.OffsetCommitRequest) int16 {
	if g.state == Dead {
		return kerr.CoordinatorNotAvailable.Code
	}
	if req.Generation >= 0 || req.MemberID != "" || req.InstanceID != nil {
		if code := g.validateMember(req.MemberID, req.InstanceID); code != 0 {
			return code
		}
		if req.Generation != g.generation {
			return kerr.IllegalGeneration.Code
		}
		return 0
	}
	if g.state != Empty {
		return kerr.UnknownMemberID.Code
	}
	return 0
}

// Commit handles OffsetCommit v0–v8. It returns the response when
// nothing is to be stored (every partition failed), else nil: the
// response comes as a Reply with ref once the records are stored, and
// the offsets take effect only then.
func (g *Group) Commit(now time.Time, ref any, req *kmsg.OffsetCommitRequest) *kmsg.OffsetCommitResponse {
	if code := g.validateCommit(req); code != 0 {
		return CommitError(req, code)
	}
	if g.state == CompletingRebalance {
		// A member that saw the new generation must wait for its
		// assignment before committing.
		return CommitError(req, kerr.RebalanceInProgress.Code)
	}
	if m := g.members[req.MemberID]; m != nil {
		g.setDeadline(m, now.Add(m.session))
	}
	resp := CommitError(req, 0)
	type target struct {
		tp  TopicPartition
		off Offset
		sp  *kmsg.OffsetCommitResponseTopicPartition
	}
	var targets []target
	var recs []Record
	for ti, rt := range req.Topics {
		for pi, rp := range rt.Partitions {
			sp := &resp.Topics[ti].Partitions[pi]
			meta := ""
			if rp.Metadata != nil {
				meta = *rp.Metadata
			}
			switch {
			case !g.cfg.known(rt.Topic, rp.Partition):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				continue
			case len(meta) > g.cfg.maxMetadataBytes():
				sp.ErrorCode = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			o := Offset{Offset: rp.Offset, LeaderEpoch: -1, Metadata: meta, CommitTime: now}
			if req.Version >= 6 {
				o.LeaderEpoch = rp.LeaderEpoch
			}
			if req.Version >= 2 && req.Version <= 4 && req.RetentionTimeMillis > 0 {
				o.ExpireTime = now.Add(time.Duration(req.RetentionTimeMillis) * time.Millisecond)
			}
			tp := TopicPartition{rt.Topic, rp.Partition}
			targets = append(targets, target{tp, o, sp})
			recs = append(recs, Record{Key: offsetKey(g.id, tp), Value: offsetValue(o)})
		}
	}
	if len(recs) == 0 {
		return resp
	}
	g.write(recs, func(_ time.Time, err error) {
		if err != nil {
			code := commitErrorCode(err)
			for _, t := range targets {
				t.sp.ErrorCode = code
			}
		} else if g.state != Dead {
			for _, t := range targets {
				g.offsets[t.tp] = t.off
			}
		}
		g.reply(ref, resp)
	})
	return nil
}

// CommittedOffset returns the committed offset of a partition.
func (g *Group) CommittedOffset(tp TopicPartition) (Offset, bool) {
	o, ok := g.offsets[tp]
	return o, ok
}

// FetchOffsets answers OffsetFetch for this group, in the v8 shape: the
// committed offsets of the partitions asked for (offset -1 for those
// without one), or of every partition with one when topics is nil.
func (g *Group) FetchOffsets(topics []kmsg.OffsetFetchRequestTopic) []kmsg.OffsetFetchResponseGroupTopic {
	return fetchOffsets(g.offsets, topics)
}

// FetchOffsetsUnknown answers OffsetFetch for a group that does not exist.
func FetchOffsetsUnknown(topics []kmsg.OffsetFetchRequestTopic) []kmsg.OffsetFetchResponseGroupTopic {
	return fetchOffsets(nil, topics)
}

func fetchOffsets(offsets map[TopicPartition]Offset, topics []kmsg.OffsetFetchRequestTopic) []kmsg.OffsetFetchResponseGroupTopic {
	part := func(p int32, o Offset, ok bool) kmsg.OffsetFetchResponseGroupTopicPartition {
		sp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		sp.Partition = p
		sp.Offset, sp.LeaderEpoch = -1, -1
		meta := ""
		if ok {
			sp.Offset, sp.LeaderEpoch, meta = o.Offset, o.LeaderEpoch, o.Metadata
		}
		sp.Metadata = &meta
		return sp
	}
	var out []kmsg.OffsetFetchResponseGroupTopic
	if topics == nil {
		byTopic := map[string][]int32{}
		for tp := range offsets {
			byTopic[tp.Topic] = append(byTopic[tp.Topic], tp.Partition)
		}
		names := make([]string, 0, len(byTopic))
		for n := range byTopic {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			ps := byTopic[n]
			sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
			st := kmsg.NewOffsetFetchResponseGroupTopic()
			st.Topic = n
			for _, p := range ps {
				o := offsets[TopicPartition{n, p}]
				st.Partitions = append(st.Partitions, part(p, o, true))
			}
			out = append(out, st)
		}
		return out
	}
	for _, rt := range topics {
		st := kmsg.NewOffsetFetchResponseGroupTopic()
		st.Topic = rt.Topic
		for _, p := range rt.Partitions {
			o, ok := offsets[TopicPartition{rt.Topic, p}]
			st.Partitions = append(st.Partitions, part(p, o, ok))
		}
		out = append(out, st)
	}
	return out
}

// tombstones returns the records deleting the given offsets.
func (g *Group) tombstones(tps []TopicPartition) []Record {
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].Topic != tps[j].Topic {
			return tps[i].Topic < tps[j].Topic
		}
		return tps[i].Partition < tps[j].Partition
	})
	recs := make([]Record, 0, len(tps))
	for _, tp := range tps {
		recs = append(recs, Record{Key: offsetKey(g.id, tp)})
	}
	return recs
}

// Delete handles DeleteGroups for this group: only an Empty group can be
// deleted (NON_EMPTY_GROUP otherwise). Its offsets and metadata get
// tombstones and it becomes Dead; the driver then drops it. As in Kafka,
// the group is gone even if the tombstones fail to be written.
func (g *Group) Delete() int16 {
	switch {
	case g.state == Dead:
		return kerr.GroupIDNotFound.Code
	case g.state != Empty:
		return kerr.NonEmptyGroup.Code
	}
	tps := make([]TopicPartition, 0, len(g.offsets))
	for tp := range g.offsets {
		tps = append(tps, tp)
	}
	recs := append(g.tombstones(tps), Record{Key: groupKey(g.id)})
	g.offsets = map[TopicPartition]Offset{}
	g.state = Dead
	g.write(recs, nil)
	return 0
}

// DeleteOffsets handles OffsetDelete v0: an Empty group may drop any
// offsets; a consumer group with members only those of topics none of
// them subscribes to (GROUP_SUBSCRIBED_TO_TOPIC for the others); other
// groups with members none (NON_EMPTY_GROUP).
func (g *Group) DeleteOffsets(req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	switch {
	case g.state == Dead:
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp
	case g.state != Empty && g.protocolType != "consumer":
		resp.ErrorCode = kerr.NonEmptyGroup.Code
		return resp
	}
	var del []TopicPartition
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetDeleteResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetDeleteResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case !g.cfg.known(rt.Topic, rp.Partition):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case g.state != Empty && g.subscribedTo(rt.Topic):
				sp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			default:
				tp := TopicPartition{rt.Topic, rp.Partition}
				if _, ok := g.offsets[tp]; ok {
					delete(g.offsets, tp)
					del = append(del, tp)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(del) > 0 {
		g.write(g.tombstones(del), nil)
	}
	return resp
}

// subscribedTo reports whether a member subscribes to topic; true when
// the subscriptions are unknown.
func (g *Group) subscribedTo(topic string) bool {
	if g.subscribed == nil {
		return true
	}
	_, ok := g.subscribed[topic]
	return ok
}

// ExpireOffsets applies offsets.retention.minutes as Kafka 2.1+ does
// (KIP-211): an Empty group's offsets expire once the group has been
// empty that long; a Stable consumer group's offsets of topics it no
// longer subscribes to, and a group's that only stores offsets, expire
// that long after their commit. A commit with its own expiry expires
// then. An Empty group left with no offsets becomes Dead (its metadata
// gets a tombstone) and reports true: the driver drops it.
func (g *Group) ExpireOffsets(now time.Time) bool {
	retention := g.cfg.offsetsRetention()
	var base func(o Offset) time.Time
	var keep map[string]struct{}
	switch {
	case g.state == Empty && g.protocolType != "":
		base = func(o Offset) time.Time {
			if !g.stateTime.IsZero() {
				return g.stateTime
			}
			return o.CommitTime
		}
	case g.state == Stable && g.protocolType == "consumer" && g.subscribed != nil:
		base = func(o Offset) time.Time { return o.CommitTime }
		keep = g.subscribed
	case g.protocolType == "":
		base = func(o Offset) time.Time { return o.CommitTime }
	}
	var expired []TopicPartition
	if base != nil {
		for tp, o := range g.offsets {
			if _, ok := keep[tp.Topic]; ok {
				continue
			}
			if !o.ExpireTime.IsZero() && !now.Before(o.ExpireTime) || o.ExpireTime.IsZero() && now.Sub(base(o)) >= retention {
				expired = append(expired, tp)
			}
		}
	}
	var recs []Record
	if len(expired) > 0 {
		recs = g.tombstones(expired)
		for _, tp := range expired {
			delete(g.offsets, tp)
		}
	}
	dead := false
	if g.state == Empty && len(g.offsets) == 0 && len(g.pending) == 0 {
		g.state = Dead
		recs = append(recs, Record{Key: groupKey(g.id)})
		dead = true
	}
	if len(recs) > 0 {
		g.write(recs, nil)
	}
	return dead
}

// Listing is a group as ListGroups reports it.
type Listing struct {
	Group        string
	ProtocolType string
	State        State
}

// Listing returns the group's ListGroups entry.
func (g *Group) Listing() Listing {
	return Listing{Group: g.id, ProtocolType: g.protocolType, State: g.state}
}
