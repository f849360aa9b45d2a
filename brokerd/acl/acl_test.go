package acl

import (
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	topic   = kmsg.ACLResourceTypeTopic
	group   = kmsg.ACLResourceTypeGroup
	cluster = kmsg.ACLResourceTypeCluster
	literal = kmsg.ACLResourcePatternTypeLiteral
	prefix  = kmsg.ACLResourcePatternTypePrefixed
	allow   = kmsg.ACLPermissionTypeAllow
	deny    = kmsg.ACLPermissionTypeDeny

	read      = kmsg.ACLOperationRead
	write     = kmsg.ACLOperationWrite
	describe  = kmsg.ACLOperationDescribe
	all       = kmsg.ACLOperationAll
	alterCfg  = kmsg.ACLOperationAlterConfigs
	descCfg   = kmsg.ACLOperationDescribeConfigs
	idemWrite = kmsg.ACLOperationIdempotentWrite
)

func bind(typ kmsg.ACLResourceType, name string, pt kmsg.ACLResourcePatternType, principal, host string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) Binding {
	return Binding{ResourceType: typ, ResourceName: name, PatternType: pt, Principal: principal, Host: host, Operation: op, Permission: perm}
}

func mustNew(t *testing.T, cfg Config) *Authorizer {
	t.Helper()
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAuthorize(t *testing.T) {
	alice := Requester{Principal: "User:alice", Host: "10.0.0.1"}
	bob := Requester{Principal: "User:bob", Host: "10.0.0.2"}
	admin := Requester{Principal: "User:admin", Host: "10.0.0.3"}
	cases := []struct {
		name     string
		acls     []Binding
		allowAll bool
		who      Requester
		op       kmsg.ACLOperation
		typ      kmsg.ACLResourceType
		resource string
		want     bool
	}{
		{"allowed literal", []Binding{bind(topic, "logs", literal, "User:alice", "*", read, allow)}, false, alice, read, topic, "logs", true},
		{"absent: other topic", []Binding{bind(topic, "logs", literal, "User:alice", "*", read, allow)}, false, alice, read, topic, "other", false},
		{"absent: other operation", []Binding{bind(topic, "logs", literal, "User:alice", "*", read, allow)}, false, alice, write, topic, "logs", false},
		{"absent: other principal", []Binding{bind(topic, "logs", literal, "User:alice", "*", read, allow)}, false, bob, read, topic, "logs", false},
		{"absent: other resource type", []Binding{bind(group, "logs", literal, "User:alice", "*", read, allow)}, false, alice, read, topic, "logs", false},
		{"no acl at all", nil, false, alice, read, topic, "logs", false},
		{"no acl, allow.everyone", nil, true, alice, read, topic, "logs", true},
		{"allow.everyone only when nothing matches", []Binding{bind(topic, "logs", literal, "User:alice", "*", read, deny)}, true, alice, read, topic, "logs", false},
		{"allow.everyone despite others' acls", []Binding{bind(topic, "logs", literal, "User:bob", "*", read, allow)}, true, alice, read, topic, "logs", true},
		{"deny wins over allow", []Binding{
			bind(topic, "logs", literal, "User:alice", "*", read, allow),
			bind(topic, "logs", literal, "User:alice", "*", read, deny)}, false, alice, read, topic, "logs", false},
		{"deny by prefix wins over literal allow", []Binding{
			bind(topic, "logs", literal, "User:alice", "*", all, allow),
			bind(topic, "lo", prefix, "User:*", "*", write, deny)}, false, alice, write, topic, "logs", false},
		{"deny of another operation leaves this one", []Binding{
			bind(topic, "logs", literal, "User:alice", "*", all, allow),
			bind(topic, "logs", literal, "User:alice", "*", write, deny)}, false, alice, read, topic, "logs", true},
		{"prefixed allow", []Binding{bind(topic, "logs-", prefix, "User:alice", "*", read, allow)}, false, alice, read, topic, "logs-web", true},
		{"prefixed allow covers the prefix itself", []Binding{bind(topic, "logs-", prefix, "User:alice", "*", read, allow)}, false, alice, read, topic, "logs-", true},
		{"prefixed allow, name shorter", []Binding{bind(topic, "logs-", prefix, "User:alice", "*", read, allow)}, false, alice, read, topic, "logs", false},
		{"literal is not a prefix", []Binding{bind(topic, "logs", literal, "User:alice", "*", read, allow)}, false, alice, read, topic, "logs-web", false},
		{"wildcard resource", []Binding{bind(topic, "*", literal, "User:alice", "*", read, allow)}, false, alice, read, topic, "anything", true},
		{"wildcard deny", []Binding{
			bind(topic, "logs", literal, "User:alice", "*", read, allow),
			bind(topic, "*", literal, "User:alice", "*", read, deny)}, false, alice, read, topic, "logs", false},
		{"wildcard principal", []Binding{bind(topic, "logs", literal, "User:*", "*", read, allow)}, false, bob, read, topic, "logs", true},
		{"host matches", []Binding{bind(topic, "logs", literal, "User:alice", "10.0.0.1", read, allow)}, false, alice, read, topic, "logs", true},
		{"host does not match", []Binding{bind(topic, "logs", literal, "User:alice", "10.9.9.9", read, allow)}, false, alice, read, topic, "logs", false},
		{"IPv6 host written in full", []Binding{bind(topic, "logs", literal, "User:alice", "0:0:0:0:0:0:0:1", read, allow)}, false, Requester{"User:alice", "::1"}, read, topic, "logs", true},
		{"IPv6 host written short", []Binding{bind(topic, "logs", literal, "User:alice", "fe80::1", read, allow)}, false, Requester{"User:alice", "fe80:0:0:0:0:0:0:1"}, read, topic, "logs", true},
		{"IPv4 host arriving mapped into IPv6", []Binding{bind(topic, "logs", literal, "User:alice", "10.0.0.1", read, allow)}, false, Requester{"User:alice", "::ffff:10.0.0.1"}, read, topic, "logs", true},
		{"IPv6 host of another address", []Binding{bind(topic, "logs", literal, "User:alice", "::2", read, allow)}, false, Requester{"User:alice", "::1"}, read, topic, "logs", false},
		{"a host name is compared as written", []Binding{bind(topic, "logs", literal, "User:alice", "localhost", read, allow)}, false, Requester{"User:alice", "127.0.0.1"}, read, topic, "logs", false},
		{"deny from one host only", []Binding{
			bind(topic, "logs", literal, "User:*", "*", read, allow),
			bind(topic, "logs", literal, "User:*", "10.0.0.2", read, deny)}, false, alice, read, topic, "logs", true},
		{"deny from that host", []Binding{
			bind(topic, "logs", literal, "User:*", "*", read, allow),
			bind(topic, "logs", literal, "User:*", "10.0.0.2", read, deny)}, false, bob, read, topic, "logs", false},
		{"ALL allows any operation", []Binding{bind(topic, "logs", literal, "User:alice", "*", all, allow)}, false, alice, alterCfg, topic, "logs", true},
		{"ALL deny denies any operation", []Binding{
			bind(topic, "logs", literal, "User:alice", "*", read, allow),
			bind(topic, "logs", literal, "User:alice", "*", all, deny)}, false, alice, read, topic, "logs", false},
		{"read implies describe", []Binding{bind(topic, "logs", literal, "User:alice", "*", read, allow)}, false, alice, describe, topic, "logs", true},
		{"write implies describe", []Binding{bind(topic, "logs", literal, "User:alice", "*", write, allow)}, false, alice, describe, topic, "logs", true},
		{"describe does not imply read", []Binding{bind(topic, "logs", literal, "User:alice", "*", describe, allow)}, false, alice, read, topic, "logs", false},
		{"deny read does not deny describe", []Binding{
			bind(topic, "logs", literal, "User:alice", "*", write, allow),
			bind(topic, "logs", literal, "User:alice", "*", read, deny)}, false, alice, describe, topic, "logs", true},
		{"alter_configs implies describe_configs", []Binding{bind(topic, "logs", literal, "User:alice", "*", alterCfg, allow)}, false, alice, descCfg, topic, "logs", true},
		{"cluster operation", []Binding{bind(cluster, ClusterName, literal, "User:alice", "*", idemWrite, allow)}, false, alice, idemWrite, cluster, ClusterName, true},
		{"super user beats deny", []Binding{bind(topic, "logs", literal, "User:*", "*", all, deny)}, false, admin, read, topic, "logs", true},
		{"super user without acls", nil, false, admin, kmsg.ACLOperationClusterAction, cluster, ClusterName, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := mustNew(t, Config{ClassName: StandardAuthorizerClass, SuperUsers: "User:root; User:admin", AllowIfNoACL: c.allowAll})
			if got := a.Authorize(NewSet(c.acls...), c.who, c.op, c.typ, c.resource); got != c.want {
				t.Fatalf("%s %s on %s %q: got allowed=%v, want %v", c.who.Principal, c.op, c.typ, c.resource, got, c.want)
			}
		})
	}
}

