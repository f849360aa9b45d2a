package admin

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// aclsOpts is the parsed command line of `brokerd acls`, with the flags of
// Kafka's kafka-acls.sh.
type aclsOpts struct {
	*flagSet
	add, remove, list          bool
	allowPrincipals, allowHost listFlag
	denyPrincipals, denyHost   listFlag
	principals                 listFlag
	operations                 listFlag
	topics, groups, txnIDs     listFlag
	cluster                    bool
	pattern                    string
	producer, consumer         bool
	idempotent, force          bool
	timeoutMs                  int
}

func runACLs(e *env, args []string) error {
	o := &aclsOpts{}
	o.flagSet = newFlagSet(e, "add, remove and list ACLs (a Kafka client with kafka-acls.sh's flags; works against Apache Kafka too)",
		"--add (--allow-principal P | --deny-principal P)... [--allow-host H]... [--deny-host H]... [--operation OP]... RESOURCE... [--resource-pattern-type literal|prefixed]",
		"--add (--producer [--idempotent] | --consumer --group G) --allow-principal P... --topic T...",
		"--remove [PRINCIPALS, HOSTS, OPERATIONS as for --add] RESOURCE... [--resource-pattern-type TYPE] [--force]",
		"--list [RESOURCE]... [--principal P]... [--resource-pattern-type TYPE]",
		"where RESOURCE is --topic T, --group G, --cluster or --transactional-id ID",
	)
	fs := o.flagSet
	fs.BoolVar(&o.add, "add", false, "add ACLs")
	fs.BoolVar(&o.remove, "remove", false, "remove ACLs: those given, or every ACL of the resources when no principal is given")
	fs.BoolVar(&o.list, "list", false, "list ACLs, of the resources given or all")
	fs.Var(&o.allowPrincipals, "allow-principal", "a `PRINCIPAL` (User:name, User:* for everyone) to allow (repeatable)")
	fs.Var(&o.denyPrincipals, "deny-principal", "a `PRINCIPAL` to deny (repeatable)")
	fs.Var(&o.allowHost, "allow-host", "a `HOST` address the allowed principals may connect from (repeatable; default *, any)")
	fs.Var(&o.denyHost, "deny-host", "a `HOST` address the denied principals are denied from (repeatable; default *, any)")
	fs.Var(&o.principals, "principal", "with --list: only ACLs of this `PRINCIPAL` (repeatable)")
	fs.Var(&o.operations, "operation", "an `OPERATION`: Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite or All (repeatable; default All)")
	fs.Var(&o.topics, "topic", "a `TOPIC` (repeatable; * for every topic)")
	fs.Var(&o.groups, "group", "a consumer `GROUP` (repeatable; * for every group)")
	fs.Var(&o.txnIDs, "transactional-id", "a transactional `ID` (repeatable)")
	fs.BoolVar(&o.cluster, "cluster", false, "the cluster")
	fs.StringVar(&o.pattern, "resource-pattern-type", "literal", "`TYPE` of the resource pattern: literal or prefixed; for --list and --remove also any or match")
	fs.BoolVar(&o.producer, "producer", false, "the ACLs of a producer: WRITE, DESCRIBE and CREATE on the topics (WRITE and DESCRIBE on transactional ids)")
	fs.BoolVar(&o.idempotent, "idempotent", false, "with --producer: IDEMPOTENT_WRITE on the cluster too")
	fs.BoolVar(&o.consumer, "consumer", false, "the ACLs of a consumer: READ and DESCRIBE on the topics, READ on the groups")
	fs.BoolVar(&o.force, "force", false, "accepted for kafka-acls.sh compatibility: brokerd acls never asks for confirmation")
	fs.IntVar(&o.timeoutMs, "timeout", 30000, "give up after this many `milliseconds`")
	if err := fs.parse(e, args); err != nil {
		return err
	}
	pattern, err := o.check()
	if err != nil {
		return err
	}
	cl, err := newClient(fs, "brokerd-acls")
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(e.ctx, time.Duration(o.timeoutMs)*time.Millisecond)
	defer cancel()
	switch {
	case o.add:
		return o.runAdd(ctx, e, cl, pattern)
	case o.remove:
		return o.runRemove(ctx, e, cl, pattern)
	}
	return o.runList(ctx, e, cl, pattern)
}

