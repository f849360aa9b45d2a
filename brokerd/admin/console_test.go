package admin

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"logpipe/internal/await"
)

func TestConsoleRoundTrip(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tg *target) {
		topic := uniq("admin-console")
		run(t, tg, "topics", "--create", "--topic", topic, "--partitions", "1").ok(t)
		describeTopic(t, tg, topic) // wait for the metadata

		// Keys, split at the first separator; gzip.
		r := runIn(t, tg, "k1:v1\nk2:v2\r\nk3:hello:world\n", "console-producer", "--topic", topic,
			"--property", "parse.key=true", "--property", "key.separator=:", "--compression-codec", "gzip").ok(t)
		if r.stdout != "" {
			t.Errorf("producer printed %q", r.stdout)
		}
		r = run(t, tg, "console-consumer", "--topic", topic, "--from-beginning", "--max-messages", "3",
			"--property", "print.key=true").ok(t, "Processed a total of 3 messages\n")
		if want := "k1\tv1\nk2\tv2\nk3\thello:world\n"; r.stdout != want {
			t.Fatalf("consumed %q, want %q", r.stdout, want)
		}

		// No keys, acks=1, zstd, the last line without a line break;
		// json summary.
		var sum producerSummary
		runIn(t, tg, "plain1\nplain2", "console-producer", "--topic", topic, "--acks", "1",
			"--compression-codec", "zstd", "--output", "json").ok(t).decode(t, &sum)
		if sum.Records != 2 || sum.Acknowledged != 2 || sum.Failed != 0 {
			t.Errorf("producer summary %+v", sum)
		}
		r = run(t, tg, "console-consumer", "--topic", topic, "--partition", "0", "--offset", "3", "--max-messages", "2",
			"--property", "print.key=true", "--property", "print.offset=true", "--property", "print.partition=true").ok(t, "Processed a total of 2 messages\n")
		if want := "Partition:0\tOffset:3\tnull\tplain1\nPartition:0\tOffset:4\tnull\tplain2\n"; r.stdout != want {
			t.Fatalf("consumed %q, want %q", r.stdout, want)
		}

		// Headers and a key; acks=0, lz4.
		runIn(t, tg, "h1:x,h2:y\tkey\tvalue\n", "console-producer", "--topic", topic, "--request-required-acks", "0",
			"--compression-codec", "lz4", "--property", "parse.headers=true", "--property", "parse.key=true").ok(t)
		r = run(t, tg, "console-consumer", "--topic", topic, "--partition", "0", "--offset", "5", "--max-messages", "1",
			"--property", "print.headers=true", "--property", "print.key=true", "--property", "key.separator=|").ok(t, "Processed a total of 1 messages\n")
		if want := "h1:x,h2:y|key|value\n"; r.stdout != want {
			t.Fatalf("consumed %q, want %q", r.stdout, want)
		}

		// JSON, one record per line.
		r = run(t, tg, "console-consumer", "--topic", topic, "--from-beginning", "--max-messages", "6", "--output", "json").ok(t, "Processed a total of 6 messages\n")
		lines := r.lines()
		if len(lines) != 6 {
			t.Fatalf("%d json lines, want 6", len(lines))
		}
		wantKV := [][2]string{{"k1", "v1"}, {"k2", "v2"}, {"k3", "hello:world"}, {"", "plain1"}, {"", "plain2"}, {"key", "value"}}
		for i, l := range lines {
			var rec jsonRecord
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Fatalf("line %d: %v: %s", i, err, l)
			}
			key := ""
			if rec.Key != nil {
				key = *rec.Key
			}
			if rec.Topic != topic || rec.Partition != 0 || rec.Offset != int64(i) || key != wantKV[i][0] ||
				rec.Value == nil || *rec.Value != wantKV[i][1] || (wantKV[i][0] == "") != (rec.Key == nil) || rec.Timestamp <= 0 {
				t.Errorf("json line %d: %s", i, l)
			}
			if i == 5 && (len(rec.Headers) != 2 || rec.Headers[1].Key != "h2" || *rec.Headers[1].Value != "y") {
				t.Errorf("json headers: %s", l)
			}
		}

		// --timeout-ms ends a consumer that has nothing more to print:
		// from the beginning it prints all six, from the end none.
		r = run(t, tg, "console-consumer", "--topic", topic, "--from-beginning", "--timeout-ms", "3000").ok(t, "Processed a total of 6 messages\n")
		if n := len(r.lines()); n != 6 {
			t.Errorf("from the beginning until the timeout: %d records, want 6", n)
		}
		r = run(t, tg, "console-consumer", "--topic", topic, "--timeout-ms", "3000").ok(t, "Processed a total of 0 messages\n")
		if r.stdout != "" {
			t.Errorf("from the end printed %q", r.stdout)
		}

		// A line without the key separator stops the producer with an
		// error naming the line; what came before it is delivered.
		runIn(t, tg, "good:1\nno separator here\nlater:2\n", "console-producer", "--topic", topic,
			"--property", "parse.key=true", "--property", "key.separator=:").fails(t, 1, `no key separator ":" on line 2`)
		r = run(t, tg, "console-consumer", "--topic", topic, "--partition", "0", "--offset", "6", "--timeout-ms", "3000",
			"--property", "print.key=true").ok(t, "Processed a total of 1 messages\n")
		if r.stdout != "good\t1\n" {
			t.Errorf("after the bad line the topic holds %q", r.stdout)
		}

		// Many records through a 3-partition topic with keys: every one
		// arrives exactly once.
		wide := uniq("admin-console-wide")
		run(t, tg, "topics", "--create", "--topic", wide, "--partitions", "3").ok(t)
		describeTopic(t, tg, wide)
		var in strings.Builder
		const n = 500
		for i := range n {
			fmt.Fprintf(&in, "key-%d\tvalue-%d\n", i%17, i)
		}
		runIn(t, tg, in.String(), "console-producer", "--topic", wide, "--property", "parse.key=true", "--compression-codec", "snappy").ok(t)
		r = run(t, tg, "console-consumer", "--topic", wide, "--from-beginning", "--max-messages", fmt.Sprint(n),
			"--property", "print.key=true").ok(t, fmt.Sprintf("Processed a total of %d messages\n", n))
		seen := map[string]bool{}
		for _, l := range r.lines() {
			k, v, _ := strings.Cut(l, "\t")
			var i int
			if _, err := fmt.Sscanf(v, "value-%d", &i); err != nil || k != fmt.Sprintf("key-%d", i%17) || seen[v] {
				t.Fatalf("unexpected or repeated line %q", l)
			}
			seen[v] = true
		}
		if len(seen) != n {
			t.Fatalf("%d distinct records, want %d", len(seen), n)
		}
	})
}