func TestAuthorizeAny(t *testing.T) {
	alice := Requester{Principal: "User:alice", Host: "10.0.0.1"}
	cases := []struct {
		name string
		acls []Binding
		want bool
	}{
		{"nothing", nil, false},
		{"literal allow", []Binding{bind(topic, "logs", literal, "User:alice", "*", write, allow)}, true},
		{"prefixed allow", []Binding{bind(topic, "logs-", prefix, "User:alice", "*", write, allow)}, true},
		{"implied operations do not count", []Binding{bind(topic, "logs", literal, "User:alice", "*", read, allow)}, false},
		{"literal allow, literal deny", []Binding{
			bind(topic, "logs", literal, "User:alice", "*", write, allow),
			bind(topic, "logs", literal, "User:alice", "*", write, deny)}, false},
		{"literal allow, covering prefix deny", []Binding{
			bind(topic, "logs", literal, "User:alice", "*", write, allow),
			bind(topic, "lo", prefix, "User:*", "*", write, deny)}, false},
		{"prefix allow, longer prefix deny", []Binding{
			bind(topic, "lo", prefix, "User:alice", "*", write, allow),
			bind(topic, "logs", prefix, "User:alice", "*", write, deny)}, true},
		{"two allows, one denied", []Binding{
			bind(topic, "logs", literal, "User:alice", "*", write, allow),
			bind(topic, "audit", literal, "User:alice", "*", write, allow),
			bind(topic, "logs", literal, "User:alice", "*", write, deny)}, true},
		{"wildcard deny", []Binding{
			bind(topic, "logs", literal, "User:alice", "*", write, allow),
			bind(topic, "*", literal, "User:alice", "*", write, deny)}, false},
		{"other host", []Binding{bind(topic, "logs", literal, "User:alice", "10.9.9.9", write, allow)}, false},
		{"other resource type", []Binding{bind(group, "logs", literal, "User:alice", "*", write, allow)}, false},
	}
	a := mustNew(t, Config{ClassName: StandardAuthorizerShort})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := a.AuthorizeAny(NewSet(c.acls...), alice, write, topic); got != c.want {
				t.Fatalf("WRITE on any topic: got allowed=%v, want %v", got, c.want)
			}
		})
	}
}

