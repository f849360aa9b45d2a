package admin

import (
	"slices"
	"testing"

	"logpipe/brokerd/broker"
)

// TestACLs adds, lists and removes ACLs with kafka-acls.sh's flags against
// a brokerd with authorization on (the test's client is User:ANONYMOUS,
// a super user).
func TestACLs(t *testing.T) {
	addr := startBrokerdWith(t, func(c *broker.Config) {
		c.AuthorizerClassName = "standard"
		c.SuperUsers = "User:ANONYMOUS"
	})
	tg := &target{name: "brokerd", bootstrap: addr, nodeID: 1}

	out := run(t, tg, "acls", "--add", "--allow-principal", "User:alice", "--operation", "Read", "--operation", "Describe", "--topic", "logs").ok(t)
	if want := []string{
		"Adding ACLs for resource `ResourcePattern(resourceType=TOPIC, name=logs, patternType=LITERAL)`:",
		" \t(principal=User:alice, host=*, operation=READ, permissionType=ALLOW)",
		" \t(principal=User:alice, host=*, operation=DESCRIBE, permissionType=ALLOW)",
	}; !slices.Equal(out.lines(), want) {
		t.Fatalf("--add printed\n%q\nwant\n%q", out.lines(), want)
	}
	run(t, tg, "acls", "--add", "--deny-principal", "User:bob", "--deny-host", "10.0.0.9", "--topic", "logs-", "--resource-pattern-type", "prefixed").ok(t)
	run(t, tg, "acls", "--add", "--consumer", "--allow-principal", "User:indexer", "--topic", "httpd", "--group", "indexer").ok(t)

	var all []aclEntry
	run(t, tg, "acls", "--list", "--output", "json").ok(t).decode(t, &all)
	if len(all) != 6 {
		t.Fatalf("--list: got %d ACLs %+v, want 6", len(all), all)
	}
	var bobs []aclEntry
	run(t, tg, "acls", "--list", "--principal", "User:bob", "--output", "json").ok(t).decode(t, &bobs)
	want := aclEntry{ResourceType: "TOPIC", Name: "logs-", PatternType: "PREFIXED", Principal: "User:bob", Host: "10.0.0.9", Operation: "ALL", Permission: "DENY"}
	if len(bobs) != 1 || bobs[0] != want {
		t.Fatalf("--list --principal User:bob: got %+v, want [%+v]", bobs, want)
	}
	var group []aclEntry
	run(t, tg, "acls", "--list", "--group", "indexer", "--output", "json").ok(t).decode(t, &group)
	if len(group) != 1 || group[0].Operation != "READ" || group[0].Principal != "User:indexer" {
		t.Fatalf("--list --group indexer: got %+v, want indexer's READ", group)
	}

	// Removing one entry, then every ACL of a resource.
	var removed []aclEntry
	run(t, tg, "acls", "--remove", "--allow-principal", "User:alice", "--operation", "Describe", "--topic", "logs", "--output", "json").ok(t).decode(t, &removed)
	if len(removed) != 1 || removed[0].Operation != "DESCRIBE" {
		t.Fatalf("--remove one entry: got %+v, want alice's DESCRIBE", removed)
	}
	run(t, tg, "acls", "--remove", "--topic", "httpd", "--force", "--output", "json").ok(t).decode(t, &removed)
	if len(removed) != 2 {
		t.Fatalf("--remove --topic httpd: got %+v, want indexer's READ and DESCRIBE", removed)
	}
	run(t, tg, "acls", "--list", "--output", "json").ok(t).decode(t, &all)
	if len(all) != 3 {
		t.Fatalf("--list after removing: got %+v, want 3 ACLs", all)
	}

	run(t, tg, "acls", "--add", "--topic", "x").fails(t, 2, "--allow-principal or --deny-principal")
	run(t, tg, "acls", "--add", "--allow-principal", "alice", "--topic", "x").fails(t, 2, "User:name")
	run(t, tg, "acls", "--add", "--allow-principal", "User:a", "--operation", "Fly", "--topic", "x").fails(t, 2, "unknown --operation")
	run(t, tg, "acls", "--list", "--add").fails(t, 2, "exactly one of")
}
