package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"logpipe/brokerd/metadata"
	"logpipe/brokerd/quorum"
	"logpipe/brokerd/wire"
)

// openMetadata opens this node's replica of the metadata quorum and waits
// until it serves a current image with a cluster id: a new cluster's first
// controller names it; a node whose log dirs belong to another cluster is
// refused. A node upgraded from the single-file metadata store of earlier
// releases carries its image over into the quorum once.
//
// A broker-only node is a non-voter: it opens its inter-broker listener
// now, for the leader's Raft connections come there (ClientListeners
// hands the rest to the caller), and registers with the controller
// first, which adds it to the quorum.
//
// For a combined node of a cluster it also returns the controller
// listener's Kafka side.
func (b *Broker) openMetadata(ctx context.Context) (*quorum.Store, net.Listener, error) {
	cfg := b.cfg
	voters, _ := cfg.Voters()
	qc := quorum.Config{
		NodeID:    cfg.NodeID,
		Dir:       cfg.metadataDir(),
		Voters:    voters,
		ClusterID: func() string { return dirsClusterID(cfg.Dirs()) },
		Log:       b.log.With("component", "quorum"),
	}
	var kafkaLn net.Listener
	if host, port, ok, _ := cfg.ControllerAddr(); ok {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(int(port))))
		if err != nil {
			return nil, nil, fmt.Errorf("broker: controller listener (node %d's voter address): %w; is a node with node.id %d already running?", cfg.NodeID, err, cfg.NodeID)
		}
		qc.Listener, kafkaLn = b.splitControllerListener(ln)
	}
	if cfg.brokerOnly() {
		ib, _ := cfg.interBrokerListener()
		ln, err := listen(ib)
		if err != nil {
			return nil, nil, err
		}
		qc.Listener, b.clientLn = b.splitInterBrokerListener(ln, ib)
		qc.Advertise = cfg.replicationAddr()
	}
	// The Raft streams are protected as the controller listener is,
	// whether they come there (a voter) or to the inter-broker listener
	// (a broker-only node).
	if ctl := cfg.controllerSpec(); qc.Listener != nil {
		if ctl.tls() {
			qc.DialTLS = b.controllerTLS
		}
		if ctl.sasl() {
			qc.StreamAuth = b.raftStreamAuth()
		}
	}
	store, err := quorum.Open(qc)
	if err != nil {
		if qc.Listener != nil {
			qc.Listener.Close()
		}
		return nil, nil, err
	}
	fail := func(err error) (*quorum.Store, net.Listener, error) {
		store.Close()
		return nil, nil, err
	}
	if cfg.brokerOnly() {
		if err := b.join(ctx, store.ClusterID()); err != nil {
			return fail(err)
		}
	}
	if err := b.waitQuorum(ctx, store, func(s *quorum.Store) bool { return s.Leader() >= 0 }, store.WaitLeader); err != nil {
		return fail(err)
	}
	if err := migrateLocal(ctx, store, cfg.Dirs()[0]); err != nil {
		return fail(err)
	}
	if store.IsLeader() && store.Image().ClusterID == "" {
		id := dirsClusterID(cfg.Dirs())
		if id == "" {
			id = metadata.NewClusterID()
		}
		err := store.Propose(ctx, metadata.Record{SetClusterID: &id})
		if err != nil && !errors.Is(err, metadata.ErrInvalidRecord) && !errors.Is(err, quorum.ErrNotLeader) {
			return fail(err)
		}
	}
	hasID := func(s *quorum.Store) bool { return s.Image().ClusterID != "" }
	if err := b.waitQuorum(ctx, store, hasID, func(ctx context.Context) error {
		for !hasID(store) {
			select {
			case <-store.Changed():
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}); err != nil {
		return fail(err)
	}
	return store, kafkaLn, nil
}

// ClientListener is a listener to serve clients on and how to protect
// it.
type ClientListener struct {
	net.Listener
	Security wire.Security
}

// ClientListeners opens the client listeners (every one of listeners but
// the controller's). On a broker-only node the inter-broker one is the
// listener opened at start, whose Raft connections (the metadata log from
// the controller) go to the quorum and all else to the caller
// (splitInterBrokerListener); with a TLS controller listener its
// connections come with their TLS handshake done.
func (b *Broker) ClientListeners() ([]ClientListener, error) {
	ls, err := b.cfg.clientListeners()
	if err != nil {
		return nil, err
	}
	ib, _ := b.cfg.interBrokerListener()
	var out []ClientListener
	for _, l := range ls {
		var ln net.Listener
		sec := b.wireSecurity(l)
		if l.Name == ib.Name && b.clientLn != nil {
			ln = b.clientLn
			if b.cfg.controllerSpec().tls() {
				sec.TLS = nil
			}
		} else if ln, err = listen(l); err != nil {
			for _, o := range out {
				o.Close()
			}
			return nil, err
		}
		out = append(out, ClientListener{Listener: ln, Security: sec})
	}
	return out, nil
}

// splitInterBrokerListener shares a broker-only node's inter-broker
// listener ln (l) between the Raft streams the quorum's leader sends it
// and Kafka clients. With a PLAINTEXT or SASL_PLAINTEXT controller
// listener the streams come unencrypted and their first byte tells them
// apart, ahead of the listener's own TLS if it has one. With an SSL or
// SASL_SSL one the listener is itself TLS (validateListeners) and every
// connection's handshake is run here: a Raft stream (ALPN logpipe-raft)
// gets the controller listener's keystore, truststore and
// ssl.client.auth, as on a voter's controller listener, a Kafka client
// the inter-broker listener's own. A refused handshake is logged.
func (b *Broker) splitInterBrokerListener(ln net.Listener, l listenerSpec) (raft, kafka net.Listener) {
	ctl := b.cfg.controllerSpec()
	if !ctl.tls() {
		return quorum.SplitListener(ln)
	}
	cs, ls := b.sec.of(ctl.Name), b.sec.of(l.Name)
	return quorum.SplitSharedTLSListener(ln, cs.serverTLS(), ls.serverTLS(), ctl.sasl(), ls.authTimeout(), b.handshakeRefused(l.Name, "inter-broker"))
}

func listen(l listenerSpec) (net.Listener, error) {
	ln, err := net.Listen("tcp", l.listenAddr())
	if err != nil {
		return nil, fmt.Errorf("broker: listener %s: %w", l.Name, err)
	}
	return ln, nil
}

// waitQuorum runs wait until done holds, logging every few seconds while
// it does not, and failing at once when a voter refuses this node as one
// of another cluster.
func (b *Broker) waitQuorum(ctx context.Context, s *quorum.Store, done func(*quorum.Store) bool, wait func(context.Context) error) error {
	for !done(s) {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := wait(wctx)
		cancel()
		if ref := s.Refusal(); errors.Is(ref, quorum.ErrClusterMismatch) && !done(s) {
			return fmt.Errorf("broker: refusing to start: %w", ref)
		}
		if err == nil || done(s) {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("broker: waiting for the metadata quorum: %w", ctx.Err())
		}
		attrs := []any{"voters", b.cfg.ControllerQuorumVoters, "leader", s.Leader(), "err", err}
		if b.cfg.brokerOnly() {
			attrs = append(attrs, "log_comes_to", b.cfg.replicationAddr())
		}
		b.log.Warn("waiting for the metadata quorum", attrs...)
	}
	return nil
}

// migrateLocal carries the image of the single-file store of earlier
// releases (metadata.LocalFile in dir) into a quorum that has none, then
// renames the file so it is read only once.
func migrateLocal(ctx context.Context, store *quorum.Store, dir string) error {
	path := filepath.Join(dir, metadata.LocalFile)
	if _, err := os.Stat(path); err != nil || !store.IsLeader() || store.Image().Offset >= 0 && store.Image().ClusterID != "" {
		return nil
	}
	local, err := metadata.OpenLocal(dir)
	if err != nil {
		return err
	}
	recs := local.Image().Records()
	local.Close()
	if err := store.Propose(ctx, recs...); err != nil {
		return fmt.Errorf("broker: moving %s into the metadata quorum: %w", path, err)
	}
	return os.Rename(path, path+".migrated")
}

// dirsClusterID returns the cluster id the log dirs' meta.properties name,
// or "".
func dirsClusterID(dirs []string) string {
	for _, d := range dirs {
		if b, err := os.ReadFile(filepath.Join(d, "meta.properties")); err == nil {
			if id := propValue(string(b), "cluster.id"); id != "" {
				return id
			}
		}
	}
	return ""
}

// watchMetadata brings the hosted partitions in line with the metadata
// whenever it changes, whoever changed it.
func (b *Broker) watchMetadata() {
	defer b.wg.Done()
	for {
		changed := b.meta.Changed()
		if err := b.reconcile(); err != nil {
			b.log.Error("applying metadata", "err", err)
		}
		select {
		case <-changed:
		case <-b.quit:
			return
		}
	}
}

// Failed is closed when this node cannot follow the metadata any more
// (a record of a newer release); the process should stop.
func (b *Broker) Failed() <-chan struct{} { return b.meta.Failed() }

// Err says why Failed was closed.
func (b *Broker) Err() error { return b.meta.Err() }
