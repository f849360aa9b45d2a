package brokerd_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"logpipe/internal/await"
	"logpipe/internal/devstack"
)

// The ACL tests run every client as User:ANONYMOUS on a PLAINTEXT
// listener, a real Kafka configuration, against brokerd and against
// Apache Kafka configured alike (StandardAuthorizer, the same ACLs). Each
// system runs twice: first with User:ANONYMOUS a super user, where every
// request is allowed, then restarted without, where the ACLs decide.
// Throughout, User:ANONYMOUS holds ALTER on the cluster, so that the test
// can change ACLs between cases; ALTER implies DESCRIBE on the cluster and
// nothing else the cases use.

const (
	aclTopic = "acl-t" // every topic case uses it; "acl-" is its prefix
	aclGroup = "acl-g" // every group case uses it
	anon     = "User:ANONYMOUS"
	// kafkaBroker is the principal of Kafka's own inter-broker and
	// controller connections, over SASL/PLAIN: its super user.
	kafkaBroker = "User:" + devstack.KafkaPlainUser
)

// binding is one ACL of a case, for User:ANONYMOUS from any host.
type binding struct {
	typ     kmsg.ACLResourceType
	name    string
	pattern kmsg.ACLResourcePatternType
	op      kmsg.ACLOperation
	perm    kmsg.ACLPermissionType
}

func allowB(typ kmsg.ACLResourceType, name string, op kmsg.ACLOperation) binding {
	return binding{typ, name, kmsg.ACLResourcePatternTypeLiteral, op, kmsg.ACLPermissionTypeAllow}
}

func denyB(typ kmsg.ACLResourceType, name string, op kmsg.ACLOperation) binding {
	return binding{typ, name, kmsg.ACLResourcePatternTypeLiteral, op, kmsg.ACLPermissionTypeDeny}
}

func prefixB(typ kmsg.ACLResourceType, name string, op kmsg.ACLOperation) binding {
	return binding{typ, name, kmsg.ACLResourcePatternTypePrefixed, op, kmsg.ACLPermissionTypeAllow}
}

const (
	tTopic      = kmsg.ACLResourceTypeTopic
	tGroup      = kmsg.ACLResourceTypeGroup
	tCluster    = kmsg.ACLResourceTypeCluster
	clusterName = "kafka-cluster"
)

// adminACL is what lets the test manage ACLs once User:ANONYMOUS is no
// longer a super user.
var adminACL = allowB(tCluster, clusterName, kmsg.ACLOperationAlter)

// aclTarget is brokerd or Kafka, one node, and a client of it.
type aclTarget struct {
	name string
	cl   *kgo.Client
	// phase is "super" or "acl"; cases name what they create after it.
	phase string
}

// req sends one request to the node and fails the test if it cannot.
func (a *aclTarget) req(t *testing.T, ctx context.Context, r kmsg.Request) kmsg.Response {
	t.Helper()
	resp, err := a.cl.SeedBrokers()[0].Request(ctx, r)
	if err != nil {
		t.Fatalf("%s: %s: %v", a.name, kmsg.NameForKey(r.Key()), err)
	}
	return resp
}

// setACLs makes the case's bindings, and adminACL, the only ACLs, and
// waits until the node describes exactly those (its authorizer has them).
func (a *aclTarget) setACLs(t *testing.T, ctx context.Context, bs []binding) {
	t.Helper()
	want := append([]binding{adminACL}, bs...)
	have := a.describeACLs(t, ctx)
	var stale []binding
	for _, b := range have {
		if !slices.Contains(want, b) {
			stale = append(stale, b)
		}
	}
	if len(stale) > 0 {
		del := kmsg.NewPtrDeleteACLsRequest()
		for _, b := range stale {
			f := kmsg.NewDeleteACLsRequestFilter()
			f.ResourceType, f.ResourceName, f.ResourcePatternType = b.typ, &b.name, b.pattern
			p, h := anon, "*"
			f.Principal, f.Host, f.Operation, f.PermissionType = &p, &h, b.op, b.perm
			del.Filters = append(del.Filters, f)
		}
		for _, r := range a.req(t, ctx, del).(*kmsg.DeleteACLsResponse).Results {
			if r.ErrorCode != 0 {
				t.Fatalf("%s: deleting ACLs: %v", a.name, kerr.ErrorForCode(r.ErrorCode))
			}
		}
	}
	create := kmsg.NewPtrCreateACLsRequest()
	for _, b := range want {
		if slices.Contains(have, b) {
			continue
		}
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.ResourcePatternType = b.typ, b.name, b.pattern
		c.Principal, c.Host, c.Operation, c.PermissionType = anon, "*", b.op, b.perm
		create.Creations = append(create.Creations, c)
	}
	if len(create.Creations) > 0 {
		for _, r := range a.req(t, ctx, create).(*kmsg.CreateACLsResponse).Results {
			if r.ErrorCode != 0 {
				t.Fatalf("%s: creating ACLs: %v", a.name, kerr.ErrorForCode(r.ErrorCode))
			}
		}
	}
	await.Eventually(t, a.name+" to describe the case's ACLs", func() error {
		got := a.describeACLs(t, ctx)
		if len(got) != len(want) || slices.ContainsFunc(want, func(b binding) bool { return !slices.Contains(got, b) }) {
			return await.NotYet(fmt.Sprint(got), fmt.Sprint(want))
		}
		return nil
	})
}

