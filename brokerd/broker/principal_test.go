package broker

import "testing"

// TestPrincipalMappingRules applies ssl.principal.mapping.rules as Kafka's
// documentation shows them.
func TestPrincipalMappingRules(t *testing.T) {
	const dn = "CN=kafka-client,OU=ServiceUsers,O=Acme,L=Paris,ST=IDF,C=FR"
	for _, c := range []struct{ rules, want string }{
		{"", dn},
		{"DEFAULT", dn},
		{`RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT`, "kafka-client"},
		{`RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L`, "kafka-client@serviceusers"},
		{`RULE:^CN=(.*?),OU=(.*?),.*$/$1x$2/U`, "KAFKA-CLIENTXSERVICEUSERS"},
		{`RULE:^CN=nobody.*$/n/, RULE:^CN=([^,]*).*$/a\/$1/`, "a/kafka-client"},
	} {
		rules, err := parsePrincipalRules(c.rules)
		if err != nil {
			t.Fatalf("%q: %v", c.rules, err)
		}
		if got, err := mapPrincipal(rules, dn); err != nil || got != c.want {
			t.Errorf("%q: got %q, %v; want %q", c.rules, got, err, c.want)
		}
	}
	rules, _ := parsePrincipalRules(`RULE:^CN=admin$/admin/`)
	if got, err := mapPrincipal(rules, dn); err == nil {
		t.Errorf("no rule applies: got %q, want an error", got)
	}
	for _, bad := range []string{"RULE:^CN=(.*$/x/", "RULE:abc", "SOMETHING", "DEFAULT DEFAULT"} {
		if _, err := parsePrincipalRules(bad); err == nil {
			t.Errorf("%q parsed, want an error", bad)
		}
	}
}
