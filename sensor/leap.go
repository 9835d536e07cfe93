package sensor

import (
	"encoding/binary"
	"math/bits"
	"sync"
)

// The leap is the scan's fastest path, in front of the skim (and, with
// the format rules on, of the block scan). Where those do, a word or a
// byte at a time, all that the byte path would have done, the leap only
// proves that nothing would have happened: over a stretch of the body
// that it finds clear it keeps no lane state at all, and the lane resumes
// after the stretch as if it had read it.
//
// That works because of where a stretch ends. After a breaker (a byte
// that is neither a key character nor a gap character, such as ':' or
// '{'), with the main lane quiet and no held form holding a byte that is
// not a key character (filter.odd), the lane is in a state that does not
// depend on what came before: no window ending there can begin a held
// form (each would hold the breaker), no keyword form is under way, the
// joiner is broken and the join lane idle. So the leap starts only where
// the joiner is broken, and ends just after the last breaker before the
// first thing it cannot rule out; the lane then counts the stretch's
// normalised bytes and resets (see jump), and the skim or the block scan
// reads on from there.
//
// The leap reads 512 raw bytes at a time (a piece), with the 64 before
// and after: a vector classifier (classify_amd64.s: AVX-512 VBMI or AVX2,
// else classifyGeneric) turns each 64 into bit masks of their classes,
// and the escapes are marked by what they stand for (units). Inside a
// stretch it must then rule out all that could have been found:
//
//   - A held form. Each begins with 8 normalised key characters (its
//     anchor). When every form begins with 15 (filter.short is clear),
//     only runs of 15 or more can hold one, and each start is tested by
//     the form's 8-byte piece at the first raw index from it divisible
//     by 8 (filter.hasOct); otherwise each window of 8 by its run of 4 at
//     an index divisible by 4 (filter.hasQuad). A start whose piece
//     passes is tested by the anchor filter and then the book, as the
//     byte path would.
//   - A window of the join lane across a join. For each gap with two
//     quotes or more between two runs, the leap rebuilds the joined bytes
//     about the join and tests each window across it, and the windows
//     near the end of the run before it that the octet test leaves to
//     the join lane. It takes a gap for a join whenever the joiner might
//     (it ignores maxGap for gaps of up to twice its length), so it tests
//     a few windows too many, never one too few.
//   - With the format rules on, a keyword form that opens a candidate
//     that matters: one whose tail could reach its rule's minimum, one
//     encoded or of the PEM rule, and one the join lane would carry
//     across a join (see keywordStops and keywordJoins).
//   - Anything it does not undo: an escape or a character that stands for
//     a key character, a gap character or nothing (percent escapes, \/,
//     \u escapes of ASCII letters, digits, spaces or quotes, surrogates,
//     fullwidth and invisible characters). It stops before those, and the
//     skim and the byte path take them.
//
// Without escapes of those kinds, every normalised key character is a raw
// key character and every run of them a run of raw bytes, so the windows
// are read from the raw body. FuzzBlockScanner holds the leap, like the
// other fast paths, to the byte path: the same bytes, the same hits, and
// the same count of normalised bytes.

// noLeap turns the leap off (the skim still runs); benchmarks compare.
var noLeap = false

// bmask holds the classes of the 64 raw bytes of a block, bit k for byte
// k: key characters, gap characters (quotes, and '+', included), quotes,
// the bytes the leap must look at (the normaliser's escape starts and
// UTF-8 leads), and plain ASCII breakers. The escapes' bytes are then
// marked by what they stand for, and u1, u3, u4 and u5 mark the units
// that normalise to 1, 3, 4 or 5 bytes fewer than they take. (The layout
// is classifyAVX2's.)
type bmask struct {
	k, g, q, s, b  uint64
	bs, ntr, uu    uint64 // backslashes, and the letters n, t and r, and u
	u1, u3, u4, u5 uint64
}

// leapClasses is the byte classes of bmask: key, gap, quote, special,
// breaker, backslash, n t r, u.
var leapClasses = [8]func(b byte) bool{
	func(b byte) bool { return tokenChar[b] },
	func(b byte) bool { return gapChar[b] },
	func(b byte) bool { return b == '"' || b == '\'' },
	func(b byte) bool { return !plain[b] },
	func(b byte) bool { return b < 0x80 && plain[b] && !tokenChar[b] && !gapChar[b] },
	func(b byte) bool { return b == '\\' },
	func(b byte) bool { return b == 'n' || b == 't' || b == 'r' },
	func(b byte) bool { return b == 'u' },
}

// leapClass holds each byte's classes at bits 0, 8, ..., 56 (in
// leapClasses' order), so that the classes of a word's 8 bytes, each
// shifted by its index, OR into one number holding a mask per class.
var leapClass = func() (t [256]uint64) {
	for c := range 256 {
		for i, in := range leapClasses {
			if in(byte(c)) {
				t[c] |= 1 << (8 * i)
			}
		}
	}
	return t
}()