// describeACLs lists every ACL of User:ANONYMOUS.
func (a *aclTarget) describeACLs(t *testing.T, ctx context.Context) []binding {
	t.Helper()
	d := kmsg.NewPtrDescribeACLsRequest()
	d.ResourceType, d.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	d.Operation, d.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	resp := a.req(t, ctx, d).(*kmsg.DescribeACLsResponse)
	if resp.ErrorCode != 0 {
		t.Fatalf("%s: describing ACLs: %v", a.name, kerr.ErrorForCode(resp.ErrorCode))
	}
	var out []binding
	for _, r := range resp.Resources {
		for _, e := range r.ACLs {
			if e.Principal == anon && e.Host == "*" {
				out = append(out, binding{r.ResourceType, r.ResourceName, r.ResourcePatternType, e.Operation, e.PermissionType})
			}
		}
	}
	return out
}

// aclAPI is one request of the pipeline's clients, answered as a string
// of error codes.
type aclAPI struct {
	name string
	// ok is the answer when the request is allowed, denied when it is not.
	ok, denied string
	run        func(t *testing.T, ctx context.Context, a *aclTarget, caseName string) string
}

// aclCase is an API with the ACLs of one variant and whether they allow
// it once User:ANONYMOUS is no longer a super user.
type aclCase struct {
	api     *aclAPI
	variant string
	acls    []binding
	allowed bool
}

func code(c int16) string {
	if c == 0 {
		return "OK"
	}
	return kerr.ErrorForCode(c).(*kerr.Error).Message
}

