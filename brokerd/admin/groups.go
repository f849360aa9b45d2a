package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// groupsOpts is the parsed command line of `brokerd consumer-groups`.
type groupsOpts struct {
	*flagSet
	list, describe, reset, del bool
	groups                     listFlag
	allGroups                  bool
	members, state, offsets    bool
	topics                     listFlag
	allTopics                  bool
	toEarliest, toLatest       bool
	toOffset, shiftBy          int64
	execute, dryRun            bool
	timeoutMs                  int
}

func runGroups(e *env, args []string) error {
	o := &groupsOpts{}
	o.flagSet = newFlagSet(e, "list, describe, reset and delete consumer groups (a Kafka client; works against Apache Kafka too)",
		"--list [--state]",
		"--describe (--group GROUP... | --all-groups) [--offsets | --members | --state]",
		"--reset-offsets --group GROUP (--topic TOPIC[:P,P...]... | --all-topics) (--to-earliest | --to-latest | --to-offset N | --shift-by N) [--dry-run | --execute]",
		"--delete (--group GROUP... | --all-groups)",
	)
	fs := o.flagSet
	fs.BoolVar(&o.list, "list", false, "list the consumer groups")
	fs.BoolVar(&o.describe, "describe", false, "describe groups: per partition the committed offset, log end offset, lag and owning member (see --members, --state)")
	fs.BoolVar(&o.reset, "reset-offsets", false, "change a group's committed offsets; the group must have no active members")
	fs.BoolVar(&o.del, "delete", false, "delete groups that have no active members, with their committed offsets")
	fs.Var(&o.groups, "group", "the consumer `GROUP` (repeatable for --describe and --delete)")
	fs.BoolVar(&o.allGroups, "all-groups", false, "with --describe or --delete: every group")
	fs.BoolVar(&o.offsets, "offsets", false, "with --describe: per partition offsets and lag (the default view)")
	fs.BoolVar(&o.members, "members", false, "with --describe: the members, their client ids, hosts and assigned partitions")
	fs.BoolVar(&o.state, "state", false, "with --describe: coordinator, assignment strategy, state and member count; with --list: add each group's state")
	fs.Var(&o.topics, "topic", "with --reset-offsets: `TOPIC[:P,P...]`, a topic with all or some of its partitions (repeatable)")
	fs.BoolVar(&o.allTopics, "all-topics", false, "with --reset-offsets: every topic the group has committed offsets for")
	fs.BoolVar(&o.toEarliest, "to-earliest", false, "reset to the log start offset")
	fs.BoolVar(&o.toLatest, "to-latest", false, "reset to the log end offset")
	fs.Int64Var(&o.toOffset, "to-offset", 0, "reset to `OFFSET` (kept within the log's start and end)")
	fs.Int64Var(&o.shiftBy, "shift-by", 0, "move the committed offsets by `N`, negative to go back (kept within the log)")
	fs.BoolVar(&o.execute, "execute", false, "with --reset-offsets: commit the new offsets")
	fs.BoolVar(&o.dryRun, "dry-run", false, "with --reset-offsets: only show the new offsets (what happens without --execute)")
	fs.IntVar(&o.timeoutMs, "timeout", 30000, "give up after this many `milliseconds`")
	if err := fs.parse(e, args); err != nil {
		return err
	}
	if err := o.check(); err != nil {
		return err
	}
	adm, ctx, done, err := newAdmin(e, fs, "brokerd-consumer-groups", o.timeoutMs)
	if err != nil {
		return err
	}
	defer done()

	switch {
	case o.list:
		return o.runList(ctx, e, adm)
	case o.describe:
		return o.runDescribe(ctx, e, adm)
	case o.reset:
		return o.runReset(ctx, e, adm)
	default:
		return o.runDelete(ctx, e, adm)
	}
}