func TestNilAuthorizerAllowsEverything(t *testing.T) {
	a, err := New(Config{SuperUsers: "User:x"})
	if err != nil || a != nil {
		t.Fatalf("New without a class: got %v, %v; want nil, nil", a, err)
	}
	deny := NewSet(bind(topic, "*", literal, "User:*", "*", all, deny))
	if !a.Authorize(deny, Requester{Principal: "User:x"}, read, topic, "t") || !a.AuthorizeAny(deny, Requester{}, write, topic) {
		t.Fatal("a nil authorizer denied a request")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{ClassName: "kafka.security.authorizer.AclAuthorizer"},
		{ClassName: "com.example.Mine"},
		{ClassName: StandardAuthorizerShort, SuperUsers: "alice"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v): got no error, want one", cfg)
		}
	}
}

func TestOperations(t *testing.T) {
	a := mustNew(t, Config{ClassName: StandardAuthorizerClass})
	s := NewSet(bind(group, "g", literal, "User:alice", "*", read, allow))
	got := a.Operations(s, Requester{Principal: "User:alice"}, group, "g")
	if want := int32(1<<read | 1<<describe); got != want {
		t.Fatalf("group operations: got %b, want %b", got, want)
	}
}

func TestFilter(t *testing.T) {
	s := NewSet(
		bind(topic, "logs", literal, "User:alice", "*", read, allow),
		bind(topic, "lo", prefix, "User:bob", "*", write, allow),
		bind(topic, "*", literal, "User:carol", "*", describe, allow),
		bind(group, "logs", literal, "User:alice", "*", read, deny),
	)
	name := func(s string) *string { return &s }
	cases := []struct {
		name string
		f    Filter
		want int
	}{
		{"everything", MatchAll, 4},
		{"topics", Filter{ResourceType: topic, PatternType: kmsg.ACLResourcePatternTypeAny, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}, 3},
		{"literal logs", Filter{ResourceType: topic, ResourceName: name("logs"), PatternType: literal, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}, 1},
		{"any pattern named logs", Filter{ResourceType: kmsg.ACLResourceTypeAny, ResourceName: name("logs"), PatternType: kmsg.ACLResourcePatternTypeAny, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}, 2},
		{"match logs", Filter{ResourceType: topic, ResourceName: name("logs"), PatternType: kmsg.ACLResourcePatternTypeMatch, Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}, 3},
		{"principal", Filter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny, Principal: name("User:alice"), Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}, 2},
		{"deny only", Filter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny, Operation: kmsg.ACLOperationAny, Permission: deny}, 1},
	}
	for _, c := range cases {
		if got := s.Bindings(c.f); len(got) != c.want {
			t.Errorf("%s: got %d bindings %v, want %d", c.name, len(got), got, c.want)
		}
	}
}