// classifyGeneric is classifyBlocks a word at a time.
func classifyGeneric(p []byte, m []bmask) {
	t := &leapClass
	for i := range m {
		blk := p[64*i : 64*i+64]
		var v [8]uint64
		for w := 0; w < 64; w += 8 {
			x := binary.LittleEndian.Uint64(blk[w:])
			c := t[byte(x)] | t[byte(x>>8)]<<1 | t[byte(x>>16)]<<2 | t[byte(x>>24)]<<3 |
				t[byte(x>>32)]<<4 | t[byte(x>>40)]<<5 | t[byte(x>>48)]<<6 | t[byte(x>>56)]<<7
			for j := range v {
				v[j] |= (c >> (8 * j) & 0xFF) << w
			}
		}
		m[i] = bmask{k: v[0], g: v[1], q: v[2], s: v[3], b: v[4], bs: v[5], ntr: v[6], uu: v[7]}
	}
}

// nibbles are the vector classifier's tables, each twice over (one copy
// per 128-bit lane): the row bit of each high nibble for the ASCII
// classes (bit h for row h < 8) and for the special bytes (rows 2, 5, C
// and E), then the rows in which each low nibble is a key, gap, quote,
// breaker or special byte, backslash, n t r and u. A byte is in a class when its two nibbles'
// entries share a bit; TestNibbleTables checks that for every byte.
var nibbles = func() (t [10][32]byte) {
	sRows := map[int]int{2: 0, 5: 1, 0xC: 2, 0xE: 3}
	for h := range 16 {
		if h < 8 {
			t[0][h] = 1 << h
		}
		if r, ok := sRows[h]; ok {
			t[1][h] = 1 << r
		}
	}
	table := [8]int{2, 3, 4, 6, 5, 7, 8, 9} // leapClasses' tables in t
	for c := range 256 {
		h, lo := c>>4, c&15
		for i, in := range leapClasses {
			switch {
			case !in(byte(c)):
			case i == 3:
				t[table[i]][lo] |= t[1][h]
			default:
				t[table[i]][lo] |= t[0][h]
			}
		}
	}
	for i := range t {
		copy(t[i][16:], t[i][:16])
	}
	return t
}()

// leapBlocks is the blocks the leap classifies at once, besides one
// behind and one ahead: a piece of 512 bytes, whose masks stay small on
// the stack.
const leapBlocks = 8

// Unit kinds, as the leap sees them.
const (
	uBreak = iota // stands for bytes that are neither key nor gap characters
	uGap          // stands for a gap character other than a quote
	uQuote        // stands for a quote
	uStop         // the leap does not undo it
)

// leapUnit returns the width in raw bytes of the unit at p[u] (a byte the
// classes mark special), how many normalised bytes fewer it makes, and
// what it stands for, as the skim's unit takes it; uStop for anything the
// skim would not pass, or that p cuts off.
func leapUnit(p []byte, u int) (w, shrink int, kind uint8) {
	switch p[u] {
	case '\\':
		if u+1 >= len(p) {
			return 0, 0, uStop
		}
		if p[u+1] == 'u' {
			if u+6 > len(p) {
				return 0, 0, uStop
			}
			var r rune
			for _, c := range p[u+2 : u+6] {
				v, ok := unhex(c)
				if !ok {
					return 0, 0, uStop
				}
				r = r<<4 | rune(v)
			}
			if r < 0x80 {
				// \u003c and the like, which encoding/json writes for <, >
				// and &. A key character is the skim's; so is a gap
				// character or quote, which would let a gap of up to 96
				// raw bytes join (see maxRawGap).
				if c := byte(r); tokenChar[c] || gapChar[c] {
					return 0, 0, uStop
				}
				return 6, 5, uBreak
			}
			if r >= 0xD800 && r <= 0xDFFF || invisible(r) || r >= 0xFF01 && r <= 0xFF5E {
				return 0, 0, uStop
			}
			if r < 0x800 {
				return 6, 4, uBreak // two bytes of UTF-8
			}
			return 6, 3, uBreak
		}
		switch jsonEscape[p[u+1]] {
		case '"', '\'':
			return 2, 1, uQuote
		case '\n', '\t', '\r':
			return 2, 1, uGap
		case '\\', '\b', '\f':
			return 2, 1, uBreak
		}
		return 0, 0, uStop // '/', a key character, or no escape
	case '%':
		// A '%' that starts no escape passes through, and so does one
		// hex digit after it that a second does not follow (%d in a
		// format string): see flushPct.
		switch {
		case u+1 >= len(p):
			return 0, 0, uStop
		case !isHex[p[u+1]]:
			return 1, 0, uBreak
		case u+2 >= len(p) || isHex[p[u+2]]:
			return 0, 0, uStop // an escape, or p cuts it off
		}
		return 1, 0, uBreak
	}
	n := 3 // 0xE1, 0xE2, 0xEF
	if p[u] == 0xC2 {
		n = 2
	}
	if u+n > len(p) || p[u+1]&0xC0 != 0x80 || p[u+n-1]&0xC0 != 0x80 {
		return 0, 0, uStop
	}
	if r := decodeRune(p[u : u+n]); invisible(r) || r >= 0xFF01 && r <= 0xFF5E {
		return 0, 0, uStop
	}
	return n, 0, uBreak
}

