// Package acl is brokerd's authorizer: access control lists with the
// semantics of Kafka's StandardAuthorizer (KRaft).
//
// An ACL (a Binding) says that a principal ("User:alice", or "User:*" for
// everyone) connecting from a host ("*" for any) is allowed or denied an
// operation on the resources a pattern names: a LITERAL name (the name
// "*" matching every resource of the type) or a PREFIXED one. A request is
// allowed when an ALLOW binding matches it and no DENY binding does; DENY
// always wins. READ, WRITE, DELETE and ALTER imply DESCRIBE, and
// ALTER_CONFIGS implies DESCRIBE_CONFIGS, for ALLOW bindings only: a DENY
// of READ does not deny DESCRIBE. Super users are allowed everything;
// when no binding matches at all, the answer is
// allow.everyone.if.no.acl.found (false by default).
//
// A Set holds the bindings, indexed by resource type and name, by prefix
// and by principal, so that a check reads only the bindings that could
// apply to it, however many there are. Sets are immutable: With returns a
// new one.
package acl

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ClusterName is the name of the one CLUSTER resource, as in Kafka.
const ClusterName = "kafka-cluster"

// Wildcard is the resource name of a LITERAL pattern that matches every
// resource of its type, and the host that matches every host.
const Wildcard = "*"

// WildcardPrincipal matches every principal.
const WildcardPrincipal = "User:*"

// ErrInvalid is wrapped by the errors of Validate.
var ErrInvalid = errors.New("acl: invalid binding")

// Binding is one ACL: a resource pattern and an access control entry. It
// is comparable, and a Set holds each binding once.
type Binding struct {
	ResourceType kmsg.ACLResourceType        `json:"resource_type"`
	ResourceName string                      `json:"resource_name"`
	PatternType  kmsg.ACLResourcePatternType `json:"pattern_type"`
	Principal    string                      `json:"principal"`
	Host         string                      `json:"host"`
	Operation    kmsg.ACLOperation           `json:"operation"`
	Permission   kmsg.ACLPermissionType      `json:"permission"`
}

// String renders the binding as kafka-acls.sh lists ACLs.
func (b Binding) String() string {
	return fmt.Sprintf("ResourcePattern(resourceType=%s, name=%s, patternType=%s): (principal=%s, host=%s, operation=%s, permissionType=%s)",
		b.ResourceType, b.ResourceName, b.PatternType, b.Principal, b.Host, b.Operation, b.Permission)
}

// Validate reports why b cannot be stored, as Kafka's controller refuses
// such ACLs: a resource type, pattern type, operation and permission that
// are concrete (not ANY, MATCH or unknown), a resource name, a principal
// of the form Type:name and a host.
func (b Binding) Validate() error {
	switch {
	case b.ResourceType < kmsg.ACLResourceTypeTopic || b.ResourceType > kmsg.ACLResourceTypeUser:
		return fmt.Errorf("%w: resource type %s", ErrInvalid, b.ResourceType)
	case b.PatternType != kmsg.ACLResourcePatternTypeLiteral && b.PatternType != kmsg.ACLResourcePatternTypePrefixed:
		return fmt.Errorf("%w: pattern type %s (want LITERAL or PREFIXED)", ErrInvalid, b.PatternType)
	case b.Operation < kmsg.ACLOperationAll || b.Operation > kmsg.ACLOperationDescribeTokens:
		return fmt.Errorf("%w: operation %s", ErrInvalid, b.Operation)
	case b.Permission != kmsg.ACLPermissionTypeAllow && b.Permission != kmsg.ACLPermissionTypeDeny:
		return fmt.Errorf("%w: permission %s (want ALLOW or DENY)", ErrInvalid, b.Permission)
	case b.ResourceName == "":
		return fmt.Errorf("%w: empty resource name", ErrInvalid)
	case b.Host == "":
		return fmt.Errorf("%w: empty host (use * for any)", ErrInvalid)
	}
	if typ, name, ok := strings.Cut(b.Principal, ":"); !ok || typ == "" || name == "" {
		return fmt.Errorf("%w: principal %q is not of the form Type:name", ErrInvalid, b.Principal)
	}
	return nil
}

