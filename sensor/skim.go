package sensor

import (
	"encoding/binary"
	"math"
	"math/bits"
)

// The skim is the exact pass's fast path: the main lane's scan when no
// format rule is on, so that the only things a byte can start are a held
// form and a join. It reads the body eight bytes at a time and does, for
// the bytes it passes over, exactly what the byte-at-a-time path would
// have done, in far fewer steps:
//
//   - Every held form begins with 8 bytes of key characters (tokenChar;
//     the filter notes, in odd, a form that does not, and the skim then
//     stays off). So a window needs testing against the filter only where
//     the last 8 normalised bytes are all key characters, and in prose and
//     JSON most are not: a word of key characters has to be 8 long.
//   - The normaliser's common cases (a two-byte JSON escape, a '%' that
//     starts no escape, a UTF-8 character that is neither zero-width nor
//     fullwidth) are undone in place; anything else (\u escapes, %XX, the
//     invisible and fullwidth characters) ends the skim, and the
//     byte-at-a-time path takes it.
//   - The joiner's state is kept, per word of 8 bytes, from where its last
//     run of key characters starts and what follows it. A gap holding
//     quotes goes a byte at a time, and the skim ends before the byte that
//     would join two runs, so the join lane is never woken inside it.
//   - The ring is written only where the lane may still read it (see
//     lane.need) when the skim ends: the bytes since the start of the last
//     run, and the last 10. The skim keeps, until then, a short list of
//     segments saying where each normalised byte came from.
//
// It ends where the byte-at-a-time path must take over: a byte it does not
// undo, a window the filter passes (the byte path then looks it up), a
// join, or a run so full of escapes that its segments overflow the list.

// Byte classes for the skim, one bit plane of 8 bits each, so that the
// classes of a word's 8 bytes, each shifted by its index, OR into one
// number holding a mask per class.
const (
	kSpecial = 1 << (8 * iota) // not plain, or a quote: the skim looks at it alone
	kTok                       // tokenChar
	kBreak                     // breaksGap
	kComma                     // ',' (a gap holding one joins as "json-array")
)

var skimClass = func() (t [256]uint64) {
	for b := range 256 {
		var c uint64
		if !plain[b] || b == '"' || b == '\'' {
			c |= kSpecial
		}
		if tokenChar[b] {
			c |= kTok
		}
		if breaksGap[b] {
			c |= kBreak
		}
		if b == ',' {
			c |= kComma
		}
		t[b] = c
	}
	return t
}()

// noSkim turns the skim off (the block scan may still run); tests compare.
var noSkim = false

// skimSegs bounds the segments a skim remembers; a run holding more
// escapes than this ends the skim (the byte path takes the rest).
const skimSegs = 24

// skimSeg is a run of normalised positions [q, q+n) whose ring entries
// are v, v+dv, v+2dv, ... with the byte of each: p[j], p[j+1], ... (b < 0),
// or b (an escape, n == 1).
type skimSeg struct {
	q     int64
	v, dv uint64
	j, n  int32
	b     int16
}

// skimmer is a skim in progress: the lane and joiner state it changes,
// written back by finish.
type skimmer struct {
	s    *Stream
	flt  *filter
	p    []byte
	base int64 // original offset of p[0]
	q0   int64
	q    int64
	win  uint64
	run  int // trailing normalised key characters, at most 8
	// The joiner, as in joiner; newGap: a run ended in the skim, so the
	// lane's state and candidates at its end are the skim's (quiet, shallow).
	js                uint8
	newGap            bool
	gapLen, gapQuotes int
	gapKind           string
	runStart, runEnd  int64
	segs              [skimSegs]skimSeg
	ns                int
}

