// Command shipper tails log files (Apache httpd access_log and error_log,
// or any log), tags each line, gives it a stable id and produces it as a
// JSON event to a Kafka topic. It reads Filebeat-style YAML.
package main

import (
	"os"

	"logpipe/pipeline/cli"
	"logpipe/pipeline/telemetry"
)

var program = cli.Program{Name: "shipper", Summary: "tail log files and produce their lines to Kafka"}

// settings is the shipper's YAML configuration.
type settings struct {
	telemetry.Config `yaml:",inline"`
}

func main() {
	os.Exit(cli.Main(program, os.Args[1:], &settings{}, nil))
}