// requester sends one request to the cluster (a *kgo.Client).
type requester interface {
	Request(context.Context, kmsg.Request) (kmsg.Response, error)
}

func (o *aclsOpts) check() (kmsg.ACLResourcePatternType, error) {
	n := 0
	for _, b := range []bool{o.add, o.remove, o.list} {
		if b {
			n++
		}
	}
	if n != 1 {
		return 0, usagef("give exactly one of --add, --remove and --list")
	}
	pattern, err := kmsg.ParseACLResourcePatternType(o.pattern)
	if err != nil || pattern == kmsg.ACLResourcePatternTypeUnknown {
		return 0, usagef("--resource-pattern-type must be literal, prefixed, any or match, not %q", o.pattern)
	}
	if o.add && pattern != kmsg.ACLResourcePatternTypeLiteral && pattern != kmsg.ACLResourcePatternTypePrefixed {
		return 0, usagef("--add needs --resource-pattern-type literal or prefixed, not %s", pattern)
	}
	if _, err := o.ops(); err != nil {
		return 0, err
	}
	if (o.add || o.remove) && len(o.resources()) == 0 {
		return 0, usagef("give a resource: --topic, --group, --cluster or --transactional-id")
	}
	if o.add && len(o.allowPrincipals)+len(o.denyPrincipals) == 0 {
		return 0, usagef("--add needs --allow-principal or --deny-principal")
	}
	if o.producer && o.consumer {
		return 0, usagef("give --producer or --consumer, not both")
	}
	if (o.producer || o.consumer) && len(o.topics) == 0 {
		return 0, usagef("--producer and --consumer need --topic")
	}
	if o.consumer && len(o.groups) == 0 {
		return 0, usagef("--consumer needs --group")
	}
	for _, p := range slices.Concat(o.allowPrincipals, o.denyPrincipals, o.principals) {
		if typ, name, ok := strings.Cut(p, ":"); !ok || typ == "" || name == "" {
			return 0, usagef("principal %q is not of the form User:name", p)
		}
	}
	return pattern, nil
}

// ops parses --operation (default ALL).
func (o *aclsOpts) ops() ([]kmsg.ACLOperation, error) {
	if len(o.operations) == 0 {
		return []kmsg.ACLOperation{kmsg.ACLOperationAll}, nil
	}
	var out []kmsg.ACLOperation
	for _, s := range o.operations {
		op, err := kmsg.ParseACLOperation(s)
		if err != nil || op <= kmsg.ACLOperationAny {
			return nil, usagef("unknown --operation %q", s)
		}
		out = append(out, op)
	}
	return out, nil
}

// aclResource is a resource named on the command line.
type aclResource struct {
	typ  kmsg.ACLResourceType
	name string
}

func (o *aclsOpts) resources() []aclResource {
	var out []aclResource
	for _, t := range o.topics {
		out = append(out, aclResource{kmsg.ACLResourceTypeTopic, t})
	}
	for _, g := range o.groups {
		out = append(out, aclResource{kmsg.ACLResourceTypeGroup, g})
	}
	for _, x := range o.txnIDs {
		out = append(out, aclResource{kmsg.ACLResourceTypeTransactionalId, x})
	}
	if o.cluster || o.producer && o.idempotent {
		out = append(out, aclResource{kmsg.ACLResourceTypeCluster, "kafka-cluster"})
	}
	return out
}

