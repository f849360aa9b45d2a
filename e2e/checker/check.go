package checker

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kind is the kind of a finding; the package documentation gives the rule
// behind each.
type Kind int

// The kinds of findings, in the order a Report lists them.
const (
	Lost Kind = iota + 1
	Duplicate
	OutOfOrder
	DisagreeingOffsets
	SkippedOffsets
	Phantom
	FailedRead
	InvalidHistory
)

var kindNames = [...]string{
	Lost:               "lost write",
	Duplicate:          "duplicate",
	OutOfOrder:         "out of order",
	DisagreeingOffsets: "disagreeing offsets",
	SkippedOffsets:     "skipped offsets",
	Phantom:            "phantom",
	FailedRead:         "failed write read",
	InvalidHistory:     "invalid history",
}

// String returns the kind's name as the report prints it.
func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Finding is one anomaly. Topic, Partition and Offset give the position it
// is about: the acknowledged position for Lost, OutOfOrder and a value read
// away from its acknowledged position; the position read for
// DisagreeingOffsets between readers; the first read position for
// Duplicate, Phantom and FailedRead; the first skipped offset holding data
// for SkippedOffsets; InvalidHistory has only a value (and the topic it was
// sent to, if it was), with Offset -1. Value is the value concerned ("" when the finding is
// about a position), Reader the reader concerned (SkippedOffsets only), and
// Detail says the rest in words.
type Finding struct {
	Kind      Kind
	Topic     string
	Partition int32
	Offset    int64
	Value     string
	Reader    string
	Detail    string
}

// String formats the finding on one line.
func (f Finding) String() string {
	var b strings.Builder
	if f.Kind == InvalidHistory {
		fmt.Fprintf(&b, "%q", f.Value)
		if f.Topic != "" {
			fmt.Fprintf(&b, " to %s", f.Topic)
		}
	} else {
		fmt.Fprintf(&b, "%s/%d@%d", f.Topic, f.Partition, f.Offset)
		if f.Value != "" {
			fmt.Fprintf(&b, " %q", f.Value)
		}
	}
	if f.Reader != "" {
		fmt.Fprintf(&b, " reader %s", f.Reader)
	}
	b.WriteString(": ")
	b.WriteString(f.Detail)
	return b.String()
}

// Summary counts what a history holds.
type Summary struct {
	Sent          int // Send calls
	Acked         int // sent values acknowledged
	Failed        int // sent values that failed definitely
	Indeterminate int // sent values with an indeterminate outcome or none
	// IndeterminateRead counts the indeterminate values that were read:
	// they were written after all.
	IndeterminateRead int
	// Unseen counts acknowledged values that nobody read and that no read
	// covers, so they are not lost writes either.
	Unseen       int
	Reads        int // Read calls
	DistinctRead int // distinct values read
}

// Report is the outcome of Check: a summary and the findings, sorted by
// kind, then position, then value.
type Report struct {
	Summary  Summary
	Findings []Finding
}

// perKind is how many findings of one kind String prints.
const perKind = 20

// String describes the report: the summary and, for each kind found, the
// number of findings and the first few of them.
func (r Report) String() string {
	var b strings.Builder
	s := r.Summary
	verdict := "clean"
	switch len(r.Findings) {
	case 0:
	case 1:
		verdict = "1 finding"
	default:
		verdict = fmt.Sprintf("%d findings", len(r.Findings))
	}
	fmt.Fprintf(&b, "checker: %s; %d sent (%d acknowledged, %d failed, %d indeterminate of which %d read), %d acknowledged unseen, %d reads of %d distinct values",
		verdict, s.Sent, s.Acked, s.Failed, s.Indeterminate, s.IndeterminateRead, s.Unseen, s.Reads, s.DistinctRead)
	for i := 0; i < len(r.Findings); {
		k := r.Findings[i].Kind
		j := i
		for j < len(r.Findings) && r.Findings[j].Kind == k {
			j++
		}
		fmt.Fprintf(&b, "\n%s: %d", k, j-i)
		for _, f := range r.Findings[i:min(j, i+perKind)] {
			b.WriteString("\n  ")
			b.WriteString(f.String())
		}
		if j-i > perKind {
			fmt.Fprintf(&b, "\n  … and %d more", j-i-perKind)
		}
		i = j
	}
	return b.String()
}