// escapers returns the backslashes of bs (a block's, none escaped from
// the block before) that escape the byte after them: in each run, the
// first, the third and so on. Shifted left by one, the run's bits and
// the odd bits subtract to mark even-aligned runs, and XOR with the odd
// bits fixes the odd-aligned ones (simdjson's method).
func escapers(bs uint64) uint64 {
	const odd = 0xAAAAAAAAAAAAAAAA
	return ((bs<<1 | odd) - bs ^ odd) & bs
}

// leaper is a leap in progress over p.
type leaper struct {
	p     []byte
	flt   *filter
	book  *book
	au    *automaton // the format rules' keywords, when they are on; else nil
	rules []rule
	mk    [leapBlocks + 2]bmask // the block before the piece, the piece, the block after
	a     int                   // raw index of the piece's first byte (mk[1])
	end   int                   // raw index past the piece's last block
	top   int                   // raw index past the block after it
	stop  int                   // the first thing the leap cannot rule out; len(p) if none
	skip  int                   // raw index where the next unit may start
	// cross is the start of a unit that runs from the last piece into this
	// one (-1 if none): its marks past the last piece's end are redone.
	cross int
	short bool // flt.short, as the leap read it
	// sse is set for the SSE lane's leap, which has no joiner: no join is
	// tested, and a stretch may end after any byte that is neither a key
	// character nor a quote (see ends).
	sse bool
	// ends marks, per block, the raw bytes a stretch may end after: plain
	// ASCII breakers, and for the SSE lane raw gap characters that are
	// not quotes. None is part of a unit.
	ends [leapBlocks + 2]uint64
	// The joins: quotes before consumed belong to gaps already decided;
	// the last join's second run started at chainY, and the 7 or fewer
	// joined bytes before it are chainT (chainN of them).
	consumed       int
	chainY, chainN int
	chainT         uint64
	// The last breaker of the pieces before this one, and the normalised
	// bytes fewer that the units before it make; shrink is the same for
	// the units before a.
	lastB, shrinkB int
	shrink         int
	bsh            [leapBlocks + 2]int // the shrink of the units that start in each block of the piece
}

// leap finds the stretch of p from i that the main lane may skip (the
// SSE lane, if sse is set): it returns r, the index just past the stretch
// (i if there is none), the number of normalised bytes in p[i:r], and
// stop, where the first thing the leap could not rule out is (len(p) if
// none). The caller checks what the skim needs, and that the joiner is
// broken; for the SSE lane, what sseLeapable does.
func (s *Stream) leap(p []byte, i int, sse bool) (r int, n int64, stop int) {
	l := leaper{p: p, flt: s.flt, book: &s.m.book, stop: len(p), skip: i, cross: -1, consumed: i, chainY: -1, lastB: -1, sse: sse}
	l.short = l.flt.short.Load()
	if s.m.a.maxLen > 0 {
		l.au, l.rules = s.m.a, s.m.rules
	}
	for l.a = i; ; l.a = l.end {
		if l.a == i {
			l.mk[0] = bmask{} // nothing before i counts: the joiner is broken there
		} else {
			l.mk[0] = l.mk[leapBlocks]
		}
		l.piece()
		if l.end >= len(p) || l.end >= l.stop {
			break // l.a stays the last piece's, for lastBreaker
		}
	}
	// The stretch ends after the last breaker before stop.
	lb, sh := l.lastB, l.shrinkB
	if l.stop < l.end {
		if b, s2, ok := l.lastBreaker(l.stop); ok {
			lb, sh = b, s2
		}
	}
	if lb < 0 {
		return i, 0, l.stop
	}
	return lb + 1, int64(lb + 1 - i - sh), l.stop
}

// piece classifies and checks the piece from l.a.
func (l *leaper) piece() {
	n := min(leapBlocks, (len(l.p)-l.a+63)/64)
	l.end, l.top = l.a+64*n, l.a+64*(n+1)
	l.classify(n + 1)
	l.units()
	lim := min(l.stop, l.end) // what this piece checks: up to its end, or the stop
	l.windows(n, lim)
	if l.au != nil {
		l.keywords(min(l.stop, lim))
	}
	if !l.sse {
		l.joins(min(l.stop, lim))
	}
	if l.stop >= l.end {
		// The piece is clear: note its last breaker for the stretch.
		if b, sh, ok := l.lastBreaker(l.end); ok {
			l.lastB, l.shrinkB = b, sh
		}
		l.shrink += l.unitShrink(l.end)
	}
}

