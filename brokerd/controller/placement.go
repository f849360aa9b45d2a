package controller

import (
	"hash/fnv"
	"maps"
	"slices"

	"logpipe/brokerd/metadata"
)

// Place assigns rf replicas to each of n new partitions of topic, the
// partitions numbered from first, among brokers (the live ones, by id).
// Leaders (the first replica, the preferred one) go round robin from a
// start that depends on the topic's name, so small topics do not all lead
// on one broker; the other replicas of a partition follow at a distance
// that changes every len(brokers) partitions, so followers spread too
// (Kafka's scheme). With racks set, brokers are ordered alternating
// between racks, so a partition's replicas land on as many racks as there
// are. It returns nil if rf exceeds the brokers.
func Place(brokers []metadata.Broker, topic string, first, n int32, rf int) [][]int32 {
	order := rackAlternating(brokers)
	rackOf := map[int32]string{}
	for _, b := range brokers {
		rackOf[b.ID] = b.Rack
	}
	racks := len(slices.Compact(slices.Sorted(maps.Values(rackOf))))
	nb := len(order)
	if rf < 1 || rf > nb {
		return nil
	}
	h := fnv.New32a()
	h.Write([]byte(topic))
	start := int(h.Sum32() % uint32(nb))
	out := make([][]int32, n)
	for k := range n {
		i := int(first + k)
		lead := (start + i) % nb
		rs := []int32{order[lead]}
		used := map[string]bool{rackOf[order[lead]]: true}
		if nb > 1 {
			shift := (i / nb) % (nb - 1)
			for j := range rf - 1 {
				// From the shifted place, the next broker not chosen yet,
				// on a rack not used yet while there are such racks.
				for step := range nb {
					c := order[(lead+1+(shift+j+step)%(nb-1))%nb]
					if slices.Contains(rs, c) || used[rackOf[c]] && len(used) < racks {
						continue
					}
					rs = append(rs, c)
					used[rackOf[c]] = true
					break
				}
			}
		}
		out[k] = rs
	}
	return out
}

// rackAlternating orders broker ids taking one from each rack in turn
// (racks and the brokers in each sorted); brokers without a rack form one
// rack of their own.
func rackAlternating(brokers []metadata.Broker) []int32 {
	byRack := map[string][]int32{}
	var racks []string
	for _, b := range brokers {
		if _, ok := byRack[b.Rack]; !ok {
			racks = append(racks, b.Rack)
		}
		byRack[b.Rack] = append(byRack[b.Rack], b.ID)
	}
	slices.Sort(racks)
	for _, ids := range byRack {
		slices.Sort(ids)
	}
	var out []int32
	for len(out) < len(brokers) {
		for _, r := range racks {
			if ids := byRack[r]; len(ids) > 0 {
				out = append(out, ids[0])
				byRack[r] = ids[1:]
			}
		}
	}
	return out
}

// Partitions returns the new partitions' states for an assignment: every
// replica in the ISR, the first one leading.
func Partitions(assign [][]int32) []metadata.Partition {
	ps := make([]metadata.Partition, len(assign))
	for i, rs := range assign {
		ps[i] = metadata.Partition{Replicas: slices.Clone(rs), ISR: slices.Clone(rs), Leader: rs[0]}
	}
	return ps
}