// skim passes over p[i:e] as the byte-at-a-time path would and returns e.
// The caller checks what block needs: the main lane quiet, the join lane
// idle, no gap holding quotes; and that no format rule is on.
func (s *Stream) skim(p []byte, i int) int {
	m := &s.main
	k := skimmer{
		s: s, flt: s.flt, p: p, base: s.total, q0: m.pos, q: m.pos, win: m.win,
		js: s.jState, gapLen: s.gapLen, gapQuotes: s.gapQuotes, gapKind: s.gapKind,
		runStart: s.runStart, runEnd: s.runEnd,
	}
	k.run = bits.TrailingZeros64(^tokenBits(m.win)) / 8 // the newest byte is the lowest
	if m.pos-m.resetAt < int64(k.run) {                 // bytes before a reset are not a window
		k.run = int(m.pos - m.resetAt)
	}
	return k.finish(k.scan(i))
}

// tokenBits returns w with each byte that is a key character set to 0xFF
// and the others to 0.
func tokenBits(w uint64) uint64 {
	var t uint64
	for k := 0; k < 64; k += 8 {
		if tokenChar[byte(w>>k)] {
			t |= 0xFF << k
		}
	}
	return t
}

// scan runs the skim from p[j] and returns where it stops.
func (k *skimmer) scan(j int) int {
	p, cls := k.p, &skimClass
	for j+8 <= len(p) {
		if k.flt.odd.Load() {
			return j // a held form now begins with a byte the skim skips
		}
		wide := !k.flt.narrow.Load()
		if k.ns > skimSegs-2 && !k.trim() {
			return j
		}
		x := binary.LittleEndian.Uint64(p[j:])
		c := cls[byte(x)] | cls[byte(x>>8)]<<1 | cls[byte(x>>16)]<<2 | cls[byte(x>>24)]<<3 |
			cls[byte(x>>32)]<<4 | cls[byte(x>>40)]<<5 | cls[byte(x>>48)]<<6 | cls[byte(x>>56)]<<7
		n := 8 // plain bytes: those before the first special one
		if sp := uint8(c); sp != 0 {
			n = bits.TrailingZeros8(sp)
		}
		if k.js == jGap && k.gapQuotes > 0 {
			n = 0 // a gap that may join: a byte at a time
		}
		if n > 0 {
			valid := uint8(1<<n - 1) // 0xFF for n == 8
			if n == 8 {
				valid = 0xFF
			}
			tok := uint8(c>>8) & valid
			if k.probe(x, tok, valid, wide) {
				for end := j + n; j < end; { // a window may begin a form: find it
					nj, ok := k.unit(j)
					if !ok {
						return j
					}
					j = nj
				}
				continue
			}
			k.joinWord(tok, uint8(c>>16)&valid, uint8(c>>24)&valid, valid)
			k.plain(j, n)
			be := bits.ReverseBytes64(x)
			k.win = k.win<<(8*n) | be>>(64-8*n)
			if tok == valid {
				k.run = min(k.run+n, 8)
			} else {
				k.run = bits.LeadingZeros8(^(tok << (8 - n)))
			}
			j += n
		}
		if n < 8 {
			nj, ok := k.unit(j)
			if !ok {
				return j
			}
			j = nj
		}
	}
	for j < len(p) {
		nj, ok := k.unit(j)
		if !ok {
			return j
		}
		j = nj
	}
	return j
}

// probe reports whether a window ending in the first bytes of the plain
// word x (little endian) may begin a held form: those the mask valid
// covers, of which tok are key characters. A whole word (wide: every form
// begins with strideSpan key characters) needs one test of the stride
// filter, and none unless it is all key characters; a part of one tests
// each window of key characters against the anchors.
func (k *skimmer) probe(x uint64, tok, valid uint8, wide bool) bool {
	be := bits.ReverseBytes64(x)
	if wide && valid == 0xFF {
		return tok == 0xFF && k.flt.hasStride(be)
	}
	h := uint16(tok)<<8 | uint16(^(uint8(0xFF) >> k.run)) // the 8 bytes before, then the word
	r := h & (h >> 1)
	r &= r >> 2
	r &= r >> 4
	pm := uint8(r>>1) & valid // windows ending at each byte, all key characters
	for ; pm != 0; pm &= pm - 1 {
		b := bits.TrailingZeros8(pm)
		if k.flt.has(k.win<<(8*(b+1)) | be>>(8*(7-b))) {
			return true
		}
	}
	return false
}

