package broker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/controller"
	"logpipe/brokerd/quorum"
	"logpipe/brokerd/wire"
)

// The control plane of a node: while it leads the metadata quorum it runs
// the active controller (package controller); every node, the
// controller's own included, registers with the active controller and
// heartbeats to it with Kafka's inter-broker APIs (BrokerRegistration,
// BrokerHeartbeat, AllocateProducerIds, AlterPartition), which the
// controller listener serves. Requests that change the metadata
// (CreateTopics, DeleteTopics, …) reaching a node that is not the
// controller are forwarded to it, as Kafka's brokers forward them.

// controllerOnly are the APIs served only on the controller listener.
var controllerOnly = map[int16]bool{56: true, 58: true, 62: true, 63: true, 67: true}

// forwarded are the client APIs a node that is not the active controller
// forwards to it.
var forwarded = map[int16]bool{19: true, 20: true, 30: true, 31: true, 33: true, 37: true, 44: true, 45: true, 51: true, 55: true}

// controlPlane is a node's control-plane state.
type controlPlane struct {
	// ctl is the active controller while this node leads the quorum.
	ctl atomic.Pointer[controller.Controller]
	// srv serves the controller listener's Kafka requests; nil for a
	// quorum of one.
	srv *wire.Server
	ln  net.Listener

	incarnation [16]byte
	// epoch is this node's broker epoch, -1 until registered.
	epoch atomic.Int64
	// duplicateSince is when the controller first refused this node's
	// registration as a duplicate (heartbeat loop only).
	duplicateSince time.Time
	// shuttingDown makes heartbeats ask for a controlled shutdown.
	shuttingDown atomic.Bool

	// lanes are connections to the active controller: one for this node's
	// registration and heartbeats, one for everything else, so that a
	// slow forwarded request never delays a heartbeat past the session.
	lanes [2]ctlLane
}

// controllerView is the Kafka handler of the controller listener: the
// controller APIs and the forwarded ones.
type controllerView struct{ b *Broker }

func (v controllerView) Versions(key int16) (int16, int16, bool) {
	r, ok := handlers[key]
	if !ok || !controllerOnly[key] && !forwarded[key] && key != 18 && key != 17 && key != 36 {
		return 0, 0, false
	}
	return r.min, r.max, true
}

func (v controllerView) Handle(ctx context.Context, c *wire.Conn, h wire.Header, req kmsg.Request) (kmsg.Response, error) {
	return handlers[h.APIKey].fn(v.b, ctx, c, h, req)
}

// serveControllerListener starts the controller listener's Kafka server.
// On an SSL or SASL_SSL controller listener the connections come with
// their TLS handshake done (splitControllerListener); a peer's principal
// is its certificate's on SSL, its SASL login's on SASL_PLAINTEXT and
// SASL_SSL.
func (b *Broker) serveControllerListener(ln net.Listener) {
	b.cp.ln = ln
	b.cp.srv = &wire.Server{Handler: controllerView{b}, Log: b.log.With("listener", "controller")}
	sec := wire.Security{Listener: protoPlaintext}
	if ctl := b.cfg.controllerSpec(); ctl.Protocol != protoPlaintext {
		ls := b.sec.of(ctl.Name)
		sec = wire.Security{Listener: ctl.Name, SASL: ctl.sasl(), MaxPreAuthBytes: ls.cfg.SASLServerMaxReceiveSize, AuthTimeout: ls.authTimeout()}
		if ctl.tls() {
			sec.CertPrincipal = ls.certPrincipal
		}
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if err := b.cp.srv.ServeSecured(ln, sec); err != nil && !errors.Is(err, wire.ErrServerClosed) {
			b.log.Error("controller listener stopped", "err", err)
		}
	}()
}

