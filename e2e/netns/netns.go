// Package netns builds throwaway networks out of Linux network namespaces for
// fault tests: a lab of n nodes, each in a namespace of its own, that a test
// can partition and heal while the test process, in the host namespace, keeps
// reaching every node.
//
// # Layout
//
// A lab has one "switch" namespace and one namespace per node. The host
// namespace gets a single veth link and nothing else; no rule, route or
// setting of the host's own network is changed.
//
//   - Every pair of nodes has a wire of its own: a veth from each of the two
//     nodes, joined by a two-port bridge in the switch namespace. Cut takes
//     that bridge down, so the switch drops the pair's frames both ways
//     while both nodes keep their link, carrier, addresses and routes. To
//     the nodes this looks like a network that stopped delivering (dials
//     time out, established connections stall), not like a closed port.
//     Heal brings the bridges up again.
//   - Every node also has a veth to a "host bridge" in the switch namespace,
//     whose remaining port is the peer of the host's link. The node ports of
//     that bridge are isolated ports (bridge_slave isolated on), so nodes
//     cannot reach each other through it: it carries only host↔node traffic,
//     and no partition touches it. A test can therefore still connect to an
//     isolated node and watch what it does.
//
// A node has one address, put on each of its links, a /32 route to each peer
// through that peer's wire and a /32 route to the host's lab address through
// its host link. Its loopback is up. There is no default route, so a program
// in a node reaches its peers, the host's lab address and its own loopback,
// and nothing else.
//
// # Addresses
//
// A lab takes one /24 out of 198.18.0.0/15, the block RFC 2544 reserves for
// benchmarking network equipment in a lab. It is not one of the private
// ranges (10/8, 172.16/12, 192.168/16) that real networks use, and it is not
// routed on the internet, so an address from it is plainly a test address.
// Node i gets .(i+1) and the host end of the lab .254; those addresses exist
// only on links the lab made, so all lab traffic stays inside namespaces and
// links the test owns. New picks a /24 that no address of the host namespace
// lies in, holding a lock file (/run/lpns.lock) so that labs made at the same
// time by parallel test binaries get different ones.
//
// # Names and cleanup
//
// A lab's namespaces are named lpns-<pid>-<hex>-<label>-sw and
// lpns-<pid>-<hex>-<label>-n<i>, its host link lpn<pid>x<hex>, where pid is
// the process that made the lab and hex is random. Close removes everything
// a lab made. A lab whose process died before it could close it is removed
// by Sweep, which New runs first: any lab whose pid is not a live process is
// stale.
//
// Close does not stop programs started with Node.Command; stop them first.
// A namespace that still has a process in it outlives its name until that
// process exits.
//
// # Requirements
//
// Linux with veth and bridge support, root (CAP_NET_ADMIN and CAP_SYS_ADMIN),
// and the ip command of iproute2 (Debian package iproute2). Nothing else: no
// tc, iptables or nftables.
package netns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	nsPrefix   = "lpns-"          // every namespace a lab makes
	linkPrefix = "lpn"            // the host link of a lab
	netnsDir   = "/run/netns"     // where ip netns keeps namespace names
	lockPath   = "/run/lpns.lock" // serialises subnet choice and sweeping
	hostOctet  = 254              // last octet of the host's lab address
	// MaxNodes is the largest lab New makes; pair wires grow as n².
	MaxNodes = 32
	// ipTimeout bounds one run of the ip command.
	ipTimeout = 30 * time.Second
)

// labBlock is the address block labs take their /24 from (RFC 2544).
var labBlock = netip.MustParsePrefix("198.18.0.0/15")

// Lab is a set of nodes in network namespaces, wired so that any pair can be
// cut apart while the host reaches every node. Its methods are safe for
// concurrent use.
type Lab struct {
	id       string // lpns-<pid>-<hex>-<label>, prefix of its namespace names
	hostLink string
	subnet   netip.Prefix
	host     netip.Addr
	sw       string
	nodes    []*Node

	mu     sync.Mutex
	closed bool
}

// Node is one member of a Lab: a network namespace with one address.
type Node struct {
	index int
	ns    string
	addr  netip.Addr
}

