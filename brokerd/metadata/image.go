// Package metadata holds brokerd's cluster metadata: the brokers, the
// topics with their partitions (replicas, ISR, leader, epochs), topic
// configs and the ACLs.
//
// The state is an immutable Image; it changes only by applying Records in
// order (Image.Apply), the way Kafka's KRaft brokers apply the
// __cluster_metadata log. A Store orders and persists the records: the
// single-node Local store appends them to a file, and the cluster's quorum
// store replicates them with Raft; both feed the same Apply, so every node
// derives the same Image from the same records.
package metadata

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"

	"logpipe/brokerd/acl"
)

// Sentinel errors of Apply. Brokers map them to Kafka error codes.
var (
	ErrTopicExists       = errors.New("metadata: topic already exists")
	ErrUnknownTopic      = errors.New("metadata: unknown topic")
	ErrInvalidPartitions = errors.New("metadata: invalid partition count")
	ErrInvalidRecord     = errors.New("metadata: invalid record")
)

// UUID is a Kafka topic id.
type UUID [16]byte

// NewUUID returns a random id that is not zero.
func NewUUID() UUID {
	var u UUID
	for u == (UUID{}) {
		_, _ = rand.Read(u[:])
	}
	return u
}

// String renders the id as Kafka does: URL-safe base64 without padding.
func (u UUID) String() string { return base64.RawURLEncoding.EncodeToString(u[:]) }

// Broker is a registered broker.
type Broker struct {
	ID   int32  `json:"id"`
	Host string `json:"host"`
	Port int32  `json:"port"`
	Rack string `json:"rack,omitempty"`
	// Incarnation is a random id the broker process picks at start; a
	// registration with another incarnation is a new process.
	Incarnation string `json:"incarnation,omitempty"`
	// Epoch is the broker epoch: the log offset of its registration.
	// In a RegisterBroker record 0 means "this record's offset" (what a
	// controller proposes); a snapshot's records carry the epoch kept.
	// Heartbeats of an older epoch are refused.
	Epoch int64 `json:"epoch"`
	// Fenced brokers lead nothing and are in no ISR: they are registered
	// but not (yet, or no longer) in contact with the controller.
	Fenced bool `json:"fenced,omitempty"`
	// Listeners are the broker's client listeners as clients reach them,
	// "NAME://host:port,…"; Host and Port are the inter-broker one's.
	// Empty for a broker registered before listeners were recorded.
	Listeners string `json:"listeners,omitempty"`
}

// Endpoint returns where clients of the listener called name reach the
// broker; a broker that recorded no listeners is reached at Host and Port
// on any.
func (b Broker) Endpoint(name string) (host string, port int32, ok bool) {
	if b.Listeners == "" {
		return b.Host, b.Port, true
	}
	for _, l := range strings.Split(b.Listeners, ",") {
		n, addr, found := strings.Cut(l, "://")
		if !found || !strings.EqualFold(n, name) {
			continue
		}
		h, p, err := net.SplitHostPort(addr)
		if err != nil {
			return "", 0, false
		}
		pn, err := strconv.ParseUint(p, 10, 16)
		return h, int32(pn), err == nil
	}
	return "", 0, false
}

// Partition is the replica placement and leadership of one partition.
// Invariant: Leader is -1 or a member of ISR; ISR ⊆ Replicas.
type Partition struct {
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leader_epoch"`
	// Epoch counts every change of the partition's state (Kafka's
	// partition epoch).
	Epoch int32 `json:"epoch"`
	// Adding and Removing describe a reassignment in progress, as
	// Kafka's adding and removing replicas: Replicas holds the target
	// replicas followed by those being removed; Adding are the target
	// replicas that were not replicas before. Both are empty when no
	// reassignment runs.
	Adding   []int32 `json:"adding,omitempty"`
	Removing []int32 `json:"removing,omitempty"`
}

// Reassigning reports whether a reassignment of p is in progress.
func (p Partition) Reassigning() bool { return len(p.Adding) > 0 || len(p.Removing) > 0 }

// Target returns the replicas p is being moved to: Replicas without those
// being removed (Replicas itself when no reassignment runs).
func (p Partition) Target() []int32 {
	return slices.DeleteFunc(slices.Clone(p.Replicas), func(r int32) bool { return slices.Contains(p.Removing, r) })
}

