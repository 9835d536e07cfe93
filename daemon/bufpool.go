package daemon

import "sync"

// copyBufSize is ReverseProxy's copy buffer, which is also the read size
// from the upstream (scanBody reads into it). An open stream holds its
// buffer for its whole life, so it is sized for the traffic, not for bulk
// throughput: an SSE event is a few hundred bytes, and a sized reply up to
// maxWholeReply is read whole before the copy (see wrapResponse); only a
// large unsized reply pays, with one flushed write per 4 KiB. It is an
// eighth of ReverseProxy's default 32 KiB; the load harness measured
// ~2 KiB less RSS per open stream than with 8 KiB.
const copyBufSize = 4 << 10

// copyBuffers pools ReverseProxy's copy buffers, so a reply does not cost a
// fresh allocation. Pooling array pointers lets Get and Put convert to and
// from the slice without allocating.
type copyBuffers struct{}

var copyPool = sync.Pool{New: func() any { return new([copyBufSize]byte) }}

// Get returns a buffer from the pool.
func (copyBuffers) Get() []byte { return copyPool.Get().(*[copyBufSize]byte)[:] }

// Put returns b to the pool; a buffer of another size is left to the GC.
func (copyBuffers) Put(b []byte) {
	if cap(b) >= copyBufSize {
		copyPool.Put((*[copyBufSize]byte)(b[:copyBufSize]))
	}
}

// burstSize is the read size from the upstream while a streamed reply
// arrives faster than it is read: the bytes one read brings go to the
// agent as one write (see scanBody.Read and replyWriter.Write), where 4 KiB
// reads cost a flushed write, and a wake-up of the agent, per 4 KiB. A
// stream holds a burst buffer only while its reads come back fuller than
// the copy buffer; a quiet stream holds none. replyWriter gathers a
// burst's pieces into a buffer of the same size.
const burstSize = 32 << 10

var burstPool = sync.Pool{New: func() any { return new([burstSize]byte) }}