// opsFor returns the operations given for a resource: --operation, or
// those --producer and --consumer stand for.
func (o *aclsOpts) opsFor(typ kmsg.ACLResourceType) []kmsg.ACLOperation {
	switch {
	case o.producer && typ == kmsg.ACLResourceTypeTopic:
		return []kmsg.ACLOperation{kmsg.ACLOperationWrite, kmsg.ACLOperationDescribe, kmsg.ACLOperationCreate}
	case o.producer && typ == kmsg.ACLResourceTypeTransactionalId:
		return []kmsg.ACLOperation{kmsg.ACLOperationWrite, kmsg.ACLOperationDescribe}
	case o.producer && typ == kmsg.ACLResourceTypeCluster:
		return []kmsg.ACLOperation{kmsg.ACLOperationIdempotentWrite}
	case o.consumer && typ == kmsg.ACLResourceTypeTopic:
		return []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationDescribe}
	case o.consumer && typ == kmsg.ACLResourceTypeGroup:
		return []kmsg.ACLOperation{kmsg.ACLOperationRead}
	}
	ops, _ := o.ops() // check validated them
	return ops
}

// aclEntry is one binding, as the commands print it.
type aclEntry struct {
	ResourceType string `json:"resource_type"`
	Name         string `json:"name"`
	PatternType  string `json:"pattern_type"`
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	Operation    string `json:"operation"`
	Permission   string `json:"permission_type"`
}

// entries returns the bindings --add creates (and --remove with
// principals removes): every principal, host and operation on every
// resource.
func (o *aclsOpts) entries(pattern kmsg.ACLResourcePatternType) []kmsg.CreateACLsRequestCreation {
	var out []kmsg.CreateACLsRequestCreation
	hosts := func(h listFlag) []string {
		if len(h) == 0 {
			return []string{"*"}
		}
		return h
	}
	for _, r := range o.resources() {
		for _, perm := range []struct {
			principals, hosts []string
			typ               kmsg.ACLPermissionType
		}{{o.allowPrincipals, hosts(o.allowHost), kmsg.ACLPermissionTypeAllow}, {o.denyPrincipals, hosts(o.denyHost), kmsg.ACLPermissionTypeDeny}} {
			for _, p := range perm.principals {
				for _, h := range perm.hosts {
					for _, op := range o.opsFor(r.typ) {
						c := kmsg.NewCreateACLsRequestCreation()
						c.ResourceType, c.ResourceName, c.ResourcePatternType = r.typ, r.name, pattern
						c.Principal, c.Host, c.Operation, c.PermissionType = p, h, op, perm.typ
						out = append(out, c)
					}
				}
			}
		}
	}
	return out
}

func entryOf(typ kmsg.ACLResourceType, name string, pattern kmsg.ACLResourcePatternType, principal, host string, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) aclEntry {
	return aclEntry{ResourceType: typ.String(), Name: name, PatternType: pattern.String(), Principal: principal, Host: host,
		Operation: op.String(), Permission: perm.String()}
}

func (o *aclsOpts) runAdd(ctx context.Context, e *env, cl requester, pattern kmsg.ACLResourcePatternType) error {
	req := kmsg.NewPtrCreateACLsRequest()
	req.Creations = o.entries(pattern)
	kresp, err := cl.Request(ctx, req)
	if err != nil {
		return errorf("creating ACLs: %w", err)
	}
	resp := kresp.(*kmsg.CreateACLsResponse)
	if len(resp.Results) != len(req.Creations) {
		return errorf("creating ACLs: %d results for %d ACLs", len(resp.Results), len(req.Creations))
	}
	var added []aclEntry
	for i, r := range resp.Results {
		c := req.Creations[i]
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return errorf("adding %s %s on %s %s: %w", c.PermissionType, c.Operation, c.ResourceType, c.ResourceName, withMessage(err, deref(r.ErrorMessage)))
		}
		added = append(added, entryOf(c.ResourceType, c.ResourceName, c.ResourcePatternType, c.Principal, c.Host, c.Operation, c.PermissionType))
	}
	return o.print(e, "Adding ACLs for resource", added)
}

