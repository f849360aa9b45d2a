// Command brokerd is a Kafka-protocol broker: partitioned, replicated topics
// on Kafka's on-disk layout, consumer groups and idempotent producers, with
// a Raft metadata quorum instead of ZooKeeper.
package main

import (
	"os"

	"logpipe/pipeline/cli"
	"logpipe/pipeline/telemetry"
)

var program = cli.Program{Name: "brokerd", Summary: "a Kafka-protocol broker"}

// settings is the broker's YAML configuration (Kafka's key names).
type settings struct {
	telemetry.Config `yaml:",inline"`
}

func main() {
	os.Exit(cli.Main(program, os.Args[1:], &settings{}, nil))
}