// Topic is one topic. An Image's topics are never modified in place.
type Topic struct {
	Name       string            `json:"name"`
	ID         UUID              `json:"id"`
	Partitions []Partition       `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// Image is the metadata as of one applied record. Never modify an Image or
// anything reachable from it; Apply returns a new one.
type Image struct {
	ClusterID string
	// Offset is the position in the metadata log of the last record
	// applied; -1 for the empty image.
	Offset  int64
	Brokers map[int32]Broker
	Topics  map[string]*Topic
	// NextProducerID is the first producer id not yet handed to a broker.
	NextProducerID int64
	// ACLs are the access control lists, indexed for the authorizer; nil
	// is none.
	ACLs *acl.Set
	// SCRAM holds the SCRAM credentials, by user then mechanism.
	SCRAM map[string]map[string]SCRAMCredential
	byID  map[UUID]string
}

// Empty returns the image before any record.
func Empty(clusterID string) *Image {
	return &Image{ClusterID: clusterID, Offset: -1, Brokers: map[int32]Broker{}, Topics: map[string]*Topic{}, byID: map[UUID]string{}}
}

// Topic returns the named topic, or nil.
func (m *Image) Topic(name string) *Topic { return m.Topics[name] }

// TopicByID returns the topic with the id, or nil.
func (m *Image) TopicByID(id UUID) *Topic { return m.Topics[m.byID[id]] }

// TopicNames returns the topic names, sorted.
func (m *Image) TopicNames() []string {
	names := slices.Collect(maps.Keys(m.Topics))
	sort.Strings(names)
	return names
}

// Live reports whether broker id is registered and not fenced.
func (m *Image) Live(id int32) bool {
	b, ok := m.Brokers[id]
	return ok && !b.Fenced
}

// LiveBrokerIDs returns the ids of the unfenced brokers, sorted.
func (m *Image) LiveBrokerIDs() []int32 {
	var ids []int32
	for _, id := range m.BrokerIDs() {
		if !m.Brokers[id].Fenced {
			ids = append(ids, id)
		}
	}
	return ids
}

// BrokerIDs returns the registered broker ids, sorted.
func (m *Image) BrokerIDs() []int32 {
	ids := slices.Collect(maps.Keys(m.Brokers))
	slices.Sort(ids)
	return ids
}

// Record is one change to the metadata. Exactly one field is set.
type Record struct {
	RegisterBroker  *Broker          `json:"register_broker,omitempty"`
	CreateTopic     *Topic           `json:"create_topic,omitempty"`
	DeleteTopic     *string          `json:"delete_topic,omitempty"`
	AddPartitions   *AddPartitions   `json:"add_partitions,omitempty"`
	AlterConfigs    *AlterConfigs    `json:"alter_configs,omitempty"`
	ChangePartition *ChangePartition `json:"change_partition,omitempty"`
	SetClusterID    *string          `json:"set_cluster_id,omitempty"`
	// ProducerIDs hands a block of producer ids to a broker, so ids stay
	// unique across brokers and restarts.
	ProducerIDs *ProducerIDBlock `json:"producer_ids,omitempty"`
	// FenceBroker fences or unfences a registered broker.
	FenceBroker *BrokerFence `json:"fence_broker,omitempty"`
	// CreateACLs adds ACLs (one already there is kept once); DeleteACLs
	// removes them (one that is not there is ignored). Each binding must
	// be valid (acl.Binding.Validate), else the record is refused whole.
	CreateACLs []acl.Binding `json:"create_acls,omitempty"`
	DeleteACLs []acl.Binding `json:"delete_acls,omitempty"`
	// SetSCRAM adds or replaces a user's credential for one mechanism.
	SetSCRAM *SCRAMCredential `json:"set_scram,omitempty"`
	// DeleteSCRAM removes a user's credential for one mechanism.
	DeleteSCRAM *SCRAMUser `json:"delete_scram,omitempty"`
}

// SCRAMUser names a user's credential for one SCRAM mechanism
// (SCRAM-SHA-256 or SCRAM-SHA-512).
type SCRAMUser struct {
	User      string `json:"user"`
	Mechanism string `json:"mechanism"`
}

// SCRAMCredential is what the cluster keeps of a SCRAM password (RFC 5802
// section 5): never the password itself.
type SCRAMCredential struct {
	SCRAMUser
	Salt       []byte `json:"salt"`
	Iterations int32  `json:"iterations"`
	StoredKey  []byte `json:"stored_key"`
	ServerKey  []byte `json:"server_key"`
}

// ErrUnknownCredential is returned for deleting a credential that does not
// exist.
var ErrUnknownCredential = errors.New("metadata: no such SCRAM credential")

// BrokerFence fences (Fenced true) or unfences a broker of the given
// epoch; a record for an older epoch is refused.
type BrokerFence struct {
	ID     int32 `json:"id"`
	Epoch  int64 `json:"epoch"`
	Fenced bool  `json:"fenced"`
}

// ProducerIDBlock is a range of producer ids given to one broker: First up
// to First+Size-1. First must equal the image's NextProducerID.
type ProducerIDBlock struct {
	Broker int32 `json:"broker"`
	First  int64 `json:"first"`
	Size   int64 `json:"size"`
}

// AddPartitions appends partitions to a topic.
type AddPartitions struct {
	Topic      string      `json:"topic"`
	Partitions []Partition `json:"partitions"`
}

// AlterConfigs changes a topic's configs: Set entries are written, Delete
// keys are removed (falling back to the broker default).
type AlterConfigs struct {
	Topic  string            `json:"topic"`
	Set    map[string]string `json:"set,omitempty"`
	Delete []string          `json:"delete,omitempty"`
	// Replace drops every config not in Set first (the legacy
	// AlterConfigs API replaces the whole set).
	Replace bool `json:"replace,omitempty"`
}

// ChangePartition sets a partition's leader and ISR (leader election, ISR
// shrink and expand, reassignment).
type ChangePartition struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	State     Partition `json:"state"`
}

// Apply returns the image after rec, at log position offset. An invalid
// record returns an error and leaves the image as it was; the store still
// counts the record as applied (every node rejects it the same way).
func (m *Image) Apply(offset int64, rec Record) (*Image, error) {
	n := m.shallowCopy()
	n.Offset = offset
	switch {
	case rec.SetClusterID != nil:
		// The first cluster id sticks: two controllers that both saw
		// none cannot give the cluster two.
		if m.ClusterID != "" && m.ClusterID != *rec.SetClusterID {
			return m.at(offset), fmt.Errorf("%w: cluster id is %s already", ErrInvalidRecord, m.ClusterID)
		}
		n.ClusterID = *rec.SetClusterID
	case rec.ProducerIDs != nil:
		blk := rec.ProducerIDs
		if blk.First != m.NextProducerID || blk.Size <= 0 {
			return m.at(offset), fmt.Errorf("%w: producer id block %d+%d does not follow %d", ErrInvalidRecord, blk.First, blk.Size, m.NextProducerID)
		}
		n.NextProducerID = blk.First + blk.Size
	case rec.RegisterBroker != nil:
		b := *rec.RegisterBroker
		if b.Epoch == 0 {
			b.Epoch = offset
		}
		n.Brokers = maps.Clone(m.Brokers)
		n.Brokers[b.ID] = b
	case rec.FenceBroker != nil:
		f := rec.FenceBroker
		b, ok := m.Brokers[f.ID]
		if !ok || b.Epoch != f.Epoch {
			return m.at(offset), fmt.Errorf("%w: broker %d of epoch %d is not registered", ErrInvalidRecord, f.ID, f.Epoch)
		}
		b.Fenced = f.Fenced
		n.Brokers = maps.Clone(m.Brokers)
		n.Brokers[b.ID] = b
	case rec.CreateACLs != nil || rec.DeleteACLs != nil:
		for _, b := range slices.Concat(rec.CreateACLs, rec.DeleteACLs) {
			if err := b.Validate(); err != nil {
				return m.at(offset), fmt.Errorf("%w: %v", ErrInvalidRecord, err)
			}
		}
		n.ACLs = m.ACLs.With(rec.CreateACLs, rec.DeleteACLs)
	case rec.CreateTopic != nil:
		t := rec.CreateTopic
		if m.Topics[t.Name] != nil {
			return m.at(offset), fmt.Errorf("%w: %s", ErrTopicExists, t.Name)
		}
		if len(t.Partitions) == 0 {
			return m.at(offset), fmt.Errorf("%w: topic %s has no partitions", ErrInvalidPartitions, t.Name)
		}
		if _, dup := m.byID[t.ID]; dup || t.ID == (UUID{}) {
			return m.at(offset), fmt.Errorf("%w: topic id %s is zero or in use", ErrInvalidRecord, t.ID)
		}
		cp := cloneTopic(t)
		n.Topics = maps.Clone(m.Topics)
		n.Topics[t.Name] = cp
		n.byID = maps.Clone(m.byID)
		n.byID[t.ID] = t.Name
	case rec.DeleteTopic != nil:
		t := m.Topics[*rec.DeleteTopic]
		if t == nil {
			return m.at(offset), fmt.Errorf("%w: %s", ErrUnknownTopic, *rec.DeleteTopic)
		}
		n.Topics = maps.Clone(m.Topics)
		delete(n.Topics, t.Name)
		n.byID = maps.Clone(m.byID)
		delete(n.byID, t.ID)
	case rec.AddPartitions != nil:
		a := rec.AddPartitions
		t := m.Topics[a.Topic]
		if t == nil {
			return m.at(offset), fmt.Errorf("%w: %s", ErrUnknownTopic, a.Topic)
		}
		if len(a.Partitions) == 0 {
			return m.at(offset), fmt.Errorf("%w: no partitions to add to %s", ErrInvalidPartitions, a.Topic)
		}
		cp := shareTopic(t)
		for _, p := range a.Partitions {
			cp.Partitions = append(cp.Partitions, clonePartition(p))
		}
		n.Topics = maps.Clone(m.Topics)
		n.Topics[t.Name] = cp
	case rec.AlterConfigs != nil:
		a := rec.AlterConfigs
		t := m.Topics[a.Topic]
		if t == nil {
			return m.at(offset), fmt.Errorf("%w: %s", ErrUnknownTopic, a.Topic)
		}
		cp := shareTopic(t)
		cp.Configs = maps.Clone(t.Configs)
		if a.Replace {
			cp.Configs = map[string]string{}
		}
		if cp.Configs == nil {
			cp.Configs = map[string]string{}
		}
		for k, v := range a.Set {
			cp.Configs[k] = v
		}
		for _, k := range a.Delete {
			delete(cp.Configs, k)
		}
		n.Topics = maps.Clone(m.Topics)
		n.Topics[t.Name] = cp
	case rec.ChangePartition != nil:
		if err := m.checkChange(rec.ChangePartition); err != nil {
			return m.at(offset), err
		}
		n.Topics = maps.Clone(m.Topics)
		n.changePartition(rec.ChangePartition, nil)
	case rec.SetSCRAM != nil:
		c := *rec.SetSCRAM
		if c.User == "" || c.Mechanism == "" || len(c.Salt) == 0 || c.Iterations < 1 || len(c.StoredKey) == 0 || len(c.ServerKey) == 0 {
			return m.at(offset), fmt.Errorf("%w: incomplete SCRAM credential for %q", ErrInvalidRecord, c.User)
		}
		n.SCRAM = maps.Clone(m.SCRAM)
		if n.SCRAM == nil {
			n.SCRAM = map[string]map[string]SCRAMCredential{}
		}
		byMech := maps.Clone(m.SCRAM[c.User])
		if byMech == nil {
			byMech = map[string]SCRAMCredential{}
		}
		byMech[c.Mechanism] = c
		n.SCRAM[c.User] = byMech
	case rec.DeleteSCRAM != nil:
		d := *rec.DeleteSCRAM
		if _, ok := m.SCRAM[d.User][d.Mechanism]; !ok {
			return m.at(offset), fmt.Errorf("%w: %s of %q", ErrUnknownCredential, d.Mechanism, d.User)
		}
		n.SCRAM = maps.Clone(m.SCRAM)
		byMech := maps.Clone(m.SCRAM[d.User])
		delete(byMech, d.Mechanism)
		if len(byMech) == 0 {
			delete(n.SCRAM, d.User)
		} else {
			n.SCRAM[d.User] = byMech
		}
	default:
		return m.at(offset), fmt.Errorf("%w: empty record", ErrInvalidRecord)
	}
	return n, nil
}

// SCRAMUsers returns the names of the users with a SCRAM credential,
// sorted.
func (m *Image) SCRAMUsers() []string { return slices.Sorted(maps.Keys(m.SCRAM)) }

func (m *Image) shallowCopy() *Image {
	c := *m
	return &c
}

// at returns m moved to offset without other change.
func (m *Image) at(offset int64) *Image {
	c := m.shallowCopy()
	c.Offset = offset
	return c
}

// checkChange reports why c cannot apply to m, nil if it can.
func (m *Image) checkChange(c *ChangePartition) error {
	t := m.Topics[c.Topic]
	if t == nil {
		return fmt.Errorf("%w: %s", ErrUnknownTopic, c.Topic)
	}
	if c.Partition < 0 || int(c.Partition) >= len(t.Partitions) {
		return fmt.Errorf("%w: %s has no partition %d", ErrInvalidPartitions, c.Topic, c.Partition)
	}
	return nil
}

// changePartition applies c, which checkChange allowed, to m, whose
// Topics map is m's own: the topic is copied unless owned says m may
// change it in place (a copy made earlier in the same Batch), and the copy
// is added to owned.
func (m *Image) changePartition(c *ChangePartition, owned map[*Topic]bool) {
	t := m.Topics[c.Topic]
	if !owned[t] {
		t = shareTopic(t)
		m.Topics[c.Topic] = t
		if owned != nil {
			owned[t] = true
		}
	}
	t.Partitions[c.Partition] = clonePartition(c.State)
}

// Batch applies a run of records as Apply applies them one after another,
// but copies the image, its topic map and a changed topic once for the
// run rather than once per record: a leader election after a broker
// restart changes every partition it leads in one entry, and copying a
// 1,000-partition topic for each of them would cost the square of the
// topic's size. The images between records are never seen, so the run's
// own copies are changed in place.
type Batch struct {
	img *Image
	// fresh is whether img and its topic map were made by this batch.
	fresh bool
	owned map[*Topic]bool
}

// NewBatch starts a batch of records applied to m, which stays as it is.
func NewBatch(m *Image) *Batch { return &Batch{img: m, owned: map[*Topic]bool{}} }

// Apply applies rec at offset, with Image.Apply's checks and errors (a
// refused record leaves the image as it was, moved to offset).
func (b *Batch) Apply(offset int64, rec Record) error {
	if c := rec.ChangePartition; c != nil && rec.onlyChangePartition() {
		if err := b.img.checkChange(c); err != nil {
			b.img = b.img.at(offset)
			b.fresh = false
			return err
		}
		if !b.fresh {
			b.img = b.img.shallowCopy()
			b.img.Topics = maps.Clone(b.img.Topics)
			b.fresh = true
		}
		b.img.Offset = offset
		b.img.changePartition(c, b.owned)
		return nil
	}
	var err error
	b.img, err = b.img.Apply(offset, rec)
	b.fresh = false
	return err
}

// Image returns the image after the records applied so far; the batch
// must not be used after.
func (b *Batch) Image() *Image { return b.img }

// onlyChangePartition reports whether ChangePartition is the field of r
// that Apply acts on.
func (r Record) onlyChangePartition() bool {
	return r.SetClusterID == nil && r.ProducerIDs == nil && r.RegisterBroker == nil && r.FenceBroker == nil &&
		r.CreateACLs == nil && r.DeleteACLs == nil && r.CreateTopic == nil && r.DeleteTopic == nil &&
		r.AddPartitions == nil && r.AlterConfigs == nil
}

// shareTopic returns a copy of t whose partition list may be changed;
// the partitions' own lists and the configs are shared, as nothing
// changes them in place once they are in an image.
func shareTopic(t *Topic) *Topic {
	cp := *t
	cp.Partitions = slices.Clone(t.Partitions)
	return &cp
}

func cloneTopic(t *Topic) *Topic {
	cp := &Topic{Name: t.Name, ID: t.ID, Configs: maps.Clone(t.Configs)}
	cp.Partitions = make([]Partition, len(t.Partitions))
	for i, p := range t.Partitions {
		cp.Partitions[i] = clonePartition(p)
	}
	return cp
}

func clonePartition(p Partition) Partition {
	p.Replicas = slices.Clone(p.Replicas)
	p.ISR = slices.Clone(p.ISR)
	p.Adding = slices.Clone(p.Adding)
	p.Removing = slices.Clone(p.Removing)
	return p
}
