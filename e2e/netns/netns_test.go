package netns_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"logpipe/e2e/netns"
)

// The test binary doubles as the programs it runs inside the lab's nodes:
// TestMain turns into one of them when helperEnv names it.
const (
	helperEnv = "NETNS_TEST_HELPER" // echo, dial or hold
	addrEnv   = "NETNS_TEST_ADDR"   // where echo listens, or what dial and hold connect to
	childEnv  = "NETNS_TEST_CHILD"  // makes TestLabChild act: fatal, panic, exit or hold

	echoPort    = 7000
	dialTimeout = time.Second // every dial and echo round trip of a probe
	waitLimit   = 20 * time.Second
)

// testBinary is this test binary, which the tests run as helpers.
var testBinary string

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "echo":
		os.Exit(runEcho(os.Getenv(addrEnv)))
	case "dial":
		res := probe(os.Getenv(addrEnv))
		fmt.Println(res)
		if res != "ok" {
			os.Exit(1)
		}
		os.Exit(0)
	case "hold":
		os.Exit(runHold(os.Getenv(addrEnv)))
	}
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "netns tests:", err)
		os.Exit(1)
	}
	testBinary = exe
	os.Exit(m.Run())
}

// runEcho serves TCP echo on addr until its standard input closes.
func runEcho(addr string) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("ready")
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			return 1
		}
		go func() {
			defer c.Close()
			_, _ = io.Copy(c, c)
		}()
	}
}

// probe dials an echo server and makes one round trip, and reports "ok" or
// what went wrong: "timeout", "unreachable", "refused" or the error.
func probe(addr string) string {
	c, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		return classify(err)
	}
	defer c.Close()
	if err := roundTrip(c, "ping\n", dialTimeout); err != nil {
		return classify(err)
	}
	return "ok"
}

// roundTrip sends msg on c and reads it back, within limit.
func roundTrip(c net.Conn, msg string, limit time.Duration) error {
	if err := c.SetDeadline(time.Now().Add(limit)); err != nil {
		return err
	}
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	return readBack(c, msg)
}

// readBack reads len(msg) bytes from c and checks they are msg.
func readBack(c net.Conn, msg string) error {
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return fmt.Errorf("echo: got %q, want %q", buf, msg)
	}
	return nil
}

func classify(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.EHOSTUNREACH):
		return "unreachable"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	}
	return err.Error()
}

// runHold keeps one connection to an echo server open and runs commands
// from standard input on it, answering each with a line: "send" sends a
// message and waits dialTimeout for its echo; "wait" waits up to waitLimit
// for the echo of the last message sent.
func runHold(addr string) int {
	c, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		fmt.Println(classify(err))
		return 1
	}
	defer c.Close()
	msg := "hello\n"
	if err := roundTrip(c, msg, dialTimeout); err != nil {
		fmt.Println(classify(err))
		return 1
	}
	fmt.Println("ok")
	in := bufio.NewScanner(os.Stdin)
	for n := 0; in.Scan(); n++ {
		switch in.Text() {
		case "send":
			msg = fmt.Sprintf("message %d\n", n)
			err = roundTrip(c, msg, dialTimeout)
		case "wait":
			if err = c.SetDeadline(time.Now().Add(waitLimit)); err == nil {
				err = readBack(c, msg)
			}
		}
		if err != nil {
			fmt.Println(classify(err))
		} else {
			fmt.Println("ok")
		}
	}
	return 0
}

// proc is a process of the test binary that the test talks to line by line.
type proc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

// start starts cmd with its standard input and output piped to the test,
// and kills it when the test ends.
func start(t *testing.T, cmd *exec.Cmd) *proc {
	t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	p := &proc{cmd: cmd, stdin: stdin, lines: make(chan string)}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = p.wait()
	})
	return p
}

// startHelper runs the test binary in node n as the named helper.
func startHelper(t *testing.T, n *netns.Node, mode, addr string) *proc {
	t.Helper()
	cmd := n.Command(testBinary)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, addrEnv+"="+addr)
	cmd.Stderr = os.Stderr
	return start(t, cmd)
}

