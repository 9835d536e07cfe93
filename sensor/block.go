package sensor

import (
	"encoding/binary"
	"math"
	"sync/atomic"
)

// blockByte marks the bytes a block holds freely: plain (the normaliser
// passes them through unchanged when it holds nothing) and not a quote.
var blockByte = func() (t [256]bool) {
	for b := range 256 {
		t[b] = plain[b] && b != '"' && b != '\''
	}
	return t
}()

// breaksGap marks the bytes that end a gap for good: neither token nor gap
// characters (':', '{', '}' and the like).
var breaksGap = func() (t [256]bool) {
	for b := range 256 {
		t[b] = !tokenChar[b] && !gapChar[b]
	}
	return t
}()

// safeQuote reports whether the quote p[j] cannot help a join: a byte
// beside it breaks the gap it is in (`":`, `{"`), as in JSON's structure.
// A quote that could start a join ends the block instead.
func safeQuote(p []byte, i, j int) bool {
	return j > i && j+1 < len(p) && (breaksGap[p[j-1]] || breaksGap[p[j+1]])
}

// noBlock turns the block scan off; tests compare both paths.
var noBlock = false

// block passes over p[i:e], the longest run of block bytes and safe quotes
// from i in which no keyword form and no held form can begin, and returns
// e. It is the main lane's fast path: the main lane must be quiet (no
// candidate open), the join lane idle, a gap in progress free of quotes,
// and the automaton state shallow (a dense state, at most two bytes deep).
//
// The gram table (see filter) says where a form could begin. Inside such
// a run the automaton never gets deeper than two bytes, so it is not
// stepped byte by byte: its state at any point is recomputed from root
// over the last two normalised bytes. No held form begins in it either,
// nor in the 7 bytes before it, so no window in it needs testing. The
// joiner's state at the end of the run depends only on its last run of
// token characters and the gap after it.
func (s *Stream) block(p []byte, i int) int {
	m, a, g := &s.main, s.main.a, s.flt
	q0, enter := m.pos, m.state
	d := 0 // a match may have started at i-d
	if enter != 0 {
		d = int(a.depthOf(enter))
	}
	// A held form that begins in the 7 bytes before i has its first window
	// end in the block: testing windows byte by byte catches it, the block
	// would not. So the three bytes from each of those must begin no held
	// form. (The automaton has kept track of keywords there.) The trigrams
	// ending at i and later are the loop's; those that end before (t[k:k+3]
	// ends at position q0-6+k) are checked here, bar those an earlier block
	// found clear.
	var t [8]byte
	binary.BigEndian.PutUint64(t[:], m.win)
	for k := max(1, s.gramsTo-q0+7); k <= 5; k++ {
		if g.held(t[k], t[k+1], t[k+2], s.mixed) {
			s.blockAfter = q0 - 1 + k // the form's first window ends there
			return i
		}
	}
	// The classes of the two bytes before p[j] stay in registers.
	grams, cls := g.grams, &gramClass
	c0, c1 := uint32(cls[t[6]]), uint32(cls[t[7]])
	// With the format rules on, the block hands back to the leap after the
	// first breaker from where the leap may be tried again (see
	// leapRules): the joiner is broken there.
	back := len(p)
	if !noLeap && !g.odd.Load() {
		back = max(i, int(min(s.leapFrom-s.total, int64(len(p)))))
	}
	j := i
	for ; j < len(p); j++ {
		b := p[j]
		c := uint32(cls[b])
		k := (c0*nGramClasses+c1)*nGramClasses + c
		if !blockByte[b] && (!plain[b] || !safeQuote(p, i, j)) || atomic.LoadUint64(&grams[k>>6])&(1<<(k&63)) != 0 {
			break
		}
		if j >= back && breaksGap[b] {
			j++
			break
		}
		c0, c1 = c1, c
	}
	if j == i {
		return i
	}
	if j-i >= 8 {
		m.win = binary.BigEndian.Uint64(p[j-8 : j])
	} else {
		w := m.win
		for _, b := range p[i:j] {
			w = w<<8 | uint64(b)
		}
		m.win = w
	}
	s.gramsTo = q0 + int64(j-i) - 1
	if end := q0 + int64(j-i); end > m.limit {
		m.room(end)
	}
	m.fill(p[i:j], q0, s.total+int64(i))
	sh := shallow{a: a, p: p, i: i, d: d, pre: [2]byte{t[6], t[7]}, enter: enter}
	s.joinBlock(p, i, j, q0, &sh)
	m.state = sh.after(j - 1)
	m.pos = q0 + int64(j-i)
	return j
}

// fill records plain bytes b, at original offset o on, as the normalised
// bytes from position q on.
func (l *lane) fill(b []byte, q, o int64) {
	v := uint64(o)<<18 | 1<<12
	for len(b) > 0 {
		at := int(q & l.mask)
		seg := l.ring[at:min(len(l.ring), at+len(b))]
		for k, c := range b[:len(seg)] {
			seg[k] = v | uint64(c)
			v += 1 << 18
		}
		b, q = b[len(seg):], q+int64(len(seg))
	}
}

// shallow gives the automaton state inside a block, where no match is
// more than two bytes deep: stepping from the root over the last two
// normalised bytes (those after the block's possible match start i-d)
// reaches it.
type shallow struct {
	a     *automaton
	p     []byte
	i, d  int
	pre   [2]byte
	enter uint32
}

// after returns the state after block index k >= i-1.
func (sh *shallow) after(k int) uint32 {
	if k < sh.i {
		return sh.enter
	}
	a := sh.a
	t := uint32(0)
	if k-1 >= sh.i-sh.d {
		b := sh.pre[1]
		if k > sh.i {
			b = sh.p[k-1]
		}
		t = a.dense[a.classes[b]] &^ outBit
	}
	return a.dense[t+uint32(a.classes[sh.p[k]])] &^ outBit
}

// joinBlock advances the joiner over the block p[i:e], whose first byte is
// at main-lane position q0: every gap in the block that holds a quote is
// broken, so no join starts in it and only its last run and the gap after
// it matter.
func (s *Stream) joinBlock(p []byte, i, e int, q0 int64, sh *shallow) {
	last := e - 1
	for last >= i && !tokenChar[p[last]] {
		last--
	}
	gap := i
	if last >= i {
		r := last
		for r > i && tokenChar[p[r-1]] {
			r--
		}
		if r > i || s.jState != jRun {
			s.runStart = q0 + int64(r-i)
		}
		s.jState = jRun
		gap = last + 1
	}
	for k := gap; k < e && s.jState != jBroken; k++ {
		if s.jState == jRun {
			s.jState, s.gapLen, s.gapQuotes, s.gapKind = jGap, 0, 0, "concat"
			s.runEnd, s.runState, s.candHold = q0+int64(k-i), sh.after(k-1), math.MaxInt64
		}
		if !s.gapByte(p[k]) {
			break
		}
	}
}