// classify fills mk[1:nb+1] from p at l.a, with zero masks past p's end.
func (l *leaper) classify(nb int) {
	p := l.p
	full := max(0, min(nb, (len(p)-l.a)/64))
	if full > 0 {
		classifyBlocks(p[l.a:l.a+64*full], l.mk[1:1+full])
	}
	for i := full; i < nb; i++ {
		at := l.a + 64*i
		if at >= len(p) {
			l.mk[1+i] = bmask{}
			continue
		}
		var buf [64]byte
		copy(buf[:], p[at:])
		classifyBlocks(buf[:], l.mk[1+i:2+i])
		v := uint64(1)<<(len(p)-at) - 1
		m := &l.mk[1+i]
		m.k, m.g, m.q, m.s, m.b = m.k&v, m.g&v, m.q&v, m.s&v, m.b&v
		m.bs, m.ntr, m.uu = m.bs&v, m.ntr&v, m.uu&v
	}
	// Before units marks the escapes: the raw classes.
	for i := 1; i <= nb; i++ {
		m := &l.mk[i]
		l.ends[i] = m.b
		if l.sse {
			l.ends[i] |= m.g &^ m.k &^ m.q
		}
	}
}

// at returns the mask index and bit of raw index x.
func (l *leaper) at(x int) (int, uint) {
	d := x - l.a + 64
	return d >> 6, uint(d & 63)
}

// units parses the special bytes of the piece and the block after it, in
// order from l.skip, marking each unit's bytes by what it stands for. A
// unit the leap does not undo sets the stop (when in the piece).
func (l *leaper) units() {
	p := l.p
	if l.cross >= 0 {
		w, _, kind := leapUnit(p, l.cross)
		l.mark(l.cross, w, 0, kind)
		l.cross = -1
	}
	next := -1 // where the next piece's units start
	l.bsh = [leapBlocks + 2]int{}
	for bi := 1; bi*64 < l.top-l.a+64; bi++ {
		base := l.a + 64*(bi-1)
		if next < 0 && base >= l.end {
			next = max(l.skip, l.end)
		}
		m := &l.mk[bi]
		sp, last := m.s, 0
		if bs := m.bs; bs != 0 && l.skip < base+64 {
			// The backslashes that escape the byte after them, and those
			// bytes, by simdjson's carry trick: in a run of backslashes
			// every other one escapes, from the run's first. Bytes before
			// l.skip belong to a unit from the block before (marked by
			// then); one that escapes across the block's end is left to
			// leapUnit.
			if l.skip > base {
				bs &^= uint64(1)<<(l.skip-base) - 1
			}
			esc := escapers(bs) &^ (1 << 63)
			e := esc << 1
			// Those that escape n, t, r, a quote, an apostrophe or a
			// backslash are marked at once (see mark).
			gapE, quoteE, bsE := e&m.ntr, e&m.q, e&bs
			sp &^= bsE // an escaped backslash starts no unit
			if done := (gapE | quoteE | bsE) >> 1; done != 0 {
				m.k &^= gapE
				m.g |= gapE>>1 | gapE | quoteE>>1
				if base < l.end {
					m.u1 |= done
					l.bsh[bi] += bits.OnesCount64(done)
				}
				sp &^= done // the rest (\u, \b, \f, \/ and no escape) are leapUnit's
				last = base + 63 - bits.LeadingZeros64(done) + 2
			}
			// \u escapes of characters the skim passes through (see
			// leapUnit), within the block.
			for ue := e & m.uu; ue != 0; ue &= ue - 1 {
				o := bits.TrailingZeros64(ue) - 1
				u := base + o
				if o > 64-6 || u+6 > len(p) {
					continue
				}
				w, sh, kind := leapUnit(p, u)
				if kind != uBreak || w != 6 {
					continue // leapUnit's, in turn
				}
				v := uint64(0x1F) << (o + 1)
				m.k, m.g, m.q = m.k&^v, m.g&^v, m.q&^v
				if base < l.end {
					if sh == 4 {
						m.u4 |= 1 << o
					} else {
						m.u3 |= 1 << o
					}
					l.bsh[bi] += sh
				}
				sp &^= 1 << o
				last = max(last, u+6)
			}
		}
		for ; sp != 0; sp &= sp - 1 {
			u := base + bits.TrailingZeros64(sp)
			if u < l.skip {
				continue
			}
			if next < 0 && u >= l.end {
				next = max(l.skip, l.end)
			}
			w, sh, kind := leapUnit(p, u)
			if kind == uStop || u+w > l.top {
				if u < l.end {
					l.stop = min(l.stop, u)
				}
				if next < 0 {
					next = u
				}
				l.skip = next
				return
			}
			if u < l.end {
				l.mark(u, w, sh, kind)
				if u+w > l.end {
					l.cross = u
				}
			} else {
				l.mark(u, w, 0, kind) // counted by the next piece
			}
			l.skip = u + w
		}
		l.skip = max(l.skip, last)
	}
	if next < 0 {
		next = max(l.skip, l.end)
	}
	l.skip = next
}