func (o *groupsOpts) check() error {
	count := func(bs ...bool) int {
		n := 0
		for _, b := range bs {
			if b {
				n++
			}
		}
		return n
	}
	if count(o.list, o.describe, o.reset, o.del) != 1 {
		return usagef("exactly one of --list, --describe, --reset-offsets, --delete is required")
	}
	if o.timeoutMs <= 0 {
		return usagef("--timeout must be positive")
	}
	if (o.describe || o.del) && len(o.groups) == 0 && !o.allGroups {
		return usagef("--group or --all-groups is required")
	}
	if o.allGroups && len(o.groups) > 0 {
		return usagef("--group and --all-groups cannot be used together")
	}
	if o.allGroups && !o.describe && !o.del {
		return usagef("--all-groups goes with --describe or --delete")
	}
	if o.list && len(o.groups) > 0 {
		return usagef("--group does not go with --list")
	}
	if count(o.offsets, o.members, o.state) > 1 {
		return usagef("choose one of --offsets, --members, --state")
	}
	if (o.offsets || o.members) && !o.describe {
		return usagef("--offsets and --members go with --describe")
	}
	if o.state && !o.describe && !o.list {
		return usagef("--state goes with --describe or --list")
	}
	resetOnly := o.given("topic") || o.allTopics || o.toEarliest || o.toLatest || o.given("to-offset") ||
		o.given("shift-by") || o.execute || o.dryRun
	if !o.reset {
		if resetOnly {
			return usagef("--topic, --all-topics, --to-*, --shift-by, --execute and --dry-run go with --reset-offsets")
		}
		return nil
	}
	if len(o.groups) != 1 {
		return usagef("--reset-offsets needs exactly one --group")
	}
	if count(len(o.topics) > 0, o.allTopics) != 1 {
		return usagef("--reset-offsets needs --topic or --all-topics")
	}
	if count(o.toEarliest, o.toLatest, o.given("to-offset"), o.given("shift-by")) != 1 {
		return usagef("--reset-offsets needs one of --to-earliest, --to-latest, --to-offset, --shift-by")
	}
	if o.execute && o.dryRun {
		return usagef("--execute and --dry-run cannot be used together")
	}
	if o.given("to-offset") && o.toOffset < 0 {
		return usagef("--to-offset must not be negative")
	}
	_, err := parseTopicPartitions(o.topics)
	return err
}

// topicScope is one --topic of --reset-offsets: a topic and either some
// partitions or (nil) all of them.
type topicScope struct {
	topic      string
	partitions []int32
}

func parseTopicPartitions(items []string) ([]topicScope, error) {
	var out []topicScope
	for _, it := range items {
		topic, parts, hasParts := strings.Cut(it, ":")
		if topic == "" {
			return nil, usagef("--topic %q names no topic", it)
		}
		ts := topicScope{topic: topic}
		if hasParts {
			for _, p := range strings.Split(parts, ",") {
				n, err := strconv.ParseInt(strings.TrimSpace(p), 10, 32)
				if err != nil || n < 0 {
					return nil, usagef("--topic %q: %q is not a partition number", it, p)
				}
				ts.partitions = append(ts.partitions, int32(n))
			}
		}
		out = append(out, ts)
	}
	return out, nil
}

// listedGroup is one element of the JSON answer of --list.
type listedGroup struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Coordinator  int32  `json:"coordinator"`
}

func (o *groupsOpts) listGroups(ctx context.Context, adm *kadm.Client) ([]listedGroup, error) {
	var ls kadm.ListedGroups
	err := retry(ctx, func() error {
		var err error
		ls, err = adm.ListGroups(ctx)
		return err
	})
	if err != nil {
		return nil, errorf("list groups: %w", err)
	}
	out := make([]listedGroup, 0, len(ls))
	for _, g := range ls.Sorted() {
		out = append(out, listedGroup{Group: g.Group, State: g.State, ProtocolType: g.ProtocolType, Coordinator: g.Coordinator})
	}
	return out, nil
}

func (o *groupsOpts) runList(ctx context.Context, e *env, adm *kadm.Client) error {
	groups, err := o.listGroups(ctx, adm)
	if err != nil {
		return err
	}
	if o.json() {
		return writeJSON(e.stdout, groups)
	}
	if !o.state {
		for _, g := range groups {
			fmt.Fprintln(e.stdout, g.Group)
		}
		return nil
	}
	tb := newTable(e.stdout, "GROUP", "STATE")
	for _, g := range groups {
		tb.row(g.Group, g.State)
	}
	return tb.flush()
}

// groupInfo is one element of the JSON answer of --describe.
type groupInfo struct {
	Group              string            `json:"group"`
	State              string            `json:"state"`
	ProtocolType       string            `json:"protocol_type"`
	AssignmentStrategy string            `json:"assignment_strategy"`
	Coordinator        coordinatorInfo   `json:"coordinator"`
	Members            []memberInfo      `json:"members"`
	Offsets            []partitionOffset `json:"offsets"`
}

