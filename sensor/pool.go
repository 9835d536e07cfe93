package sensor

import "sync"

// Reuse of streams. A request and its reply each scan through a fresh
// Stream, whose struct and lane windows (a few KiB) would otherwise be
// garbage after every call; on a busy daemon that is most of what the
// sensors allocate. Release hands a finished stream back to its Matcher,
// and NewStream starts a new one in that memory. A reused stream is
// indistinguishable from a new one: every field is reset to its zero value
// and the kept buffers are zeroed, so no state and no scanned bytes carry
// over. The golden, fuzz and unit tests run their scans on released and
// reused streams, and TestReusedStreamIsFresh compares the two directly.

// spare is the memory a released stream keeps for its next use.
type spare struct {
	rings   [3][]uint64 // main, join, SSE lane windows
	scratch [3][]byte
	decBuf  [3][]byte
	cands   [3][]cand
	xc      [3][]xcand
	buf     []byte
	out     []byte
	hits    []Hit
	red     []rng
}

// Release hands s back to its Matcher for reuse by a later NewStream. s,
// and every slice its Write and Close returned, must not be used
// afterwards. Releasing is optional; releasing twice is a no-op.
func (s *Stream) Release() {
	m := s.m
	if m == nil {
		return
	}
	sp := spare{
		rings:   [3][]uint64{s.main.ring, s.jl.ring, s.sl.ring},
		scratch: [3][]byte{s.main.scratch, s.jl.scratch, s.sl.scratch},
		decBuf:  [3][]byte{s.main.decBuf, s.jl.decBuf, s.sl.decBuf},
		cands:   [3][]cand{s.main.cands, s.jl.cands, s.sl.cands},
		xc:      [3][]xcand{s.main.xc, s.jl.xc, s.sl.xc},
		buf:     keepable(s.buf), out: keepable(s.out), red: s.red,
	}
	putLarge(s.buf)
	if cap(s.hits) <= maxKeptHits {
		sp.hits = s.hits
	}
	*s = Stream{spare: sp}
	m.streams.Put(s)
}

// maxKeptBytes bounds the byte buffers a released stream keeps. A stream
// given a whole body in one write (the daemon scans a request body so)
// grows them to the body's size; kept, every later stream that took them
// from the pool, however small, would clear them all (a 600-byte request
// paid 40 µs after one 1 MiB body, against 3 µs), and a long-lived
// stream would hold them for its life. A streamed reply's reads and what
// the sensor holds behind them stay within it.
const maxKeptBytes = 64 << 10

// maxKeptHits bounds the hits a released stream keeps, for the same
// reason: a body repeating a secret makes thousands.
const maxKeptHits = 256

func keepable(b []byte) []byte {
	if cap(b) > maxKeptBytes {
		return nil
	}
	return b
}

// largeBufs holds the body-sized scan buffers of released streams, apart
// from the streams: a stream draws one only when a write takes its buffer
// past maxKeptBytes, so a small stream never carries (or clears) one, and
// a large body does not allocate its own. The pool gives them to the GC
// when they go unused.
var largeBufs sync.Pool // of *[]byte

// putLarge hands b to largeBufs, cleared (no scanned bytes outlive the
// stream that scanned them), if it is one of the large.
func putLarge(b []byte) {
	if cap(b) > maxKeptBytes {
		b = b[:cap(b)]
		clear(b)
		largeBufs.Put(&b)
	}
}

// appendBuf is append(buf, p...), but one that would grow buf past
// maxKeptBytes first draws a large buffer from largeBufs (and hands back
// the one it replaces).
func appendBuf(buf, p []byte) []byte {
	need := len(buf) + len(p)
	if need <= cap(buf) || need <= maxKeptBytes {
		return append(buf, p...)
	}
	v, _ := largeBufs.Get().(*[]byte)
	if v == nil || cap(*v) < need || cap(*v) > 4*need {
		// None, or not of this body's size: append grows buf as it
		// would. A buffer far larger is put back, not held by a stream
		// that needs a fraction of it (perhaps for a long reply's life).
		if v != nil && cap(*v) > 4*need {
			largeBufs.Put(v)
		}
		return append(buf, p...)
	}
	nb := append(append((*v)[:0], buf...), p...)
	putLarge(buf)
	return nb
}

// adopt gives a stream just initialised by NewStream the zeroed memory of
// sp, where it fits the stream's lanes.
func (s *Stream) adopt(sp spare) {
	for i, l := range []*lane{&s.main, &s.jl, &s.sl} {
		if l.size == 0 { // lane not in use on this stream
			continue
		}
		if r := sp.rings[i]; len(r) > 0 && int64(len(r)) <= l.size {
			clear(r)
			l.ring, l.mask = r, int64(len(r))-1
		}
		if b := sp.scratch[i]; int64(cap(b)) == l.size {
			clear(b[:cap(b)])
			l.scratch = b[:0]
		}
		if b := sp.decBuf[i]; cap(b) == decBufSize(l.size) {
			clear(b[:cap(b)])
			l.decBuf = b[:0]
		}
		if c := sp.cands[i]; c != nil {
			clear(c)
			l.cands = c
		}
		if x := sp.xc[i]; x != nil {
			clear(x[:cap(x)]) // drops the trie nodes and forms it pointed to
			l.xc = x[:0]
		}
	}
	clear(sp.buf[:cap(sp.buf)])
	clear(sp.out[:cap(sp.out)])
	clear(sp.hits[:cap(sp.hits)])
	s.buf, s.out, s.hits, s.red = sp.buf[:0], sp.out[:0], sp.hits[:0], sp.red[:0]
}
