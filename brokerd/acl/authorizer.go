package acl

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Class names accepted for authorizer.class.name. Kafka's KRaft authorizer
// is the one implemented; "standard" is brokerd's short name for it.
const (
	StandardAuthorizerClass = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
	StandardAuthorizerShort = "standard"
)

// Config is the authorizer part of brokerd.yml, with Kafka's keys.
type Config struct {
	// ClassName is authorizer.class.name: empty turns authorization off
	// (everything is allowed, as in Kafka without an authorizer).
	ClassName string
	// SuperUsers is super.users: principals separated by semicolons.
	SuperUsers string
	// AllowIfNoACL is allow.everyone.if.no.acl.found.
	AllowIfNoACL bool
}

// New returns the authorizer cfg configures, nil when it turns
// authorization off. A nil *Authorizer allows everything.
func New(cfg Config) (*Authorizer, error) {
	switch strings.TrimSpace(cfg.ClassName) {
	case "":
		return nil, nil
	case StandardAuthorizerClass, StandardAuthorizerShort:
	case "kafka.security.authorizer.AclAuthorizer":
		return nil, fmt.Errorf("acl: authorizer.class.name %s keeps ACLs in ZooKeeper; brokerd implements %s (or %q), which keeps them in the metadata log", cfg.ClassName, StandardAuthorizerClass, StandardAuthorizerShort)
	default:
		return nil, fmt.Errorf("acl: authorizer.class.name %q is not known; use %s (or %q)", cfg.ClassName, StandardAuthorizerClass, StandardAuthorizerShort)
	}
	a := &Authorizer{superUsers: map[string]bool{}, allowIfNoACL: cfg.AllowIfNoACL}
	for _, p := range strings.Split(cfg.SuperUsers, ";") {
		if p = strings.TrimSpace(p); p != "" {
			if typ, name, ok := strings.Cut(p, ":"); !ok || typ == "" || name == "" {
				return nil, fmt.Errorf("acl: super.users entry %q is not of the form User:name", p)
			}
			a.superUsers[p] = true
		}
	}
	return a, nil
}

// Authorizer decides requests against a Set. It holds only the static
// settings; the bindings come with each call, from the metadata image
// the request is served with.
type Authorizer struct {
	superUsers   map[string]bool
	allowIfNoACL bool
}

// Requester is who sends a request: a principal ("User:alice") and the
// address of the host it connects from.
type Requester struct {
	Principal string
	Host      string
}

// SuperUser reports whether p is one of super.users.
func (a *Authorizer) SuperUser(p string) bool { return a == nil || a.superUsers[p] }

// Authorize reports whether who may do op on the resource of type typ
// called name, under the bindings of s.
func (a *Authorizer) Authorize(s *Set, who Requester, op kmsg.ACLOperation, typ kmsg.ACLResourceType, name string) bool {
	if a == nil || a.superUsers[who.Principal] {
		return true
	}
	allowed, denied := false, false
	s.candidates(typ, name, func(b Binding) bool {
		switch decide(b, who, op) {
		case kmsg.ACLPermissionTypeDeny:
			denied = true
			return false
		case kmsg.ACLPermissionTypeAllow:
			allowed = true
		}
		return true
	})
	switch {
	case denied:
		return false
	case allowed:
		return true
	}
	return a.allowIfNoACL
}

// decide returns what b says of who doing op on a resource b's pattern
// applies to: ALLOW, DENY, or UNKNOWN when b does not apply.
func decide(b Binding, who Requester, op kmsg.ACLOperation) kmsg.ACLPermissionType {
	if b.Principal != who.Principal && b.Principal != WildcardPrincipal ||
		!hostMatches(b.Host, who.Host) {
		return kmsg.ACLPermissionTypeUnknown
	}
	if b.Operation != kmsg.ACLOperationAll && b.Operation != op &&
		(b.Permission != kmsg.ACLPermissionTypeAllow || !implies(b.Operation, op)) {
		return kmsg.ACLPermissionTypeUnknown
	}
	return b.Permission
}

// hostMatches reports whether a binding for host applies to a request
// from addr: host is the wildcard, or names the same address, whatever
// its spelling (Kafka's tools write IPv6 addresses in full,
// 0:0:0:0:0:0:0:1, where Go writes ::1; an IPv4 address may arrive
// mapped into IPv6).
func hostMatches(host, addr string) bool {
	if host == Wildcard || host == addr {
		return true
	}
	h, err1 := netip.ParseAddr(host)
	a, err2 := netip.ParseAddr(addr)
	return err1 == nil && err2 == nil && h.Unmap() == a.Unmap()
}

