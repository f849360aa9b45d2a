// Command indexer is a Kafka consumer group that parses httpd log events
// into ECS fields and writes them to date-suffixed Elasticsearch indices,
// committing offsets only for documents Elasticsearch has acknowledged.
package main

import (
	"os"

	"logpipe/pipeline/cli"
	"logpipe/pipeline/telemetry"
)

var program = cli.Program{Name: "indexer", Summary: "index Kafka log events into Elasticsearch"}

// settings is the indexer's YAML configuration.
type settings struct {
	telemetry.Config `yaml:",inline"`
}

func main() {
	os.Exit(cli.Main(program, os.Args[1:], &settings{}, nil))
}