// New makes a lab of n nodes (1 ≤ n ≤ MaxNodes), all connected. The label
// (sanitised and shortened) becomes part of the namespace names, to tell
// labs apart when debugging; it need not be unique. New first removes stale
// labs (see Sweep). If New fails it removes whatever it had made.
func New(label string, n int) (*Lab, error) {
	if n < 1 || n > MaxNodes {
		return nil, fmt.Errorf("netns: %d nodes: want 1 to %d", n, MaxNodes)
	}
	unlock, err := lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	_ = sweep() // best effort: a stale lab we cannot remove does not stop a new one

	subnet, err := freeSubnet()
	if err != nil {
		return nil, err
	}
	l := newLab(label, n, subnet)
	if err := l.build(); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

// newLab names a lab's parts; it makes nothing.
func newLab(label string, n int, subnet netip.Prefix) *Lab {
	pid := os.Getpid()
	var id, hostLink string
	for range 100 {
		suffix := fmt.Sprintf("%04x", rand.N(0x10000))
		id = fmt.Sprintf("%s%d-%s-%s", nsPrefix, pid, suffix, sanitise(label))
		hostLink = fmt.Sprintf("%s%dx%s", linkPrefix, pid, suffix)
		if !labExists(id, hostLink) {
			break
		}
	}
	base := subnet.Addr().As4()
	l := &Lab{
		id:       id,
		hostLink: hostLink,
		subnet:   subnet,
		host:     netip.AddrFrom4([4]byte{base[0], base[1], base[2], hostOctet}),
		sw:       id + "-sw",
	}
	for i := range n {
		l.nodes = append(l.nodes, &Node{
			index: i,
			ns:    fmt.Sprintf("%s-n%d", id, i),
			addr:  netip.AddrFrom4([4]byte{base[0], base[1], base[2], byte(i + 1)}),
		})
	}
	return l
}

// labExists reports whether a lab's switch namespace or host link exists.
func labExists(id, hostLink string) bool {
	if _, err := os.Stat(filepath.Join(netnsDir, id+"-sw")); err == nil {
		return true
	}
	_, err := net.InterfaceByName(hostLink)
	return err == nil
}

// sanitise keeps a label usable inside a file name, and short.
func sanitise(label string) string {
	b := []byte(label)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	if len(b) > 24 {
		b = b[:24]
	}
	if len(b) == 0 {
		return "lab"
	}
	return string(b)
}

// freeSubnet picks, at random, a /24 of labBlock that holds no address of
// the host namespace.
func freeSubnet() (netip.Prefix, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("netns: host addresses: %w", err)
	}
	subnets := 1 << (24 - labBlock.Bits())
	used := make([]bool, subnets)
	for _, a := range addrs {
		ipnet, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		addr, ok := netip.AddrFromSlice(ipnet.IP.To4())
		if ok && labBlock.Contains(addr) {
			used[subnetIndex(addr)] = true
		}
	}
	var free []int
	for k, u := range used {
		if !u {
			free = append(free, k)
		}
	}
	if len(free) == 0 {
		return netip.Prefix{}, fmt.Errorf("netns: every /24 of %s is in use", labBlock)
	}
	k := free[rand.N(len(free))]
	b := labBlock.Addr().As4()
	var out [4]byte
	binary.BigEndian.PutUint32(out[:], binary.BigEndian.Uint32(b[:])+uint32(k)<<8)
	return netip.PrefixFrom(netip.AddrFrom4(out), 24), nil
}

// subnetIndex is the number of the /24 of labBlock that addr lies in.
func subnetIndex(addr netip.Addr) int {
	a, b := addr.As4(), labBlock.Addr().As4()
	return int(binary.BigEndian.Uint32(a[:])-binary.BigEndian.Uint32(b[:])) >> 8
}

// Interface names. Those in a node's namespace: "host" (to the host bridge)
// and "peer<j>" (the wire to node j). Those in the switch namespace: "uplink"
// (peer of the host link), "hb" (the host bridge), "n<i>h" (node i's port on
// it), "n<i>p<j>" (node i's end of the wire to j, switch side) and "b<i>x<j>"
// (the bridge of the wire between i < j). Names are always given after the
// "name" keyword: ip reads a bare word such as "up" or "b" as a keyword.

// bridgeName is the switch's bridge for the wire between nodes i and j.
func bridgeName(i, j int) string {
	i, j = min(i, j), max(i, j)
	return fmt.Sprintf("b%dx%d", i, j)
}

