package main

import (
	"testing"

	"logpipe/pipeline/config"
)

// TestExampleConfigLoads keeps configs/shipper.yml in step with the config type.
func TestExampleConfigLoads(t *testing.T) {
	c := settings{}
	if _, err := config.Load("../configs/shipper.yml", nil, &c); err != nil {
		t.Fatal(err)
	}
}