// Filter selects bindings, as DescribeAcls and DeleteAcls do: ANY (or a
// nil string) matches everything; pattern type MATCH selects the bindings
// whose pattern applies to the resource Name.
type Filter struct {
	ResourceType kmsg.ACLResourceType
	ResourceName *string
	PatternType  kmsg.ACLResourcePatternType
	Principal    *string
	Host         *string
	Operation    kmsg.ACLOperation
	Permission   kmsg.ACLPermissionType
}

// MatchAll is the filter that selects every binding.
var MatchAll = Filter{ResourceType: kmsg.ACLResourceTypeAny, PatternType: kmsg.ACLResourcePatternTypeAny,
	Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}

// Matches reports whether the filter selects b.
func (f Filter) Matches(b Binding) bool {
	if f.ResourceType != kmsg.ACLResourceTypeAny && f.ResourceType != b.ResourceType ||
		f.Principal != nil && *f.Principal != b.Principal ||
		f.Host != nil && *f.Host != b.Host ||
		f.Operation != kmsg.ACLOperationAny && f.Operation != b.Operation ||
		f.Permission != kmsg.ACLPermissionTypeAny && f.Permission != b.Permission {
		return false
	}
	switch f.PatternType {
	case kmsg.ACLResourcePatternTypeAny:
		return f.ResourceName == nil || *f.ResourceName == b.ResourceName
	case kmsg.ACLResourcePatternTypeMatch:
		if f.ResourceName == nil {
			return true
		}
		if b.PatternType == kmsg.ACLResourcePatternTypePrefixed {
			return strings.HasPrefix(*f.ResourceName, b.ResourceName)
		}
		return *f.ResourceName == b.ResourceName || b.ResourceName == Wildcard
	default:
		return f.PatternType == b.PatternType && (f.ResourceName == nil || *f.ResourceName == b.ResourceName)
	}
}

// ValidateFilter reports a filter that can match nothing because one of
// its fields is unknown.
func (f Filter) ValidateFilter() error {
	switch {
	case f.ResourceType < kmsg.ACLResourceTypeAny || f.ResourceType > kmsg.ACLResourceTypeUser:
		return fmt.Errorf("%w: filter resource type %s", ErrInvalid, f.ResourceType)
	case f.PatternType < kmsg.ACLResourcePatternTypeAny || f.PatternType > kmsg.ACLResourcePatternTypePrefixed:
		return fmt.Errorf("%w: filter pattern type %s", ErrInvalid, f.PatternType)
	case f.Operation < kmsg.ACLOperationAny || f.Operation > kmsg.ACLOperationDescribeTokens:
		return fmt.Errorf("%w: filter operation %s", ErrInvalid, f.Operation)
	case f.Permission < kmsg.ACLPermissionTypeAny || f.Permission > kmsg.ACLPermissionTypeAllow:
		return fmt.Errorf("%w: filter permission %s", ErrInvalid, f.Permission)
	}
	return nil
}

type resourceKey struct {
	typ  kmsg.ACLResourceType
	name string
}

type principalKey struct {
	typ       kmsg.ACLResourceType
	principal string
}

// Set is an immutable set of bindings with the indexes checks use. The
// nil *Set is the empty set.
type Set struct {
	all map[Binding]struct{}
	// literal holds LITERAL bindings by type and name ("*" included).
	literal map[resourceKey][]Binding
	// prefixed holds PREFIXED bindings by type and prefix, and
	// prefixLens the distinct prefix lengths of each type, ascending.
	prefixed   map[resourceKey][]Binding
	prefixLens map[kmsg.ACLResourceType][]int
	// byPrincipal holds every binding by type and principal, for checks
	// on any resource of a type.
	byPrincipal map[principalKey][]Binding
}

