package metadata

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/acl"
)

func topic(name string, parts int) *Topic {
	t := &Topic{Name: name, ID: NewUUID()}
	for i := 0; i < parts; i++ {
		t.Partitions = append(t.Partitions, Partition{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1})
	}
	return t
}

func TestApply(t *testing.T) {
	img := Empty("c")
	a := topic("a", 2)
	steps := []struct {
		rec  Record
		want error
	}{
		{Record{RegisterBroker: &Broker{ID: 1, Host: "127.0.0.1", Port: 9092}}, nil},
		{Record{CreateTopic: a}, nil},
		{Record{CreateTopic: topic("a", 1)}, ErrTopicExists},
		{Record{CreateTopic: &Topic{Name: "zero", ID: NewUUID()}}, ErrInvalidPartitions},
		{Record{CreateTopic: &Topic{Name: "dupid", ID: a.ID, Partitions: a.Partitions}}, ErrInvalidRecord},
		{Record{AddPartitions: &AddPartitions{Topic: "a", Partitions: []Partition{{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}}}}, nil},
		{Record{AddPartitions: &AddPartitions{Topic: "nope", Partitions: []Partition{{}}}}, ErrUnknownTopic},
		{Record{AlterConfigs: &AlterConfigs{Topic: "a", Set: map[string]string{"retention.ms": "1000", "x": "y"}}}, nil},
		{Record{AlterConfigs: &AlterConfigs{Topic: "a", Delete: []string{"x"}}}, nil},
		{Record{ChangePartition: &ChangePartition{Topic: "a", Partition: 0, State: Partition{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 1, Epoch: 1}}}, nil},
		{Record{ChangePartition: &ChangePartition{Topic: "a", Partition: 9}}, ErrInvalidPartitions},
		{Record{}, ErrInvalidRecord},
	}
	before := img
	for i, s := range steps {
		next, err := img.Apply(int64(i), s.rec)
		if !errors.Is(err, s.want) {
			t.Fatalf("step %d: err %v, want %v", i, err, s.want)
		}
		if next.Offset != int64(i) {
			t.Fatalf("step %d: offset %d", i, next.Offset)
		}
		img = next
	}
	got := img.Topic("a")
	if len(got.Partitions) != 3 || got.Configs["retention.ms"] != "1000" || got.Configs["x"] != "" || got.Partitions[0].LeaderEpoch != 1 {
		t.Fatalf("topic a = %+v", got)
	}
	if img.TopicByID(a.ID) != got || len(before.Topics) != 0 || before.Offset != -1 {
		t.Fatal("images are not independent")
	}
	// The record's topic is copied: changing it afterwards changes nothing.
	a.Partitions[1].Leader = 7
	if img.Topic("a").Partitions[1].Leader != 1 {
		t.Fatal("image shares memory with a record")
	}
	name := "a"
	img, err := img.Apply(99, Record{DeleteTopic: &name})
	if err != nil || img.Topic("a") != nil || img.TopicByID(a.ID) != nil {
		t.Fatalf("delete: %v", err)
	}
}

