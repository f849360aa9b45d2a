package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A node's life as a broker of the cluster: it registers with the active
// controller (getting its broker epoch, fenced), heartbeats every
// broker.heartbeat.interval.ms with how far it applied the metadata (and
// is unfenced once caught up), registers again if the controller forgot
// its epoch, and at a controlled shutdown asks, in its heartbeats, to have
// its leadership moved away before it stops. A broker-only node registers
// before anything else (join): that is how it enters the metadata quorum.

// heartbeatLoop runs registration and heartbeats until Close.
func (b *Broker) heartbeatLoop() {
	defer b.wg.Done()
	t := time.NewTicker(b.cfg.heartbeatInterval())
	defer t.Stop()
	for {
		if b.cp.epoch.Load() < 0 {
			b.registerOnce()
		} else {
			b.heartbeatOnce()
		}
		select {
		case <-b.quit:
			return
		case <-t.C:
		}
	}
}

// registrationRequest is this node's BrokerRegistration, naming the
// cluster its data belongs to ("" for a new node).
func (b *Broker) registrationRequest(clusterID string) *kmsg.BrokerRegistrationRequest {
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.BrokerID = b.cfg.NodeID
	req.ClusterID = clusterID
	req.IncarnationID = b.cp.incarnation
	// The inter-broker listener comes first: the controller takes it as
	// the broker's address.
	for _, spec := range b.cfg.registeredListeners() {
		l := kmsg.NewBrokerRegistrationRequestListener()
		l.Name, l.Host, l.Port = spec.Name, spec.AdvHost, uint16(spec.AdvPort)
		l.SecurityProtocol = int16(slices.Index(securityProtocols, spec.Protocol))
		req.Listeners = append(req.Listeners, l)
	}
	if b.cfg.BrokerRack != "" {
		rack := b.cfg.BrokerRack
		req.Rack = &rack
	}
	req.PreviousBrokerEpoch = -1
	return req
}

// registerOnce tries to register once.
func (b *Broker) registerOnce() {
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.requestTimeout())
	defer cancel()
	kresp, err := b.toController(ctx, b.registrationRequest(b.meta.ClusterID()))
	if err != nil {
		b.log.Warn("registering with the controller", "err", err)
		return
	}
	_ = b.registered(kresp.(*kmsg.BrokerRegistrationResponse))
}

// registered takes the controller's answer to a registration: the broker
// epoch, or its refusal, kept in registrationErr when final. It returns
// the answer's error.
func (b *Broker) registered(resp *kmsg.BrokerRegistrationResponse) error {
	err := kerr.ErrorForCode(resp.ErrorCode)
	// Another cluster is final. A duplicate may be this node's own
	// process that just died, whose session has yet to expire: it is
	// final only once it outlived two sessions.
	final := errors.Is(err, kerr.InconsistentClusterID)
	if errors.Is(err, kerr.DuplicateBrokerRegistration) {
		if b.cp.duplicateSince.IsZero() {
			b.cp.duplicateSince = time.Now()
		}
		final = time.Since(b.cp.duplicateSince) > 2*b.cfg.sessionTimeout()
	}
	if final {
		b.registrationErr.Store(&registrationError{fmt.Errorf("broker: the controller refused to register node %d: %w", b.cfg.NodeID, err)})
	}
	if err != nil {
		if !errors.Is(err, kerr.NotController) {
			b.log.Warn("registering with the controller", "err", err)
		}
		return err
	}
	b.cp.epoch.Store(resp.BrokerEpoch)
	b.log.Info("registered with the controller", "broker_epoch", resp.BrokerEpoch)
	return nil
}