// implies reports whether allowing have allows want too.
func implies(have, want kmsg.ACLOperation) bool {
	switch want {
	case kmsg.ACLOperationDescribe:
		switch have {
		case kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter:
			return true
		}
	case kmsg.ACLOperationDescribeConfigs:
		return have == kmsg.ACLOperationAlterConfigs
	}
	return false
}

// hardcodedName is the resource name Kafka's check on any resource of a
// type tries first: what is allowed on a resource no binding names
// (super users, wildcard bindings, allow.everyone.if.no.acl.found) is
// allowed on some resource of the type.
const hardcodedName = "hardcode"

// AuthorizeAny reports whether who may do op on at least one resource of
// type typ, as Kafka's authorizeByResourceType: allowed by a wildcard or
// by the default, or by an ALLOW binding (exactly op, or ALL) on a
// literal name or prefix that no DENY binding on the same name or a
// shorter prefix covers. Only who's own bindings and those of User:* are
// read.
func (a *Authorizer) AuthorizeAny(s *Set, who Requester, op kmsg.ACLOperation, typ kmsg.ACLResourceType) bool {
	if a.Authorize(s, who, op, typ, hardcodedName) {
		return true
	}
	if s == nil {
		return false
	}
	denyLiteral, denyPrefix := map[string]bool{}, map[string]bool{}
	var allowLiteral, allowPrefix []string
	for _, p := range []string{who.Principal, WildcardPrincipal} {
		for _, b := range s.byPrincipal[principalKey{typ, p}] {
			examined.Add(1)
			if !hostMatches(b.Host, who.Host) || b.Operation != op && b.Operation != kmsg.ACLOperationAll {
				continue
			}
			literal := b.PatternType == kmsg.ACLResourcePatternTypeLiteral
			switch {
			case b.Permission == kmsg.ACLPermissionTypeDeny && literal && b.ResourceName == Wildcard:
				return false
			case b.Permission == kmsg.ACLPermissionTypeDeny && literal:
				denyLiteral[b.ResourceName] = true
			case b.Permission == kmsg.ACLPermissionTypeDeny:
				denyPrefix[b.ResourceName] = true
			case literal && b.ResourceName == Wildcard:
				return true
			case literal:
				allowLiteral = append(allowLiteral, b.ResourceName)
			default:
				allowPrefix = append(allowPrefix, b.ResourceName)
			}
		}
	}
	coveredByDenyPrefix := func(name string) bool {
		for i := 1; i <= len(name); i++ {
			if denyPrefix[name[:i]] {
				return true
			}
		}
		return false
	}
	for _, name := range allowLiteral {
		if !denyLiteral[name] && !coveredByDenyPrefix(name) {
			return true
		}
	}
	for _, name := range allowPrefix {
		if !coveredByDenyPrefix(name) {
			return true
		}
	}
	return false
}

// supported are the operations each resource type has, in Kafka's order,
// for the authorized-operations bit fields of Metadata, DescribeGroups and
// DescribeCluster.
var supported = map[kmsg.ACLResourceType][]kmsg.ACLOperation{
	kmsg.ACLResourceTypeTopic: {kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate, kmsg.ACLOperationDescribe,
		kmsg.ACLOperationDelete, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs},
	kmsg.ACLResourceTypeGroup: {kmsg.ACLOperationRead, kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete},
	kmsg.ACLResourceTypeCluster: {kmsg.ACLOperationCreate, kmsg.ACLOperationClusterAction, kmsg.ACLOperationDescribeConfigs,
		kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationIdempotentWrite, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe},
	kmsg.ACLResourceTypeTransactionalId: {kmsg.ACLOperationDescribe, kmsg.ACLOperationWrite},
}

// Operations returns the bit field (bit n for operation code n) of the
// operations who may do on the named resource, among those its type has.
func (a *Authorizer) Operations(s *Set, who Requester, typ kmsg.ACLResourceType, name string) int32 {
	var bits int32
	for _, op := range supported[typ] {
		if a.Authorize(s, who, op, typ, name) {
			bits |= 1 << op
		}
	}
	return bits
}
