package main

// brokerdOverrides are the settings given to brokerd beyond its listener
// and data folder.
var brokerdOverrides = map[string]string{
	// The consumer-performance tool joins a group; do not make it wait.
	"group.initial.rebalance.delay.ms": "0",
}

// kafkaOverrides are the server.properties given to Apache Kafka beyond the
// single-node KRaft settings of devstack: they put back Kafka's shipped
// defaults where devstack chose smaller values for tests.
var kafkaOverrides = map[string]string{
	"num.network.threads":          "3",
	"num.io.threads":               "8",
	"offsets.topic.num.partitions": "50",
	// As for brokerd.
	"group.initial.rebalance.delay.ms": "0",
}
