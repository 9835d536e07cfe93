package sensor

import "math"

// laneKind names the byte sequence a lane scans.
type laneKind uint8

const (
	laneMain laneKind = iota // the whole body, normalised
	laneJoin                 // string pieces joined across "," and "+"
	laneSSE                  // SSE text deltas joined across events
)

// lane runs the normaliser, the keyword automaton, the format candidates
// and the exact candidates over one byte sequence, remembering for the
// last len(ring) normalised bytes where each came from in the original
// stream.
type lane struct {
	st       *Stream
	a        *automaton
	kind     laneKind
	nz       normalizer
	state    uint32
	pos      int64    // normalised bytes seen
	ring     []uint64 // per normalised byte: origin<<18 | width<<12 | flags<<8 | byte
	mask     int64    // len(ring)-1
	size     int64    // the ring's full size: the window the lane keeps
	limit    int64    // positions below limit can be written without growing the ring
	win      uint64   // the last 8 normalised bytes, the oldest most significant
	xc       []xcand  // open exact candidates; allocated on first use
	cands    []cand   // open format candidates (nc of them); allocated on first use
	nc       int
	stopBits uint32 // the stopSets of the open candidates, as stopMask bits
	due      int64  // the earliest due position of an open candidate
	segStart int64  // position where the current piece starts (join and SSE lanes)
	resetAt  int64  // position of the last reset
	joinKind string
	scratch  []byte
	decBuf   []byte // decoding room for encoded-keyword candidates
	decTok   []byte // the decoded token of the last accepted one, in decBuf
}

func (l *lane) init(st *Stream, kind laneKind, size int64) {
	l.st, l.a, l.kind, l.size = st, st.m.a, kind, size
	// The ring, the scratch and the decoding buffer are allocated when
	// first needed; see room.
}

// minRing is the smallest ring a lane allocates.
const minRing = 64

// need returns the earliest lane position the lane may still read: the
// start of a partial match or an open candidate, less the few bytes before
// a keyword that open and lead look at, and for the main lane the current
// run of token characters, which the joiner may replay. Reads are never
// older than size positions back (the window the lane promises).
func (l *lane) need() int64 {
	lo := l.pos - 2 // block reads the two bytes before its start
	if d := l.a.depthOf(l.state); d > 0 {
		lo = min(lo, l.pos-d)
	}
	for i := 0; i < l.nc; i++ {
		lo = min(lo, l.cands[i].start)
	}
	if x := l.xStart(); x >= 0 {
		lo = min(lo, x)
	}
	lo -= 8 // open reads the byte before a keyword, lead up to 7; trail the last 7
	if s := l.st; l.kind == laneMain && s.jState != jBroken {
		lo = min(lo, s.runStart)
		if s.jState == jGap {
			lo = min(lo, s.runEnd-max(l.a.depthOf(s.runState), 7)-1)
		}
	}
	return max(lo, l.pos-l.size)
}

// room makes the ring big enough to write positions up to end (exclusive)
// without overwriting a position the lane may still read. The ring starts
// small and doubles as held-back matches, candidates and runs need it, up
// to size; at full size it behaves as a fixed ring of size positions.
func (l *lane) room(end int64) {
	c := int64(len(l.ring))
	if c == l.size {
		l.limit = math.MaxInt64
		return
	}
	lo := l.need()
	want := max(c, minRing)
	for want < l.size && end-lo > want {
		want *= 2
	}
	want = min(want, l.size)
	if want != c {
		r := make([]uint64, want)
		if c > 0 {
			for q := max(0, l.pos-c); q < l.pos; q++ {
				r[q&(want-1)] = l.ring[q&l.mask]
			}
		}
		l.ring, l.mask = r, want-1
	}
	if want == l.size {
		l.limit = math.MaxInt64
	} else {
		l.limit = lo + want
	}
}

// scratchBuf returns the scratch buffer, emptied, allocating it at full
// size on first use.
func (l *lane) scratchBuf() []byte {
	if l.scratch == nil {
		l.scratch = make([]byte, 0, l.size)
	}
	return l.scratch[:0]
}

