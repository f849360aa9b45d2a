package group

import "unicode/utf16"

// PartitionFor returns the __consumer_offsets partition that holds a
// group, computed as Kafka does: the absolute value of Java's
// String.hashCode of the group id, modulo the partition count. The broker
// leading that partition is the group's coordinator. n must be positive.
func PartitionFor(groupID string, n int32) int32 {
	return int32(javaAbs(javaStringHash(groupID)) % n)
}

// javaStringHash is java.lang.String.hashCode: s[0]*31^(k-1) + ... +
// s[k-1] over the UTF-16 code units, in wrapping 32-bit arithmetic.
func javaStringHash(s string) int32 {
	var h int32
	for _, u := range utf16.Encode([]rune(s)) {
		h = 31*h + int32(u)
	}
	return h
}

// javaAbs is Kafka's Utils.abs: Math.abs, except that the smallest int
// maps to 0 rather than to itself.
func javaAbs(n int32) int32 {
	switch {
	case n == -1<<31:
		return 0
	case n < 0:
		return -n
	}
	return n
}