// Err returns nil for a report without findings, and otherwise an error
// whose text is String.
func (r Report) Err() error {
	if len(r.Findings) == 0 {
		return nil
	}
	return errors.New(r.String())
}

// FailOn reports the findings, if any, through t.Errorf; t is typically a
// *testing.T. It returns whether there were findings.
func (r Report) FailOn(t interface{ Errorf(string, ...any) }) bool {
	if len(r.Findings) == 0 {
		return false
	}
	if h, ok := t.(interface{ Helper() }); ok {
		h.Helper()
	}
	t.Errorf("%s", r)
	return true
}

// rd is one read, with its partition and value interned and its index in
// snapshot.reads.
type rd struct {
	p, v int32
	off  int64
	ev   int32
}

// part is one topic-partition met in the history.
type part struct {
	topic     int32
	partition int32
	lo, hi    int   // its distinct read offsets are known[lo:hi]
	endSeq    int64 // seq of its last ReadToEnd, 0 for none
	endAt     time.Duration
}

// val is one value met in the history.
type val struct {
	send, out int32 // indexes in snapshot.sends and .outcomes, -1 for none
	lo, hi    int32 // its reads are byVal[lo:hi]
	invalid   bool
}

// run holds the working state of one Check.
type run struct {
	s       snapshot
	parts   []part
	partIdx map[int64]int32
	vals    []val
	valIdx  map[string]int32
	byPos   []rd // reads by partition, offset, value, event
	byVal   []rd // reads by value, partition, offset, event
	known   []int64
	found   []Finding
	sum     Summary
}

// Check judges h and reports what it found. It may be called while events
// are still being recorded; it judges those recorded before the call.
func Check(h *History) Report {
	c := &run{s: h.snapshot(), partIdx: map[int64]int32{}}
	c.collectValues()
	c.collectReads()
	c.judgeValues()
	c.judgeOrder()
	c.judgeSkips()
	slices.SortFunc(c.found, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition),
			cmp.Compare(a.Offset, b.Offset), cmp.Compare(a.Value, b.Value), cmp.Compare(a.Reader, b.Reader))
	})
	return Report{Summary: c.sum, Findings: c.found}
}

func (c *run) part(topic, partition int32) int32 {
	key := int64(topic)<<32 | int64(uint32(partition))
	if p, ok := c.partIdx[key]; ok {
		return p
	}
	p := int32(len(c.parts))
	c.parts = append(c.parts, part{topic: topic, partition: partition})
	c.partIdx[key] = p
	return p
}

func (c *run) value(v string) (int32, bool) {
	if i, ok := c.valIdx[v]; ok {
		return i, true
	}
	i := int32(len(c.vals))
	c.vals = append(c.vals, val{send: -1, out: -1})
	c.valIdx[v] = i
	return i, false
}

func (c *run) add(f Finding) { c.found = append(c.found, f) }

// invalid reports a value whose recording broke the rules, once.
func (c *run) invalid(i int32, value, why string) {
	if c.vals[i].invalid {
		return
	}
	c.vals[i].invalid = true
	f := Finding{Kind: InvalidHistory, Offset: -1, Value: value, Detail: why}
	if s := c.vals[i].send; s >= 0 {
		f.Topic = c.s.names[c.s.sends[s].topic]
	}
	c.add(f)
}

// collectValues matches sends and outcomes by value.
func (c *run) collectValues() {
	c.valIdx = make(map[string]int32, len(c.s.sends))
	c.vals = make([]val, 0, len(c.s.sends))
	for i, e := range c.s.sends {
		v, seen := c.value(e.value)
		if seen {
			c.invalid(v, e.value, "sent more than once; values must be unique")
			continue
		}
		c.vals[v].send = int32(i)
	}
	c.sum.Sent = len(c.s.sends)
	for i, e := range c.s.outcomes {
		v, seen := c.value(e.value)
		switch {
		case !seen:
			c.invalid(v, e.value, "has an outcome but was never sent")
		case c.vals[v].out >= 0:
			c.invalid(v, e.value, "has more than one outcome")
		default:
			c.vals[v].out = int32(i)
		}
	}
}

