package broker

import "logpipe/pipeline/kafkaname"

// offsetsTopic is the internal topic that holds committed group offsets.
const offsetsTopic = "__consumer_offsets"

// checkTopicName applies Kafka's rules for topic names.
func checkTopicName(name string) error { return kafkaname.Check("topic name", name) }

// isInternal reports whether a topic is one of the broker's own.
func isInternal(name string) bool { return name == offsetsTopic }