// mark marks the w bytes of the unit at u by what it stands for, and its
// start by how many normalised bytes fewer it makes.
func (l *leaper) mark(u, w, sh int, kind uint8) {
	j, bit := l.at(u)
	m := &l.mk[j]
	l.bsh[j] += sh
	switch sh {
	case 1:
		m.u1 |= 1 << bit
	case 3:
		m.u3 |= 1 << bit
	case 4:
		m.u4 |= 1 << bit
	case 5:
		m.u5 |= 1 << bit
	}
	if l.p[u] != '\\' {
		return // '%' and UTF-8: breakers already
	}
	// The letters and digits of \n, \uXXXX and the like: no key
	// characters, gap characters or quotes of their own.
	j1, r0, r1 := l.bits(u+1, w-1)
	l.mk[j1].k, l.mk[j1].g, l.mk[j1].q = l.mk[j1].k&^r0, l.mk[j1].g&^r0, l.mk[j1].q&^r0
	if r1 != 0 {
		n := &l.mk[j1+1]
		n.k, n.g, n.q = n.k&^r1, n.g&^r1, n.q&^r1
	}
	if kind == uQuote || kind == uGap {
		j0, a0, a1 := l.bits(u, w)
		l.mk[j0].g |= a0
		if a1 != 0 {
			l.mk[j0+1].g |= a1
		}
	}
	if kind == uQuote {
		j2, b2 := l.at(u + w - 1)
		l.mk[j2].q |= 1 << b2 // one quote for the unit, at its last byte
	}
}

// bits returns the mask index of raw index x and the bits of the w (at
// most 64) raw bytes from x there and in the next block.
func (l *leaper) bits(x, w int) (int, uint64, uint64) {
	j, b := l.at(x)
	v := uint64(1)<<w - 1
	return j, v << b, v >> (64 - b)
}

// runTo returns the length of the run of key characters that ends at raw
// index x (a key character), up to most (at most 64): the run's bits
// counted in x's mask and the one before it.
func (l *leaper) runTo(x, most int) int {
	j, b := l.at(x)
	// With x's bit shifted to the top, the run is the leading ones (the
	// bits shifted in stop the count at the block's first byte).
	n := bits.LeadingZeros64(^(l.mk[j].k << (63 - b)))
	if n == int(b)+1 && j > 0 {
		n += bits.LeadingZeros64(^l.mk[j-1].k)
	}
	return min(n, most)
}

// kAt reports whether raw index x, in the masks, is a key character.
func (l *leaper) kAt(x int) bool { j, b := l.at(x); return l.mk[j].k>>b&1 != 0 }

// windows tests the windows of 8 key characters that end in the piece
// before lim.
func (l *leaper) windows(n, lim int) {
	p, flt := l.p, l.flt
	// Runs of 2, 4 and 8 key characters ending at each bit, by doubling;
	// those of the block before reach into this one's first bits.
	k0 := l.mk[0].k
	w2 := k0 & (k0 << 1)
	w4 := w2 & (w2 << 2)
	w8 := w4 & (w4 << 4)
	short := l.short
	for bi := 1; bi <= n; bi++ {
		base := l.a + 64*(bi-1)
		if base >= lim {
			return
		}
		k := l.mk[bi].k
		v2 := k & (k<<1 | k0>>63)
		v4 := v2 & (v2<<2 | w2>>62)
		w := v4 & (v4<<4 | w4>>60)
		w15 := w & (w<<7 | w8>>57)
		k0, w2, w4, w8 = k, v2, v4, w
		if lim-base < 64 {
			w &= uint64(1)<<(lim-base) - 1
			w15 &= uint64(1)<<(lim-base) - 1
		}
		if !short {
			// Every held form begins with 15 key characters: test the runs
			// of 15 or more (ending at the bits of w15), each form start s
			// by its piece at the first index from s divisible by 8.
			for w15 != 0 {
				e := base + bits.TrailingZeros64(w15)
				o := (e - 7) &^ 7 // the piece of the starts e-14 to o, which end at o+7 to o+14
				c := min(o+15-base, 64)
				if flt.hasOct(binary.BigEndian.Uint64(p[o:])) {
					for ends := w15 & (uint64(1)<<c - 1); ends != 0; ends &= ends - 1 {
						if x := base + bits.TrailingZeros64(ends) - 14; l.held(binary.BigEndian.Uint64(p[x:])) {
							l.stop = min(l.stop, x)
							return
						}
					}
				}
				if c == 64 {
					break
				}
				w15 &^= uint64(1)<<c - 1
			}
			continue
		}
		for w != 0 {
			e := base + bits.TrailingZeros64(w)
			g := e &^ 3 // the windows ending at g to g+3 hold the run of 4 at g-4
			c := min(g+4-base, 64)
			if flt.hasQuad(binary.BigEndian.Uint32(p[g-4:])) {
				for ends := w & (uint64(1)<<c - 1); ends != 0; ends &= ends - 1 {
					if x := base + bits.TrailingZeros64(ends); l.held(binary.BigEndian.Uint64(p[x-7:])) {
						l.stop = min(l.stop, x-7)
						return
					}
				}
			}
			if c == 64 {
				break
			}
			w &^= uint64(1)<<c - 1
		}
	}
}