// collectReads sorts the reads both ways, finds the distinct offsets read
// in each partition and reports positions read with different values.
func (c *run) collectReads() {
	for i, e := range c.s.reads {
		if e.seek {
			continue
		}
		v, _ := c.value(e.value)
		c.byPos = append(c.byPos, rd{p: c.part(e.topic, e.partition), v: v, off: e.offset, ev: int32(i)})
	}
	c.sum.Reads = len(c.byPos)
	for _, e := range c.s.ends {
		p := &c.parts[c.part(e.topic, e.partition)]
		p.endSeq, p.endAt = e.seq, e.at
	}
	c.byVal = slices.Clone(c.byPos)
	slices.SortFunc(c.byPos, func(a, b rd) int {
		return cmp.Or(cmp.Compare(a.p, b.p), cmp.Compare(a.off, b.off), cmp.Compare(a.v, b.v), cmp.Compare(a.ev, b.ev))
	})
	slices.SortFunc(c.byVal, func(a, b rd) int {
		return cmp.Or(cmp.Compare(a.v, b.v), cmp.Compare(a.p, b.p), cmp.Compare(a.off, b.off), cmp.Compare(a.ev, b.ev))
	})

	for i := 0; i < len(c.byPos); {
		j := i
		for j < len(c.byPos) && samePos(c.byPos[j], c.byPos[i]) {
			j++
		}
		p := &c.parts[c.byPos[i].p]
		if p.hi == 0 {
			p.lo = len(c.known)
		}
		c.known = append(c.known, c.byPos[i].off)
		p.hi = len(c.known)
		if c.byPos[j-1].v != c.byPos[i].v {
			c.add(Finding{Kind: DisagreeingOffsets, Topic: c.s.names[p.topic], Partition: p.partition, Offset: c.byPos[i].off,
				Detail: "readers read different values here: " + c.describeAt(c.byPos[i:j])})
		}
		i = j
	}

	for i := 0; i < len(c.byVal); {
		j := i
		for j < len(c.byVal) && c.byVal[j].v == c.byVal[i].v {
			j++
		}
		c.vals[c.byVal[i].v].lo, c.vals[c.byVal[i].v].hi = int32(i), int32(j)
		c.sum.DistinctRead++
		i = j
	}
}

func samePos(a, b rd) bool { return a.p == b.p && a.off == b.off }

// judgeValues applies the rules about single values: lost, duplicate, read
// away from the acknowledged position, phantom, failed but read.
func (c *run) judgeValues() {
	for vi := range c.vals {
		v := &c.vals[vi]
		if v.invalid {
			continue
		}
		reads := c.byVal[v.lo:v.hi]
		if v.send < 0 {
			first := c.parts[reads[0].p]
			c.add(Finding{Kind: Phantom, Topic: c.s.names[first.topic], Partition: first.partition, Offset: reads[0].off,
				Value: c.s.reads[reads[0].ev].value, Detail: "read but never sent: " + c.describeValue(reads)})
			continue
		}
		send := c.s.sends[v.send]
		kind := indeterminate
		var out outcomeEvent
		if v.out >= 0 {
			out = c.s.outcomes[v.out]
			kind = out.kind
		}
		switch kind {
		case acked:
			c.sum.Acked++
			c.judgeAcked(send, out, reads)
		case failed:
			c.sum.Failed++
			if len(reads) > 0 {
				first := c.parts[reads[0].p]
				c.add(Finding{Kind: FailedRead, Topic: c.s.names[first.topic], Partition: first.partition, Offset: reads[0].off,
					Value: send.value, Detail: fmt.Sprintf("failed definitely at %s (%s), yet read: %s", stamp(out.at), out.err, c.describeValue(reads))})
			}
		default:
			c.sum.Indeterminate++
			if len(reads) > 0 {
				c.sum.IndeterminateRead++
			}
		}
		if positions(reads) > 1 && !c.s.loose[send.producer] {
			first := c.parts[reads[0].p]
			c.add(Finding{Kind: Duplicate, Topic: c.s.names[first.topic], Partition: first.partition, Offset: reads[0].off,
				Value: send.value, Detail: fmt.Sprintf("read at %d positions: %s", positions(reads), c.describeValue(reads))})
		}
	}
}

