package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"logpipe/brokerd/fetchsession"
)

// SetAfterFetch makes every fetch call f with how its session served it,
// the request as the session read it and the answer about to be sent,
// until the test ends.
func SetAfterFetch(t interface{ Cleanup(func()) }, f func(kind fetchsession.Kind, read *kmsg.FetchRequest, resp *kmsg.FetchResponse)) {
	afterFetch.Store(&f)
	t.Cleanup(func() { afterFetch.Store(nil) })
}