// coordinatorInfo is the broker coordinating a group.
type coordinatorInfo struct {
	ID   int32  `json:"id"`
	Host string `json:"host"`
	Port int32  `json:"port"`
}

// memberInfo is one member of a described group.
type memberInfo struct {
	MemberID   string            `json:"member_id"`
	InstanceID *string           `json:"instance_id"`
	ClientID   string            `json:"client_id"`
	Host       string            `json:"host"`
	Assignment []topicPartitions `json:"assignment"`
}

// topicPartitions is a topic and some of its partitions.
type topicPartitions struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

// partitionOffset is one row of a group's offsets: a partition the group
// committed an offset for or has assigned to a member. Unknown numbers
// are null.
type partitionOffset struct {
	Topic         string `json:"topic"`
	Partition     int32  `json:"partition"`
	CurrentOffset *int64 `json:"current_offset"`
	LogEndOffset  *int64 `json:"log_end_offset"`
	Lag           *int64 `json:"lag"`
	MemberID      string `json:"member_id,omitempty"`
	Host          string `json:"host,omitempty"`
	ClientID      string `json:"client_id,omitempty"`
}

// describeGroup gathers what --describe shows of one group. A group the
// coordinator does not know (state Dead) is an error.
func describeGroup(ctx context.Context, adm *kadm.Client, name string) (*groupInfo, error) {
	dg, err := describeOne(ctx, adm, name)
	if err != nil {
		return nil, err
	}
	if dg.Err != nil && !errors.Is(dg.Err, kerr.GroupIDNotFound) {
		return nil, errorf("describe group %q: %w", name, withMessage(dg.Err, dg.ErrMessage))
	}
	if dg.State == "Dead" || dg.Err != nil {
		return nil, errorf("consumer group %q does not exist", name)
	}
	g := &groupInfo{
		Group: name, State: dg.State, ProtocolType: dg.ProtocolType, AssignmentStrategy: dg.Protocol,
		Coordinator: coordinatorInfo{ID: dg.Coordinator.NodeID, Host: dg.Coordinator.Host, Port: dg.Coordinator.Port},
		Members:     []memberInfo{}, Offsets: []partitionOffset{},
	}
	type tp struct {
		t string
		p int32
	}
	rows := map[tp]*partitionOffset{}
	row := func(t string, p int32) *partitionOffset {
		k := tp{t, p}
		if rows[k] == nil {
			rows[k] = &partitionOffset{Topic: t, Partition: p}
		}
		return rows[k]
	}
	var idle []partitionOffset // members without partitions
	for _, m := range dg.Members {
		mi := memberInfo{MemberID: m.MemberID, InstanceID: m.InstanceID, ClientID: m.ClientID, Host: m.ClientHost, Assignment: []topicPartitions{}}
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, at := range a.Topics {
				parts := append([]int32(nil), at.Partitions...)
				sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
				mi.Assignment = append(mi.Assignment, topicPartitions{Topic: at.Topic, Partitions: parts})
				for _, p := range parts {
					r := row(at.Topic, p)
					r.MemberID, r.Host, r.ClientID = m.MemberID, m.ClientHost, m.ClientID
				}
			}
			sort.Slice(mi.Assignment, func(i, j int) bool { return mi.Assignment[i].Topic < mi.Assignment[j].Topic })
		}
		if len(mi.Assignment) == 0 {
			idle = append(idle, partitionOffset{Topic: "-", Partition: -1, MemberID: m.MemberID, Host: m.ClientHost, ClientID: m.ClientID})
		}
		g.Members = append(g.Members, mi)
	}

	committed, err := fetchOffsets(ctx, adm, name)
	if err != nil {
		return nil, err
	}
	committed.Each(func(c kadm.OffsetResponse) {
		if c.Err != nil || c.At < 0 {
			return
		}
		at := c.At
		row(c.Topic, c.Partition).CurrentOffset = &at
	})

	topicSet := map[string]bool{}
	for k := range rows {
		topicSet[k.t] = true
	}
	if len(topicSet) > 0 {
		ends, err := adm.ListEndOffsets(ctx, sortedKeys(topicSet)...)
		if err != nil && len(ends) == 0 {
			return nil, errorf("list end offsets: %w", err)
		}
		ends.Each(func(l kadm.ListedOffset) {
			r, ok := rows[tp{l.Topic, l.Partition}]
			if !ok || l.Err != nil {
				return
			}
			end := l.Offset
			r.LogEndOffset = &end
			if r.CurrentOffset != nil {
				lag := max(end-*r.CurrentOffset, 0)
				r.Lag = &lag
			}
		})
	}
	for _, r := range rows {
		g.Offsets = append(g.Offsets, *r)
	}
	sort.Slice(g.Offsets, func(i, j int) bool {
		a, b := g.Offsets[i], g.Offsets[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	g.Offsets = append(g.Offsets, idle...)
	return g, nil
}

func (o *groupsOpts) groupNames(ctx context.Context, adm *kadm.Client) ([]string, error) {
	if !o.allGroups {
		return o.groups, nil
	}
	ls, err := o.listGroups(ctx, adm)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ls))
	for i, g := range ls {
		names[i] = g.Group
	}
	return names, nil
}

