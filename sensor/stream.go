package sensor

import (
	"cmp"
	"math"
	"slices"
	"strings"
)

// redactMark replaces each redacted run in the forwarded bytes.
var redactMark = []byte("[REDACTED]")

// rng is a range of original offsets, [s, e).
type rng struct {
	s, e    int64
	started bool // the mark is out; the rest of the range is dropped silently
}

// recentExact is how many exact-hit ranges a stream remembers to drop
// format hits on the same bytes (a held key also matches its format rule).
const recentExact = 4

// Stream scans one body. It is not safe for concurrent use.
type Stream struct {
	m        *Matcher
	flt      *filter // the book's filter, loaded at each Write
	mixed    bool    // flt.mixed, loaded at each Write
	maxHold  int64
	dir      Direction
	main, jl lane
	sl       lane
	sse      bool
	sx       sseState
	buf      []byte // bytes not yet forwarded (after dropping the first drop)
	bufAt    int64  // original offset of buf[0]
	drop     int    // bytes at the front of buf forwarded by the last call
	total    int64  // bytes written
	out      []byte
	hits     []Hit
	red      []rng
	exact    [recentExact]rng
	ne       int
	joiner
	closed bool
	work   int64 // work beyond one step per byte and lane; see steps
	// gramsTo is the last main-lane position up to which a block found
	// every three bytes clear of the gram table, and blockAfter the last
	// one it must not pass over (see block).
	gramsTo, blockAfter int64
	// leapFrom is the offset before which a stream with the format rules
	// on does not try the leap again (see leapRules).
	leapFrom int64
	spare    spare // memory kept by Release for the next NewStream
}

// NewStream starts scanning a body of the given direction. A content type
// of text/event-stream turns on the reassembly of SSE text deltas.
func (m *Matcher) NewStream(dir Direction, contentType string) *Stream {
	s, _ := m.streams.Get().(*Stream)
	if s == nil {
		s = new(Stream)
	}
	sp := s.spare
	w := m.window()
	*s = Stream{m: m, dir: dir, maxHold: holdFactor * w, gramsTo: -1, blockAfter: -1}
	s.main.init(s, laneMain, w)
	s.jl.init(s, laneJoin, w)
	s.jl.joinKind = "concat"
	s.jState = jBroken
	ct := strings.ToLower(contentType)
	if strings.HasPrefix(strings.TrimSpace(ct), "text/event-stream") {
		s.sse = true
		s.sl.init(s, laneSSE, w)
		s.sl.joinKind = ""
	}
	s.adopt(sp) // after init: adopt fits the kept memory to the lanes in use
	return s
}

// Write scans p and returns the bytes now safe to forward, with redactions
// applied, and the hits found. The forward slice may be shorter than p
// (bytes that could still start a match are held back) or longer (held
// bytes released). Both results alias the stream's buffers and are valid
// until the next call.
func (s *Stream) Write(p []byte) (forward []byte, hits []Hit) {
	if s.closed {
		return nil, nil
	}
	s.compact()
	s.flt = s.m.book.flt.Load()
	s.mixed = s.flt.mixed.Load()
	s.buf = appendBuf(s.buf, p)
	s.scan(p)
	s.total += int64(len(p))
	return s.release(false), s.hits
}

// plain marks the bytes the normaliser passes through unchanged when it
// holds nothing: all but the escape starts and the UTF-8 lead bytes that
// may begin a fullwidth or zero-width character (see stageB).
var plain = func() (t [256]bool) {
	for b := range 256 {
		t[b] = b != '\\' && b != '%' && b != 0xC2 && b != 0xE1 && b != 0xE2 && b != 0xEF
	}
	return t
}()

// jsonEscape maps the character after a backslash in a two-byte JSON
// escape to the byte it stands for, and every other byte to 0.
var jsonEscape = [256]byte{'"': '"', '\\': '\\', '/': '/', '\'': '\'', 'n': '\n', 't': '\t', 'r': '\r', 'b': '\b', 'f': '\f'}

// isHex marks the hexadecimal digits.
var isHex = byteSet("0123456789abcdefABCDEF")

