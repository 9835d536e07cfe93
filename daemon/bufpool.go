package daemon

import "sync"

// copyBuffers pools ReverseProxy's copy buffers, so a reply does not cost a
// fresh 32 KiB allocation.
type copyBuffers struct{}

var copyPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// Get returns a buffer from the pool.
func (copyBuffers) Get() []byte { return *copyPool.Get().(*[]byte) }

// Put returns b to the pool.
func (copyBuffers) Put(b []byte) { copyPool.Put(&b) }
