package metadata

import (
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"testing"
)

func change(topic string, p int32, leader, epoch int32) Record {
	return Record{ChangePartition: &ChangePartition{Topic: topic, Partition: p,
		State: Partition{Replicas: []int32{1, 2}, ISR: []int32{leader}, Leader: leader, LeaderEpoch: epoch, Epoch: epoch}}}
}

// TestBatchMatchesApply applies the same records with a Batch and one
// Apply after another: the images are equal, the errors the same, and the
// image the batch started from is as it was.
func TestBatchMatchesApply(t *testing.T) {
	start := Empty("c")
	var err error
	if start, err = start.Apply(1, Record{CreateTopic: topic("a", 5)}); err != nil {
		t.Fatal(err)
	}
	if start, err = start.Apply(2, Record{CreateTopic: topic("b", 3)}); err != nil {
		t.Fatal(err)
	}
	before, err := json.Marshal(start)
	if err != nil {
		t.Fatal(err)
	}
	del := "a"
	recs := []Record{
		change("a", 0, 2, 1),
		change("a", 1, 2, 1),
		change("b", 2, 2, 1),
		change("a", 0, 1, 2), // the same partition again
		change("nope", 0, 1, 1),
		change("a", 9, 1, 1),
		{AlterConfigs: &AlterConfigs{Topic: "a", Set: map[string]string{"retention.ms": "1"}}},
		change("a", 3, 2, 1), // after a record that copied the topic
		{AddPartitions: &AddPartitions{Topic: "b", Partitions: []Partition{{Replicas: []int32{1}, ISR: []int32{1}, Leader: 1}}}},
		change("b", 3, 1, 1),
		{DeleteTopic: &del},
		change("a", 0, 1, 1),
		{CreateTopic: topic("a", 2)},
		change("a", 1, 2, 1),
	}
	seq, b := start, NewBatch(start)
	for i, r := range recs {
		off := int64(10 + i)
		var want error
		seq, want = seq.Apply(off, r)
		got := b.Apply(off, r)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("record %d: batch error %v, Apply's %v", i, got, want)
		}
	}
	if got := b.Image(); !reflect.DeepEqual(got, seq) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(seq)
		t.Errorf("batch image:\n%s\nApply's:\n%s", g, w)
	}
	after, err := json.Marshal(start)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Errorf("the batch changed the image it started from:\n%s\nwas:\n%s", after, before)
	}
}

// TestBatchCopiesATopicOnce changes every partition of a 2,000-partition
// topic in one batch, as a leader election after a restart does: the
// topic is copied once, not once per partition (which would allocate
// about 2,000 × 2,000 partitions' worth).
func TestBatchCopiesATopicOnce(t *testing.T) {
	const parts = 2000
	img, err := Empty("c").Apply(1, Record{CreateTopic: topic("big", parts)})
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]Record, parts)
	for i := range recs {
		recs[i] = change("big", int32(i), 2, 1)
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	allocated := ms.TotalAlloc
	b := NewBatch(img)
	for i, r := range recs {
		if err := b.Apply(int64(2+i), r); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&ms)
	allocated = ms.TotalAlloc - allocated
	// One copy of the topic plus two small lists per changed partition;
	// a copy per record would be 2,000 copies.
	topicBytes := uint64(parts) * uint64(reflect.TypeFor[Partition]().Size())
	if limit := 4*topicBytes + parts*64; allocated > limit {
		t.Errorf("a batch of %d partition changes allocated %d bytes, want at most %d (one copy of the topic is %d)", parts, allocated, limit, topicBytes)
	}
	if got := b.Image().Topics["big"].Partitions[parts-1].Leader; got != 2 {
		t.Errorf("leader of the last partition after the batch: %d, want 2", got)
	}
}