// NewSet returns a set of the bindings given.
func NewSet(bs ...Binding) *Set { return (*Set)(nil).With(bs, nil) }

// Len returns how many bindings s holds.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.all)
}

// Contains reports whether s holds b.
func (s *Set) Contains(b Binding) bool {
	if s == nil {
		return false
	}
	_, ok := s.all[b]
	return ok
}

// With returns s with add added and remove removed. Bindings already
// there, and removals of bindings that are not, change nothing.
func (s *Set) With(add, remove []Binding) *Set {
	all := map[Binding]struct{}{}
	if s != nil {
		all = maps.Clone(s.all)
	}
	for _, b := range add {
		all[b] = struct{}{}
	}
	for _, b := range remove {
		delete(all, b)
	}
	n := &Set{all: all, literal: map[resourceKey][]Binding{}, prefixed: map[resourceKey][]Binding{},
		prefixLens: map[kmsg.ACLResourceType][]int{}, byPrincipal: map[principalKey][]Binding{}}
	for b := range all {
		k := resourceKey{b.ResourceType, b.ResourceName}
		if b.PatternType == kmsg.ACLResourcePatternTypePrefixed {
			if len(n.prefixed[k]) == 0 {
				n.prefixLens[b.ResourceType] = append(n.prefixLens[b.ResourceType], len(b.ResourceName))
			}
			n.prefixed[k] = append(n.prefixed[k], b)
		} else {
			n.literal[k] = append(n.literal[k], b)
		}
		pk := principalKey{b.ResourceType, b.Principal}
		n.byPrincipal[pk] = append(n.byPrincipal[pk], b)
	}
	for t, lens := range n.prefixLens {
		slices.Sort(lens)
		n.prefixLens[t] = slices.Compact(lens)
	}
	return n
}

// Bindings returns the bindings f selects, in a stable order (by resource,
// then principal, host, operation and permission).
func (s *Set) Bindings(f Filter) []Binding {
	if s == nil {
		return nil
	}
	var out []Binding
	for b := range s.all {
		if f.Matches(b) {
			out = append(out, b)
		}
	}
	slices.SortFunc(out, compareBindings)
	return out
}

// Equal reports whether s and o hold the same bindings.
func (s *Set) Equal(o *Set) bool {
	if s.Len() != o.Len() {
		return false
	}
	for b := range s.allOrNil() {
		if !o.Contains(b) {
			return false
		}
	}
	return true
}

func (s *Set) allOrNil() map[Binding]struct{} {
	if s == nil {
		return nil
	}
	return s.all
}

func compareBindings(a, b Binding) int {
	return cmp.Or(cmp.Compare(a.ResourceType, b.ResourceType), cmp.Compare(a.ResourceName, b.ResourceName),
		cmp.Compare(a.PatternType, b.PatternType), cmp.Compare(a.Principal, b.Principal), cmp.Compare(a.Host, b.Host),
		cmp.Compare(a.Operation, b.Operation), cmp.Compare(a.Permission, b.Permission))
}

// examined counts the bindings checks have looked at, for a test that
// checks stay cheap however many bindings a set holds.
var examined atomic.Int64

// candidates calls f with each binding whose pattern applies to the
// resource, until f returns false.
func (s *Set) candidates(typ kmsg.ACLResourceType, name string, f func(Binding) bool) {
	if s == nil {
		return
	}
	visit := func(bs []Binding) bool {
		for _, b := range bs {
			examined.Add(1)
			if !f(b) {
				return false
			}
		}
		return true
	}
	if !visit(s.literal[resourceKey{typ, name}]) {
		return
	}
	if name != Wildcard && !visit(s.literal[resourceKey{typ, Wildcard}]) {
		return
	}
	for _, n := range s.prefixLens[typ] {
		if n > len(name) {
			return
		}
		if !visit(s.prefixed[resourceKey{typ, name[:n]}]) {
			return
		}
	}
}