// splitControllerListener shares the controller listener ln between the
// metadata quorum's Raft streams and the Kafka requests. On an SSL or
// SASL_SSL controller listener every connection first completes a TLS
// handshake with the controller listener's keystore, asking for client
// certificates as its ssl.client.auth says; a refused handshake is
// logged. On SASL_SSL a Raft stream needs no certificate: it logs in
// with SASL in its handshake (raftStreamAuth).
func (b *Broker) splitControllerListener(ln net.Listener) (raft, kafka net.Listener) {
	ctl := b.cfg.controllerSpec()
	if !ctl.tls() {
		return quorum.SplitListener(ln)
	}
	ls := b.sec.of(ctl.Name)
	split := quorum.SplitTLSListener
	if ctl.sasl() {
		split = quorum.SplitSASLTLSListener
	}
	return split(ln, ls.serverTLS(), ls.authTimeout(), b.handshakeRefused(ctl.Name, "controller"))
}

// handshakeRefused logs a TLS handshake refused on listener, whose
// handshakes are run ahead of the Kafka server since Raft streams come
// there too; kind says which listener it is to this node ("controller",
// "inter-broker").
func (b *Broker) handshakeRefused(listener, kind string) func(net.Addr, error) {
	log := b.log.With("listener", listener)
	return func(remote net.Addr, err error) {
		log.Warn(kind+" listener: TLS handshake refused", "remote", remote, "err", err)
	}
}

// dialController connects to the controller listener at addr, over TLS
// when it is SSL or SASL_SSL, logging in with SASL when it is SASL_*.
func (b *Broker) dialController(addr string, timeout time.Duration) (*wire.Client, error) {
	cfg, err := b.controllerTLS(addr)
	if err != nil {
		return nil, err
	}
	cs := wire.ClientSecurity{TLS: cfg}
	cs.SASLMechanism, cs.SASLUser, cs.SASLPassword = b.controllerSASL()
	return wire.DialSecured(addr, fmt.Sprintf("brokerd-%d", b.cfg.NodeID), timeout, cs)
}

// runController runs the active controller while this node leads the
// quorum, ticking it every heartbeat interval.
func (b *Broker) runController() {
	defer b.wg.Done()
	t := time.NewTicker(b.cfg.heartbeatInterval())
	defer t.Stop()
	rebalanceEvery := time.Duration(b.cfg.LeaderImbalanceCheckSeconds) * time.Second
	var lastRebalance time.Time
	// previous is the last other node seen leading the quorum: when this
	// node takes over, that one was last heard from at LastContact, and
	// its broker session runs from then (if it died with the quorum's
	// leadership, it is fenced a session after it died, not a session
	// after the election).
	previous := int32(-1)
	for {
		leaderChanged := b.meta.LeaderChanged()
		switch ctl := b.cp.ctl.Load(); {
		case b.meta.IsLeader() && ctl == nil:
			b.log.Info("this node is the active controller")
			seen := map[int32]time.Time{}
			if t := b.meta.LastContact(); previous >= 0 && !t.IsZero() {
				seen[previous] = t
			}
			b.cp.ctl.Store(controller.New(b.meta, controller.Config{
				SessionTimeout:        b.cfg.sessionTimeout(),
				UncleanLeaderElection: b.cfg.UncleanLeaderElection,
				Self:                  b.cfg.NodeID,
				SelfIncarnation:       fmt.Sprintf("%x", b.cp.incarnation),
				LastSeen:              seen,
				Now:                   b.now,
				Log:                   b.log.With("component", "controller"),
			}))
			lastRebalance = b.now()
		case !b.meta.IsLeader() && ctl != nil:
			b.log.Info("this node is no longer the active controller")
			b.cp.ctl.Store(nil)
		case !b.meta.IsLeader():
			if l := b.meta.Leader(); l >= 0 && l != b.cfg.NodeID {
				previous = l
			}
		case ctl != nil:
			rebalance := b.cfg.AutoLeaderRebalance && b.now().Sub(lastRebalance) >= rebalanceEvery
			if rebalance {
				lastRebalance = b.now()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := ctl.Tick(ctx, rebalance); err != nil && !errors.Is(err, quorum.ErrNotLeader) {
				b.log.Warn("controller tick", "err", err)
			}
			cancel()
		}
		select {
		case <-b.quit:
			return
		case <-t.C:
		case <-leaderChanged:
		case <-b.sessionExpiry():
		}
	}
}

// sessionExpiry returns a channel that fires just after the first broker
// session runs out, if that comes before the next heartbeat-interval
// tick; nil otherwise. A dead broker is then fenced, and its partitions
// get new leaders, when its session ends rather than up to a tick later.
func (b *Broker) sessionExpiry() <-chan time.Time {
	ctl := b.cp.ctl.Load()
	if ctl == nil {
		return nil
	}
	at := ctl.NextExpiry()
	if at.IsZero() {
		return nil
	}
	d := at.Sub(b.now())
	if d >= b.cfg.heartbeatInterval() {
		return nil
	}
	return time.After(max(d, 0) + time.Millisecond)
}

// activeController returns the controller if this node is it, else an
// error with NOT_CONTROLLER.
func (b *Broker) activeController() (*controller.Controller, error) {
	if c := b.cp.ctl.Load(); c != nil && b.meta.IsLeader() {
		return c, nil
	}
	return nil, newAPIError(kerr.NotController, "node %d is not the active controller (node %d is)", b.cfg.NodeID, b.meta.Leader())
}

// forward sends a client's request to the active controller, at the
// client's version, and returns the controller's answer. With
// authorization on, the request goes in an envelope naming the client
// (58_envelope.go).
func (b *Broker) forward(ctx context.Context, c *wire.Conn, h wire.Header, req kmsg.Request) (kmsg.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.requestTimeout())
	defer cancel()
	if b.authz == nil {
		return b.sendToController(ctx, req)
	}
	resp, err := b.sendToController(ctx, envelope(ctx, c, h, req))
	if err != nil {
		return nil, err
	}
	return unwrap(req, resp)
}