// line returns the process's next line of output.
func (p *proc) line(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatalf("%v ended without answering", p.cmd.Args)
		}
		return l
	case <-time.After(2 * waitLimit):
		t.Fatalf("%v did not answer within %v", p.cmd.Args, 2*waitLimit)
	}
	return ""
}

// do sends the process one command and returns its answer.
func (p *proc) do(t *testing.T, command string) string {
	t.Helper()
	if _, err := io.WriteString(p.stdin, command+"\n"); err != nil {
		t.Fatalf("%v: %v", p.cmd.Args, err)
	}
	return p.line(t)
}

// wait reads the rest of the process's output and waits for it to exit.
func (p *proc) wait() error {
	for range p.lines {
	}
	return p.cmd.Wait()
}

// startEchoes starts an echo server on echoPort in every node.
func startEchoes(t *testing.T, lab *netns.Lab) {
	t.Helper()
	for i := range lab.Len() {
		h := startHelper(t, lab.Node(i), "echo", fmt.Sprintf(":%d", echoPort))
		if got := h.line(t); got != "ready" {
			t.Fatalf("echo server in node %d: got %q, want ready", i, got)
		}
	}
}

func echoAddr(n *netns.Node) string {
	return netip.AddrPortFrom(n.Addr(), echoPort).String()
}

// probeFrom runs one probe of addr inside node n.
func probeFrom(t *testing.T, n *netns.Node, addr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	cmd := n.CommandContext(ctx, testBinary)
	cmd.Env = append(os.Environ(), helperEnv+"=dial", addrEnv+"="+addr)
	out, _ := cmd.Output() // a failed probe exits 1 and says why on stdout
	return strings.TrimSpace(string(out))
}

// result is one probe's outcome; from is -1 for the host.
type result struct {
	from, to int
	got      string
}

// probeAll probes every node from the host and from every other node, at
// once.
func probeAll(t *testing.T, lab *netns.Lab) []result {
	t.Helper()
	var (
		mu  sync.Mutex
		out []result
		wg  sync.WaitGroup
	)
	add := func(r result) {
		mu.Lock()
		defer mu.Unlock()
		out = append(out, r)
	}
	for to := range lab.Len() {
		wg.Go(func() { add(result{-1, to, probe(echoAddr(lab.Node(to)))}) })
		for from := range lab.Len() {
			if from != to {
				wg.Go(func() { add(result{from, to, probeFrom(t, lab.Node(from), echoAddr(lab.Node(to)))}) })
			}
		}
	}
	wg.Wait()
	return out
}

// mismatches lists the probes whose outcome is not the one connected(from,
// to) calls for: "ok" when connected, a silent loss ("timeout", or
// "unreachable" once ARP gives up) when not. The host is always connected.
func mismatches(res []result, connected func(from, to int) bool) []string {
	var bad []string
	for _, r := range res {
		want := r.from < 0 || connected(r.from, r.to)
		lost := r.got == "timeout" || r.got == "unreachable"
		if want && r.got != "ok" || !want && !lost {
			wantS := "ok"
			if !want {
				wantS = "timeout or unreachable"
			}
			bad = append(bad, fmt.Sprintf("%s -> node %d: got %q, want %s", name(r.from), r.to, r.got, wantS))
		}
	}
	slices.Sort(bad)
	return bad
}

func name(from int) string {
	if from < 0 {
		return "host"
	}
	return fmt.Sprintf("node %d", from)
}

// expect checks the probes once: a cut must already hold when Cut returns.
func expect(t *testing.T, lab *netns.Lab, phase string, connected func(from, to int) bool) {
	t.Helper()
	if bad := mismatches(probeAll(t, lab), connected); len(bad) > 0 {
		t.Fatalf("%s:\n%s", phase, strings.Join(bad, "\n"))
	}
}