// feedNorm takes one normalised byte b that came from original bytes
// [o, o+w), with normalisation flags f.
func (l *lane) feedNorm(b byte, o, w int64, f uint8) {
	f |= l.nz.drop
	l.nz.drop = 0
	q := l.pos
	if q >= l.limit {
		l.room(q + 1)
	}
	l.ring[q&l.mask] = uint64(o)<<18 | uint64(min(w, 63))<<12 | uint64(f)<<8 | uint64(b)
	l.pos++
	if l.kind == laneMain {
		l.st.join(b, o, w, f, q)
	}
	if l.nc > 0 && (stopMask[b]&l.stopBits != 0 || q >= l.due) {
		l.stepCands(q, b)
	}
	if len(l.xc) > 0 {
		l.stepExact(q, b)
	}
	if l.win = l.win<<8 | uint64(b); (gramClass[b] != 0 || l.st.mixed) && l.st.flt.has(l.win) {
		l.anchor(q)
	}
	t := l.a.step(l.state, b)
	l.state = t &^ outBit
	if t&outBit != 0 {
		l.matched(q)
	}
}

// quiet reports whether the normaliser holds nothing and no candidate is
// open, so the next plain byte can take the fast path.
func (l *lane) quiet() bool {
	n := &l.nz
	return n.mode == nIdle && n.u8n == 0 && n.drop == 0 && l.nc == 0 && len(l.xc) == 0
}

// reset forgets any partial match, at a point no secret can span.
func (l *lane) reset() {
	if l.nc > 0 {
		l.stepCands(l.pos, 0) // the run ended: settle what it holds
	}
	l.state, l.nc, l.resetAt = 0, 0, l.pos
	l.xc = l.xc[:0]
	l.recount()
}

func (l *lane) origin(q int64) int64 { return int64(l.ring[q&l.mask] >> 18) }

// span returns the original byte range and the union of the flags of the
// normalised bytes [from, to).
func (l *lane) span(from, to int64) (o1, o2 int64, f uint8) {
	l.st.work += to - from
	for q := from; q < to; q++ {
		f |= uint8(l.ring[q&l.mask] >> 8 & 0xF)
	}
	last := l.ring[(to-1)&l.mask]
	return l.origin(from), int64(last>>18) + int64(last>>12&63), f
}

// bytesAt copies the normalised bytes [from, to) into the scratch buffer.
func (l *lane) bytesAt(from, to int64) []byte {
	l.st.work += to - from
	l.scratch = l.scratchBuf()
	for q := from; q < to; q++ {
		l.scratch = append(l.scratch, byte(l.ring[q&l.mask]))
	}
	return l.scratch
}

// matched opens a candidate for every keyword form that ends at position q.
func (l *lane) matched(q int64) {
	for t := l.a.id(l.state); t != 0; t = l.a.dict[t] {
		oi := l.a.out[t]
		if oi < 0 {
			continue
		}
		for _, pi := range l.a.outsOf(oi) {
			l.st.work++
			p := &l.a.pats[pi]
			l.open(p, q-p.n+1, q+1)
		}
	}
}

// sseGap is the largest jump between the original offsets of neighbouring
// matched bytes that still counts as one run; an SSE event's framing
// between two deltas is longer than any escape or zero-width padding.
const sseGap = 24

// report emits h for lane positions [from, to), original [o1, o2), and
// queues its redaction. In the SSE lane each delta's piece is redacted on
// its own, so the event framing between pieces survives.
func (l *lane) report(h Hit, from, to, o1, o2 int64) {
	if !l.st.emit(h, o1, o2) {
		return
	}
	if l.kind != laneSSE {
		l.st.addRedaction(o1, o2)
		return
	}
	a := l.origin(from)
	for q := from + 1; q < to; q++ {
		if l.origin(q)-l.origin(q-1) > sseGap {
			_, e, _ := l.span(q-1, q)
			l.st.addRedaction(a, e)
			a = l.origin(q)
		}
	}
	l.st.addRedaction(a, o2)
}

// holdFrom returns the original offset of the earliest byte this lane may
// still need (the start of a partial match, an open candidate, the last
// bytes if they may begin a held form, or a pending escape), or
// math.MaxInt64 when it needs none.
func (l *lane) holdFrom() int64 {
	h := int64(math.MaxInt64)
	if d := max(l.a.depthOf(l.state), int64(l.trail(l.pos))); d > 0 {
		h = l.origin(l.pos - d)
	}
	h = min(h, l.candHold())
	if o, ok := l.nz.pending(); ok {
		h = min(h, o)
	}
	return h
}

// finish flushes the normaliser and closes the candidates at end of stream.
func (l *lane) finish(end int64) {
	l.flushNorm(end)
	if l.nc > 0 {
		l.stepCands(l.pos, 0)
	}
}
