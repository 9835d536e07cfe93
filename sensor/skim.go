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
//     JSON most are not: a word of key characters has to be 8 long. And
//     a whole word needs no window tested unless one of the runs of 4 key
//     characters at positions divisible by 4 that such windows hold passes
//     the quad filter (see filter.hasQuad): two or three tests a word,
//     where the byte path makes eight.
//   - The normaliser's common cases (a JSON escape, a '%' that starts no
//     escape, a character, raw or \u-escaped, that is neither a surrogate
//     nor zero-width nor fullwidth) are undone in place; anything else (%XX,
//     surrogate pairs, the invisible and fullwidth characters) ends the
//     skim, and the byte-at-a-time path takes it.
//   - The joiner's state is kept, per word of 8 bytes, from where its last
//     run of key characters starts and what follows it. A gap holding
//     quotes goes a byte at a time, and the skim ends before the byte that
//     would join two runs, so the join lane is never woken inside it.
//   - The ring is written only where the lane may still read it (see
//     lane.need) when the skim ends: the bytes since the start of the last
//     run, and the last 10. Until then the skim keeps a short list of the
//     characters it undid or passed through whole; between them each
//     normalised byte is the raw byte at the same distance.
//
// It ends where the byte-at-a-time path must take over: a byte it does not
// undo, a window that begins a held form (a window the filter passes is
// looked up in the book first, as the byte path would), a join, or a run
// so full of escapes that they overflow the list.

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

// skimUnits bounds the irregular units a skim remembers; a run holding
// more escapes than this ends the skim (the byte path takes the rest).
const skimUnits = 24

// skimUnit is a character the skim undid or passed through whole: an
// escape, or a UTF-8 sequence. Its n normalised bytes b, from position q,
// come from the raw bytes p[j:j+raw] and share the ring entry v (origin,
// width, flags). Between units the normalised bytes are the raw ones, one
// for one.
type skimUnit struct {
	q      int64
	v      uint64
	j      int32
	raw, n int8
	b      [3]byte
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
	// The joiner, as a few numbers a word updates without branching (see
	// state): the position just past the last key character (runEnd), the
	// start of its run, and whether the bytes since hold a gap breaker or
	// a comma, and how many quotes.
	runEnd, runStart int64
	brk, comma       bool
	quotes           int
	// The units since (bq, bj), the position and raw index where the plain
	// bytes before the first one start.
	units  [skimUnits]skimUnit
	nu     int
	bq, bj int64
}

// skim passes over p[i:e] as the byte-at-a-time path would and returns e.
// The caller checks what block needs: the main lane quiet, the join lane
// idle, no gap holding quotes; and that no format rule is on.
func (s *Stream) skim(p []byte, i int) int {
	m := &s.main
	k := skimmer{
		s: s, flt: s.flt, p: p, base: s.total, q0: m.pos, q: m.pos, win: m.win, bq: m.pos, bj: int64(i),
		runEnd: s.runEnd, runStart: s.runStart,
	}
	switch s.jState { // gapQuotes is 0 (the caller checks)
	case jRun:
		k.runEnd = m.pos
	case jGap:
		k.comma = s.gapKind == "json-array"
	case jBroken:
		k.runEnd, k.brk = m.pos-maxGap-1, true
	}
	k.run = bits.TrailingZeros64(^tokenBits(m.win)) / 8 // the newest byte is the lowest
	if m.pos-m.resetAt < int64(k.run) {                 // bytes before a reset are not a window
		k.run = int(m.pos - m.resetAt)
	}
	return k.finish(k.scan(i))
}