// expectEventually polls the probes until they match, for up to waitLimit.
func expectEventually(t *testing.T, lab *netns.Lab, phase string, connected func(from, to int) bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		bad := mismatches(probeAll(t, lab), connected)
		if len(bad) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s, still after %v:\n%s", phase, waitLimit, strings.Join(bad, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func all(from, to int) bool { return true }

func TestPartitionAndHeal(t *testing.T) {
	lab := netns.ForTest(t, 3)
	startEchoes(t, lab)

	for i := range lab.Len() {
		n := lab.Node(i)
		if !netip.MustParsePrefix("198.18.0.0/15").Contains(n.Addr()) || !lab.Subnet().Contains(n.Addr()) {
			t.Errorf("node %d address %s: want one in %s, inside 198.18.0.0/15", i, n.Addr(), lab.Subnet())
		}
		if got := probeFrom(t, n, fmt.Sprintf("127.0.0.1:%d", echoPort)); got != "ok" {
			t.Errorf("node %d -> its own loopback: got %q, want ok", i, got)
		}
	}
	expect(t, lab, "fresh lab", all)

	// A connection from the host to node 0 made before the partition
	// outlives it, and one from node 1 to node 0 stalls without an error.
	hostConn, err := net.DialTimeout("tcp", echoAddr(lab.Node(0)), dialTimeout)
	if err != nil {
		t.Fatalf("host -> node 0: %v", err)
	}
	defer hostConn.Close()
	if got := hostConn.LocalAddr().(*net.TCPAddr).AddrPort().Addr(); got != lab.HostAddr() {
		t.Errorf("source address of the host's connection to node 0: got %s, want %s", got, lab.HostAddr())
	}
	held := startHelper(t, lab.Node(1), "hold", echoAddr(lab.Node(0)))
	if got := held.line(t); got != "ok" {
		t.Fatalf("node 1 holding a connection to node 0: got %q, want ok", got)
	}

	if err := lab.Isolate(0); err != nil {
		t.Fatal(err)
	}
	expect(t, lab, "node 0 isolated", func(from, to int) bool { return from != 0 && to != 0 })
	if err := roundTrip(hostConn, "still there\n", dialTimeout); err != nil {
		t.Errorf("host -> node 0 on a connection made before the partition: %v", err)
	}
	if got := held.do(t, "send"); got != "timeout" {
		t.Errorf("node 1 -> node 0 on a connection made before the partition: got %q, want timeout", got)
	}

	if err := lab.Heal(); err != nil {
		t.Fatal(err)
	}
	expectEventually(t, lab, "healed", all)
	if got := held.do(t, "wait"); got != "ok" {
		t.Errorf("node 1 -> node 0, the message sent during the partition after healing: got %q, want ok", got)
	}
	if got := held.do(t, "send"); got != "ok" {
		t.Errorf("node 1 -> node 0 on the held connection after healing: got %q, want ok", got)
	}

	if err := lab.Cut(1, 2); err != nil {
		t.Fatal(err)
	}
	expect(t, lab, "nodes 1 and 2 cut apart", func(from, to int) bool {
		return !(from == 1 && to == 2 || from == 2 && to == 1)
	})
	if err := lab.Heal(); err != nil {
		t.Fatal(err)
	}
	expectEventually(t, lab, "healed after the cut", all)
}

func TestBadArguments(t *testing.T) {
	for _, n := range []int{0, -1, netns.MaxNodes + 1} {
		if l, err := netns.New("bad", n); err == nil {
			l.Close()
			t.Errorf("New with %d nodes: got no error, want one", n)
		}
	}
	lab := netns.ForTest(t, 2)
	for _, p := range [][2]int{{0, 0}, {0, 2}, {-1, 1}} {
		if err := lab.Cut(p[0], p[1]); err == nil {
			t.Errorf("Cut(%d, %d): got no error, want one", p[0], p[1])
		}
	}
	if err := lab.Isolate(2); err == nil {
		t.Errorf("Isolate(2) of 2 nodes: got no error, want one")
	}
}

// labNamespaces lists the namespaces, as ip netns list shows them, whose
// names start with prefix.
func labNamespaces(t *testing.T, prefix string) []string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	var names []string
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			names = append(names, f[0])
		}
	}
	return names
}

func linkExists(name string) bool {
	_, err := net.InterfaceByName(name)
	return err == nil
}

