package main

import (
	"testing"

	"logpipe/pipeline/config"
)

// TestExampleConfigLoads keeps configs/indexer.yml in step with the config type.
func TestExampleConfigLoads(t *testing.T) {
	c := settings{}
	if _, err := config.Load("../configs/indexer.yml", nil, &c); err != nil {
		t.Fatal(err)
	}
}
