// Package kafkaname holds Kafka's rule for names: of topics, and of the
// group instance ids of static group members, which Kafka checks the same
// way.
package kafkaname

import "fmt"

// MaxLen is the longest name Kafka accepts.
const MaxLen = 249

// Check returns nil if Kafka accepts name, else an error saying why not,
// about "what name" (what is, say, "topic name").
func Check(what, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s is empty", what)
	case name == "." || name == "..":
		return fmt.Errorf("%s cannot be %q", what, name)
	case len(name) > MaxLen:
		return fmt.Errorf("%s is longer than %d characters", what, MaxLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%s %q has a character other than ASCII letters, digits, '.', '_' and '-'", what, name)
		}
	}
	return nil
}