var (
	produceAPI = &aclAPI{name: "Produce", ok: "OK", denied: "TOPIC_AUTHORIZATION_FAILED",
		run: func(t *testing.T, ctx context.Context, a *aclTarget, _ string) string {
			req := kmsg.NewPtrProduceRequest()
			req.Acks, req.TimeoutMillis = 1, 10000
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = aclTopic
			rp := kmsg.NewProduceRequestTopicPartition()
			rp.Records = oneBatch()
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			return code(a.req(t, ctx, req).(*kmsg.ProduceResponse).Topics[0].Partitions[0].ErrorCode)
		}}
	initProducerIDAPI = &aclAPI{name: "InitProducerId", ok: "OK", denied: "CLUSTER_AUTHORIZATION_FAILED",
		run: func(t *testing.T, ctx context.Context, a *aclTarget, _ string) string {
			req := kmsg.NewPtrInitProducerIDRequest()
			req.TransactionTimeoutMillis = 60000
			// Kafka answers COORDINATOR_LOAD_IN_PROGRESS until its
			// producer id manager has a block; clients retry it.
			var c int16
			for range 100 {
				if c = a.req(t, ctx, req).(*kmsg.InitProducerIDResponse).ErrorCode; c != kerr.CoordinatorLoadInProgress.Code {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			return code(c)
		}}
	fetchAPI = &aclAPI{name: "Fetch", ok: "OK", denied: "TOPIC_AUTHORIZATION_FAILED",
		run: func(t *testing.T, ctx context.Context, a *aclTarget, _ string) string {
			req := kmsg.NewPtrFetchRequest()
			req.ReplicaID, req.MaxWaitMillis, req.MaxBytes = -1, 10, 1<<20
			rt := kmsg.NewFetchRequestTopic()
			rt.Topic = aclTopic
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.PartitionMaxBytes, rp.CurrentLeaderEpoch = 1<<20, -1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			return code(a.req(t, ctx, req).(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode)
		}}
	listOffsetsAPI = &aclAPI{name: "ListOffsets", ok: "OK", denied: "TOPIC_AUTHORIZATION_FAILED",
		run: func(t *testing.T, ctx context.Context, a *aclTarget, _ string) string {
			req := kmsg.NewPtrListOffsetsRequest()
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = aclTopic
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Timestamp, rp.CurrentLeaderEpoch = -1, -1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			return code(a.req(t, ctx, req).(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0].ErrorCode)
		}}
	offsetForLeaderEpochAPI = &aclAPI{name: "OffsetForLeaderEpoch", ok: "OK", denied: "TOPIC_AUTHORIZATION_FAILED",
		run: func(t *testing.T, ctx context.Context, a *aclTarget, _ string) string {
			req := kmsg.NewPtrOffsetForLeaderEpochRequest()
			req.ReplicaID = -1
			rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
			rt.Topic = aclTopic
			rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
			rp.LeaderEpoch, rp.CurrentLeaderEpoch = 0, -1
			rt.Partitions = append(rt.Partitions, rp)
			req.Topics = append(req.Topics, rt)
			return code(a.req(t, ctx, req).(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0].ErrorCode)
		}}
	metadataAPI = &aclAPI{name: "Metadata", ok: "OK", denied: "TOPIC_AUTHORIZATION_FAILED",
		run: func(t *testing.T, ctx context.Context, a *aclTarget, _ string) string {
			return metadataCode(t, ctx, a, aclTopic)
		}}
	// metadataCreateAPI asks for a topic that does not exist, which the
	// brokers create (auto.create.topics.enable). Kafka answers the first
	// request UNKNOWN_TOPIC_OR_PARTITION while it creates the topic,
	// brokerd once it is created: the answer is "created" when later
	// requests find the topic.
	metadataCreateAPI = &aclAPI{name: "Metadata auto-create", ok: "created", denied: "TOPIC_AUTHORIZATION_FAILED",
		run: func(t *testing.T, ctx context.Context, a *aclTarget, caseName string) string {
			topic := "acl-new-" + caseName + "-" + a.phase
			first := metadataCode(t, ctx, a, topic)
			if first == "TOPIC_AUTHORIZATION_FAILED" {
				return first
			}
			last := first
			deadline := time.Now().Add(30 * time.Second)
			for last != "OK" && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
				last = metadataCode(t, ctx, a, topic)
			}
			if last != "OK" {
				return "not created: " + last
			}
			return "created"
		}}
	findCoordinatorAPI = &aclAPI{name: "FindCoordinator", ok: "OK", denied: "GROUP_AUTHORIZATION_FAILED",
		run: func(t *testing.T, ctx context.Context, a *aclTarget, _ string) string {
			req := kmsg.NewPtrFindCoordinatorRequest()
			req.CoordinatorKey = aclGroup
			req.CoordinatorKeys = []string{aclGroup}
			resp := a.req(t, ctx, req).(*kmsg.FindCoordinatorResponse)
			if len(resp.Coordinators) > 0 {
				return code(resp.Coordinators[0].ErrorCode)
			}
			return code(resp.ErrorCode)
		}}
	// groupAPI joins the group (twice: the first join gets a member id),
	// syncs, heartbeats and leaves, as a consumer does.
	groupAPI = &aclAPI{name: "JoinGroup/SyncGroup/Heartbeat",
		ok:     "join=MEMBER_ID_REQUIRED,OK sync=OK heartbeat=OK",
		denied: "join=GROUP_AUTHORIZATION_FAILED sync=GROUP_AUTHORIZATION_FAILED heartbeat=GROUP_AUTHORIZATION_FAILED",
		run: func(t *testing.T, ctx context.Context, a *aclTarget, _ string) string {
			join := kmsg.NewPtrJoinGroupRequest()
			join.Group, join.ProtocolType = aclGroup, "consumer"
			join.SessionTimeoutMillis, join.RebalanceTimeoutMillis = 10000, 10000
			p := kmsg.NewJoinGroupRequestProtocol()
			p.Name, p.Metadata = "range", (&kmsg.ConsumerMemberMetadata{Topics: []string{aclTopic}}).AppendTo(nil)
			join.Protocols = append(join.Protocols, p)
			first := a.req(t, ctx, join).(*kmsg.JoinGroupResponse)
			joins := []string{code(first.ErrorCode)}
			member, gen := first.MemberID, first.Generation
			if first.ErrorCode == kerr.MemberIDRequired.Code {
				join.MemberID = first.MemberID
				second := a.req(t, ctx, join).(*kmsg.JoinGroupResponse)
				joins = append(joins, code(second.ErrorCode))
				member, gen = second.MemberID, second.Generation
			}
			sync := kmsg.NewPtrSyncGroupRequest()
			sync.Group, sync.MemberID, sync.Generation = aclGroup, member, gen
			sync.ProtocolType, sync.Protocol = kmsg.StringPtr("consumer"), kmsg.StringPtr("range")
			sa := kmsg.NewSyncGroupRequestGroupAssignment()
			sa.MemberID, sa.MemberAssignment = member, (&kmsg.ConsumerMemberAssignment{}).AppendTo(nil)
			sync.GroupAssignment = append(sync.GroupAssignment, sa)
			syncCode := a.req(t, ctx, sync).(*kmsg.SyncGroupResponse).ErrorCode
			hb := kmsg.NewPtrHeartbeatRequest()
			hb.Group, hb.MemberID, hb.Generation = aclGroup, member, gen
			hbCode := a.req(t, ctx, hb).(*kmsg.HeartbeatResponse).ErrorCode
			if member != "" {
				leave := kmsg.NewPtrLeaveGroupRequest()
				leave.Group, leave.MemberID = aclGroup, member
				lm := kmsg.NewLeaveGroupRequestMember()
				lm.MemberID = member
				leave.Members = append(leave.Members, lm)
				a.req(t, ctx, leave)
			}
			return fmt.Sprintf("join=%s sync=%s heartbeat=%s", strings.Join(joins, ","), code(syncCode), code(hbCode))
		}}
	// offsetsAPI commits an offset outside any generation and fetches it
	// back.
	offsetsAPI = &aclAPI{name: "OffsetCommit/OffsetFetch", ok: "commit=OK fetch=OK"}
	// createTopicsAPI creates a topic named after the case and phase.
	createTopicsAPI = &aclAPI{name: "CreateTopics", ok: "OK", denied: "TOPIC_AUTHORIZATION_FAILED",
		run: func(t *testing.T, ctx context.Context, a *aclTarget, caseName string) string {
			req := kmsg.NewPtrCreateTopicsRequest()
			req.TimeoutMillis = 30000
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = createdName(caseName, a.phase), 1, 1
			req.Topics = append(req.Topics, rt)
			return code(a.req(t, ctx, req).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode)
		}}
)

func init() {
	offsetsAPI.run = func(t *testing.T, ctx context.Context, a *aclTarget, _ string) string {
		commit := kmsg.NewPtrOffsetCommitRequest()
		commit.Group, commit.Generation = aclGroup, -1
		ct := kmsg.NewOffsetCommitRequestTopic()
		ct.Topic = aclTopic
		cp := kmsg.NewOffsetCommitRequestTopicPartition()
		cp.Offset, cp.LeaderEpoch = 0, -1
		ct.Partitions = append(ct.Partitions, cp)
		commit.Topics = append(commit.Topics, ct)
		cresp := a.req(t, ctx, commit).(*kmsg.OffsetCommitResponse)
		fetch := kmsg.NewPtrOffsetFetchRequest()
		fetch.Group = aclGroup
		ft := kmsg.NewOffsetFetchRequestTopic()
		ft.Topic, ft.Partitions = aclTopic, []int32{0}
		fetch.Topics = append(fetch.Topics, ft)
		// v8 (Kafka 3.0) names groups in a list instead.
		fg := kmsg.NewOffsetFetchRequestGroup()
		fg.Group = aclGroup
		fgt := kmsg.NewOffsetFetchRequestGroupTopic()
		fgt.Topic, fgt.Partitions = aclTopic, []int32{0}
		fg.Topics = append(fg.Topics, fgt)
		fetch.Groups = append(fetch.Groups, fg)
		fresp := a.req(t, ctx, fetch).(*kmsg.OffsetFetchResponse)
		fetchCode := fresp.ErrorCode
		for _, g := range fresp.Groups {
			if fetchCode = g.ErrorCode; fetchCode == 0 && len(g.Topics) > 0 && len(g.Topics[0].Partitions) > 0 {
				fetchCode = g.Topics[0].Partitions[0].ErrorCode
			}
		}
		if fetchCode == 0 && len(fresp.Topics) > 0 && len(fresp.Topics[0].Partitions) > 0 {
			fetchCode = fresp.Topics[0].Partitions[0].ErrorCode
		}
		return fmt.Sprintf("commit=%s fetch=%s", code(cresp.Topics[0].Partitions[0].ErrorCode), code(fetchCode))
	}
}

func createdName(caseName, phase string) string { return "acl-c-" + caseName + "-" + phase }

func metadataCode(t *testing.T, ctx context.Context, a *aclTarget, topic string) string {
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = true
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp := a.req(t, ctx, req).(*kmsg.MetadataResponse)
	for _, mt := range resp.Topics {
		if mt.Topic != nil && *mt.Topic == topic {
			return code(mt.ErrorCode)
		}
	}
	return "missing"
}

// aclCases are the requests the pipeline makes, each under the ACLs that
// allow it, deny it with a DENY, leave it out, allow it by a prefix, and
// the like.
func aclCases() []aclCase {
	var cs []aclCase
	add := func(api *aclAPI, variant string, allowed bool, acls ...binding) {
		cs = append(cs, aclCase{api: api, variant: variant, acls: acls, allowed: allowed})
	}
	read, write, describe := kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationDescribe
	create, idem, all := kmsg.ACLOperationCreate, kmsg.ACLOperationIdempotentWrite, kmsg.ACLOperationAll

	add(produceAPI, "allowed", true, allowB(tTopic, aclTopic, write))
	add(produceAPI, "denied by DENY", false, allowB(tTopic, aclTopic, all), denyB(tTopic, aclTopic, write))
	add(produceAPI, "absent", false, allowB(tTopic, aclTopic, read))
	add(produceAPI, "prefixed", true, prefixB(tTopic, "acl-", write))
	add(produceAPI, "wildcard", true, allowB(tTopic, "*", write))

	add(initProducerIDAPI, "allowed", true, allowB(tCluster, clusterName, idem))
	add(initProducerIDAPI, "denied by DENY", false, allowB(tCluster, clusterName, idem), denyB(tCluster, clusterName, idem))
	add(initProducerIDAPI, "absent", false)
	add(initProducerIDAPI, "by WRITE on a topic", true, allowB(tTopic, aclTopic, write))
	add(initProducerIDAPI, "by prefixed WRITE", true, prefixB(tTopic, "acl-", write))
	add(initProducerIDAPI, "WRITE denied by prefix", false, allowB(tTopic, aclTopic, write), binding{tTopic, "acl", kmsg.ACLResourcePatternTypePrefixed, write, kmsg.ACLPermissionTypeDeny})

	add(fetchAPI, "allowed", true, allowB(tTopic, aclTopic, read))
	add(fetchAPI, "denied by DENY", false, allowB(tTopic, aclTopic, read), denyB(tTopic, aclTopic, read))
	add(fetchAPI, "absent", false, allowB(tTopic, aclTopic, describe))
	add(fetchAPI, "prefixed", true, prefixB(tTopic, "acl-", read))

	add(listOffsetsAPI, "allowed", true, allowB(tTopic, aclTopic, describe))
	add(listOffsetsAPI, "implied by READ", true, allowB(tTopic, aclTopic, read))
	add(listOffsetsAPI, "denied by DENY", false, allowB(tTopic, aclTopic, read), denyB(tTopic, aclTopic, describe))
	add(listOffsetsAPI, "DENY READ leaves DESCRIBE", true, allowB(tTopic, aclTopic, write), denyB(tTopic, aclTopic, read))
	add(listOffsetsAPI, "absent", false, allowB(tGroup, aclTopic, describe))
	add(offsetForLeaderEpochAPI, "allowed", true, allowB(tTopic, aclTopic, describe))
	add(offsetForLeaderEpochAPI, "denied by DENY", false, allowB(tTopic, aclTopic, read), denyB(tTopic, aclTopic, describe))
	add(offsetForLeaderEpochAPI, "absent", false, allowB(tGroup, aclTopic, describe))

	add(metadataAPI, "allowed", true, allowB(tTopic, aclTopic, describe))
	add(metadataAPI, "denied by DENY", false, allowB(tTopic, aclTopic, all), denyB(tTopic, aclTopic, describe))
	add(metadataAPI, "absent", false)
	add(metadataAPI, "prefixed", true, prefixB(tTopic, "acl-", describe))
	add(metadataCreateAPI, "allowed", true, prefixB(tTopic, "acl-new-", describe), prefixB(tTopic, "acl-new-", create))
	add(metadataCreateAPI, "by CREATE on the cluster", true, prefixB(tTopic, "acl-new-", describe), allowB(tCluster, clusterName, create))
	add(metadataCreateAPI, "no CREATE", false, prefixB(tTopic, "acl-new-", describe))

	add(findCoordinatorAPI, "allowed", true, allowB(tGroup, aclGroup, describe))
	add(findCoordinatorAPI, "implied by READ", true, allowB(tGroup, aclGroup, read))
	add(findCoordinatorAPI, "denied by DENY", false, allowB(tGroup, aclGroup, read), denyB(tGroup, aclGroup, describe))
	add(findCoordinatorAPI, "absent", false, allowB(tTopic, aclGroup, describe))
	add(findCoordinatorAPI, "prefixed", true, prefixB(tGroup, "acl-", describe))

	add(groupAPI, "allowed", true, allowB(tGroup, aclGroup, read))
	add(groupAPI, "denied by DENY", false, allowB(tGroup, aclGroup, all), denyB(tGroup, aclGroup, read))
	add(groupAPI, "absent", false, allowB(tGroup, aclGroup, describe))
	add(groupAPI, "prefixed", true, prefixB(tGroup, "acl-", read))

	add(offsetsAPI, "allowed", true, allowB(tGroup, aclGroup, read), allowB(tTopic, aclTopic, read))
	add(offsetsAPI, "prefixed", true, prefixB(tGroup, "acl-", read), prefixB(tTopic, "acl-", read))
	cs = append(cs,
		aclCase{api: offsetsAPI, variant: "group absent", acls: []binding{allowB(tTopic, aclTopic, read)}},
		aclCase{api: offsetsAPI, variant: "topic denied by DENY", acls: []binding{allowB(tGroup, aclGroup, read), allowB(tTopic, aclTopic, read), denyB(tTopic, aclTopic, read)}},
		aclCase{api: offsetsAPI, variant: "topic DESCRIBE only", acls: []binding{allowB(tGroup, aclGroup, read), allowB(tTopic, aclTopic, describe)}},
	)

	add(createTopicsAPI, "on the cluster", true, allowB(tCluster, clusterName, create))
	add(createTopicsAPI, "on the topic", true, prefixB(tTopic, "acl-c-", create))
	add(createTopicsAPI, "denied by DENY", false, prefixB(tTopic, "acl-c-", kmsg.ACLOperationAll), denyB(tTopic, createdName("denied-by-DENY", "acl"), create))
	add(createTopicsAPI, "absent", false, allowB(tTopic, aclTopic, create))
	return cs
}

// offsetsAnswers are what the offsets cases answer once ACLs decide.
var offsetsAnswers = map[string]string{
	"group absent":         "commit=GROUP_AUTHORIZATION_FAILED fetch=GROUP_AUTHORIZATION_FAILED",
	"topic denied by DENY": "commit=TOPIC_AUTHORIZATION_FAILED fetch=OK",
	"topic DESCRIBE only":  "commit=TOPIC_AUTHORIZATION_FAILED fetch=OK",
}

// want is the answer of c in a phase.
func (c aclCase) want(phase string) string {
	switch {
	case phase == "super" || c.allowed:
		return c.api.ok
	case c.api == offsetsAPI:
		return offsetsAnswers[c.variant]
	}
	return c.api.denied
}

func (c aclCase) slug() string { return strings.ReplaceAll(c.variant, " ", "-") }

// runACLCases runs every case against a and returns its answers.
func runACLCases(t *testing.T, ctx context.Context, a *aclTarget) []string {
	var got []string
	for _, c := range aclCases() {
		a.setACLs(t, ctx, c.acls)
		answer := c.api.run(t, ctx, a, c.slug())
		got = append(got, fmt.Sprintf("%s (%s): %s", c.api.name, c.variant, answer))
		if want := c.want(a.phase); answer != want {
			t.Errorf("%s, %s phase: %s (%s): got %s, want %s", a.name, a.phase, c.api.name, c.variant, answer, want)
		}
	}
	return got
}

// setupACLTarget creates the topic, the consumer offsets topic (through
// FindCoordinator) and the admin ACL while User:ANONYMOUS is a super user.
func setupACLTarget(t *testing.T, ctx context.Context, a *aclTarget) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 30000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = aclTopic, 1, 1
	req.Topics = append(req.Topics, rt)
	if c := a.req(t, ctx, req).(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; c != 0 {
		t.Fatalf("%s: creating %s: %v", a.name, aclTopic, kerr.ErrorForCode(c))
	}
	await.Eventually(t, a.name+" to have a group coordinator and the topic's leader", func() error {
		if got := findCoordinatorAPI.run(t, ctx, a, ""); got != "OK" {
			return await.NotYet(got, "OK")
		}
		if got := listOffsetsAPI.run(t, ctx, a, ""); got != "OK" {
			return await.NotYet(got, "OK")
		}
		return nil
	})
	a.setACLs(t, ctx, nil)
}

func newACLTarget(t *testing.T, name, addr, phase string) *aclTarget {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.MaxVersions(kversion.V3_0_0()), kgo.RequestRetries(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &aclTarget{name: name, cl: cl, phase: phase}
}

// kafkaACLProperties configure Kafka's StandardAuthorizer, with its own
// inter-broker and controller connections authenticated over SASL/PLAIN
// as kafkaBroker, its super user; User:ANONYMOUS is one too when super.
func kafkaACLProperties(super bool) map[string]string {
	jaas := fmt.Sprintf("org.apache.kafka.common.security.plain.PlainLoginModule required username=%q password=%q user_%s=%q;",
		devstack.KafkaPlainUser, devstack.KafkaPlainPassword, devstack.KafkaPlainUser, devstack.KafkaPlainPassword)
	supers := kafkaBroker
	if super {
		supers += ";" + anon
	}
	return map[string]string{
		"authorizer.class.name":                               "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users":                                         supers,
		"listener.security.protocol.map":                      "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
		"inter.broker.listener.name":                          "SASL_PLAINTEXT",
		"sasl.mechanism.inter.broker.protocol":                "PLAIN",
		"sasl.mechanism.controller.protocol":                  "PLAIN",
		"listener.name.controller.sasl.enabled.mechanisms":    "PLAIN",
		"listener.name.controller.plain.sasl.jaas.config":     jaas,
		"listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas,
	}
}

// TestACLsAgainstKafka runs the ACL cases against brokerd and against
// Apache Kafka, with User:ANONYMOUS a super user and then not, and checks
// that both answer every case alike and as Kafka's rules say.
func TestACLsAgainstKafka(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	answers := map[string]map[string][]string{} // system, phase: answers

	t.Run("brokerd", func(t *testing.T) {
		port, err := devstack.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		dir := filepath.Join(t.TempDir(), "data")
		settings := func(supers string) []string {
			return []string{"authorizer.class.name=standard", "super.users=" + supers}
		}
		n := startNode(t, addr, dir, settings(anon+";User:admin")...)
		a := newACLTarget(t, "brokerd", addr, "super")
		setupACLTarget(t, ctx, a)
		answers["brokerd"] = map[string][]string{"super": runACLCases(t, ctx, a)}
		n.proc.Stop(10 * time.Second)
		// The ACLs live in the metadata: the admin ACL survives the
		// restart, so the test can go on without a super user.
		startNode(t, addr, dir, settings("User:admin")...)
		a = newACLTarget(t, "brokerd", addr, "acl")
		answers["brokerd"]["acl"] = runACLCases(t, ctx, a)
	})
	t.Run("kafka", func(t *testing.T) {
		kdir := t.TempDir()
		k, err := devstack.StartKafka(ctx, devstack.KafkaOptions{Dir: kdir, Properties: kafkaACLProperties(true)})
		if err != nil {
			t.Fatal(err)
		}
		defer k.Stop()
		a := newACLTarget(t, "kafka", k.Bootstrap(), "super")
		setupACLTarget(t, ctx, a)
		answers["kafka"] = map[string][]string{"super": runACLCases(t, ctx, a)}
		k.StopNode(0)
		props := filepath.Join(kdir, "node-1", "server.properties")
		b, err := os.ReadFile(props)
		if err != nil {
			t.Fatal(err)
		}
		old := "super.users=" + kafkaBroker + ";" + anon
		if !strings.Contains(string(b), old) {
			t.Fatalf("%s has no line %q", props, old)
		}
		if err := os.WriteFile(props, []byte(strings.Replace(string(b), old, "super.users="+kafkaBroker, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := k.StartNode(ctx, 0); err != nil {
			t.Fatal(err)
		}
		a = newACLTarget(t, "kafka", k.Bootstrap(), "acl")
		answers["kafka"]["acl"] = runACLCases(t, ctx, a)
	})
	for _, phase := range []string{"super", "acl"} {
		want, got := answers["kafka"][phase], answers["brokerd"][phase]
		if len(want) == 0 || len(got) == 0 {
			continue // a subtest failed before answering
		}
		for i := range max(len(want), len(got)) {
			var w, g string
			if i < len(want) {
				w = want[i]
			}
			if i < len(got) {
				g = got[i]
			}
			if w != g {
				t.Errorf("%s phase: Kafka answered %q, brokerd %q", phase, w, g)
			}
		}
	}
}

// TestKafkaACLsToolAgainstBrokerd adds, lists and removes ACLs with
// Kafka's kafka-acls.sh (AclCommand of Kafka 3.9.1) against brokerd, and
// lists them with `brokerd acls` too.
func TestKafkaACLsToolAgainstBrokerd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	port, err := devstack.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	startNode(t, addr, filepath.Join(t.TempDir(), "data"), "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer", "super.users="+anon)
	tool := func(args ...string) string {
		t.Helper()
		cmd, err := devstack.KafkaToolCommand(ctx, "kafka.admin.AclCommand", append([]string{"--bootstrap-server", addr}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kafka-acls.sh %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	ours := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, brokerdBin, append([]string{"acls", "--bootstrap-server", addr}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("brokerd acls %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	tool("--add", "--allow-principal", "User:shipper", "--operation", "Write", "--operation", "Describe", "--topic", "httpd")
	tool("--add", "--allow-principal", "User:indexer", "--operation", "Read", "--topic", "httpd", "--group", "indexer")
	tool("--add", "--deny-principal", "User:intruder", "--deny-host", "10.1.2.3", "--operation", "All", "--topic", "logs-", "--resource-pattern-type", "prefixed")

	wantLines := []string{
		"(principal=User:shipper, host=*, operation=WRITE, permissionType=ALLOW)",
		"(principal=User:shipper, host=*, operation=DESCRIBE, permissionType=ALLOW)",
		"(principal=User:indexer, host=*, operation=READ, permissionType=ALLOW)",
		"(principal=User:intruder, host=10.1.2.3, operation=ALL, permissionType=DENY)",
	}
	javaList, ourList := tool("--list"), ours("--list")
	for _, w := range wantLines {
		if !strings.Contains(javaList, w) || !strings.Contains(ourList, w) {
			t.Fatalf("lists lack %q:\nkafka-acls.sh:\n%s\nbrokerd acls:\n%s", w, javaList, ourList)
		}
	}
	for _, res := range []string{"resourceType=TOPIC, name=httpd, patternType=LITERAL", "resourceType=GROUP, name=indexer, patternType=LITERAL", "resourceType=TOPIC, name=logs-, patternType=PREFIXED"} {
		if !strings.Contains(javaList, res) || !strings.Contains(ourList, res) {
			t.Fatalf("lists lack the resource %q:\nkafka-acls.sh:\n%s\nbrokerd acls:\n%s", res, javaList, ourList)
		}
	}
	if out := tool("--list", "--topic", "httpd"); !strings.Contains(out, "User:shipper") || !strings.Contains(out, "name=httpd") || strings.Contains(out, "resourceType=GROUP") {
		t.Fatalf("kafka-acls.sh --list --topic httpd lists other resources or misses httpd's:\n%s", out)
	}

	tool("--remove", "--force", "--allow-principal", "User:shipper", "--operation", "Describe", "--topic", "httpd")
	tool("--remove", "--force", "--topic", "logs-", "--resource-pattern-type", "prefixed")
	javaList, ourList = tool("--list"), ours("--list")
	for _, gone := range []string{wantLines[1], wantLines[3]} {
		if strings.Contains(javaList, gone) || strings.Contains(ourList, gone) {
			t.Fatalf("%q is still listed after --remove:\nkafka-acls.sh:\n%s\nbrokerd acls:\n%s", gone, javaList, ourList)
		}
	}
	for _, kept := range []string{wantLines[0], wantLines[2]} {
		if !strings.Contains(javaList, kept) || !strings.Contains(ourList, kept) {
			t.Fatalf("%q is gone after removing others:\nkafka-acls.sh:\n%s\nbrokerd acls:\n%s", kept, javaList, ourList)
		}
	}
}
