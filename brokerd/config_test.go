package main

import (
	"testing"

	"logpipe/pipeline/config"
)

// TestExampleConfigLoads keeps configs/brokerd.yml in step with the config type.
func TestExampleConfigLoads(t *testing.T) {
	c := settings{}
	if _, err := config.Load("../configs/brokerd.yml", nil, &c); err != nil {
		t.Fatal(err)
	}
}
