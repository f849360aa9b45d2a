package broker

import "fmt"

// offsetsTopic is the internal topic that holds committed group offsets.
const offsetsTopic = "__consumer_offsets"

// checkTopicName applies Kafka's rules for topic names.
func checkTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("topic name is empty")
	case name == "." || name == "..":
		return fmt.Errorf("topic name cannot be %q", name)
	case len(name) > 249:
		return fmt.Errorf("topic name is longer than 249 characters")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("topic name %q has a character other than ASCII letters, digits, '.', '_' and '-'", name)
		}
	}
	return nil
}

// isInternal reports whether a topic is one of the broker's own.
func isInternal(name string) bool { return name == offsetsTopic }
