package metadata

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"logpipe/brokerd/acl"
)

// FormatVersion is the version of the metadata encoding this release
// writes: of each entry of the replicated metadata log (a batch of
// Records) and of each snapshot. A node reads every version up to its
// own and refuses a newer one rather than misread it.
//
// Version history:
//   - 1: the first replicated format. An entry is {"v":1,"records":[...]};
//     a snapshot is {"v":1,"offset":N,"records":[...]} holding the records
//     that rebuild the image from Empty. A partition's "adding" and
//     "removing" (a reassignment in progress) came later within version
//     1: a node that does not know them still follows the replicas, which
//     hold both, and only the controller acts on them. ACLs
//     (create_acls, delete_acls) came later too: a node that does not
//     know them refuses nothing, it only ignores them, so every node of a
//     cluster that uses authorization must run a release that has them.
//     So did a broker's "listeners" and the SCRAM credential records
//     ("set_scram", "delete_scram"): a node that does not know a
//     listener list reaches every broker at its one address, and one that
//     does not know the SCRAM records refuses them as empty, so it holds
//     no credentials rather than wrong ones.
const FormatVersion = 1

// ErrNewerFormat is returned for an entry or snapshot written by a newer
// release than this one.
var ErrNewerFormat = errors.New("metadata: written by a newer brokerd (format version too new)")

type entry struct {
	Version int      `json:"v"`
	Records []Record `json:"records"`
}

// EncodeEntry encodes records as one entry of the metadata log.
func EncodeEntry(recs []Record) ([]byte, error) {
	b, err := json.Marshal(entry{Version: FormatVersion, Records: recs})
	if err != nil {
		return nil, fmt.Errorf("metadata: encoding entry: %w", err)
	}
	return b, nil
}

// DecodeEntry decodes an entry of the metadata log.
func DecodeEntry(b []byte) ([]Record, error) {
	var e entry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("metadata: decoding entry: %w", err)
	}
	if err := checkVersion(e.Version); err != nil {
		return nil, err
	}
	return e.Records, nil
}

func checkVersion(v int) error {
	switch {
	case v > FormatVersion:
		return fmt.Errorf("%w: version %d, this release reads up to %d", ErrNewerFormat, v, FormatVersion)
	case v < 1:
		return fmt.Errorf("metadata: format version %d is not valid", v)
	}
	return nil
}

type snapshot struct {
	Version int      `json:"v"`
	Offset  int64    `json:"offset"`
	Records []Record `json:"records"`
}

// Records returns records that, applied in order to Empty(""), give an
// image equal to m (but for Offset). Snapshots are written this way, and
// a store moved from another format is seeded with them, so the records
// are the only thing any format of the image is made of.
func (m *Image) Records() []Record {
	var recs []Record
	if m.ClusterID != "" {
		id := m.ClusterID
		recs = append(recs, Record{SetClusterID: &id})
	}
	// Each broker keeps its epoch: the records carry it.
	for _, id := range m.BrokerIDs() {
		b := m.Brokers[id]
		recs = append(recs, Record{RegisterBroker: &b})
	}
	for _, name := range m.TopicNames() {
		recs = append(recs, Record{CreateTopic: cloneTopic(m.Topics[name])})
	}
	if m.NextProducerID > 0 {
		recs = append(recs, Record{ProducerIDs: &ProducerIDBlock{Broker: -1, First: 0, Size: m.NextProducerID}})
	}
	if bs := m.ACLs.Bindings(acl.MatchAll); len(bs) > 0 {
		recs = append(recs, Record{CreateACLs: bs})
	}
	for _, user := range m.SCRAMUsers() {
		for _, mech := range slices.Sorted(maps.Keys(m.SCRAM[user])) {
			c := m.SCRAM[user][mech]
			recs = append(recs, Record{SetSCRAM: &c})
		}
	}
	return recs
}

// EncodeSnapshot encodes the image as a snapshot.
func (m *Image) EncodeSnapshot() ([]byte, error) {
	b, err := json.Marshal(snapshot{Version: FormatVersion, Offset: m.Offset, Records: m.Records()})
	if err != nil {
		return nil, fmt.Errorf("metadata: encoding snapshot: %w", err)
	}
	return b, nil
}

// DecodeSnapshot rebuilds the image a snapshot was made of.
func DecodeSnapshot(b []byte) (*Image, error) {
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("metadata: decoding snapshot: %w", err)
	}
	if err := checkVersion(s.Version); err != nil {
		return nil, err
	}
	img := Empty("")
	for i, r := range s.Records {
		var err error
		if img, err = img.Apply(s.Offset, r); err != nil {
			return nil, fmt.Errorf("metadata: snapshot record %d: %w", i, err)
		}
	}
	return img.at(s.Offset), nil
}

// Equal reports whether two images hold the same metadata (Offset aside).
func (m *Image) Equal(o *Image) bool {
	if m.ClusterID != o.ClusterID || m.NextProducerID != o.NextProducerID ||
		!maps.Equal(m.Brokers, o.Brokers) || len(m.Topics) != len(o.Topics) || !m.ACLs.Equal(o.ACLs) ||
		!maps.EqualFunc(m.SCRAM, o.SCRAM, func(a, b map[string]SCRAMCredential) bool { return maps.EqualFunc(a, b, scramEqual) }) {
		return false
	}
	for name, t := range m.Topics {
		u := o.Topics[name]
		if u == nil || t.ID != u.ID || !maps.Equal(t.Configs, u.Configs) ||
			!slices.EqualFunc(t.Partitions, u.Partitions, partitionEqual) {
			return false
		}
	}
	return true
}

func scramEqual(a, b SCRAMCredential) bool {
	return a.SCRAMUser == b.SCRAMUser && a.Iterations == b.Iterations && bytes.Equal(a.Salt, b.Salt) &&
		bytes.Equal(a.StoredKey, b.StoredKey) && bytes.Equal(a.ServerKey, b.ServerKey)
}

func partitionEqual(a, b Partition) bool {
	return a.Leader == b.Leader && a.LeaderEpoch == b.LeaderEpoch && a.Epoch == b.Epoch &&
		slices.Equal(a.Replicas, b.Replicas) && slices.Equal(a.ISR, b.ISR)
}