// build makes the namespaces and links of a named lab.
func (l *Lab) build() error {
	h := []string{"netns add " + l.sw}
	for _, n := range l.nodes {
		h = append(h, "netns add "+n.ns)
	}
	h = append(h, fmt.Sprintf("link add name %s type veth peer name uplink netns %s", l.hostLink, l.sw))
	for _, n := range l.nodes {
		i := n.index
		h = append(h, fmt.Sprintf("link add name host netns %s type veth peer name n%dh netns %s", n.ns, i, l.sw))
		for j := range l.nodes {
			if j != i {
				h = append(h, fmt.Sprintf("link add name peer%d netns %s type veth peer name n%dp%d netns %s", j, n.ns, i, j, l.sw))
			}
		}
	}
	h = append(h,
		fmt.Sprintf("addr add %s/%d dev %s", l.host, l.subnet.Bits(), l.hostLink),
		"link set "+l.hostLink+" up")
	if err := runIP("", h); err != nil {
		return err
	}

	s := []string{"link set lo up", "link add name hb type bridge", "link set uplink master hb", "link set uplink up"}
	for i := range l.nodes {
		port := fmt.Sprintf("n%dh", i)
		s = append(s, "link set "+port+" master hb", "link set "+port+" type bridge_slave isolated on", "link set "+port+" up")
	}
	s = append(s, "link set hb up")
	for i := range l.nodes {
		for j := i + 1; j < len(l.nodes); j++ {
			b := bridgeName(i, j)
			s = append(s,
				"link add name "+b+" type bridge",
				fmt.Sprintf("link set n%dp%d master %s", i, j, b),
				fmt.Sprintf("link set n%dp%d master %s", j, i, b),
				fmt.Sprintf("link set n%dp%d up", i, j),
				fmt.Sprintf("link set n%dp%d up", j, i),
				"link set "+b+" up")
		}
	}
	if err := runIP(l.sw, s); err != nil {
		return err
	}

	for _, n := range l.nodes {
		c := []string{
			"link set lo up",
			"link set host up",
			fmt.Sprintf("addr add %s/32 dev host", n.addr),
			fmt.Sprintf("route add %s/32 dev host src %s", l.host, n.addr),
		}
		for _, p := range l.nodes {
			if p.index == n.index {
				continue
			}
			dev := fmt.Sprintf("peer%d", p.index)
			c = append(c,
				"link set "+dev+" up",
				fmt.Sprintf("addr add %s/32 dev %s", n.addr, dev),
				fmt.Sprintf("route add %s/32 dev %s src %s", p.addr, dev, n.addr))
		}
		if err := runIP(n.ns, c); err != nil {
			return err
		}
	}
	return nil
}

// Name is the lab's identifier, the prefix of its namespaces' names.
func (l *Lab) Name() string { return l.id }

// Len is the number of nodes.
func (l *Lab) Len() int { return len(l.nodes) }

// Node returns node i; it panics if i is out of range.
func (l *Lab) Node(i int) *Node { return l.nodes[i] }

// HostAddr is the address of the host's end of the lab: the source address
// of the test process's connections to nodes.
func (l *Lab) HostAddr() netip.Addr { return l.host }

// Subnet is the /24 the lab's addresses come from.
func (l *Lab) Subnet() netip.Prefix { return l.subnet }

// HostLink is the name of the lab's one link in the host namespace.
func (l *Lab) HostLink() string { return l.hostLink }

// Namespaces lists every namespace the lab made: the switch's, then the
// nodes' in order.
func (l *Lab) Namespaces() []string {
	out := []string{l.sw}
	for _, n := range l.nodes {
		out = append(out, n.ns)
	}
	return out
}

// Cut stops all traffic between nodes i and j, both ways. Each keeps its
// links up and its traffic with the host and the other nodes.
func (l *Lab) Cut(i, j int) error {
	if err := l.checkPair(i, j); err != nil {
		return err
	}
	return l.setWires("down", [][2]int{{i, j}})
}

// Isolate cuts node i from every other node, both ways. The host still
// reaches node i, and the other nodes still reach each other.
func (l *Lab) Isolate(i int) error {
	if i < 0 || i >= len(l.nodes) {
		return fmt.Errorf("netns: isolate node %d: lab has %d nodes", i, len(l.nodes))
	}
	var pairs [][2]int
	for j := range l.nodes {
		if j != i {
			pairs = append(pairs, [2]int{i, j})
		}
	}
	return l.setWires("down", pairs)
}

// Heal restores every wire that Cut or Isolate took down.
func (l *Lab) Heal() error {
	var pairs [][2]int
	for i := range l.nodes {
		for j := i + 1; j < len(l.nodes); j++ {
			pairs = append(pairs, [2]int{i, j})
		}
	}
	return l.setWires("up", pairs)
}

func (l *Lab) checkPair(i, j int) error {
	n := len(l.nodes)
	if i < 0 || i >= n || j < 0 || j >= n || i == j {
		return fmt.Errorf("netns: cut %d from %d: want two different nodes of %d", i, j, n)
	}
	return nil
}

