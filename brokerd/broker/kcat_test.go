package broker_test

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// requireTool fails (never skips) when a client the tests rely on is not
// installed: `make deps` installs it.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed; run `make deps` (it installs kcat, python3-kafka and python3-confluent-kafka)", name)
	}
	return p
}

func run(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\nstdout: %s\nstderr: %s", name, args, err, out.String(), errb.String())
	}
	return out.String()
}

func TestKcat(t *testing.T) {
	kcat := requireTool(t, "kcat")
	cb := clStart(t, "", nil)
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		t.Run(codec, func(t *testing.T) {
			topic := "kcat-" + codec
			var in strings.Builder
			for i := 0; i < 100; i++ {
				fmt.Fprintf(&in, "key%d:value %d\n", i%5, i)
			}
			run(t, in.String(), kcat, "-b", cb.addr, "-P", "-t", topic, "-z", codec, "-K:", "-X", "acks=all")
			out := run(t, "", kcat, "-b", cb.addr, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%o|%k|%s\n")
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 100 {
				t.Fatalf("consumed %d lines:\n%s", len(lines), out)
			}
			for i, l := range lines {
				if want := fmt.Sprintf("%d|key%d|value %d", i, i%5, i); l != want {
					t.Fatalf("line %d = %q, want %q", i, l, want)
				}
			}
		})
	}
	meta := run(t, "", kcat, "-b", cb.addr, "-L", "-t", "kcat-gzip")
	if !strings.Contains(meta, "1 brokers:") || !strings.Contains(meta, `topic "kcat-gzip" with 1 partitions`) {
		t.Fatalf("kcat -L:\n%s", meta)
	}
}

func TestKafkaPython(t *testing.T) {
	py := requireTool(t, "/usr/bin/python3")
	if err := exec.Command(py, "-c", "import kafka").Run(); err != nil {
		t.Fatal("kafka-python is not installed for /usr/bin/python3; run `make deps` (Debian package python3-kafka)")
	}
	cb := clStart(t, "", nil)
	script := `
import sys
from kafka import KafkaProducer, KafkaConsumer
boot, topic, codec = sys.argv[1], sys.argv[2], sys.argv[3]
codec = None if codec == "none" else codec
p = KafkaProducer(bootstrap_servers=boot, acks="all", compression_type=codec)
for i in range(50):
    p.send(topic, key=b"k%d" % (i % 3), value=b"v%d" % i, headers=[("n", str(i).encode())]).get(timeout=30)
p.flush()
p.close()
c = KafkaConsumer(topic, bootstrap_servers=boot, group_id="kpy-" + topic, auto_offset_reset="earliest", consumer_timeout_ms=20000, enable_auto_commit=False)
n = 0
for m in c:
    assert m.value == b"v%d" % m.offset, (m.offset, m.value)
    assert m.key == b"k%d" % (m.offset % 3)
    assert m.headers == [("n", str(m.offset).encode())], m.headers
    n += 1
    if n == 50:
        break
c.commit()
c.close()
# The group's committed offset is where a new member of it starts.
c = KafkaConsumer(bootstrap_servers=boot, group_id="kpy-" + topic, enable_auto_commit=False)
from kafka import TopicPartition
print(n, c.committed(TopicPartition(topic, 0)))
`
	// gzip is built in; snappy, lz4 and zstd use python3-snappy, python3-lz4
	// and python3-zstandard, which `make deps` installs.
	for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
		out := run(t, "", py, "-c", script, cb.addr, "kpy-"+codec, codec)
		if strings.TrimSpace(out) != "50 50" {
			t.Fatalf("%s: kafka-python consumed and committed %q, want 50 50", codec, out)
		}
	}
}

func TestConfluentKafkaPython(t *testing.T) {
	py := requireTool(t, "/usr/bin/python3")
	if err := exec.Command(py, "-c", "import confluent_kafka").Run(); err != nil {
		t.Fatal("confluent-kafka is not installed for /usr/bin/python3; run `make deps` (Debian package python3-confluent-kafka)")
	}
	cb := clStart(t, "", nil)
	script := `
import sys
from confluent_kafka import Producer, Consumer
boot, topic = sys.argv[1], sys.argv[2]
p = Producer({"bootstrap.servers": boot, "enable.idempotence": True, "compression.type": "zstd"})
for i in range(100):
    p.produce(topic, key=b"k%d" % (i % 4), value=b"v%d" % i, headers=[("i", str(i).encode())])
assert p.flush(30) == 0
c = Consumer({"bootstrap.servers": boot, "group.id": "ck-" + topic, "auto.offset.reset": "earliest", "enable.auto.commit": False})
c.subscribe([topic])
seen = 0
while seen < 100:
    m = c.poll(20)
    assert m is not None, "no message after %d" % seen
    assert m.error() is None, m.error()
    assert m.value() == b"v%d" % m.offset() and m.headers() == [("i", str(m.offset()).encode())]
    seen += 1
c.commit(asynchronous=False)
print(seen, c.committed(c.assignment())[0].offset)
c.close()
`
	out := run(t, "", py, "-c", script, cb.addr, "confluent")
	if strings.TrimSpace(out) != "100 100" {
		t.Fatalf("confluent-kafka: %q", out)
	}
}