// unit takes the character at p[j] (one byte, an escape or a UTF-8
// sequence) and returns the index after it, or false, having changed
// nothing, if the byte path must take it.
func (k *skimmer) unit(j int) (int, bool) {
	p := k.p
	if k.ns > skimSegs-2 && !k.trim() {
		return j, false
	}
	o := k.base + int64(j)
	switch b := p[j]; b {
	case '\\':
		if j+1 >= len(p) || jsonEscape[p[j+1]] == 0 {
			return j, false
		}
		e := jsonEscape[p[j+1]]
		if !k.ok(e) {
			return j, false
		}
		k.take(e, skimSeg{q: k.q, v: uint64(o)<<18 | 2<<12 | fJSON<<8, j: int32(j), n: 1, b: int16(e)})
		return j + 2, true
	case '%':
		if j+1 >= len(p) || isHex[p[j+1]] {
			return j, false
		}
	case 0xC2, 0xE1, 0xE2, 0xEF:
		n := 3
		if b == 0xC2 {
			n = 2
		}
		if j+n > len(p) || p[j+1]&0xC0 != 0x80 || p[j+n-1]&0xC0 != 0x80 {
			return j, false
		}
		if r := decodeRune(p[j : j+n]); invisible(r) || r >= 0xFF01 && r <= 0xFF5E {
			return j, false
		}
		// Passed through as is (encodeRune(decodeRune(p)) is p for these
		// leads), each byte naming the whole character as its origin.
		v := uint64(o)<<18 | uint64(n)<<12
		for t := range n {
			k.ok(p[j+t]) // a non-key byte: never refused
			k.take(p[j+t], skimSeg{q: k.q, v: v, j: int32(j + t), n: 1, b: -1})
		}
		return j + n, true
	}
	b := p[j]
	if !k.ok(b) {
		return j, false
	}
	k.take(b, skimSeg{q: k.q, v: uint64(o)<<18 | 1<<12, dv: 1 << 18, j: int32(j), n: 1, b: -1})
	return j + 1, true
}

// ok reports whether the normalised byte b may be taken next: no window
// ending at it passes the filter and it joins no two runs. If so, it has
// advanced the joiner over b.
func (k *skimmer) ok(b byte) bool {
	tok := tokenChar[b]
	if tok && k.run >= 7 && k.flt.has(k.win<<8|uint64(b)) {
		return false
	}
	q := k.q
	if tok && (b != '+' || k.js != jGap || k.gapQuotes == 0) {
		if k.js == jGap && k.gapQuotes >= 2 {
			return false // a join: the byte path wakes the join lane
		}
		if k.js != jRun {
			k.runStart = q
		}
		k.js = jRun
		return true
	}
	switch k.js {
	case jBroken:
		return true
	case jRun:
		k.js, k.gapLen, k.gapQuotes, k.gapKind, k.runEnd, k.newGap = jGap, 0, 0, "concat", q, true
	}
	if !gapChar[b] || k.gapLen >= maxGap {
		k.js = jBroken
		return true
	}
	k.gapLen++
	switch b {
	case '"', '\'':
		k.gapQuotes++
	case ',':
		k.gapKind = "json-array"
	}
	return true
}

// take records the normalised byte b at position k.q, from segment sg.
func (k *skimmer) take(b byte, sg skimSeg) {
	k.add(sg)
	k.win = k.win<<8 | uint64(b)
	if tokenChar[b] {
		k.run = min(k.run+1, 8)
	} else {
		k.run = 0
	}
	k.q++
}

// plain records the n plain bytes from p[j] at positions k.q on.
func (k *skimmer) plain(j, n int) {
	if k.ns > 0 {
		if l := &k.segs[k.ns-1]; l.dv != 0 && l.q+int64(l.n) == k.q && int(l.j+l.n) == j {
			l.n += int32(n)
			k.q += int64(n)
			return
		}
	}
	k.add(skimSeg{q: k.q, v: uint64(k.base+int64(j))<<18 | 1<<12, dv: 1 << 18, j: int32(j), n: int32(n), b: -1})
	k.q += int64(n)
}