// checkGone fails unless no namespace of the lab named id, nor its host
// link, is left.
func checkGone(t *testing.T, id, hostLink string) {
	t.Helper()
	if left := labNamespaces(t, id); len(left) > 0 {
		t.Errorf("namespaces left of lab %s: got %v, want none", id, left)
	}
	if linkExists(hostLink) {
		t.Errorf("host link %s: still there, want it removed", hostLink)
	}
}

func TestCloseRemovesEverything(t *testing.T) {
	lab, err := netns.New("close", 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	if got := labNamespaces(t, lab.Name()); !slices.Equal(sorted(got), sorted(lab.Namespaces())) {
		t.Fatalf("namespaces of a new lab: got %v, want %v", got, lab.Namespaces())
	}
	if !linkExists(lab.HostLink()) {
		t.Fatalf("host link %s of a new lab: missing", lab.HostLink())
	}
	if err := lab.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checkGone(t, lab.Name(), lab.HostLink())
	if err := lab.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
	if err := lab.Heal(); err == nil {
		t.Errorf("Heal after Close: got no error, want one")
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestLabChild is the child half of TestCleanupAfterFailure and
// TestSweepRemovesStaleLabs, run in a process of its own; in a plain run
// of the package it has nothing to do. It makes a lab, reports it on
// standard output and then ends as childEnv says.
func TestLabChild(t *testing.T) {
	mode := os.Getenv(childEnv)
	if mode == "" {
		return
	}
	lab := netns.ForTest(t, 2)
	fmt.Printf("lab %s %s\n", lab.Name(), lab.HostLink())
	switch mode {
	case "fatal":
		t.Fatalf("failing on purpose with the lab open")
	case "panic":
		panic("panicking on purpose with the lab open")
	case "exit":
		os.Exit(3) // no cleanup runs: the lab is left behind
	case "hold":
		_, _ = io.Copy(io.Discard, os.Stdin)
	}
}

// startChild runs TestLabChild in mode and returns it with the name and
// host link of its lab, read from its output.
func startChild(t *testing.T, mode string) (child *proc, id, hostLink string) {
	t.Helper()
	cmd := exec.Command(testBinary, "-test.run=^TestLabChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	var stderr bytes.Buffer // the failing children's reports, shown only if the test fails
	cmd.Stderr = &stderr
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("child %s stderr:\n%s", mode, stderr.String())
		}
	})
	child = start(t, cmd)
	for {
		if f := strings.Fields(child.line(t)); len(f) == 3 && f[0] == "lab" {
			return child, f[1], f[2]
		}
	}
}

func TestCleanupAfterFailure(t *testing.T) {
	for _, mode := range []string{"fatal", "panic"} {
		t.Run(mode, func(t *testing.T) {
			child, id, hostLink := startChild(t, mode)
			err := child.wait()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("child test that fails: got exit %v, want a non-zero exit", err)
			}
			checkGone(t, id, hostLink)
		})
	}
}

func TestSweepRemovesStaleLabs(t *testing.T) {
	// A lab of a live process survives a sweep.
	live, liveID, liveLink := startChild(t, "hold")
	// A lab whose process exited without closing it is stale.
	dead, deadID, deadLink := startChild(t, "exit")
	if err := dead.wait(); err == nil {
		t.Fatalf("child that exits 3: got success, want exit status 3")
	}
	if got := labNamespaces(t, deadID); len(got) != 3 || !linkExists(deadLink) {
		t.Fatalf("lab of an exited child before the sweep: got namespaces %v and host link there %v, want 3 and true", got, linkExists(deadLink))
	}

	if err := netns.Sweep(); err != nil {
		t.Fatalf("Sweep: %v", err)
	}
	checkGone(t, deadID, deadLink)
	if got := labNamespaces(t, liveID); len(got) != 3 || !linkExists(liveLink) {
		t.Errorf("lab of a live child after the sweep: got namespaces %v and host link there %v, want 3 and true", got, linkExists(liveLink))
	}

	live.stdin.Close()
	if err := live.wait(); err != nil {
		t.Errorf("child holding a lab: %v", err)
	}
	checkGone(t, liveID, liveLink)
}