func (o *groupsOpts) runDescribe(ctx context.Context, e *env, adm *kadm.Client) error {
	names, err := o.groupNames(ctx, adm)
	if err != nil {
		return err
	}
	infos := make([]*groupInfo, 0, len(names))
	for _, n := range names {
		g, err := describeGroup(ctx, adm, n)
		if err != nil {
			return err
		}
		infos = append(infos, g)
	}
	if o.json() {
		return writeJSON(e.stdout, infos)
	}
	for i, g := range infos {
		if i > 0 {
			fmt.Fprintln(e.stdout)
		}
		var err error
		switch {
		case o.members:
			err = printMembers(e, g)
		case o.state:
			err = printState(e, g)
		default:
			err = printOffsets(e, g)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func optInt(v *int64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatInt(*v, 10)
}

// groupNotes prints Kafka's remarks on an idle or rebalancing group.
func groupNotes(e *env, g *groupInfo) {
	switch {
	case g.State == "PreparingRebalance" || g.State == "CompletingRebalance":
		fmt.Fprintf(e.stdout, "Warning: consumer group '%s' is rebalancing.\n\n", g.Group)
	case len(g.Members) == 0:
		fmt.Fprintf(e.stdout, "Consumer group '%s' has no active members.\n\n", g.Group)
	}
}

func printOffsets(e *env, g *groupInfo) error {
	groupNotes(e, g)
	tb := newTable(e.stdout, "GROUP", "TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID")
	for _, r := range g.Offsets {
		part := "-"
		if r.Partition >= 0 {
			part = strconv.Itoa(int(r.Partition))
		}
		tb.row(g.Group, r.Topic, part, optInt(r.CurrentOffset), optInt(r.LogEndOffset), optInt(r.Lag),
			dash(r.MemberID), dash(r.Host), dash(r.ClientID))
	}
	return tb.flush()
}

func printMembers(e *env, g *groupInfo) error {
	groupNotes(e, g)
	tb := newTable(e.stdout, "GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS", "ASSIGNMENT")
	for _, m := range g.Members {
		n := 0
		var parts []string
		for _, a := range m.Assignment {
			n += len(a.Partitions)
			parts = append(parts, a.Topic+"("+joinInt32s(a.Partitions)+")")
		}
		tb.row(g.Group, m.MemberID, dash(m.Host), dash(m.ClientID), strconv.Itoa(n), dash(strings.Join(parts, ",")))
	}
	return tb.flush()
}

func printState(e *env, g *groupInfo) error {
	tb := newTable(e.stdout, "GROUP", "COORDINATOR (ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS")
	coord := fmt.Sprintf("%s (%d)", net.JoinHostPort(g.Coordinator.Host, strconv.Itoa(int(g.Coordinator.Port))), g.Coordinator.ID)
	tb.row(g.Group, coord, dash(g.AssignmentStrategy), g.State, strconv.Itoa(len(g.Members)))
	return tb.flush()
}

// resetResult is the JSON answer of --reset-offsets.
type resetResult struct {
	Group      string           `json:"group"`
	Executed   bool             `json:"executed"`
	Partitions []resetPartition `json:"partitions"`
}

// resetPartition is one partition's old and new committed offset.
type resetPartition struct {
	Topic          string `json:"topic"`
	Partition      int32  `json:"partition"`
	PreviousOffset *int64 `json:"previous_offset"`
	NewOffset      int64  `json:"new_offset"`
}

func (o *groupsOpts) runReset(ctx context.Context, e *env, adm *kadm.Client) error {
	group := o.groups[0]
	dg, err := describeOne(ctx, adm, group)
	if err != nil {
		return err
	}
	if errors.Is(dg.Err, kerr.GroupIDNotFound) {
		dg.Err, dg.State = nil, "Dead"
	}
	if dg.Err != nil {
		return errorf("describe group %q: %w", group, withMessage(dg.Err, dg.ErrMessage))
	}
	if dg.State != "Empty" && dg.State != "Dead" {
		return errorf("offsets can only be reset if group %q is inactive, but its state is %s", group, dg.State)
	}

	committed, err := fetchOffsets(ctx, adm, group)
	if err != nil {
		return err
	}
	current := map[string]map[int32]int64{}
	committed.Each(func(c kadm.OffsetResponse) {
		if c.Err == nil && c.At >= 0 {
			if current[c.Topic] == nil {
				current[c.Topic] = map[int32]int64{}
			}
			current[c.Topic][c.Partition] = c.At
		}
	})

	// The partitions in scope.
	var scope []topicScope
	if o.allTopics {
		for _, t := range sortedKeys(current) {
			ts := topicScope{topic: t}
			for p := range current[t] {
				ts.partitions = append(ts.partitions, p)
			}
			scope = append(scope, ts)
		}
	} else {
		scope, _ = parseTopicPartitions(o.topics)
	}
	var topics []string
	for _, ts := range scope {
		topics = append(topics, ts.topic)
	}
	if len(topics) == 0 {
		return errorf("group %q has no committed offsets to reset", group)
	}
	meta, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return errorf("describe topics: %w", err)
	}
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil && len(starts) == 0 {
		return errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil && len(ends) == 0 {
		return errorf("list end offsets: %w", err)
	}

	res := resetResult{Group: group, Partitions: []resetPartition{}}
	commit := kadm.Offsets{}
	seen := map[string]bool{}
	for _, ts := range scope {
		td, ok := meta[ts.topic]
		if !ok || td.Err != nil {
			return errorf("topic %q does not exist", ts.topic)
		}
		parts := ts.partitions
		if parts == nil {
			parts = td.Partitions.Numbers()
		}
		sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
		for _, p := range parts {
			key := ts.topic + "\x00" + strconv.Itoa(int(p))
			if seen[key] {
				continue
			}
			seen[key] = true
			if _, ok := td.Partitions[p]; !ok {
				return errorf("topic %q has no partition %d", ts.topic, p)
			}
			lo, lerr := offsetAt(starts, ts.topic, p)
			hi, herr := offsetAt(ends, ts.topic, p)
			if err := errors.Join(lerr, herr); err != nil {
				return err
			}
			rp := resetPartition{Topic: ts.topic, Partition: p}
			if c, ok := current[ts.topic][p]; ok {
				rp.PreviousOffset = &c
			}
			switch {
			case o.toEarliest:
				rp.NewOffset = lo
			case o.toLatest:
				rp.NewOffset = hi
			case o.given("to-offset"):
				rp.NewOffset = min(max(o.toOffset, lo), hi)
			default: // --shift-by
				if rp.PreviousOffset == nil {
					return errorf("group %q has no committed offset for %s partition %d to shift", group, ts.topic, p)
				}
				rp.NewOffset = min(max(*rp.PreviousOffset+o.shiftBy, lo), hi)
			}
			res.Partitions = append(res.Partitions, rp)
			commit.Add(kadm.Offset{Topic: ts.topic, Partition: p, At: rp.NewOffset, LeaderEpoch: -1})
		}
	}

	if o.execute {
		err := retry(ctx, func() error {
			resps, err := adm.CommitOffsets(ctx, group, commit)
			if err != nil {
				return err
			}
			return resps.Error()
		})
		if err != nil {
			return errorf("commit offsets of group %q: %w", group, err)
		}
		res.Executed = true
	} else if !o.dryRun {
		fmt.Fprintf(e.stderr, "%s: WARN: no --execute, so this is a dry run and nothing was changed (add --dry-run to say so)\n", e.name)
	}
	if o.json() {
		return writeJSON(e.stdout, res)
	}
	tb := newTable(e.stdout, "GROUP", "TOPIC", "PARTITION", "NEW-OFFSET")
	for _, p := range res.Partitions {
		tb.row(group, p.Topic, strconv.Itoa(int(p.Partition)), strconv.FormatInt(p.NewOffset, 10))
	}
	return tb.flush()
}

// offsetAt looks one partition up in a ListOffsets answer.
func offsetAt(l kadm.ListedOffsets, topic string, p int32) (int64, error) {
	o, ok := l.Lookup(topic, p)
	switch {
	case !ok:
		return 0, errorf("no offsets listed for %s partition %d", topic, p)
	case o.Err != nil:
		return 0, errorf("list offsets of %s partition %d: %w", topic, p, o.Err)
	}
	return o.Offset, nil
}

// deletedGroup is one element of the JSON answer of --delete.
type deletedGroup struct {
	Group   string `json:"group"`
	Deleted bool   `json:"deleted"`
	Error   string `json:"error,omitempty"`
}

func (o *groupsOpts) runDelete(ctx context.Context, e *env, adm *kadm.Client) error {
	names, err := o.groupNames(ctx, adm)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		return errorf("there are no groups to delete")
	}
	resps, err := deleteGroups(ctx, adm, names)
	if err != nil {
		return err
	}
	out := make([]deletedGroup, 0, len(names))
	var failed []string
	for _, n := range names {
		d := deletedGroup{Group: n, Deleted: true}
		r, ok := resps[n]
		var gerr error
		switch {
		case !ok:
			gerr = errorf("the broker's answer does not mention the group")
		case r.Err != nil:
			gerr = withMessage(r.Err, r.ErrMessage)
		}
		if gerr != nil {
			d.Deleted, d.Error = false, oneLine(gerr)
			failed = append(failed, fmt.Sprintf("group %q: %s", n, d.Error))
		}
		out = append(out, d)
	}
	if o.json() {
		if err := writeJSON(e.stdout, out); err != nil {
			return err
		}
	} else {
		var ok []string
		for _, d := range out {
			if d.Deleted {
				ok = append(ok, "'"+d.Group+"'")
			}
		}
		if len(ok) > 0 {
			fmt.Fprintf(e.stdout, "Deletion of requested consumer groups (%s) was successful.\n", strings.Join(ok, ", "))
		}
	}
	if len(failed) > 0 {
		return errorf("could not delete %s", strings.Join(failed, "; "))
	}
	return nil
}

// describeOne describes one group, retrying while its coordinator is
// loading or moving.
func describeOne(ctx context.Context, adm *kadm.Client, name string) (kadm.DescribedGroup, error) {
	var dg kadm.DescribedGroup
	err := retry(ctx, func() error {
		described, err := adm.DescribeGroups(ctx, name)
		if err != nil {
			return err
		}
		var ok bool
		if dg, ok = described[name]; !ok {
			return errorf("the broker's answer does not mention the group")
		}
		if retriable(dg.Err) {
			return withMessage(dg.Err, dg.ErrMessage)
		}
		return nil
	})
	if err != nil {
		return dg, errorf("describe group %q: %w", name, err)
	}
	return dg, nil
}

// fetchOffsets fetches a group's committed offsets, retrying while its
// coordinator is loading or moving.
func fetchOffsets(ctx context.Context, adm *kadm.Client, group string) (kadm.OffsetResponses, error) {
	var out kadm.OffsetResponses
	err := retry(ctx, func() error {
		var err error
		out, err = adm.FetchOffsets(ctx, group)
		return err
	})
	if err != nil {
		return nil, errorf("fetch committed offsets of group %q: %w", group, err)
	}
	return out, nil
}

// deleteGroups deletes groups, asking again for those whose coordinator
// answered with a retriable error until ctx ends.
func deleteGroups(ctx context.Context, adm *kadm.Client, names []string) (kadm.DeleteGroupResponses, error) {
	out := kadm.DeleteGroupResponses{}
	pending := names
	err := retry(ctx, func() error {
		resps, err := adm.DeleteGroups(ctx, pending...)
		if err != nil {
			return err
		}
		var again []string
		var last error
		for _, n := range pending {
			r, ok := resps[n]
			if ok && retriable(r.Err) {
				again = append(again, n)
				last = r.Err
			}
			if ok {
				out[n] = r
			}
		}
		pending = again
		return last
	})
	if err != nil && !retriable(err) {
		return nil, errorf("delete groups: %w", err)
	}
	return out, nil
}
