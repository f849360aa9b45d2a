package devstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// BrokerdClusterOptions says how StartBrokerdCluster runs a cluster of
// brokerd nodes. Bin and Dir are required.
type BrokerdClusterOptions struct {
	// Bin is the path of the brokerd binary.
	Bin string
	// Dir holds each node's data and log (node1/, node2/, ...).
	Dir string
	// Nodes is how many nodes; 0 means 3.
	Nodes int
	// Settings are given to every node, after the cluster's own.
	Settings []string
}

// BrokerdCluster is brokerd nodes started from Kafka's KRaft keys alone,
// each a combined broker and controller on loopback ports, forming one
// metadata quorum. Node ids are 1..n; the methods take an index 0..n-1.
type BrokerdCluster struct {
	opts   BrokerdClusterOptions
	addrs  []string
	ctls   []string
	voters string

	mu    sync.Mutex
	procs []*Process
}

// StartBrokerdCluster starts every node at once (each waits for the
// quorum) and returns when all of them serve clients.
func StartBrokerdCluster(ctx context.Context, opts BrokerdClusterOptions) (*BrokerdCluster, error) {
	if opts.Bin == "" || opts.Dir == "" {
		return nil, errors.New("devstack: StartBrokerdCluster needs Bin and Dir")
	}
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	c := &BrokerdCluster{opts: opts, procs: make([]*Process, opts.Nodes)}
	var voters []string
	for i := range opts.Nodes {
		p1, err := FreePort()
		if err != nil {
			return nil, err
		}
		p2, err := FreePort()
		if err != nil {
			return nil, err
		}
		c.addrs = append(c.addrs, "127.0.0.1:"+strconv.Itoa(p1))
		c.ctls = append(c.ctls, "127.0.0.1:"+strconv.Itoa(p2))
		voters = append(voters, fmt.Sprintf("%d@%s", i+1, c.ctls[i]))
		if err := os.MkdirAll(filepath.Join(opts.Dir, fmt.Sprintf("node%d", i+1)), 0o755); err != nil {
			return nil, fmt.Errorf("devstack: %w", err)
		}
	}
	c.voters = strings.Join(voters, ",")
	errs := make([]error, opts.Nodes)
	var wg sync.WaitGroup
	for i := range opts.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.StartNode(ctx, i)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// StartNode starts node i (again, on its data) and waits until it serves
// clients.
func (c *BrokerdCluster) StartNode(ctx context.Context, i int) error {
	dir := filepath.Join(c.opts.Dir, fmt.Sprintf("node%d", i+1))
	p, err := StartBrokerd(ctx, BrokerdOptions{Bin: c.opts.Bin, Addr: c.addrs[i], DataDir: filepath.Join(dir, "data"),
		Settings: append(VoterSettings(i+1, c.addrs[i], c.ctls[i], c.voters), c.opts.Settings...)})
	if err != nil {
		return fmt.Errorf("devstack: brokerd node %d: %w", i+1, err)
	}
	c.mu.Lock()
	c.procs[i] = p
	c.mu.Unlock()
	return nil
}

// Addrs returns each node's client address.
func (c *BrokerdCluster) Addrs() []string { return c.addrs }

// Bootstrap returns the client addresses joined with commas.
func (c *BrokerdCluster) Bootstrap() string { return strings.Join(c.addrs, ",") }

// Nodes returns how many nodes the cluster has.
func (c *BrokerdCluster) Nodes() int { return len(c.addrs) }

// NodeID returns node i's node.id.
func (c *BrokerdCluster) NodeID(i int) int32 { return int32(i + 1) }

// Process returns node i's running process, or nil.
func (c *BrokerdCluster) Process(i int) *Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.procs[i]
}

// KillNode kills node i with SIGKILL.
func (c *BrokerdCluster) KillNode(i int) {
	if p := c.take(i); p != nil {
		p.Kill()
	}
}

// StopNode stops node i with SIGTERM (a controlled shutdown).
func (c *BrokerdCluster) StopNode(i int) {
	if p := c.take(i); p != nil {
		p.Stop(30 * time.Second)
	}
}

func (c *BrokerdCluster) take(i int) *Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.procs[i]
	c.procs[i] = nil
	return p
}

// Stop stops every node.
func (c *BrokerdCluster) Stop() {
	var wg sync.WaitGroup
	for i := range c.procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.StopNode(i)
		}()
	}
	wg.Wait()
}

// VoterSettings are the -E settings that make a brokerd node node.id id a
// combined broker and controller of the quorum voters
// ("1@host:port,..."), with clients on addr and the quorum on ctl.
func VoterSettings(id int, addr, ctl, voters string) []string {
	return []string{
		"node.id=" + strconv.Itoa(id),
		"process.roles=broker,controller",
		fmt.Sprintf("listeners=PLAINTEXT://%s,CONTROLLER://%s", addr, ctl),
		"controller.listener.names=CONTROLLER",
		"controller.quorum.voters=" + voters,
	}
}