// keywordTrigrams has a bit for the first three bytes of each format
// keyword form (by trigramBit): where none begins, no keyword does.
var keywordTrigrams = sync.OnceValue(func() *[1 << 10]uint64 {
	var t [1 << 10]uint64
	for _, w := range ruleWords().words {
		h := trigramBit(uint32(w[0]) | uint32(w[1])<<8 | uint32(w[2])<<16) // every keyword form has three bytes or more
		t[h>>6] |= 1 << (h & 63)
	}
	return &t
})

// trigramBit hashes the three bytes v (the first the least significant;
// a fourth, above them, is ignored)
// to a bit of keywordTrigrams.
func trigramBit(v uint32) uint32 { return (v & 0xFFFFFF) * 0x9E3779B1 >> 16 }

// keywords tests each key character of the piece before lim for the
// start of a format keyword's form: those whose first three bytes the
// trigram table has, and those among the last two bytes of p, which have
// no trigram.
func (l *leaper) keywords(lim int) {
	p, tri := l.p, keywordTrigrams()
	// The blocks with two bytes after them have their trigrams' bits by
	// the block (trigramMasks); the rest, a byte at a time.
	nb := min((lim-l.a+63)/64, (len(p)-2-l.a)/64, leapBlocks)
	var tm [leapBlocks]uint64
	if nb > 0 {
		trigramMasks(p[l.a:], tri, tm[:nb])
	}
	for bi := range nb {
		base := l.a + 64*bi
		m := tm[bi] & l.mk[1+bi].k
		if lim-base < 64 {
			m &= uint64(1)<<(lim-base) - 1
		}
		for ; m != 0; m &= m - 1 {
			if x := base + bits.TrailingZeros64(m); l.keywordStops(x) {
				l.stop = min(l.stop, x)
				return
			}
		}
	}
	for x := l.a + 64*nb; x < lim; x++ {
		if (x+2 >= len(p) || hasTrigram(tri, p, x)) && l.kAt(x) && l.keywordStops(x) {
			l.stop = min(l.stop, x)
			return
		}
	}
}

// trigramMasksGeneric is trigramMasks a byte at a time: each position's
// trigram read whole, with the byte after it where there is one, so that
// no position waits on the one before.
func trigramMasksGeneric(p []byte, tri *[1 << 10]uint64, out []uint64) {
	for i := range out {
		var m uint64
		q := p[64*i : 64*i+66]
		for k := range 64 {
			v := uint32(q[k]) | uint32(q[k+1])<<8 | uint32(q[k+2])<<16
			h := trigramBit(v)
			m |= (tri[h>>6&(1<<10-1)] >> (h & 63) & 1) << k
		}
		out[i] = m
	}
}

// hasTrigram reports whether the three bytes of p from x are those a
// keyword form begins with, as far as the table tells.
func hasTrigram(tri *[1 << 10]uint64, p []byte, x int) bool {
	h := trigramBit(uint32(p[x]) | uint32(p[x+1])<<8 | uint32(p[x+2])<<16)
	return tri[h>>6]>>(h&63)&1 != 0
}

// keywordStops reports whether a keyword form that begins at raw index x
// (a key character) may open a candidate that matters. A raw keyword
// whose tail (the run of its rule's charset after it) is shorter than the
// rule's minimum opens one that is dropped as soon as the run ends, and
// changes nothing: the leap passes it. Any other keyword form, a tail
// that runs into a byte the leap does not read raw or to the end of p,
// and a byte the walk does not read raw, stop it.
func (l *leaper) keywordStops(x int) bool {
	a, p, st := l.au, l.p, uint32(0)
	for d := x; d < len(p); d++ {
		b := p[d]
		if !plain[b] {
			return true
		}
		t := a.step(st, b)
		if st = t &^ outBit; a.depthOf(st) != int64(d-x+1) {
			return false // off every path from x: no (other) form begins there
		}
		if t&outBit == 0 {
			continue
		}
		// The forms that end at st's own state begin at x; those on its
		// dictionary chain begin later, and their starts are tested too.
		if oi := a.out[a.id(st)]; oi >= 0 {
			for _, pi := range a.outsOf(oi) {
				pat := &a.pats[pi]
				if r := &l.rules[pat.ref]; pat.dec != decRaw || r.pem || !l.shortTail(d+1, r) {
					return true
				}
			}
		}
	}
	return true
}

// shortTail reports whether the run of r's charset from raw index t is
// shorter than r.min and ends at a plain byte.
func (l *leaper) shortTail(t int, r *rule) bool {
	p := l.p
	e := t
	for e < len(p) && e-t < r.min && r.charset[p[e]] {
		e++
	}
	return e-t < r.min && e < len(p) && plain[p[e]]
}

// maxJoinRun is the longest run before a join whose keyword forms the
// leap looks for (with the format rules on); a longer one stops it.
const maxJoinRun = 48