// join registers a broker-only node before it follows the metadata: it
// knows no controller yet, only the voters, so it asks them in turn (the
// active controller answers, the others say NOT_CONTROLLER). The
// controller makes the node a non-voter of the quorum, which then sends it
// the log. It returns once the node is registered, refused for good
// (another cluster, a live node with its node.id), or ctx ends.
func (b *Broker) join(ctx context.Context, clusterID string) error {
	voters, _ := b.cfg.Voters()
	req := b.registrationRequest(clusterID)
	req.SetVersion(handlers[req.Key()].max)
	var (
		next     int // the voter to ask first: the one that answered last
		last     error
		lastWarn = time.Now()
	)
	for {
		for k := range voters {
			i := (next + k) % len(voters)
			resp, err := b.askVoter(voters[i].Addr, req)
			if err == nil {
				err = b.registered(resp)
			}
			if err == nil {
				return nil
			}
			if r := b.registrationErr.Load(); r != nil {
				if errors.Is(r.err, kerr.InconsistentClusterID) {
					return fmt.Errorf("%w (this node's data belongs to cluster %s)", r.err, clusterID)
				}
				return r.err
			}
			last = fmt.Errorf("voter %d (%s): %w", voters[i].ID, voters[i].Addr, err)
			if resp != nil && !errors.Is(err, kerr.NotController) {
				next = i
				break // the controller answered (a duplicate, maybe this node's last process): ask it again
			}
		}
		if time.Since(lastWarn) >= 5*time.Second {
			lastWarn = time.Now()
			b.log.Warn("joining the cluster: not registered yet", "voters", b.cfg.ControllerQuorumVoters, "last", last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("broker: registering with the controller: %w (last: %v)", ctx.Err(), last)
		case <-time.After(b.cfg.heartbeatInterval()):
		}
	}
}

// askVoter sends a registration to one voter's controller listener.
func (b *Broker) askVoter(addr string, req *kmsg.BrokerRegistrationRequest) (*kmsg.BrokerRegistrationResponse, error) {
	deadline := time.Now().Add(b.cfg.requestTimeout())
	c, err := b.dialController(addr, b.cfg.requestTimeout())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	resp, err := c.Request(req, deadline)
	if err != nil {
		return nil, err
	}
	return resp.(*kmsg.BrokerRegistrationResponse), nil
}

// heartbeatOnce sends one heartbeat; it returns true once the controller
// allowed a controlled shutdown to go ahead.
func (b *Broker) heartbeatOnce() bool {
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID = b.cfg.NodeID
	req.BrokerEpoch = b.cp.epoch.Load()
	req.CurrentMetadataOffset = b.meta.Image().Offset
	req.WantShutdown = b.cp.shuttingDown.Load()
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.sessionTimeout())
	defer cancel()
	kresp, err := b.toController(ctx, req)
	if err != nil {
		b.log.Warn("heartbeat to the controller", "err", err)
		return false
	}
	resp := kresp.(*kmsg.BrokerHeartbeatResponse)
	switch err := kerr.ErrorForCode(resp.ErrorCode); {
	case errors.Is(err, kerr.StaleBrokerEpoch):
		b.log.Warn("the controller no longer knows this broker's epoch; registering again", "broker_epoch", req.BrokerEpoch)
		b.cp.epoch.Store(-1)
	case err != nil:
		b.log.Debug("heartbeat to the controller", "err", err)
	case req.WantShutdown && resp.ShouldShutdown:
		return true
	}
	return false
}

// registrationError is why the controller refused this node.
type registrationError struct{ err error }

// waitUnfenced waits until the metadata shows this node registered and
// unfenced, or the controller refused it, or ctx ends.
func (b *Broker) waitUnfenced(ctx context.Context) error {
	for {
		changed := b.meta.Changed()
		img := b.meta.Image()
		if br, ok := img.Brokers[b.cfg.NodeID]; ok && !br.Fenced && br.Epoch == b.cp.epoch.Load() {
			return nil
		}
		if r := b.registrationErr.Load(); r != nil {
			return r.err
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("broker: waiting to be unfenced by the controller: %w", ctx.Err())
		case <-time.After(b.cfg.heartbeatInterval()):
		}
	}
}

// controlledShutdown asks the controller to move this node's leadership
// away and waits until it has, or timeout passed. The node's own quorum
// leadership is handed over too.
func (b *Broker) controlledShutdown(timeout time.Duration) {
	others := false
	for _, id := range b.meta.Image().LiveBrokerIDs() {
		others = others || id != b.cfg.NodeID
	}
	if b.cp.epoch.Load() < 0 || !others {
		return // nobody to hand anything to
	}
	b.cp.shuttingDown.Store(true)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if b.heartbeatOnce() {
			b.log.Info("controlled shutdown: leadership moved to other brokers")
			break
		}
		time.Sleep(b.cfg.heartbeatInterval())
	}
	if err := b.meta.TransferLeadership(); err != nil {
		b.log.Warn("controlled shutdown: handing over the controller", "err", err)
	}
}