// scan runs p through the lanes. Runs of plain bytes that cannot start a
// match go through block, which does not step the automaton per byte; the
// loop is lane.feedNorm inlined for the next common case (a plain byte,
// nothing pending, no open candidate, no join in progress); everything
// else takes the general path.
func (s *Stream) scan(p []byte) {
	if s.sse {
		s.sseScan(p)
	}
	m, a := &s.main, s.main.a
	if m.ring == nil {
		m.room(m.pos + 1) // block reads the ring before it writes
	}
	ring, mask, lim := m.ring, m.mask, m.limit
	dense, classes, sparse := a.dense, &a.classes, a.sparseBase
	// The automaton state, the position and the joiner's state live in
	// locals in the loop and are written back before any call that reads
	// them; quiet caches "nothing pending in the normaliser, no candidate".
	state, pos, base := m.state, m.pos, s.total
	js, ja, quiet := s.jState, s.jActive, m.quiet()
	flt := s.flt
	blocks := !noBlock
	// Without format rules the skim takes the place of the block scan.
	skims := blocks && !noSkim && a.maxLen == 0
	leaps := blocks && !noLeap
	for i := 0; i < len(p); i++ {
		if blocks && quiet && !ja && state < sparse && (js != jGap || s.gapQuotes == 0) && pos > s.blockAfter && (skims || blockByte[p[i]]) {
			m.state, m.pos, s.jState = state, pos, js
			if skims && !flt.odd.Load() {
				i = s.fast(p, i)
			} else {
				if leaps && state == 0 && js == jBroken && base+int64(i) >= s.leapFrom && !flt.odd.Load() {
					i = s.leapRules(p, i)
				}
				if i < len(p) && blockByte[p[i]] {
					i = s.block(p, i)
				}
			}
			state, pos, js = m.state, m.pos, s.jState
			ring, mask, lim = m.ring, m.mask, m.limit // block may have grown the ring
			if i == len(p) {
				break
			}
		}
		b := p[i]
		o := base + int64(i)
		if !plain[b] || !quiet {
			m.state, m.pos, s.jState = state, pos, js
			if quiet && b == '\\' && i+1 < len(p) && jsonEscape[p[i+1]] != 0 {
				// A two-byte JSON escape: what feedOrig does, without
				// going through the normaliser's states.
				m.feedNorm(jsonEscape[p[i+1]], o, 2, fJSON)
				i++
			} else if quiet && b == '%' && i+1 < len(p) && !isHex[p[i+1]] {
				m.feedNorm('%', o, 1, 0) // not an escape: flushPct's result
			} else {
				m.feedOrig(b, o)
			}
			state, pos, js, ja, quiet = m.state, m.pos, s.jState, s.jActive, m.quiet()
			ring, mask, lim = m.ring, m.mask, m.limit
			continue
		}
		q := pos
		if q >= lim {
			m.state, m.pos, s.jState = state, pos, js
			m.room(q + 1)
			ring, mask, lim = m.ring, m.mask, m.limit
		}
		ring[q&mask] = uint64(o)<<18 | 1<<12 | uint64(b)
		pos++
		// The joiner's commonest steps (inside a word, a word ending in a
		// space, the next word starting) are inlined; the rest goes to join.
		tc := tokenChar[b]
		switch {
		case ja:
			m.state, m.pos, s.jState = state, pos, js
			s.join(b, o, 1, 0, q)
			js, ja = s.jState, s.jActive
		case tc && js == jRun:
		case tc && js == jGap && s.gapQuotes == 0:
			js, s.runStart = jRun, q
		case b == ' ' && js == jRun:
			js, s.gapLen, s.gapQuotes, s.gapKind = jGap, 1, 0, "concat"
			s.runEnd, s.runState, s.candHold = q, state, math.MaxInt64 // no candidate: quiet
		case tc || js != jBroken:
			m.state, m.pos, s.jState = state, pos, js
			s.join(b, o, 1, 0, q)
			js, ja = s.jState, s.jActive
		}
		if m.win = m.win<<8 | uint64(b); (gramClass[b] != 0 || s.mixed) && flt.has(m.win) {
			m.state, m.pos, s.jState = state, pos, js
			m.anchor(q)
			quiet = m.quiet()
		}
		var t uint32
		if state < sparse {
			t = dense[state+uint32(classes[b])]
		} else {
			t = a.step(state, b)
		}
		state = t &^ outBit
		if t&outBit != 0 {
			m.state, m.pos, s.jState = state, pos, js
			m.matched(q)
			quiet = m.quiet()
		}
	}
	m.state, m.pos, s.jState = state, pos, js
}

// Held returns how many bytes written so far the stream holds back: what
// a later call may forward besides the bytes it is given.
func (s *Stream) Held() int { return len(s.buf) - s.drop }

// Flush returns every byte still held, as Close would, but keeps scanning:
// a match open across the flush point completes in later writes and is
// reported then, and is redacted only in its part written after the flush
// (as when a match outgrows MaxHold). It is for bodies made of messages
// that must each go out whole and at once, such as WebSocket messages: a
// secret split across two of them is still found, on the second. The
// result aliases the stream's buffers and is valid until the next call.
func (s *Stream) Flush() (forward []byte) {
	if s.closed {
		return nil
	}
	s.compact()
	return s.release(true)
}

// steps returns the work the stream has done so far, in abstract steps:
// one per normalised byte in each lane, plus every candidate decided,
// pattern reported and byte copied, decoded or checked outside the
// per-byte loop. It grows linearly with the bytes written, whatever they
// are (see TestAdversarialLinear); tests and benchmarks read it, as a
// measure of cost that does not depend on the machine.
func (s *Stream) steps() int64 { return s.main.pos + s.jl.pos + s.sl.pos + s.work }