// setWires sets the bridges of the given pairs' wires up or down.
func (l *Lab) setWires(state string, pairs [][2]int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("netns: lab %s is closed", l.id)
	}
	if len(pairs) == 0 {
		return nil
	}
	var cmds []string
	for _, p := range pairs {
		cmds = append(cmds, "link set "+bridgeName(p[0], p[1])+" "+state)
	}
	return runIP(l.sw, cmds)
}

// Close removes the lab's host link and namespaces (and so every link in
// them). It may be called more than once; later calls do nothing.
func (l *Lab) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	// The host link goes first and explicitly: a deleted namespace's links
	// are destroyed asynchronously, so waiting for that would leave the host
	// link (and its subnet) behind for a moment.
	errs := []error{removeLink(l.hostLink)}
	for _, ns := range l.Namespaces() {
		errs = append(errs, removeNamespace(ns))
	}
	return errors.Join(errs...)
}

// Addr is the node's address in the lab.
func (n *Node) Addr() netip.Addr { return n.addr }

// Namespace is the name of the node's network namespace, as ip netns knows it.
func (n *Node) Namespace() string { return n.ns }

// Command returns a Cmd that runs the named program inside the node's
// namespace, through "ip netns exec". ip replaces itself with the program,
// so the Cmd's Process is the program's own.
func (n *Node) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", n.execArgs(name, args)...)
}

// CommandContext is Command with a context that kills the program when done.
func (n *Node) CommandContext(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", n.execArgs(name, args)...)
}

func (n *Node) execArgs(name string, args []string) []string {
	return slices.Concat([]string{"netns", "exec", n.ns, name}, args)
}

// Sweep removes stale labs: namespaces and host links named by this package
// whose creating process is gone. Labs of live processes, including this
// one, are left alone. New calls it; a test binary may call it too.
func Sweep() error {
	unlock, err := lock()
	if err != nil {
		return err
	}
	defer unlock()
	return sweep()
}

func sweep() error {
	var errs []error
	entries, err := os.ReadDir(netnsDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, fmt.Errorf("netns: %w", err))
	}
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), nsPrefix)
		if !ok {
			continue
		}
		pid, _, _ := strings.Cut(rest, "-")
		if stale(pid) {
			errs = append(errs, removeNamespace(e.Name()))
		}
	}
	ifaces, err := net.Interfaces()
	if err != nil {
		errs = append(errs, fmt.Errorf("netns: %w", err))
	}
	for _, ifc := range ifaces {
		rest, ok := strings.CutPrefix(ifc.Name, linkPrefix)
		if !ok {
			continue
		}
		pid, _, ok := strings.Cut(rest, "x")
		if ok && stale(pid) {
			errs = append(errs, removeLink(ifc.Name))
		}
	}
	return errors.Join(errs...)
}

// stale reports whether pid names a process other than this one that no
// longer exists.
func stale(pid string) bool {
	p, err := strconv.Atoi(pid)
	if err != nil || p <= 0 || p == os.Getpid() {
		return false
	}
	return errors.Is(syscall.Kill(p, 0), syscall.ESRCH)
}

// removeNamespace deletes a named namespace; one already gone is no error.
func removeNamespace(name string) error {
	err := runIP("", []string{"netns del " + name})
	if _, statErr := os.Stat(filepath.Join(netnsDir, name)); errors.Is(statErr, fs.ErrNotExist) {
		return nil
	}
	return err
}

// removeLink deletes a link of the host namespace; one already gone is no
// error.
func removeLink(name string) error {
	err := runIP("", []string{"link del dev " + name})
	if _, lookErr := net.InterfaceByName(name); lookErr != nil {
		return nil
	}
	return err
}

// runIP runs the ip command on a batch of commands, in namespace ns ("" for
// the host namespace). ip stops at the first command that fails.
func runIP(ns string, cmds []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), ipTimeout)
	defer cancel()
	args := []string{"-batch", "-"}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Stdin = strings.NewReader(strings.Join(cmds, "\n") + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		where := "host namespace"
		if ns != "" {
			where = "namespace " + ns
		}
		return fmt.Errorf("netns: ip in %s: %w: %s", where, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// lock takes the lock file that serialises subnet choice and sweeping
// between processes, and returns its release.
func lock() (func(), error) {
	f, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("netns: lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("netns: lock %s: %w", lockPath, err)
	}
	return func() { f.Close() }, nil // closing releases the flock
}