// forwardFailed is the answer to a forwarded request the controller did
// not answer within request.timeout.ms: REQUEST_TIMED_OUT for every item,
// which clients retry, as Kafka's brokers answer when forwarding times
// out.
func forwardFailed(req kmsg.Request, err error) kmsg.Response {
	return errorResponse(req, kerr.RequestTimedOut.Code, fmt.Sprintf("no answer from the active controller: %v", err))
}

// errorResponse answers every item of a request that can be forwarded
// with code.
func errorResponse(req kmsg.Request, code int16, msg string) kmsg.Response {
	resp := req.ResponseKind()
	switch req := req.(type) {
	case *kmsg.CreateTopicsRequest:
		r := resp.(*kmsg.CreateTopicsResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewCreateTopicsResponseTopic()
			rt.Topic, rt.ErrorCode, rt.ErrorMessage = t.Topic, code, &msg
			r.Topics = append(r.Topics, rt)
		}
	case *kmsg.DeleteTopicsRequest:
		r := resp.(*kmsg.DeleteTopicsResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.TopicID, rt.ErrorCode, rt.ErrorMessage = t.Topic, t.TopicID, code, &msg
			r.Topics = append(r.Topics, rt)
		}
		for _, name := range req.TopicNames {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.ErrorCode, rt.ErrorMessage = &name, code, &msg
			r.Topics = append(r.Topics, rt)
		}
	case *kmsg.CreatePartitionsRequest:
		r := resp.(*kmsg.CreatePartitionsResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewCreatePartitionsResponseTopic()
			rt.Topic, rt.ErrorCode, rt.ErrorMessage = t.Topic, code, &msg
			r.Topics = append(r.Topics, rt)
		}
	case *kmsg.AlterConfigsRequest:
		r := resp.(*kmsg.AlterConfigsResponse)
		for _, rc := range req.Resources {
			rr := kmsg.NewAlterConfigsResponseResource()
			rr.ResourceType, rr.ResourceName, rr.ErrorCode, rr.ErrorMessage = rc.ResourceType, rc.ResourceName, code, &msg
			r.Resources = append(r.Resources, rr)
		}
	case *kmsg.DescribeQuorumRequest:
		resp.(*kmsg.DescribeQuorumResponse).ErrorCode = code
	case *kmsg.AlterUserSCRAMCredentialsRequest:
		r := resp.(*kmsg.AlterUserSCRAMCredentialsResponse)
		var users []string
		for _, d := range req.Deletions {
			users = append(users, d.Name)
		}
		for _, u := range req.Upsertions {
			users = append(users, u.Name)
		}
		slices.Sort(users)
		for _, user := range slices.Compact(users) {
			rr := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
			rr.User, rr.ErrorCode, rr.ErrorMessage = user, code, &msg
			r.Results = append(r.Results, rr)
		}
	case *kmsg.AlterPartitionAssignmentsRequest:
		r := resp.(*kmsg.AlterPartitionAssignmentsResponse)
		r.ErrorCode, r.ErrorMessage = code, &msg
	case *kmsg.IncrementalAlterConfigsRequest:
		r := resp.(*kmsg.IncrementalAlterConfigsResponse)
		for _, rc := range req.Resources {
			rr := kmsg.NewIncrementalAlterConfigsResponseResource()
			rr.ResourceType, rr.ResourceName, rr.ErrorCode, rr.ErrorMessage = rc.ResourceType, rc.ResourceName, code, &msg
			r.Resources = append(r.Resources, rr)
		}
	case *kmsg.CreateACLsRequest:
		r := resp.(*kmsg.CreateACLsResponse)
		for range req.Creations {
			rr := kmsg.NewCreateACLsResponseResult()
			rr.ErrorCode, rr.ErrorMessage = code, &msg
			r.Results = append(r.Results, rr)
		}
	case *kmsg.DeleteACLsRequest:
		r := resp.(*kmsg.DeleteACLsResponse)
		for range req.Filters {
			rr := kmsg.NewDeleteACLsResponseResult()
			rr.ErrorCode, rr.ErrorMessage = code, &msg
			r.Results = append(r.Results, rr)
		}
	}
	return resp
}