// add appends sg to the segments, extending the last one when sg
// continues it. There is room (see trim).
func (k *skimmer) add(sg skimSeg) {
	if k.ns > 0 {
		l := &k.segs[k.ns-1]
		if l.b < 0 && sg.b < 0 && l.dv == sg.dv && l.q+int64(l.n) == sg.q && l.j+l.n == sg.j && l.v+uint64(l.n)*l.dv == sg.v {
			l.n += sg.n
			return
		}
	}
	k.segs[k.ns] = sg
	k.ns++
}

// trim drops the segments wholly before what the lane may still read and
// reports whether that left room for two more.
func (k *skimmer) trim() bool {
	lo, d := k.need(), 0
	for d < k.ns && k.segs[d].q+int64(k.segs[d].n) <= lo {
		d++
	}
	k.ns = copy(k.segs[:], k.segs[d:k.ns])
	return k.ns <= skimSegs-2
}

// need is lane.need for the main lane as the skim leaves it: quiet, its
// automaton at the root.
func (k *skimmer) need() int64 {
	lo := k.q - 10
	if k.js != jBroken {
		lo = min(lo, k.runStart)
	}
	if k.js == jGap {
		lo = min(lo, k.runEnd-8)
	}
	return max(lo, k.q-k.s.main.size)
}

// joinWord advances the joiner over the first plain bytes of a word, none
// a quote (those the mask valid covers), whose key characters, gap
// breakers and commas are tok, brk and comma (bit t for byte t). Without a
// quote no gap in them joins, so only the last run and what follows it
// matter.
func (k *skimmer) joinWord(tok, brk, comma, valid uint8) {
	q := k.q
	if tok == valid {
		if k.js != jRun {
			k.js, k.runStart = jRun, q
		}
		return
	}
	nt := ^tok & valid
	if last := bits.Len8(nt); last < bits.Len8(valid) { // they end in a run
		k.js, k.runStart = jRun, q+int64(last)
		return
	}
	t := bits.Len8(tok) - 1 // the last key character, or -1
	gap := valid
	if t >= 0 {
		if before := nt & (1<<t - 1); before != 0 {
			k.runStart = q + int64(bits.Len8(before))
		} else if k.js != jRun {
			k.runStart = q
		}
		k.js = jRun
		q += int64(t) + 1
		gap &^= 1<<(t+1) - 1
	}
	switch k.js {
	case jBroken:
		return
	case jRun:
		k.js, k.gapLen, k.gapQuotes, k.gapKind, k.runEnd, k.newGap = jGap, 0, 0, "concat", q, true
	}
	n := bits.OnesCount8(gap)
	if brk&gap != 0 || k.gapLen+n > maxGap {
		k.js = jBroken
		return
	}
	k.gapLen += n
	if comma&gap != 0 {
		k.gapKind = "json-array"
	}
}

// finish writes the skim's state back to the stream and returns j.
func (k *skimmer) finish(j int) int {
	s, m := k.s, &k.s.main
	if k.q == k.q0 {
		return j
	}
	if k.q > m.limit {
		m.room(k.q) // before the state changes: room keeps what the lane needed
	}
	lo := max(k.need(), k.q0)
	ring, mask := m.ring, m.mask
	for _, sg := range k.segs[:k.ns] {
		from := max(sg.q, lo)
		v := sg.v + uint64(from-sg.q)*sg.dv
		for q := from; q < sg.q+int64(sg.n); q++ {
			b := uint64(sg.b)
			if sg.b < 0 {
				b = uint64(k.p[int64(sg.j)+q-sg.q])
			}
			ring[q&mask] = v | b
			v += sg.dv
		}
	}
	m.pos, m.win = k.q, k.win
	s.jState, s.gapLen, s.gapQuotes, s.gapKind = k.js, k.gapLen, k.gapQuotes, k.gapKind
	s.runStart, s.runEnd = k.runStart, k.runEnd
	if k.newGap {
		s.runState, s.candHold = m.state, math.MaxInt64
	}
	return j
}