func TestSetWith(t *testing.T) {
	a := bind(topic, "a", literal, "User:x", "*", read, allow)
	b := bind(topic, "b", prefix, "User:x", "*", read, allow)
	s1 := NewSet(a)
	s2 := s1.With([]Binding{a, b}, nil)
	s3 := s2.With(nil, []Binding{a, bind(topic, "zzz", literal, "User:x", "*", read, allow)})
	if s1.Len() != 1 || s2.Len() != 2 || s3.Len() != 1 || !s3.Contains(b) || s3.Contains(a) || !s1.Contains(a) {
		t.Fatalf("got lengths %d %d %d, want 1 2 1 with the first set unchanged", s1.Len(), s2.Len(), s3.Len())
	}
	if !s3.Equal(NewSet(b)) || s3.Equal(s2) {
		t.Fatal("Equal disagrees with the contents")
	}
}

func TestValidate(t *testing.T) {
	good := bind(topic, "t", literal, "User:x", "*", read, allow)
	if err := good.Validate(); err != nil {
		t.Fatalf("valid binding: %v", err)
	}
	bad := []Binding{
		bind(kmsg.ACLResourceTypeAny, "t", literal, "User:x", "*", read, allow),
		bind(topic, "t", kmsg.ACLResourcePatternTypeMatch, "User:x", "*", read, allow),
		bind(topic, "t", literal, "User:x", "*", kmsg.ACLOperationAny, allow),
		bind(topic, "t", literal, "User:x", "*", read, kmsg.ACLPermissionTypeAny),
		bind(topic, "", literal, "User:x", "*", read, allow),
		bind(topic, "t", literal, "x", "*", read, allow),
		bind(topic, "t", literal, "User:x", "", read, allow),
	}
	for _, b := range bad {
		if err := b.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%v: got %v, want ErrInvalid", b, err)
		}
	}
}

// TestChecksReadOnlyApplicableBindings holds 20,000 bindings and counts
// the bindings a check looks at: those of the resource checked, of its
// prefixes and of the wildcard, whatever else the set holds.
func TestChecksReadOnlyApplicableBindings(t *testing.T) {
	var bs []Binding
	for i := range 10000 {
		bs = append(bs, bind(topic, fmt.Sprintf("topic-%05d", i), literal, fmt.Sprintf("User:u%d", i), "*", read, allow))
		bs = append(bs, bind(group, fmt.Sprintf("group-%05d-", i), prefix, fmt.Sprintf("User:u%d", i), "*", read, allow))
	}
	bs = append(bs,
		bind(topic, "topic-0", prefix, "User:alice", "*", read, allow),
		bind(topic, "*", literal, "User:*", "*", describe, allow))
	s := NewSet(bs...)
	a := mustNew(t, Config{ClassName: StandardAuthorizerClass})
	alice := Requester{Principal: "User:alice", Host: "127.0.0.1"}

	before := examined.Load()
	if !a.Authorize(s, alice, read, topic, "topic-01234") {
		t.Fatal("alice may not read topic-01234 through her prefix")
	}
	// topic-01234's literal binding, the wildcard, and the prefix.
	if got := examined.Load() - before; got > 3 {
		t.Fatalf("one topic check examined %d bindings of %d, want at most 3", got, s.Len())
	}
	before = examined.Load()
	if a.Authorize(s, alice, read, group, "group-07777-x") {
		t.Fatal("alice may read another user's group")
	}
	if got := examined.Load() - before; got > 1 {
		t.Fatalf("one group check examined %d bindings of %d, want at most 1", got, s.Len())
	}
	before = examined.Load()
	if !a.AuthorizeAny(s, alice, read, topic) {
		t.Fatal("alice may read no topic")
	}
	if got := examined.Load() - before; got > 5 {
		t.Fatalf("a check on any topic examined %d bindings of %d, want at most 5", got, s.Len())
	}
}