func TestLocalStorePersists(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	cluster := s.Image().ClusterID
	if cluster == "" {
		t.Fatal("no cluster id")
	}
	ch := s.Changed()
	ctx := context.Background()
	if err := s.Propose(ctx, Record{RegisterBroker: &Broker{ID: 1}}, Record{CreateTopic: topic("t", 3)}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Fatal("Changed not signalled")
	}
	if err := s.Propose(ctx, Record{CreateTopic: topic("t", 1)}); !errors.Is(err, ErrTopicExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	s.Close()

	// A crash in the middle of a write leaves a torn line.
	f, _ := os.OpenFile(filepath.Join(dir, LocalFile), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"offset":4,"record":{"delete_to`)
	f.Close()

	s, err = OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	img := s.Image()
	if img.ClusterID != cluster || len(img.Topic("t").Partitions) != 3 || img.Brokers[1].ID != 1 || img.Offset != 3 {
		t.Fatalf("reopened image %+v", img)
	}
	name := "t"
	if err := s.Propose(ctx, Record{DeleteTopic: &name}); err != nil {
		t.Fatal(err)
	}
	if s.Image().Topic("t") != nil || s.Image().Offset != 4 {
		t.Fatal("delete after recovery not applied")
	}
}

func TestLocalStoreRefusesCorruptMiddle(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Propose(context.Background(), Record{CreateTopic: topic("t", 1)})
	s.Close()
	path := filepath.Join(dir, LocalFile)
	b, _ := os.ReadFile(path)
	b[0] = 'x'
	os.WriteFile(path, b, 0o644)
	if _, err := OpenLocal(dir); err == nil {
		t.Fatal("corrupt store opened")
	}
}

func TestProducerIDBlocks(t *testing.T) {
	img := Empty("c")
	img, err := img.Apply(0, Record{ProducerIDs: &ProducerIDBlock{Broker: 1, First: 0, Size: 1000}})
	if err != nil || img.NextProducerID != 1000 {
		t.Fatalf("%v %d", err, img.NextProducerID)
	}
	// A block proposed from a stale view is refused, so no id is handed
	// out twice.
	if _, err := img.Apply(1, Record{ProducerIDs: &ProducerIDBlock{Broker: 2, First: 0, Size: 1000}}); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("stale block: %v", err)
	}
}

func TestSnapshotRebuildsTheImage(t *testing.T) {
	img := Empty("")
	recs := []Record{
		{SetClusterID: ptr("c")},
		{RegisterBroker: &Broker{ID: 1, Host: "h", Port: 9092, Rack: "r1"}},
		{RegisterBroker: &Broker{ID: 2, Host: "h", Port: 9192}},
		{CreateTopic: topic("a", 3)},
		{AlterConfigs: &AlterConfigs{Topic: "a", Set: map[string]string{"retention.ms": "5"}}},
		{ChangePartition: &ChangePartition{Topic: "a", Partition: 1, State: Partition{Replicas: []int32{1, 2}, ISR: []int32{2}, Leader: 2, LeaderEpoch: 3, Epoch: 4}}},
		{ProducerIDs: &ProducerIDBlock{Broker: 1, First: 0, Size: 1000}},
		{CreateACLs: []acl.Binding{readACL("a"), readACL("b")}},
		{DeleteACLs: []acl.Binding{readACL("b")}},
	}
	for i, r := range recs {
		var err error
		if img, err = img.Apply(int64(i), r); err != nil {
			t.Fatal(err)
		}
	}
	b, err := img.EncodeSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(img) || got.Offset != img.Offset || got.TopicByID(img.Topic("a").ID) == nil {
		t.Fatalf("decoded snapshot differs:\ngot  %+v\nwant %+v", got, img)
	}
	// A changed partition makes the images differ.
	changed, _ := img.Apply(9, Record{ChangePartition: &ChangePartition{Topic: "a", Partition: 0, State: Partition{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1, LeaderEpoch: 1}}})
	if changed.Equal(img) {
		t.Fatal("Equal missed a changed leader epoch")
	}
	if got.ACLs.Len() != 1 || !got.ACLs.Contains(readACL("a")) {
		t.Fatalf("decoded snapshot has ACLs %v, want only %v", got.ACLs.Bindings(acl.MatchAll), readACL("a"))
	}
	changed, _ = img.Apply(9, Record{CreateACLs: []acl.Binding{readACL("c")}})
	if changed.Equal(img) {
		t.Fatal("Equal missed an added ACL")
	}
}

func readACL(topic string) acl.Binding {
	return acl.Binding{ResourceType: kmsg.ACLResourceTypeTopic, ResourceName: topic, PatternType: kmsg.ACLResourcePatternTypeLiteral,
		Principal: "User:alice", Host: "*", Operation: kmsg.ACLOperationRead, Permission: kmsg.ACLPermissionTypeAllow}
}

func TestACLRecords(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Propose(ctx, Record{CreateACLs: []acl.Binding{readACL("a"), readACL("b"), readACL("a")}}); err != nil {
		t.Fatal(err)
	}
	invalid := readACL("c")
	invalid.Principal = "alice"
	before := s.Image().ACLs
	if err := s.Propose(ctx, Record{CreateACLs: []acl.Binding{readACL("c"), invalid}}); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("a record with an invalid ACL: got %v, want ErrInvalidRecord", err)
	}
	if s.Image().ACLs != before {
		t.Fatal("a refused record changed the ACLs")
	}
	if err := s.Propose(ctx, Record{DeleteACLs: []acl.Binding{readACL("b"), readACL("never")}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := s.Image().ACLs.Bindings(acl.MatchAll)
	if len(got) != 1 || got[0] != readACL("a") {
		t.Fatalf("reopened store has ACLs %v, want only %v", got, readACL("a"))
	}
}

func TestNewerFormatIsRefused(t *testing.T) {
	for _, b := range []string{`{"v":2,"records":[]}`, `{"v":2,"offset":1,"records":[]}`} {
		if _, err := DecodeEntry([]byte(b)); !errors.Is(err, ErrNewerFormat) {
			t.Errorf("entry %s: got %v, want ErrNewerFormat", b, err)
		}
		if _, err := DecodeSnapshot([]byte(b)); !errors.Is(err, ErrNewerFormat) {
			t.Errorf("snapshot %s: got %v, want ErrNewerFormat", b, err)
		}
	}
	recs, err := DecodeEntry(mustEncode(t, Record{DeleteTopic: ptr("x")}))
	if err != nil || len(recs) != 1 || *recs[0].DeleteTopic != "x" {
		t.Fatalf("round trip: %v %v", recs, err)
	}
	if _, err := Empty("c").Apply(0, Record{SetClusterID: ptr("d")}); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("a second cluster id: got %v, want ErrInvalidRecord", err)
	}
}

func ptr(s string) *string { return &s }

func mustEncode(t *testing.T, recs ...Record) []byte {
	t.Helper()
	b, err := EncodeEntry(recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSCRAMCredentials applies, snapshots and deletes SCRAM credentials.
func TestSCRAMCredentials(t *testing.T) {
	cred := func(user, mech string, salt byte) *SCRAMCredential {
		return &SCRAMCredential{SCRAMUser: SCRAMUser{User: user, Mechanism: mech}, Salt: []byte{salt}, Iterations: 4096,
			StoredKey: []byte("stored"), ServerKey: []byte("server")}
	}
	img := Empty("c")
	var err error
	for i, rec := range []Record{
		{SetSCRAM: cred("alice", "SCRAM-SHA-256", 1)},
		{SetSCRAM: cred("alice", "SCRAM-SHA-512", 2)},
		{SetSCRAM: cred("bob", "SCRAM-SHA-256", 3)},
		{SetSCRAM: cred("alice", "SCRAM-SHA-256", 4)},
	} {
		if img, err = img.Apply(int64(i), rec); err != nil {
			t.Fatal(err)
		}
	}
	if got := img.SCRAM["alice"]["SCRAM-SHA-256"].Salt; len(got) != 1 || got[0] != 4 {
		t.Fatalf("replaced credential: got salt %v, want [4]", got)
	}
	snap, err := img.EncodeSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeSnapshot(snap)
	if err != nil || !back.Equal(img) {
		t.Fatalf("snapshot round trip: got %+v, %v; want %+v", back.SCRAM, err, img.SCRAM)
	}
	if img, err = img.Apply(9, Record{DeleteSCRAM: &SCRAMUser{User: "bob", Mechanism: "SCRAM-SHA-256"}}); err != nil {
		t.Fatal(err)
	}
	if got, want := img.SCRAMUsers(), []string{"alice"}; !slices.Equal(got, want) {
		t.Fatalf("users after delete: got %v, want %v", got, want)
	}
	if _, err := img.Apply(10, Record{DeleteSCRAM: &SCRAMUser{User: "bob", Mechanism: "SCRAM-SHA-256"}}); !errors.Is(err, ErrUnknownCredential) {
		t.Fatalf("deleting twice: got %v, want %v", err, ErrUnknownCredential)
	}
	if _, err := img.Apply(11, Record{SetSCRAM: &SCRAMCredential{SCRAMUser: SCRAMUser{User: "x", Mechanism: "SCRAM-SHA-256"}}}); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("credential without keys: got %v, want %v", err, ErrInvalidRecord)
	}
	if back.Equal(img) {
		t.Fatal("images with different credentials compare equal")
	}
}

func TestBrokerEndpoint(t *testing.T) {
	b := Broker{Host: "h", Port: 1, Listeners: "PLAINTEXT://h:1,SASL_SSL://s.example:9094"}
	if h, p, ok := b.Endpoint("sasl_ssl"); !ok || h != "s.example" || p != 9094 {
		t.Fatalf("SASL_SSL: got %s:%d %v, want s.example:9094 true", h, p, ok)
	}
	if _, _, ok := b.Endpoint("SSL"); ok {
		t.Fatal("a listener the broker does not have was found")
	}
	if h, p, ok := (Broker{Host: "old", Port: 2}).Endpoint("SSL"); !ok || h != "old" || p != 2 {
		t.Fatalf("broker without listeners: got %s:%d %v, want old:2 true", h, p, ok)
	}
}