func (o *aclsOpts) runRemove(ctx context.Context, e *env, cl requester, pattern kmsg.ACLResourcePatternType) error {
	req := kmsg.NewPtrDeleteACLsRequest()
	if len(o.allowPrincipals)+len(o.denyPrincipals) == 0 {
		for _, r := range o.resources() {
			f := kmsg.NewDeleteACLsRequestFilter()
			f.ResourceType, f.ResourceName, f.ResourcePatternType = r.typ, &r.name, pattern
			f.Operation, f.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
			req.Filters = append(req.Filters, f)
		}
	} else {
		for _, c := range o.entries(pattern) {
			f := kmsg.NewDeleteACLsRequestFilter()
			f.ResourceType, f.ResourceName, f.ResourcePatternType = c.ResourceType, &c.ResourceName, c.ResourcePatternType
			f.Principal, f.Host, f.Operation, f.PermissionType = &c.Principal, &c.Host, c.Operation, c.PermissionType
			req.Filters = append(req.Filters, f)
		}
	}
	kresp, err := cl.Request(ctx, req)
	if err != nil {
		return errorf("removing ACLs: %w", err)
	}
	var removed []aclEntry
	for _, r := range kresp.(*kmsg.DeleteACLsResponse).Results {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return errorf("removing ACLs: %w", withMessage(err, deref(r.ErrorMessage)))
		}
		for _, m := range r.MatchingACLs {
			removed = append(removed, entryOf(m.ResourceType, m.ResourceName, m.ResourcePatternType, m.Principal, m.Host, m.Operation, m.PermissionType))
		}
	}
	return o.print(e, "Removed ACLs for resource", removed)
}

func (o *aclsOpts) runList(ctx context.Context, e *env, cl requester, pattern kmsg.ACLResourcePatternType) error {
	resources := o.resources()
	anyType := len(resources) == 0
	if anyType {
		resources = []aclResource{{typ: kmsg.ACLResourceTypeAny}}
		if !o.given("resource-pattern-type") {
			pattern = kmsg.ACLResourcePatternTypeAny
		}
	}
	principals := []*string{nil}
	if len(o.principals) > 0 {
		principals = nil
		for _, p := range o.principals {
			principals = append(principals, &p)
		}
	}
	var listed []aclEntry
	for _, r := range resources {
		for _, p := range principals {
			req := kmsg.NewPtrDescribeACLsRequest()
			req.ResourceType, req.ResourcePatternType, req.Principal = r.typ, pattern, p
			if !anyType {
				req.ResourceName = &r.name
			}
			req.Operation, req.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
			kresp, err := cl.Request(ctx, req)
			if err != nil {
				return errorf("listing ACLs: %w", err)
			}
			resp := kresp.(*kmsg.DescribeACLsResponse)
			if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
				return errorf("listing ACLs: %w", withMessage(err, deref(resp.ErrorMessage)))
			}
			for _, res := range resp.Resources {
				for _, a := range res.ACLs {
					listed = append(listed, entryOf(res.ResourceType, res.ResourceName, res.ResourcePatternType, a.Principal, a.Host, a.Operation, a.PermissionType))
				}
			}
		}
	}
	return o.print(e, "Current ACLs for resource", listed)
}

// print writes entries, grouped by resource pattern as kafka-acls.sh
// groups them, or as JSON.
func (o *aclsOpts) print(e *env, title string, entries []aclEntry) error {
	if o.json() {
		if entries == nil {
			entries = []aclEntry{}
		}
		return writeJSON(e.stdout, entries)
	}
	var last string
	for _, a := range entries {
		pattern := fmt.Sprintf("ResourcePattern(resourceType=%s, name=%s, patternType=%s)", a.ResourceType, a.Name, a.PatternType)
		if pattern != last {
			if last != "" {
				fmt.Fprintln(e.stdout)
			}
			fmt.Fprintf(e.stdout, "%s `%s`:\n", title, pattern)
			last = pattern
		}
		fmt.Fprintf(e.stdout, " \t(principal=%s, host=%s, operation=%s, permissionType=%s)\n", a.Principal, a.Host, a.Operation, a.Permission)
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
