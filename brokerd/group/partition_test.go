package group

import "testing"

// The expected values were computed with java.lang.String.hashCode and
// Kafka's Utils.abs on OpenJDK 17.
func TestPartitionForMatchesKafka(t *testing.T) {
	for _, c := range []struct {
		id      string
		hash    int32
		of50    int32
		ofSeven int32
	}{
		{"", 0, 0, 0},
		{"hello", 99162322, 22, 0},
		{"my-group", -1906497762, 12, 1},
		{"indexer", 1943292159, 9, 4},
		{"logpipe-indexer", 1401093412, 12, 5},
		{"grüße", 98768023, 23, 4},
		{"\U0001F600x", 54959989, 39, 0},
		{"polygenelubricants", -2147483648, 0, 0},
		{"GydZG_", -2147483648, 0, 0},
	} {
		if h := javaStringHash(c.id); h != c.hash {
			t.Errorf("hash(%q) = %d, Java says %d", c.id, h, c.hash)
		}
		if p := PartitionFor(c.id, 50); p != c.of50 {
			t.Errorf("PartitionFor(%q, 50) = %d, Kafka says %d", c.id, p, c.of50)
		}
		if p := PartitionFor(c.id, 7); p != c.ofSeven {
			t.Errorf("PartitionFor(%q, 7) = %d, Kafka says %d", c.id, p, c.ofSeven)
		}
	}
}
