package devstack

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
)

// FreePortBlock returns the first of n consecutive loopback TCP ports that
// were all free a moment ago, for a service whose ports are given as a
// base and offsets from it (the `make run` launcher's -kafka-port and
// -http-port). Like FreePort it picks below the kernel's ephemeral range
// and never hands out a port twice in a process.
func FreePortBlock(n int) (int, error) {
	if n < 1 {
		return 0, fmt.Errorf("devstack: a block of %d ports", n)
	}
	lo, hi := portRange()
	if hi-lo < n {
		return 0, errors.New("devstack: no room for a block of ports below the ephemeral range")
	}
	portMu.Lock()
	defer portMu.Unlock()
	for range 1000 {
		base := lo + rand.IntN(hi-lo-n+1)
		if blockFree(base, n) {
			for p := base; p < base+n; p++ {
				portsGiven[p] = true
			}
			return base, nil
		}
	}
	return 0, fmt.Errorf("devstack: no %d consecutive free ports found", n)
}

// blockFree reports whether ports base to base+n-1 are neither handed out
// already nor in use; portMu is held.
func blockFree(base, n int) bool {
	for p := base; p < base+n; p++ {
		if portsGiven[p] {
			return false
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}
