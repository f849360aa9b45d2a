package wire

import (
	"math/bits"
	"sync"
)

// Request frames of Produce are read into buffers taken from a pool and
// given back once the request is answered, and so are the Fetch responses
// a follower reads from its leader (Client.RequestPooled), given back once
// their batches are in the log; other requests get a buffer of their own,
// left to the garbage collector.
//
// kmsg's ReadFrom copies strings out of the frame but not byte slices: a
// request's []byte fields (Produce's record batches, JoinGroup's member
// metadata, SyncGroup's assignments, SASL tokens, an envelope's inner
// request, SCRAM salts) and every unknown tagged field alias the frame.
// A frame can go back to the pool only if nothing reads those slices after
// the handler returns. The Produce handler copies the batches into the
// log before it answers, and nothing keeps them; the Handler contract
// states the rule. The group coordinator holds JoinGroup and SyncGroup
// requests while members wait, so those frames must not be reused; the
// other requests are small: pooling Fetch frames too (about 100 bytes)
// saved 1 of 35 allocations per fetch, not worth binding the fetch
// sessions to the rule.
//
// Buffers come in power-of-two size classes from 1 KiB to 16 MiB. A
// request holds up to a batch per partition the broker leads, and
// franz-go and sarama fill batches of up to 1 MB: one client producing
// at full speed to six partitions sent requests of 4 to 8 MiB, and
// zeroing a new buffer for each took 7 to 11 % of brokerd's CPU while the
// 2 MiB classes were the largest. A larger frame is allocated for itself
// and never kept, so one huge request does not stay pinned. What a pool
// holds is released by the garbage collector when it is not reused.

const (
	minFrameShift = 10 // 1 KiB
	maxFrameShift = 24 // 16 MiB
)

var framePools [maxFrameShift - minFrameShift + 1]sync.Pool

// pooledFrame reports whether frames of the API key are read into pooled
// buffers.
func pooledFrame(key int16) bool { return key == produceKey }

const produceKey = 0

// getFrame returns a buffer of size bytes from the pool of its size class
// and the handle to give back with putFrame; the handle is nil for a size
// above the largest class.
func getFrame(size int) ([]byte, *[]byte) {
	shift := max(bits.Len(uint(size-1)), minFrameShift)
	if size <= 0 || shift > maxFrameShift {
		return make([]byte, size), nil
	}
	if p, ok := framePools[shift-minFrameShift].Get().(*[]byte); ok {
		return (*p)[:size], p
	}
	buf := make([]byte, 1<<shift)
	return buf[:size], &buf
}

// putFrame gives a buffer from getFrame back; nothing may use it after.
func putFrame(p *[]byte) {
	if p == nil {
		return
	}
	shift := bits.Len(uint(cap(*p) - 1))
	framePools[shift-minFrameShift].Put(p)
}
