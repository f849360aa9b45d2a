package admin

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"logpipe/e2e/harness"
)

// TestUsers adds, lists and deletes a SCRAM user against brokerd and
// Apache Kafka alike, and on Kafka's SASL listener logs in as the user
// added (brokerd's SASL listeners are tested in brokerd/broker).
func TestUsers(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tg *target) {
		user := "admin-test-" + tg.name
		run(t, tg, "users", "add", "--user", user, "--password", "pw-1", "--mechanism", "SCRAM-SHA-512", "--iterations", "4096").ok(t)
		run(t, tg, "users", "--user", user, "add", "--password", "pw-2", "--mechanism", "SCRAM-SHA-256").ok(t)
		var rows []userRow
		run(t, tg, "users", "list", "--user", user, "--output", "json").ok(t).decode(t, &rows)
		want := []userRow{{user, "SCRAM-SHA-256", 8192}, {user, "SCRAM-SHA-512", 4096}}
		if len(rows) != 2 || rows[0] != want[0] && rows[0] != want[1] || rows[1] != want[0] && rows[1] != want[1] || rows[0] == rows[1] {
			t.Fatalf("list: got %+v, want %+v in any order", rows, want)
		}
		if tg.name == "kafka" {
			cl := testClient(t, harness.SharedKafka(t).SASLBootstrap(), kgo.SASL(scram.Auth{User: user, Pass: "pw-1"}.AsSha512Mechanism()))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := cl.Ping(ctx); err != nil {
				t.Fatalf("logging in to Kafka as the user added: %v", err)
			}
		}
		run(t, tg, "users", "delete", "--user", user).ok(t)
		run(t, tg, "users", "list", "--user", user).fails(t, exitError, `users: user `+user+`: .*`)
		run(t, tg, "users", "delete", "--user", user).fails(t, exitError, `users: user `+user+`: `)
		run(t, tg, "users", "add", "--user", user).fails(t, exitUsage, `add needs --password`)
		run(t, tg, "users", "--user", user).fails(t, exitUsage, `say add, delete, list or plain-hash`)
	})
}