// Close ends the body: it settles open candidates and pending escapes and
// returns all remaining bytes and the last hits. Write after Close returns
// nothing.
func (s *Stream) Close() (forward []byte, hits []Hit) {
	if s.closed {
		return nil, nil
	}
	s.compact()
	s.flt = s.m.book.flt.Load()
	s.mixed = s.flt.mixed.Load()
	s.main.finish(s.total)
	s.idle()
	if s.sse {
		s.sl.finish(s.total)
	}
	s.closed = true
	return s.release(true), s.hits
}

// compact drops the bytes forwarded by the previous call; they could not
// be dropped then because the returned slice aliased them.
func (s *Stream) compact() {
	s.hits = s.hits[:0]
	if s.drop > 0 {
		n := copy(s.buf, s.buf[s.drop:])
		s.buf = s.buf[:n]
		s.bufAt += int64(s.drop)
		s.drop = 0
	}
}

// crossEventHold is the length of a partial match in the joined SSE
// deltas from which the events it spans are held: a secret split across
// deltas leaks at most this many bytes less one before the hold. It is
// the 8 bytes that open an exact candidate (see lane.anchor).
const crossEventHold = 8

// holdPoint returns the original offset from which bytes must be held.
func (s *Stream) holdPoint() int64 {
	h := min(s.total, s.main.holdFrom(), s.joinHold())
	if s.sse {
		// A short partial match of the joined deltas holds only this
		// event: most text ends in the first bytes of some pattern, and
		// holding every event for the next would stall every stream. A
		// partial of crossEventHold bytes or more of one of our secrets
		// (a held key, a token, a canary: what is redacted) holds the
		// earlier events it spans too, until the next delta completes or
		// breaks it. A keyword's start does not: format hits are noted,
		// not cut out.
		if sh := s.sl.holdFrom(); sh != math.MaxInt64 {
			h = min(h, max(sh, s.sx.eventStart))
		}
		if x := s.sl.xStart(); x >= 0 {
			h = min(h, s.sl.origin(x)) // an exact candidate: crossEventHold bytes of a secret or more
		}
	}
	return max(h, s.total-s.maxHold, s.bufAt)
}

// release forwards the bytes before the hold point (all of them if final),
// replacing redacted ranges with redactMark.
func (s *Stream) release(final bool) []byte {
	end := s.total
	if !final {
		end = s.holdPoint()
	}
	n := int(end - s.bufAt)
	s.drop = n
	if len(s.red) == 0 || s.red[0].s >= end {
		return s.buf[:n]
	}
	s.out = s.out[:0]
	c, k := s.bufAt, 0
	for _, r := range s.red {
		if r.s >= end {
			s.red[k] = r
			k++
			continue
		}
		if r.s > c {
			s.out = append(s.out, s.buf[c-s.bufAt:r.s-s.bufAt]...)
			c = r.s
		}
		if !r.started {
			s.out = append(s.out, redactMark...)
			r.started = true
		}
		if r.e > end {
			c = end
			s.red[k] = r
			k++
		} else {
			c = max(c, r.e)
		}
	}
	s.red = s.red[:k]
	if c < end {
		s.out = append(s.out, s.buf[c-s.bufAt:end-s.bufAt]...)
	}
	return s.out
}

// emit records hit h for original bytes [o1, o2) and reports whether the
// caller should redact them.
func (s *Stream) emit(h Hit, o1, o2 int64) bool {
	h.Direction, h.Offset = s.dir, o1
	if h.Class == ClassFormat {
		for _, r := range s.exact[:s.ne] {
			if o1 < r.e && r.s < o2 {
				return false // the same bytes are a known secret, reported as such
			}
		}
	} else {
		copy(s.exact[1:], s.exact[:recentExact-1])
		s.exact[0] = rng{s: o1, e: o2}
		s.ne = min(s.ne+1, recentExact)
	}
	s.hits = append(s.hits, h)
	return s.m.opts.Redact != nil && s.m.opts.Redact(h)
}

// addRedaction merges [a, b) into the sorted, disjoint pending ranges.
// Hits arrive mostly in order, so the common case appends or extends the
// last range; the rest finds its place by binary search. A body full of
// one secret thus costs a constant per hit, not a pass over the hits
// before it.
func (s *Stream) addRedaction(a, b int64) {
	if a = max(a, s.bufAt); a >= b {
		return
	}
	n := len(s.red)
	if n == 0 || s.red[n-1].e < a {
		s.red = append(s.red, rng{s: a, e: b})
		return
	}
	i, _ := slices.BinarySearchFunc(s.red, a, func(r rng, a int64) int { return cmp.Compare(r.e, a) })
	j := i
	for j < n && s.red[j].s <= b {
		a, b = min(a, s.red[j].s), max(b, s.red[j].e)
		j++
	}
	started := i < j && s.red[i].started && s.red[i].s <= a
	if i == j {
		s.red = slices.Insert(s.red, i, rng{})
	} else {
		s.red = slices.Delete(s.red, i+1, j)
	}
	s.red[i] = rng{s: a, e: b, started: started}
}