// keywordJoins reports whether a keyword form that begins at raw index x,
// in the run that ends at back, may open a candidate that the join to
// the run at y changes: one that goes on across the join, or whose tail
// (the run of its rule's charset) reaches the run's end. The walk is the
// join lane's: the run from x, then the run from y.
func (l *leaper) keywordJoins(x, back, y int) bool {
	a, p, st := l.au, l.p, uint32(0)
	for d, k := x, 1; ; d, k = d+1, k+1 {
		if d == back+1 {
			d = y // the join lane's next byte
		}
		if d >= len(p) || !plain[p[d]] {
			return true
		}
		t := a.step(st, p[d])
		if st = t &^ outBit; a.depthOf(st) != int64(k) {
			return false
		}
		if t&outBit == 0 {
			continue
		}
		if d >= y && y > back {
			return true // a form across the join
		}
		if oi := a.out[a.id(st)]; oi >= 0 {
			for _, pi := range a.outsOf(oi) {
				r := &l.rules[a.pats[pi].ref]
				e := d + 1
				for e <= back && r.charset[p[e]] {
					e++
				}
				if e > back {
					return true // its tail runs to the join
				}
			}
		}
	}
}

// held reports whether a held form begins with the window w.
func (l *leaper) held(w uint64) bool {
	if !l.flt.has(w) {
		return false
	}
	_, ok := l.book.anchor(w)
	return ok
}

// joins finds the gaps whose first quote is in the piece before lim that
// the joiner may take for a join, and tests the join lane's windows across
// each.
func (l *leaper) joins(lim int) {
	for bi := 1; l.a+64*(bi-1) < lim; bi++ {
		base := l.a + 64*(bi-1)
		// Only a quote that a gap character follows can be a gap's first
		// quote with another after it (see join).
		for qs := l.mk[bi].q & (l.mk[bi].g>>1 | l.mk[bi+1].g<<63); qs != 0; qs &= qs - 1 {
			x := base + bits.TrailingZeros64(qs)
			if x >= lim {
				return
			}
			if x < l.consumed {
				continue
			}
			if back, y, ok := l.join(x); ok && !l.across(back, y) {
				l.stop = min(l.stop, y)
				return
			}
		}
	}
}

// maxRawGap is the longest gap, in raw bytes, that may normalise to one
// the joiner takes: each normalised gap byte the leap passes is one raw
// byte, or two (an escape such as \n or \"; see leapUnit).
const maxRawGap = 2 * maxGap

// join decides the gap whose first quote is at x. If the joiner might
// take it for a join, it returns the index of the last key character
// before it and of the key character after it. It marks the gap's quotes
// as decided.
func (l *leaper) join(x int) (back, y int, ok bool) {
	j, b := l.at(x)
	base := l.a + 64*(j-1) // raw index of mask j's first byte
	// back: the last byte before x that is not a gap character other than
	// '+' (before the gap's first quote, '+' is a key character).
	m := &l.mk[j]
	back = -1
	if c := ^(m.g &^ m.k) & (uint64(1)<<b - 1); c != 0 {
		back = base + 63 - bits.LeadingZeros64(c)
	} else if j > 0 {
		if c := ^(l.mk[j-1].g &^ l.mk[j-1].k); c != 0 {
			back = base - 64 + 63 - bits.LeadingZeros64(c)
		}
	}
	if back < 0 || x-back-1 > maxRawGap || !l.kAt(back) {
		return 0, 0, false // no run before the gap, a breaker in it, or too long a gap
	}
	// y: the first byte after x that is not a gap character.
	y = -1
	if c := ^m.g &^ (uint64(2)<<b - 1); c != 0 {
		y = base + bits.TrailingZeros64(c)
	} else if j+1 < len(l.mk) && l.a+64*j < l.top {
		if c := ^l.mk[j+1].g; c != 0 {
			y = base + 64 + bits.TrailingZeros64(c)
		}
	}
	if y < 0 || y-back-1 > maxRawGap {
		return 0, 0, false // longer than any gap the joiner takes
	}
	l.consumed = y
	if !l.kAt(y) {
		return 0, 0, false
	}
	// The quotes in [x, y): x's, and one more.
	j2, q0, q1 := l.bits(x+1, y-x-1)
	if l.mk[j2].q&q0 == 0 && (q1 == 0 || l.mk[j2+1].q&q1 == 0) {
		return 0, 0, false
	}
	return back, y, true
}