// state returns the joiner's state at the skim's position: in a run, in
// a gap after one that may still join, or after a gap that cannot.
func (k *skimmer) state() uint8 {
	switch {
	case k.runEnd == k.q:
		return jRun
	case k.brk || k.q-k.runEnd > maxGap:
		return jBroken
	}
	return jGap
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
		if j = k.words(j); j+8 > len(p) {
			break
		}
		x := binary.LittleEndian.Uint64(p[j:])
		c := cls[byte(x)] | cls[byte(x>>8)]<<1 | cls[byte(x>>16)]<<2 | cls[byte(x>>24)]<<3 |
			cls[byte(x>>32)]<<4 | cls[byte(x>>40)]<<5 | cls[byte(x>>48)]<<6 | cls[byte(x>>56)]<<7
		n := 8 // plain bytes: those before the first special one
		if sp := uint8(c); sp != 0 {
			n = bits.TrailingZeros8(sp)
		}
		if k.quotes > 0 && k.state() == jGap {
			n = 0 // a gap holding quotes may join: a byte at a time
		}
		if n > 0 {
			valid := uint8(1<<n - 1) // 0xFF for n == 8
			if n == 8 {
				valid = 0xFF
			}
			tok := uint8(c>>8) & valid
			if probe(k, x, tok, valid) {
				for end := j + n; j < end; { // a window may begin a form: find it
					nj, ok := k.unit(j)
					if !ok {
						return j
					}
					j = nj
				}
				continue
			}
			k.joinWord(tok, uint8(c>>16)&valid, uint8(c>>24)&valid)
			k.q += int64(n)
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

// words is scan's inner loop. It passes over words of 8 plain bytes that
// the quad filter rules out, and over the commonest special bytes:
// quotes, and two-byte JSON escapes that stand for no key character, with
// the plain bytes before them. It stops, for scan to take over, at
// anything else: a word of key characters the quad filter passes, a
// window of key characters ending before a special byte, a gap holding
// quotes that a key character may end (a join), any other special byte.
// Its state lives in locals.
func (k *skimmer) words(j int) int {
	p, cls, flt := k.p, &skimClass, k.flt
	q, win, run := k.q, k.win, k.run
	runEnd, runStart, brk, comma, quotes := k.runEnd, k.runStart, k.brk, k.comma, k.quotes
	for j+8 <= len(p) && !flt.odd.Load() {
		x := binary.LittleEndian.Uint64(p[j:])
		c := cls[byte(x)] | cls[byte(x>>8)]<<1 | cls[byte(x>>16)]<<2 | cls[byte(x>>24)]<<3 |
			cls[byte(x>>32)]<<4 | cls[byte(x>>40)]<<5 | cls[byte(x>>48)]<<6 | cls[byte(x>>56)]<<7
		n, valid := 8, uint8(0xFF) // the plain bytes: those before the first special one
		if sp := uint8(c); sp != 0 {
			n = bits.TrailingZeros8(sp)
			valid = uint8(1)<<n - 1
		}
		tok, be := uint8(c>>8)&valid, bits.ReverseBytes64(x)
		if quotes > 0 && runEnd != q && !brk && q-runEnd <= maxGap && tok != 0 {
			// A gap holding quotes, and a key character ahead: it joins
			// unless a breaker or the gap's length ends the gap first.
			ft := bits.TrailingZeros8(tok)
			if uint8(c>>16)&(uint8(1)<<ft-1) == 0 && q-runEnd+int64(ft) <= maxGap {
				break
			}
		}
		if n > 0 {
			h := uint16(tok)<<8 | uint16(^(uint8(0xFF) >> run)) // key characters: the 8 before, the word
			r := h & (h >> 1)
			r &= r >> 2                                           // bit i: 4 key characters from bit i
			if w8 := r & (r >> 4) >> 1 & uint16(valid); w8 != 0 { // windows of 8 key characters
				if n < 8 || quads(flt, r&quadStarts[q&3], win, be) {
					break // a window of the word may begin a held form
				}
			}
		}
		if n > 0 {
			// joinWord, inlined.
			if tok == 0 {
				brk, comma = brk || uint8(c>>16)&valid != 0, comma || uint8(c>>24)&valid != 0
			} else {
				t := bits.Len8(tok)
				if before := ^tok & (uint8(1)<<(t-1) - 1); before != 0 {
					runStart = q + int64(bits.Len8(before))
				} else if runEnd != q {
					runStart = q
				}
				runEnd = q + int64(t)
				brk, comma, quotes = uint8(c>>16)&valid>>t != 0, uint8(c>>24)&valid>>t != 0, 0
			}
			q, win = q+int64(n), win<<(8*n)|be>>(64-8*n)
			if tok == valid {
				run = min(run+n, 8)
			} else {
				run = bits.LeadingZeros8(^(tok << (8 - n)))
			}
			j += n
		}
		if n == 8 {
			continue
		}
		// The special byte at p[j].
		b, w := p[j], 1
		switch {
		case b == '"' || b == '\'':
		case b == '\\' && j+1 < len(p) && jsonEscape[p[j+1]] != 0 && !tokenChar[jsonEscape[p[j+1]]] && k.nu < skimUnits:
			b, w = jsonEscape[p[j+1]], 2
			k.units[k.nu] = skimUnit{q: q, v: uint64(k.base+int64(j))<<18 | 2<<12 | fJSON<<8, j: int32(j), raw: 2, n: 1, b: [3]byte{b}}
			k.nu++
		default: // the rest, as scan takes it
			k.q, k.win, k.run = q, win, run
			k.runEnd, k.runStart, k.brk, k.comma, k.quotes = runEnd, runStart, brk, comma, quotes
			nj, ok := k.unit(j)
			if !ok {
				return j
			}
			q, win, run = k.q, k.win, k.run
			runEnd, runStart, brk, comma, quotes = k.runEnd, k.runStart, k.brk, k.comma, k.quotes
			j = nj
			continue
		}
		switch { // a gap byte, as ok takes it
		case !gapChar[b]:
			brk = true
		case b == '"' || b == '\'':
			quotes++
		}
		q, win, run, j = q+1, win<<8|uint64(b), 0, j+w
	}

	k.q, k.win, k.run = q, win, run
	k.runEnd, k.runStart, k.brk, k.comma, k.quotes = runEnd, runStart, brk, comma, quotes
	return j
}

// quadStarts[q&3] marks the bits i of a word's key-character mask (bit i
// for position q-8+i, the word at q) where a run of 4 starts at a
// position divisible by 4 and ends at q-4 to q+6: a window of 8 ending in
// the word holds one of those runs (see filter.hasQuad).
var quadStarts = func() (t [4]uint16) {
	for r := range 4 {
		for i := 1; i <= 11; i++ {
			if (r+i)%4 == 0 {
				t[r] |= 1 << i
			}
		}
	}
	return t
}()

// quads reports whether one of the runs of 4 the bits of c start (as in
// quadStarts) passes the quad filter; win holds the 8 bytes before the
// word be (both big endian).
func quads(f *filter, c uint16, win, be uint64) bool {
	for ; c != 0; c &= c - 1 {
		var v uint64
		if i := bits.TrailingZeros16(c); i <= 4 {
			v = win >> (8 * (4 - i))
		} else {
			v = win<<(8*(i-4)) | be>>(8*(12-i))
		}
		if f.hasQuad(uint32(v)) {
			return true
		}
	}
	return false
}

// probe reports whether a window ending in the first bytes of the plain
// word x (little endian) begins a held form: those the mask valid covers,
// of which tok are key characters. Each window of key characters is
// tested against the anchors, and one that passes is looked up in the
// book, as the byte path would.
func probe(k *skimmer, x uint64, tok, valid uint8) bool {
	be := bits.ReverseBytes64(x)
	h := uint16(tok)<<8 | uint16(^(uint8(0xFF) >> k.run)) // the 8 bytes before, then the word
	r := h & (h >> 1)
	r &= r >> 2
	r &= r >> 4
	pm := uint8(r>>1) & valid // windows ending at each byte, all key characters
	for ; pm != 0; pm &= pm - 1 {
		b := bits.TrailingZeros8(pm)
		if k.held(k.win<<(8*(b+1)) | be>>(8*(7-b))) {
			return true
		}
	}
	return false
}

// held reports whether a held form begins with the window w. A false yes
// of the filter costs a lookup, not the end of the skim: the byte path
// would look it up too, and do nothing more.
func (k *skimmer) held(w uint64) bool {
	if !k.flt.has(w) {
		return false
	}
	_, ok := k.s.m.book.anchor(w)
	return ok
}

// unit takes the character at p[j] (one byte, an escape or a UTF-8
// sequence) and returns the index after it, or false, having changed
// nothing, if the byte path must take it.
func (k *skimmer) unit(j int) (int, bool) {
	p := k.p
	o := k.base + int64(j)
	switch b := p[j]; b {
	case '\\':
		if j+1 < len(p) && p[j+1] == 'u' {
			return k.escU(j)
		}
		if j+1 >= len(p) || jsonEscape[p[j+1]] == 0 {
			return j, false
		}
		e := jsonEscape[p[j+1]]
		if !k.room(1) || !k.ok(e) {
			return j, false
		}
		k.record(skimUnit{q: k.q, v: uint64(o)<<18 | 2<<12 | fJSON<<8, j: int32(j), raw: 2, n: 1, b: [3]byte{e}})
		k.take(e)
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
		if r := decodeRune(p[j : j+n]); invisible(r) || r >= 0xFF01 && r <= 0xFF5E || !k.room(1) {
			return j, false
		}
		// Passed through as is (encodeRune(decodeRune(p)) is p for these
		// leads), each byte naming the whole character as its origin.
		u := skimUnit{q: k.q, v: uint64(o)<<18 | uint64(n)<<12, j: int32(j), raw: int8(n), n: int8(n)}
		copy(u.b[:], p[j:j+n])
		k.record(u)
		for _, b := range u.b[:n] {
			k.ok(b) // not a key character: never refused
			k.take(b)
		}
		return j + n, true
	}
	b := p[j]
	if !k.ok(b) {
		return j, false
	}
	k.take(b)
	return j + 1, true
}

// escU takes the \\uXXXX escape at p[j] when it stands for a character the
// normaliser passes on as it is: neither a surrogate, nor zero-width, nor
// fullwidth. Each byte of its UTF-8 names the whole escape as its origin.
func (k *skimmer) escU(j int) (int, bool) {
	p := k.p
	if j+6 > len(p) {
		return j, false
	}
	var r rune
	for _, c := range p[j+2 : j+6] {
		v, ok := unhex(c)
		if !ok {
			return j, false
		}
		r = r<<4 | rune(v)
	}
	if r >= 0xD800 && r <= 0xDFFF || invisible(r) || r >= 0xFF01 && r <= 0xFF5E {
		return j, false
	}
	var buf [4]byte
	n := 1
	if buf[0] = byte(r); r >= 0x80 {
		n = encodeRune(buf[:], r) // 2 or 3 bytes: r is below 0x10000
	}
	if !k.room(1) || r < 0x80 && !k.ok(buf[0]) {
		return j, false
	}
	u := skimUnit{q: k.q, v: uint64(k.base+int64(j))<<18 | 6<<12 | fJSON<<8, j: int32(j), raw: 6, n: int8(n)}
	copy(u.b[:], buf[:n])
	k.record(u)
	for _, b := range u.b[:n] {
		if r >= 0x80 {
			k.ok(b) // not a key character: never refused
		}
		k.take(b)
	}
	return j + 6, true
}

// ok reports whether the normalised byte b may be taken next: no window
// ending at it passes the filter and it joins no two runs. If so, it has
// advanced the joiner over b.
func (k *skimmer) ok(b byte) bool {
	tok := tokenChar[b]
	if tok && k.run >= 7 && k.held(k.win<<8|uint64(b)) {
		return false
	}
	q := k.q
	if tok && (b != '+' || k.quotes == 0 || k.state() != jGap) {
		if k.quotes >= 2 && k.state() == jGap {
			return false // a join: the byte path wakes the join lane
		}
		if k.runEnd != q {
			k.runStart, k.brk, k.comma, k.quotes = q, false, false, 0
		}
		k.runEnd = q + 1
		return true
	}
	switch {
	case !gapChar[b]:
		k.brk = true
	case b == '"' || b == '\'':
		k.quotes++
	case b == ',':
		k.comma = true
	}
	return true
}

// take advances the window and the position over the normalised byte b.
func (k *skimmer) take(b byte) {
	k.win = k.win<<8 | uint64(b)
	if tokenChar[b] {
		k.run = min(k.run+1, 8)
	} else {
		k.run = 0
	}
	k.q++
}

// record notes unit u, which begins at the current position.
func (k *skimmer) record(u skimUnit) {
	k.units[k.nu] = u
	k.nu++
}

// room reports whether n more units fit, dropping those wholly before
// what the lane may still read if they do not.
func (k *skimmer) room(n int) bool {
	if k.nu+n <= skimUnits {
		return true
	}
	lo, d := k.need(), 0
	for d < k.nu && k.units[d].q+int64(k.units[d].n) <= lo {
		d++
	}
	if d > 0 {
		u := &k.units[d-1]
		k.bq, k.bj = u.q+int64(u.n), int64(u.j)+int64(u.raw)
		k.nu = copy(k.units[:], k.units[d:k.nu])
	}
	return k.nu+n <= skimUnits
}

// need is lane.need for the main lane as the skim leaves it: quiet, its
// automaton at the root.
func (k *skimmer) need() int64 {
	lo := k.q - 10
	if st := k.state(); st != jBroken {
		lo = min(lo, k.runStart)
		if st == jGap {
			lo = min(lo, k.runEnd-8)
		}
	}
	return max(lo, k.q-k.s.main.size)
}

// joinWord advances the joiner over the first plain bytes of a word,
// none a quote, whose key characters, gap breakers and commas are tok,
// brk and comma (bit t for byte t; the bytes past the plain ones are not
// set). Without a quote no gap in them joins: only the last run and what
// follows it matter.
func (k *skimmer) joinWord(tok, brk, comma uint8) {
	if tok == 0 {
		k.brk, k.comma = k.brk || brk != 0, k.comma || comma != 0
		return
	}
	t := bits.Len8(tok) // just past the last key character
	if before := ^tok & (1<<(t-1) - 1); before != 0 {
		k.runStart = k.q + int64(bits.Len8(before)) // the run starts in the word
	} else if k.runEnd != k.q {
		k.runStart = k.q // at the word's start, after a gap
	}
	k.runEnd = k.q + int64(t)
	k.brk, k.comma, k.quotes = brk>>t != 0, comma>>t != 0, 0
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
	ring, mask, p := m.ring, m.mask, k.p
	cq, cj := k.bq, k.bj // plain bytes from here to the next unit
	for t := 0; ; t++ {
		end := k.q
		if t < k.nu {
			end = k.units[t].q
		}
		for q := max(cq, lo); q < end; q++ {
			r := cj + q - cq
			ring[q&mask] = uint64(k.base+r)<<18 | 1<<12 | uint64(p[r])
		}
		if t == k.nu {
			break
		}
		u := &k.units[t]
		for i, b := range u.b[:u.n] {
			if q := u.q + int64(i); q >= lo {
				ring[q&mask] = u.v | uint64(b)
			}
		}
		cq, cj = u.q+int64(u.n), int64(u.j)+int64(u.raw)
	}
	m.pos, m.win = k.q, k.win
	switch s.jState = k.state(); s.jState {
	case jRun:
		s.runStart = k.runStart
	case jGap:
		s.runStart, s.runEnd, s.gapLen, s.gapQuotes, s.gapKind = k.runStart, k.runEnd, int(k.q-k.runEnd), k.quotes, "concat"
		if k.comma {
			s.gapKind = "json-array"
		}
		if k.runEnd >= k.q0 { // the run ended in the skim: the lane was quiet then
			s.runState, s.candHold = m.state, math.MaxInt64
		}
	}
	return j
}
