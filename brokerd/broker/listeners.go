package broker

import (
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"logpipe/brokerd/metadata"
	"logpipe/brokerd/sasl"
	"logpipe/brokerd/wire"
)

// The security protocols of Kafka listeners.
const (
	protoPlaintext     = "PLAINTEXT"
	protoSSL           = "SSL"
	protoSASLPlaintext = "SASL_PLAINTEXT"
	protoSASLSSL       = "SASL_SSL"
)

// securityProtocols are the protocols in Kafka's order, their position
// being the SecurityProtocol code of BrokerRegistration.
var securityProtocols = []string{protoPlaintext, protoSSL, protoSASLPlaintext, protoSASLSSL}

// listenerSpec is one entry of listeners, with its protocol and the
// address clients are told.
type listenerSpec struct {
	// Name is the listener's name, upper case.
	Name string
	// Protocol is one of securityProtocols.
	Protocol string
	// Host and Port are where it listens.
	Host string
	Port int32
	// AdvHost and AdvPort are what clients are told (advertised.listeners,
	// else the listening address).
	AdvHost string
	AdvPort int32
}

func (l listenerSpec) tls() bool { return l.Protocol == protoSSL || l.Protocol == protoSASLSSL }
func (l listenerSpec) sasl() bool {
	return l.Protocol == protoSASLPlaintext || l.Protocol == protoSASLSSL
}

// listenAddr is host:port to listen on.
func (l listenerSpec) listenAddr() string {
	return net.JoinHostPort(l.Host, strconv.Itoa(int(l.Port)))
}

// protocolMap returns listener.security.protocol.map, by upper-case
// listener name. Unset, it is Kafka's default: each protocol's own name.
func (c *Config) protocolMap() (map[string]string, error) {
	m := map[string]string{}
	if strings.TrimSpace(c.ListenerSecurityProtocolMap) == "" {
		for _, p := range securityProtocols {
			m[p] = p
		}
		return m, nil
	}
	for _, e := range strings.Split(c.ListenerSecurityProtocolMap, ",") {
		name, proto, ok := strings.Cut(strings.TrimSpace(e), ":")
		name, proto = strings.ToUpper(strings.TrimSpace(name)), strings.ToUpper(strings.TrimSpace(proto))
		if !ok || name == "" {
			return nil, fmt.Errorf("entry %q is not NAME:PROTOCOL", e)
		}
		if !slices.Contains(securityProtocols, proto) {
			return nil, fmt.Errorf("listener %s: protocol %q is not one of %s", name, proto, strings.Join(securityProtocols, ", "))
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("listener %s is mapped twice", name)
		}
		m[name] = proto
	}
	return m, nil
}

type hostPort struct {
	host string
	port int32
}

// splitListeners parses a listener list, "NAME://host:port,…": the names
// in order and the addresses by name.
func splitListeners(list string) ([]string, map[string]hostPort, error) {
	var names []string
	addrs := map[string]hostPort{}
	for _, l := range strings.Split(list, ",") {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		name, _, ok := strings.Cut(l, "://")
		if !ok || name == "" {
			return nil, nil, fmt.Errorf("listener %q is not NAME://host:port", l)
		}
		name = strings.ToUpper(name)
		host, port, err := splitListener(l)
		if err != nil {
			return nil, nil, err
		}
		if _, dup := addrs[name]; dup {
			return nil, nil, fmt.Errorf("listener %s is listed twice", name)
		}
		names = append(names, name)
		addrs[name] = hostPort{host, port}
	}
	return names, addrs, nil
}