// across tests the join lane's windows across the join of the run that
// ends at back to the run at y; it reports false if one may begin a held
// form.
func (l *leaper) across(back, y int) bool {
	p := l.p
	if l.au != nil {
		// A keyword form in the run before the gap, or one unbroken at its
		// end, may open a candidate that goes on across the join.
		n := l.runTo(back, maxJoinRun+1)
		if n > maxJoinRun {
			return false
		}
		// A form begins at x only if its first three bytes are in the
		// trigram table: raw bytes of the run for all but the last two
		// starts, whose trigrams run across the join and are walked.
		tri := keywordTrigrams()
		for x := back - n + 1; x <= back; x++ {
			if x+2 <= back {
				if !hasTrigram(tri, p, x) {
					continue
				}
			}
			if l.keywordJoins(x, back, y) {
				return false
			}
		}
	}
	if !l.short {
		// The windows inside the run before the gap that start in its
		// last 14 bytes: the main lane tests a start only where 15 key
		// characters follow it, but in the join lane a form may begin
		// there and go on across the join.
		n := l.runTo(back, octLen-1)
		for x := back - n + 1; x+7 <= back; x++ {
			if l.held(binary.BigEndian.Uint64(p[x:])) {
				return false
			}
		}
	}
	// The run before the gap, back to its start, 7 bytes, or the start of
	// the last join's second run, whose joined bytes come before it.
	rs := back
	for rs > back-6 && rs != l.chainY && l.kAt(rs-1) {
		rs--
	}
	var t uint64
	tn := 0
	if rs == l.chainY && back-rs < 6 {
		t, tn = l.chainT, l.chainN
	}
	for d := rs; d <= back; d++ {
		t, tn = t<<8|uint64(p[d]), tn+1
	}
	tn = min(tn, 7)
	t &= 1<<(8*tn) - 1
	l.chainY, l.chainT, l.chainN = y, t, tn
	for d := y; d < y+7 && d < len(p) && l.kAt(d); d++ {
		if t, tn = t<<8|uint64(p[d]), tn+1; tn >= 8 && l.held(t) {
			return false
		}
	}
	return true
}

// lastBreaker returns the last byte a stretch may end after (see ends)
// in the current piece before raw index lim, and the normalised bytes
// fewer that the units before it make.
func (l *leaper) lastBreaker(lim int) (int, int, bool) {
	if lim <= l.a {
		return 0, 0, false // a window that starts in the piece before: lastB is before it
	}
	for base := l.a + (lim-1-l.a)/64*64; base >= l.a; base -= 64 {
		j, _ := l.at(base)
		m := l.ends[j]
		if lim-base < 64 {
			m &= uint64(1)<<(lim-base) - 1
		}
		if m != 0 {
			x := base + 63 - bits.LeadingZeros64(m)
			return x, l.shrink + l.unitShrink(x), true
		}
	}
	return 0, 0, false
}

// unitShrink returns the normalised bytes fewer that the piece's units
// before raw index lim (in the piece, or its end) make: the blocks'
// sums before lim's block, and that block's units before lim.
func (l *leaper) unitShrink(lim int) int {
	j, b := l.at(lim)
	sh := 0
	for _, n := range l.bsh[1:j] {
		sh += n
	}
	if m := &l.mk[j]; b > 0 && j <= leapBlocks {
		v := uint64(1)<<b - 1
		sh += bits.OnesCount64(m.u1&v) + 3*bits.OnesCount64(m.u3&v) + 4*bits.OnesCount64(m.u4&v) + 5*bits.OnesCount64(m.u5&v)
	}
	return sh
}

// fast runs the leap and the skim from p[i] for as long as they can go,
// and returns where the byte path must take over. The caller checks what
// the skim needs.
func (s *Stream) fast(p []byte, i int) int {
	if noLeap {
		return s.skim(p, i)
	}
	for {
		x := i
		if s.jState == jBroken {
			r, n, stop := s.leap(p, i, false)
			if r > i {
				s.main.jump(n)
				i = r
			}
			x = stop
			if stop-i < leapBack {
				// The leap classified a piece of 512 bytes to pass fewer
				// than leapBack of them: a body can be made of what stops
				// it. The skim takes the next leapBack bytes, so that the
				// leap never costs much more than the skim would have.
				x = min(len(p), stop+leapBack)
			}
		}
		// The skim reads on, to the first breaker at or past what the leap
		// could not rule out: the joiner is broken again there.
		b := breakAfter(p, x)
		j := s.skim(p[:b], i)
		if j < b || b == len(p) || s.flt.odd.Load() {
			return j
		}
		i = j
	}
}

// leapBack is how far the skim reads on, past where the leap stopped,
// before the leap is tried again, when the leap passed fewer bytes than
// this.
const leapBack = 64

// jump moves the lane over the n normalised bytes of a stretch the leap
// found clear, which ends after a byte no held form holds: nothing
// before that counts as a window any more, as nothing would have.
func (l *lane) jump(n int64) {
	l.pos += n
	l.resetAt, l.win = l.pos, 0
}

// breakAfter returns the index just past the first plain ASCII breaker in
// p from x, or len(p).
func breakAfter(p []byte, x int) int {
	for ; x < len(p); x++ {
		if leapClass[p[x]]>>32 != 0 {
			return x + 1
		}
	}
	return len(p)
}

// leapRules is the leap for a stream with the format rules on: it jumps
// the clear stretch from p[i] and returns where the block scan and the
// byte path read on. A leap that passed little is not tried again until
// a piece's worth further on.
func (s *Stream) leapRules(p []byte, i int) int {
	r, n, stop := s.leap(p, i, false)
	s.leapFrom = s.total + int64(stop)
	if stop-i < leapBack {
		s.leapFrom += leapBack
	}
	if r > i {
		s.main.jump(n)
	}
	return r
}