// An interrupt (the context's end) is how interactive sessions finish:
// the producer delivers what it read and the group consumer commits what
// it printed, and both exit 0.
func TestConsoleInterrupt(t *testing.T) {
	forEachBroker(t, func(t *testing.T, tg *target) {
		topic := uniq("admin-interrupt")
		run(t, tg, "topics", "--create", "--topic", topic, "--partitions", "1").ok(t)
		describeTopic(t, tg, topic)

		// The producer's stdin stays open, as a terminal's would.
		pr, pw := io.Pipe()
		defer pw.Close()
		prod := start(t, tg, pr, "console-producer", "--topic", topic)
		if _, err := io.WriteString(pw, "one\ntwo\nthree\n"); err != nil {
			t.Fatal(err)
		}
		await.Eventually(t, "the topic to hold the three lines", func() error {
			r := run(t, tg, "console-consumer", "--topic", topic, "--from-beginning", "--timeout-ms", "1000")
			if want := "one\ntwo\nthree\n"; r.stdout != want {
				return await.NotYet(fmt.Sprintf("%q", r.stdout), fmt.Sprintf("%q", want))
			}
			return nil
		}, settle)
		prod.stop(t).ok(t)

		if !tg.groups {
			t.Logf("%s does not list JoinGroup (API key 11) in ApiVersions yet: the group consumer's interrupt is tested against Apache Kafka only", tg.name)
			return
		}
		group := uniq("admin-interrupt-group")
		cons := start(t, tg, strings.NewReader(""), "console-consumer", "--topic", topic, "--group", group, "--from-beginning")
		await.Eventually(t, "the group consumer to print the three lines", func() error {
			if got, want := cons.stdout.String(), "one\ntwo\nthree\n"; got != want {
				return await.NotYet(fmt.Sprintf("%q", got), fmt.Sprintf("%q", want))
			}
			return nil
		}, settle)
		cons.stop(t).ok(t, "Processed a total of 3 messages\n")
		if got := committed(describeGroupJSON(t, tg, group), topic, 1); got[0] != 3 {
			t.Fatalf("committed %v after the interrupt, want [3]", got)
		}
	})
}