// positions counts the distinct positions among one value's reads, which
// are sorted by position.
func positions(reads []rd) int {
	n := 0
	for i := range reads {
		if i == 0 || !samePos(reads[i], reads[i-1]) {
			n++
		}
	}
	return n
}

func (c *run) judgeAcked(send sendEvent, out outcomeEvent, reads []rd) {
	p := c.part(send.topic, out.partition)
	pt := c.parts[p]
	f := Finding{Topic: c.s.names[send.topic], Partition: out.partition, Offset: out.offset, Value: send.value}
	ack := func() string {
		return fmt.Sprintf("sent by %s%s at %s, acknowledged at offset %d at %s",
			c.s.names[send.producer], keyText(send.key), stamp(send.at), out.offset, stamp(out.at))
	}
	if len(reads) > 0 {
		if !slices.ContainsFunc(reads, func(r rd) bool { return r.p == p && r.off == out.offset }) {
			f.Kind = DisagreeingOffsets
			f.Detail = ack() + ", but read elsewhere: " + c.describeValue(reads) + c.heldAt(p, out.offset)
			c.add(f)
		}
		return
	}
	var why string
	switch {
	case pt.hi > pt.lo && c.known[pt.hi-1] >= out.offset:
		last := c.byPos[c.posIndex(p, c.known[pt.hi-1])]
		why = fmt.Sprintf("; %s read the partition up to offset %d", c.s.names[c.s.reads[last.ev].reader], last.off)
	case pt.endSeq > out.seq:
		why = fmt.Sprintf("; the partition was read to its end at %s", stamp(pt.endAt))
	default:
		c.sum.Unseen++
		return
	}
	f.Kind = Lost
	f.Detail = ack() + ", never read" + why + c.heldAt(p, out.offset)
	c.add(f)
}

func keyText(key string) string {
	if key == "" {
		return ""
	}
	return fmt.Sprintf(" with key %q", key)
}

// posIndex returns the index in byPos of the first read at (p, off), or
// len(byPos) if there is none.
func (c *run) posIndex(p int32, off int64) int {
	i, ok := slices.BinarySearchFunc(c.byPos, rd{p: p, off: off}, func(a, b rd) int {
		return cmp.Or(cmp.Compare(a.p, b.p), cmp.Compare(a.off, b.off))
	})
	if !ok {
		return len(c.byPos)
	}
	return i
}

// heldAt says what readers read at (p, off), if anything.
func (c *run) heldAt(p int32, off int64) string {
	i := c.posIndex(p, off)
	j := i
	for j < len(c.byPos) && c.byPos[j].p == p && c.byPos[j].off == off {
		j++
	}
	if i == j {
		return ""
	}
	return "; offset " + fmt.Sprint(off) + " was read holding " + c.describeAt(c.byPos[i:j])
}

// judgeOrder compares send order with acknowledged offsets, per producer
// and partition.
func (c *run) judgeOrder() {
	type acked1 struct {
		producer, p int32
		seq, off    int64
		send        int32
	}
	var acks []acked1
	for _, v := range c.vals {
		if v.invalid || v.send < 0 || v.out < 0 || c.s.outcomes[v.out].kind != acked {
			continue
		}
		s, o := c.s.sends[v.send], c.s.outcomes[v.out]
		if c.s.loose[s.producer] {
			continue
		}
		acks = append(acks, acked1{producer: s.producer, p: c.part(s.topic, o.partition), seq: s.seq, off: o.offset, send: v.send})
	}
	slices.SortFunc(acks, func(a, b acked1) int {
		return cmp.Or(cmp.Compare(a.producer, b.producer), cmp.Compare(a.p, b.p), cmp.Compare(a.seq, b.seq))
	})
	for i := 1; i < len(acks); i++ {
		a, b := acks[i-1], acks[i]
		if a.producer != b.producer || a.p != b.p || b.off > a.off {
			continue
		}
		pt := c.parts[b.p]
		sa, sb := c.s.sends[a.send], c.s.sends[b.send]
		c.add(Finding{Kind: OutOfOrder, Topic: c.s.names[pt.topic], Partition: pt.partition, Offset: b.off, Value: sb.value,
			Detail: fmt.Sprintf("sent by %s at %s after %q (sent at %s, acknowledged at offset %d), but acknowledged at offset %d",
				c.s.names[sb.producer], stamp(sb.at), sa.value, stamp(sa.at), a.off, b.off)})
	}
}

