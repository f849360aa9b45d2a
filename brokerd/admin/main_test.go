package admin

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"logpipe/brokerd/broker"
	"logpipe/brokerd/wire"
	"logpipe/e2e/harness"
	"logpipe/internal/await"
	"logpipe/internal/syncbuf"
)

func TestMain(m *testing.M) { harness.Main(m) }

// Time limit of one admin command. Generous: two shared cores run JVMs.
const commandTimeout = 2 * time.Minute

// settle is how the tests wait for metadata or group state to settle.
var settle = await.Options(await.Within(time.Minute), await.Every(200*time.Millisecond))

// target is a broker the subcommands run against.
type target struct {
	name      string // "kafka" or "brokerd"
	bootstrap string
	nodeID    int32
	groups    bool // the broker serves the classic group APIs
}

// forEachBroker runs fn against the shared Apache Kafka of the harness and
// against an in-process brokerd, as subtests named after them.
func forEachBroker(t *testing.T, fn func(t *testing.T, tg *target)) {
	t.Run("brokerd", func(t *testing.T) {
		addr := startBrokerd(t)
		fn(t, &target{name: "brokerd", bootstrap: addr, nodeID: 1, groups: servesJoinGroup(t, addr)})
	})
	t.Run("kafka", func(t *testing.T) {
		k := harness.SharedKafka(t)
		fn(t, &target{name: "kafka", bootstrap: k.Bootstrap(), nodeID: k.NodeID(0), groups: servesJoinGroup(t, k.Bootstrap())})
	})
}

// startBrokerd serves a real broker on a loopback port until the test
// ends and returns its address.
func startBrokerd(t *testing.T) string {
	t.Helper()
	return startBrokerdWith(t, nil)
}

// startBrokerdWith is startBrokerd with change (if not nil) applied to
// the broker's configuration. When change sets listeners of its own, the
// broker serves those (with their TLS and SASL) instead, and the address
// returned is not served.
func startBrokerdWith(t *testing.T, change func(*broker.Config)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := broker.DefaultConfig()
	cfg.Listeners = "PLAINTEXT://" + ln.Addr().String()
	cfg.LogDirs = []string{t.TempDir()}
	cfg.GroupInitialRebalanceDelayMs = 0
	if change != nil {
		change(&cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	b, err := broker.New(context.Background(), cfg, log, broker.Hooks{})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	srv := &wire.Server{Handler: b, Log: log}
	if cfg.Listeners == "PLAINTEXT://"+ln.Addr().String() {
		go srv.Serve(ln)
	} else {
		ln.Close()
		lns, err := b.ClientListeners()
		if err != nil {
			b.Close()
			t.Fatal(err)
		}
		for _, l := range lns {
			go srv.ServeSecured(l.Listener, l.Security)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		b.Close()
	})
	return ln.Addr().String()
}

// servesJoinGroup asks the broker's ApiVersions whether it lists
// JoinGroup (key 11).
func servesJoinGroup(t *testing.T, bootstrap string) bool {
	t.Helper()
	cl := testClient(t, bootstrap)
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	vs, err := kadm.NewClient(cl).ApiVersions(ctx)
	if err != nil {
		t.Fatalf("ApiVersions: %v", err)
	}
	for _, v := range vs {
		if v.Err != nil {
			t.Fatalf("ApiVersions of node %d: %v", v.NodeID, v.Err)
		}
		if _, ok := v.KeyMaxVersion(11); !ok {
			return false
		}
	}
	return len(vs) > 0
}

// needGroups fails a group test on a broker without the group APIs.
func needGroups(t *testing.T, tg *target) {
	t.Helper()
	if !tg.groups {
		t.Fatalf("%s does not list JoinGroup (API key 11) in its ApiVersions answer", tg.name)
	}
}

func testClient(t *testing.T, bootstrap string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(strings.Split(bootstrap, ",")...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// result is what one run of a subcommand printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

// run runs a subcommand through Run against tg with an empty stdin.
func run(t *testing.T, tg *target, args ...string) result {
	t.Helper()
	return runIn(t, tg, "", args...)
}

// runIn runs a subcommand with stdin, adding --bootstrap-server for tg
// unless tg is nil.
func runIn(t *testing.T, tg *target, stdin string, args ...string) result {
	t.Helper()
	if tg != nil {
		args = append(append([]string{args[0]}, "--bootstrap-server", tg.bootstrap), args[1:]...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	var out, errb bytes.Buffer
	var code int
	if stdin == "" {
		code = Run(ctx, args, &out, &errb)
	} else {
		code = RunWith(ctx, args, strings.NewReader(stdin), &out, &errb)
	}
	r := result{stdout: out.String(), stderr: errb.String(), code: code}
	t.Logf("brokerd %s => exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	return r
}

// ok fails the test unless the command exited 0 with nothing on stderr
// (some commands print a closing remark there; allow lists them).
func (r result) ok(t *testing.T, allow ...string) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	rest := r.stderr
	for _, a := range allow {
		rest = strings.ReplaceAll(rest, a, "")
	}
	if strings.TrimSpace(rest) != "" {
		t.Fatalf("unexpected stderr %q", r.stderr)
	}
	return r
}

// fails checks the command failed with the exit code and one stderr line
// matching pattern.
func (r result) fails(t *testing.T, code int, pattern string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d (stderr %q)", r.code, code, r.stderr)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
		t.Fatalf("stderr is not one line: %q", r.stderr)
	}
	if !regexp.MustCompile(pattern).MatchString(r.stderr) {
		t.Fatalf("stderr %q does not match %q", r.stderr, pattern)
	}
}

// decode parses the command's JSON output into v.
func (r result) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		t.Fatalf("stdout is not the expected JSON: %v\n%s", err, r.stdout)
	}
}

// lines splits stdout into lines without the final empty one.
func (r result) lines() []string {
	s := strings.TrimSuffix(r.stdout, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// uniq returns a name no other test uses, for topics and groups on the
// shared Kafka.
func uniq(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s-%s", prefix, hex.EncodeToString(b))
}

// fields splits a text table row into its cells (cells hold no spaces).
func fields(line string) []string { return strings.Fields(line) }

// started is a subcommand running in the background until its context is
// cancelled.
type started struct {
	cancel         context.CancelFunc
	stdout, stderr *syncbuf.Buffer
	done           chan int // the exit code
}

// start runs a subcommand against tg in the background, reading stdin.
func start(t *testing.T, tg *target, stdin io.Reader, args ...string) *started {
	t.Helper()
	args = append(append([]string{args[0]}, "--bootstrap-server", tg.bootstrap), args[1:]...)
	ctx, cancel := context.WithCancel(context.Background())
	s := &started{cancel: cancel, stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{}, done: make(chan int, 1)}
	go func() { s.done <- RunWith(ctx, args, stdin, s.stdout, s.stderr) }()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	return s
}

// stop cancels the command's context and waits for its exit code.
func (s *started) stop(t *testing.T) result {
	t.Helper()
	s.cancel()
	select {
	case code := <-s.done:
		s.done <- code // for the cleanup
		r := result{stdout: s.stdout.String(), stderr: s.stderr.String(), code: code}
		t.Logf("interrupted => exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		return r
	case <-time.After(commandTimeout):
		t.Fatalf("the command did not end within %v of its interruption", commandTimeout)
		return result{}
	}
}
