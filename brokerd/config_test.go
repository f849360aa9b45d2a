package main

import (
	"testing"

	"logpipe/brokerd/broker"
	"logpipe/pipeline/config"
)

// TestExampleConfigLoads keeps configs/brokerd.yml in step with the config type.
func TestExampleConfigLoads(t *testing.T) {
	c := settings{Broker: broker.DefaultConfig()}
	if _, err := config.Load("../configs/brokerd.yml", nil, &c); err != nil {
		t.Fatal(err)
	}
}
