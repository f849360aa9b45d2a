package broker_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"logpipe/brokerd/broker"
	"logpipe/pipeline/config"
)

// keysOf returns the keys a Validate error names, in order.
func keysOf(err error) []string {
	var keys []string
	var errs interface{ Unwrap() []error }
	if !errors.As(err, &errs) {
		return nil
	}
	for _, e := range errs.Unwrap() {
		var ke *config.KeyError
		if errors.As(e, &ke) {
			keys = append(keys, ke.Key)
		}
	}
	return keys
}

// TestBrokerOnlyConfig checks what a process.roles: broker node needs:
// the voters, a node.id that is not one of theirs, no controller listener
// of its own, and an advertised address the controllers can dial.
func TestBrokerOnlyConfig(t *testing.T) {
	const voters = "1@127.0.0.1:9093,2@127.0.0.1:9193,3@127.0.0.1:9293"
	for _, tc := range []struct {
		name   string
		change func(*broker.Config)
		want   []string // the keys refused, none for a valid config
	}{
		{"valid", func(*broker.Config) {}, nil},
		{"a voter's node.id", func(c *broker.Config) { c.NodeID = 2 }, []string{"node.id"}},
		{"no voters", func(c *broker.Config) { c.ControllerQuorumVoters = "" }, []string{"controller.quorum.voters"}},
		{"a controller listener", func(c *broker.Config) {
			c.Listeners = "PLAINTEXT://127.0.0.1:9392,CONTROLLER://127.0.0.1:9393"
		}, []string{"listeners"}},
		{"a wildcard address", func(c *broker.Config) { c.Listeners = "PLAINTEXT://0.0.0.0:9392" }, []string{"advertised.listeners"}},
		{"a wildcard address, advertised", func(c *broker.Config) {
			c.Listeners, c.AdvertisedListeners = "PLAINTEXT://0.0.0.0:9392", "PLAINTEXT://10.1.2.3:9392"
		}, nil},
		// Not supported; it would also need to be a voter with a
		// controller listener.
		{"controller only", func(c *broker.Config) { c.ProcessRoles = "controller" }, []string{"process.roles", "controller.quorum.voters", "listeners"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := broker.DefaultConfig()
			c.NodeID, c.ProcessRoles, c.ControllerQuorumVoters = 4, "broker", voters
			c.Listeners = "PLAINTEXT://127.0.0.1:9392"
			tc.change(&c)
			err := c.Validate()
			if got := keysOf(err); !slices.Equal(got, tc.want) {
				t.Fatalf("keys refused: got %v, want %v (error: %v)", got, tc.want, err)
			}
			if host, port, ok, err := c.ControllerAddr(); tc.want == nil && (ok || err != nil) {
				t.Fatalf("a broker-only node's controller listener: got %s:%d (ok %v, err %v), want none", host, port, ok, err)
			}
		})
	}
	// A combined node outside the voters is told about process.roles.
	c := broker.DefaultConfig()
	c.NodeID, c.ControllerQuorumVoters = 4, voters
	c.Listeners = "PLAINTEXT://127.0.0.1:9392,CONTROLLER://127.0.0.1:9393"
	err := c.Validate()
	if got := keysOf(err); !slices.Equal(got, []string{"controller.quorum.voters"}) || !strings.Contains(err.Error(), "process.roles: broker") {
		t.Fatalf("combined node 4 outside the voters: got keys %v (%v), want controller.quorum.voters pointing to process.roles: broker", got, err)
	}
}