// toController sends req to the active controller and returns its answer:
// handled here when this node is the controller, else over the controller
// listener of the node that is. It retries while no controller is known
// or the connection fails, until ctx ends.
func (b *Broker) toController(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	req.SetVersion(handlers[req.Key()].max)
	return b.sendToController(ctx, req)
}

// sendToController is toController for a request whose version is set.
func (b *Broker) sendToController(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	for {
		resp, err := b.toControllerOnce(ctx, req)
		if err == nil {
			return resp, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("broker: %s to the controller: %w (last: %v)", kmsg.NameForKey(req.Key()), ctx.Err(), err)
		case <-b.quit:
			return nil, fmt.Errorf("broker: %s to the controller: stopping", kmsg.NameForKey(req.Key()))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (b *Broker) toControllerOnce(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	leader := b.meta.Leader()
	if leader < 0 {
		return nil, errors.New("no controller is elected")
	}
	if leader == b.cfg.NodeID {
		return handlers[req.Key()].fn(b, ctx, nil, wire.Header{APIKey: req.Key(), APIVersion: req.GetVersion()}, req)
	}
	addr := b.voterAddr(leader)
	if addr == "" {
		return nil, fmt.Errorf("node %d is not a voter", leader)
	}
	lane := &b.cp.lanes[1]
	if k := req.Key(); k == 62 || k == 63 {
		lane = &b.cp.lanes[0]
	}
	lane.mu.Lock()
	defer lane.mu.Unlock()
	if lane.client != nil && lane.to != leader {
		lane.client.Close()
		lane.client = nil
	}
	deadline := time.Now().Add(b.cfg.requestTimeout())
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if lane.client == nil {
		c, err := b.dialController(addr, time.Until(deadline))
		if err != nil {
			return nil, err
		}
		lane.client, lane.to = c, leader
	}
	resp, err := lane.client.Request(req, deadline)
	if err != nil {
		lane.client.Close()
		lane.client = nil
	}
	return resp, err
}

// ctlLane is one connection to the active controller.
type ctlLane struct {
	mu     sync.Mutex // guards client and to
	client *wire.Client
	// to is the node the client is connected to.
	to int32
}

// closeLanes closes the connections to the controller.
func (cp *controlPlane) closeLanes() {
	for i := range cp.lanes {
		l := &cp.lanes[i]
		l.mu.Lock()
		if l.client != nil {
			l.client.Close()
			l.client = nil
		}
		l.mu.Unlock()
	}
}

func (b *Broker) voterAddr(id int32) string {
	voters, _ := b.cfg.Voters()
	for _, v := range voters {
		if v.ID == id {
			return v.Addr
		}
	}
	return ""
}

func newIncarnation() [16]byte {
	var u [16]byte
	_, _ = rand.Read(u[:])
	return u
}