// judgeSkips walks each reader's reads of each partition in the order they
// were recorded and reports jumps over offsets known to hold data.
func (c *run) judgeSkips() {
	type step struct {
		reader, p int32
		ev        int32
	}
	steps := make([]step, len(c.s.reads))
	for i, e := range c.s.reads {
		steps[i] = step{reader: e.reader, p: c.part(e.topic, e.partition), ev: int32(i)}
	}
	slices.SortFunc(steps, func(a, b step) int {
		return cmp.Or(cmp.Compare(a.reader, b.reader), cmp.Compare(a.p, b.p), cmp.Compare(a.ev, b.ev))
	})
	next, seeked := UnknownOffset, false
	for i, st := range steps {
		if i == 0 || st.reader != steps[i-1].reader || st.p != steps[i-1].p {
			next, seeked = UnknownOffset, false
		}
		e := c.s.reads[st.ev]
		if e.seek {
			next, seeked = e.offset, true
			continue
		}
		if next >= 0 && e.offset > next {
			pt := c.parts[st.p]
			known := c.known[pt.lo:pt.hi]
			lo, _ := slices.BinarySearch(known, next)
			hi, _ := slices.BinarySearch(known, e.offset)
			if hi > lo {
				from := fmt.Sprintf("after offset %d", next-1)
				if seeked {
					from = fmt.Sprintf("after a seek to offset %d", next)
				}
				c.add(Finding{Kind: SkippedOffsets, Topic: c.s.names[pt.topic], Partition: pt.partition, Offset: known[lo],
					Reader: c.s.names[e.reader],
					Detail: fmt.Sprintf("%s, read offset %d next at %s, skipping offsets that reads show hold data (%d): %s",
						from, e.offset, stamp(e.at), hi-lo, listOffsets(known[lo:hi]))})
			}
		}
		next, seeked = e.offset+1, false
	}
}

// listed is how many items a detail lists before it summarises.
const listed = 8

func listOffsets(offs []int64) string {
	parts := make([]string, 0, min(len(offs), listed)+1)
	for _, o := range offs[:min(len(offs), listed)] {
		parts = append(parts, fmt.Sprint(o))
	}
	if len(offs) > listed {
		parts = append(parts, fmt.Sprintf("… (%d more)", len(offs)-listed))
	}
	return strings.Join(parts, ", ")
}

// describeAt lists the values read at one position (reads sorted by value)
// with the readers that read each.
func (c *run) describeAt(reads []rd) string {
	var parts []string
	for i := 0; i < len(reads); {
		j := i
		for j < len(reads) && reads[j].v == reads[i].v {
			j++
		}
		parts = append(parts, fmt.Sprintf("%q by %s", c.s.reads[reads[i].ev].value, c.readers(reads[i:j])))
		i = j
	}
	return strings.Join(parts, "; ")
}

// describeValue lists the positions one value was read at (reads sorted by
// position) with the readers that read it there.
func (c *run) describeValue(reads []rd) string {
	var parts []string
	for i := 0; i < len(reads); {
		j := i
		for j < len(reads) && samePos(reads[j], reads[i]) {
			j++
		}
		if len(parts) == listed {
			parts = append(parts, "…")
			break
		}
		pt := c.parts[reads[i].p]
		parts = append(parts, fmt.Sprintf("%s/%d@%d by %s", c.s.names[pt.topic], pt.partition, reads[i].off, c.readers(reads[i:j])))
		i = j
	}
	return strings.Join(parts, ", ")
}

// readers names the distinct readers of reads, with the time of each one's
// first read there.
func (c *run) readers(reads []rd) string {
	var names []string
	seen := map[int32]bool{}
	for _, r := range reads {
		e := c.s.reads[r.ev]
		if seen[e.reader] {
			continue
		}
		seen[e.reader] = true
		if len(names) == listed {
			names = append(names, "…")
			break
		}
		names = append(names, fmt.Sprintf("%s (%s)", c.s.names[e.reader], stamp(e.at)))
	}
	return strings.Join(names, ", ")
}

// stamp formats a time since History began.
func stamp(d time.Duration) string {
	return "t+" + d.Round(time.Millisecond).String()
}