// clientListeners returns every listener but the controller's, in the
// order listeners gives them.
func (c *Config) clientListeners() ([]listenerSpec, error) {
	protos, err := c.protocolMap()
	if err != nil {
		return nil, err
	}
	names, addrs, err := splitListeners(c.Listeners)
	if err != nil {
		return nil, err
	}
	_, adv, err := splitListeners(c.AdvertisedListeners)
	if err != nil {
		return nil, fmt.Errorf("advertised.listeners: %w", err)
	}
	var out []listenerSpec
	for _, name := range names {
		if name == c.controllerListener() {
			continue
		}
		proto, ok := protos[name]
		if !ok {
			return nil, fmt.Errorf("listener %s has no security protocol in listener.security.protocol.map", name)
		}
		l := listenerSpec{Name: name, Protocol: proto, Host: addrs[name].host, Port: addrs[name].port}
		l.AdvHost, l.AdvPort = l.Host, l.Port
		if a, ok := adv[name]; ok {
			l.AdvHost, l.AdvPort = a.host, a.port
		}
		out = append(out, l)
	}
	for name := range adv {
		if !slices.Contains(names, name) {
			return nil, fmt.Errorf("advertised listener %s is not in listeners", name)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no client listener in %q", c.Listeners)
	}
	return out, nil
}

// interBrokerListener returns the listener other brokers fetch from:
// inter.broker.listener.name (or the one security.inter.broker.protocol
// names), else the one called PLAINTEXT, else the first client listener.
func (c *Config) interBrokerListener() (listenerSpec, error) {
	ls, err := c.clientListeners()
	if err != nil {
		return listenerSpec{}, err
	}
	key, want := "inter.broker.listener.name", strings.ToUpper(strings.TrimSpace(c.InterBrokerListenerName))
	if p := c.interBrokerProtocol(); want == "" && p != "" {
		key, want = "security.inter.broker.protocol", p
	}
	if want == "" {
		want = protoPlaintext
		if !slices.ContainsFunc(ls, func(l listenerSpec) bool { return l.Name == want }) {
			return ls[0], nil
		}
	}
	for _, l := range ls {
		if l.Name == want {
			return l, nil
		}
	}
	return listenerSpec{}, fmt.Errorf("%s %s is not one of the client listeners", key, want)
}

// interBrokerProtocol is security.inter.broker.protocol in upper case.
func (c *Config) interBrokerProtocol() string {
	return strings.ToUpper(strings.TrimSpace(c.SecurityInterBrokerProtocol))
}

// registeredListeners is the client listeners, the inter-broker one
// first.
func (c *Config) registeredListeners() []listenerSpec {
	ls, _ := c.clientListeners()
	ib, _ := c.interBrokerListener()
	out := []listenerSpec{ib}
	for _, l := range ls {
		if l.Name != ib.Name {
			out = append(out, l)
		}
	}
	return out
}

// validateListeners checks listeners, advertised.listeners, the protocol
// map and the inter-broker and controller listeners.
func (c *Config) validateListeners(bad func(key, format string, args ...any)) {
	ls, err := c.clientListeners()
	if err != nil {
		bad("listeners", "%v", err)
		return
	}
	p := c.interBrokerProtocol()
	switch _, err := c.interBrokerListener(); {
	case p != "" && strings.TrimSpace(c.InterBrokerListenerName) != "":
		bad("security.inter.broker.protocol", "set either security.inter.broker.protocol or inter.broker.listener.name, not both")
	case p != "" && !slices.Contains(securityProtocols, p):
		bad("security.inter.broker.protocol", "want one of %s, got %q", strings.Join(securityProtocols, ", "), c.SecurityInterBrokerProtocol)
	case err != nil && p != "":
		bad("security.inter.broker.protocol", "%v", err)
	case err != nil:
		bad("inter.broker.listener.name", "%v", err)
	}
	ctl := c.controllerSpec()
	if c.brokerOnly() {
		c.validateBrokerOnlyController(ctl, bad)
	}
	if ctl.tls() {
		ls = append(ls, ctl)
	}
	if ctl.sasl() {
		sec := c.listenerSecurity(ctl.Name)
		if m := strings.ToUpper(sec.SASLMechanismControllerProtocol); m != sasl.Plain {
			bad("sasl.mechanism.controller.protocol", "the controller listener %s is %s: it takes PLAIN only (got %q), as a node's SCRAM credentials live in the replicated metadata, which a node that is starting does not have yet", ctl.Name, ctl.Protocol, sec.SASLMechanismControllerProtocol)
		} else if !slices.Contains(sec.mechanisms(), m) {
			bad("sasl.enabled.mechanisms", "the controller listener %s is %s with sasl.mechanism.controller.protocol %s, which its sasl.enabled.mechanisms lacks", ctl.Name, ctl.Protocol, m)
		}
		if user, _ := sec.jaasCredentials(); user == "" {
			bad("sasl.jaas.config", "the controller listener %s is %s: this node logs in there with the username and password of sasl.jaas.config (or listener.name.%s.sasl.jaas.config)", ctl.Name, ctl.Protocol, strings.ToLower(ctl.Name))
		}
		// Raft streams come from other nodes to a broker-only node and
		// to a voter of several; each checks their PLAIN login.
		if voters, _ := c.Voters(); c.Security.SASLPlainUsersFile == "" && (c.brokerOnly() || len(voters) > 1) {
			bad("sasl.plain.users.file", "the controller listener %s is %s: this node checks the SASL PLAIN login of the other nodes' Raft streams against the users of sasl.plain.users.file, which must list the nodes' user", ctl.Name, ctl.Protocol)
		}
	}
	if ctl.Protocol == protoSSL {
		sec := c.listenerSecurity(ctl.Name)
		if auth, err := sec.clientAuth(); err == nil && auth == tls.NoClientCert {
			bad("ssl.client.auth", "the controller listener %s is SSL: set ssl.client.auth to required (or requested), or listener.name.%s.ssl.client.auth for that listener only, so that the nodes' certificates authenticate their Raft connections", ctl.Name, strings.ToLower(ctl.Name))
		}
	}
	for _, l := range ls {
		if sec := c.listenerSecurity(l.Name); l.tls() && !sec.hasKeystore() {
			bad("ssl.keystore.location", "listener %s is %s: set ssl.keystore.location, or ssl.keystore.certificate.chain and ssl.keystore.key (PEM), or the same under listener.name.%s.", l.Name, l.Protocol, strings.ToLower(l.Name))
			break
		}
	}
}

// validateBrokerOnlyController checks what a broker-only node needs to
// take the leader's Raft streams, which come to its inter-broker listener,
// as the controller listener ctl would take them: with TLS, that listener
// must be TLS too (SSL or SASL_SSL), as one handshake serves both (with
// SASL, validateListeners asks for the PLAIN users to check the leader's
// login against, as on any voter of several).
func (c *Config) validateBrokerOnlyController(ctl listenerSpec, bad func(key, format string, args ...any)) {
	ib, err := c.interBrokerListener()
	if err != nil {
		return // reported on inter.broker.listener.name
	}
	if ctl.tls() && !ib.tls() {
		bad("listener.security.protocol.map", "the controller listener %s (controller.listener.names) is %s, but this broker-only node's inter-broker listener %s (inter.broker.listener.name) is %s: the quorum's leader sends the metadata log over TLS to the inter-broker listener, so map it to SSL or SASL_SSL, or the controller listener to PLAINTEXT or SASL_PLAINTEXT", ctl.Name, ctl.Protocol, ib.Name, ib.Protocol)
	}
}

// controllerProtocol is the controller listener's security protocol:
// PLAINTEXT unless listener.security.protocol.map says otherwise.
func (c *Config) controllerProtocol() string {
	protos, _ := c.protocolMap()
	if p, ok := protos[c.controllerListener()]; ok {
		return p
	}
	return protoPlaintext
}

// controllerSpec is the controller listener, by name and protocol.
func (c *Config) controllerSpec() listenerSpec {
	return listenerSpec{Name: c.controllerListener(), Protocol: c.controllerProtocol()}
}

// endpoint returns where the client on c reaches br: the broker's address
// on the listener c came in on (its inter-broker address for requests of
// this node's own, which have no connection). ok is false when br has no
// such listener.
func endpoint(c *wire.Conn, br metadata.Broker) (host string, port int32, ok bool) {
	if c == nil {
		return br.Host, br.Port, true
	}
	return br.Endpoint(c.Listener())
}
