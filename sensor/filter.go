package sensor

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"sync"
	"sync/atomic"
)

// filter says which 8-byte windows may begin a held form (anchors), and
// which 1- to 7-byte tails may be the start of one (prefixes). It is a
// blocked Bloom filter: a key sets two bits in one 64-bit word, so a test
// is one load. A clear bit is a certain no; a yes is checked against the
// book. Bits are set atomically while streams read them; they are never
// cleared (a rebuilt filter replaces a stale one, see book.resize).
//
// The hash multiplies by a random odd number and uses the top bits: an
// agent cannot choose windows that all pass without knowing it, and if it
// did, each would cost one lookup in the book.
type filter struct {
	bits   []uint64
	pre    []uint64
	grams  []uint64 // see gramAt: the keywords' and the held forms'
	dgrams []uint64 // the held forms' alone
	quad   []uint64 // the anchors' 4-byte pieces at offsets 0 to 3; see hasQuad
	oct    []uint64 // the forms' 8-byte pieces at offsets 0 to 7; see hasOct
	mul    uint64
	shift  uint8 // 64 - log2(len(bits))
	pshift uint8
	qshift uint8
	oshift uint8
	// mixed is set once some anchor holds a byte of gram class 0. Until
	// then a window or trigram holding one is certainly clear, and most
	// of the bytes a stream takes one at a time (JSON's quotes, colons
	// and escapes) need no test.
	mixed atomic.Bool
	// odd is set once some anchor holds a byte that is not a key character
	// (tokenChar). Until then a window holding one begins no held form,
	// which the skim (see skim.go) relies on.
	odd atomic.Bool
	// short is set once some form's first 15 bytes are not all key
	// characters (a form shorter than that, say). Until then no held form
	// begins in a run of fewer than 15, and the leap tests the 8-byte
	// pieces of longer runs (see hasOct).
	short atomic.Bool
}

// Filter sizes: 32 bits per anchor let about one window in 250 through
// (two bits of a word in which four are set, on average), and keep the
// filter of a few hundred anchors (tens of sessions) in the first-level
// cache; prefixes are probed once per write, not per byte, and get 16.
const (
	anchorBits    = 32
	prefixBits    = 16
	minFilterBits = 1 << 15
	minFilterKeys = 1024 // stale anchors tolerated before a small filter is rebuilt
)

// filterBits returns the anchor bits for n anchors, a power of two.
func filterBits(n int) int { return pow2(max(minFilterBits, anchorBits*n)) }

// quadBits is the quad filter's bits per anchor (it holds 4 keys for
// each): a false yes costs a word whose windows are tested one by one.
const quadBits = 16 * 4

// octBits is the octet filter's bits per form: it holds 8 keys for each,
// at 12 bits a key or more (12 to 24 once rounded up to a power of two;
// a false yes costs 8 anchor tests at most).
const octBits = 12 * 8

// octLen is the length of a form's start that the octet filter holds the
// pieces of: 8 pieces of 8 bytes, at offsets 0 to 7.
const octLen = 15

// pow2 returns the least power of two at least n (n > 0).
func pow2(n int) int { return 1 << bits.Len(uint(n-1)) }

// octFilterBits returns the octet filter's bits for n forms, a power of
// two.
func octFilterBits(n int) int { return pow2(max(minFilterBits, octBits*n)) }

// newFilter returns an empty filter for n anchors and forms forms whose
// gram table starts as a copy of static (the format keywords', or nil).
func newFilter(n, forms int, static []uint64) *filter {
	a, p, qd := filterBits(n), pow2(max(minFilterBits, prefixBits*7*n)), pow2(max(minFilterBits, quadBits*n))
	od := octFilterBits(forms)
	f := &filter{
		bits: make([]uint64, a/64), pre: make([]uint64, p/64), quad: make([]uint64, qd/64), oct: make([]uint64, od/64),
		grams: make([]uint64, gramWords), dgrams: make([]uint64, gramWords),
		mul:   rand.Uint64() | 1,
		shift: uint8(64 - bits.TrailingZeros(uint(a/64))), pshift: uint8(64 - bits.TrailingZeros(uint(p/64))),
		qshift: uint8(64 - bits.TrailingZeros(uint(qd/64))), oshift: uint8(64 - bits.TrailingZeros(uint(od/64))),
	}
	copy(f.grams, static)
	return f
}

// slot returns the word of key x in a filter of 64-bit words indexed by
// the top 64-shift bits of its hash, and the two bits it sets there.
func (f *filter) slot(x uint64, shift uint8) (uint64, uint64) {
	h := x * f.mul
	return h >> shift, 1<<(h>>(shift-6)&63) | 1<<(h>>(shift-12)&63)
}

// has reports whether the window w (the last 8 bytes, the oldest most
// significant) may be the start of a held form.
func (f *filter) has(w uint64) bool {
	i, m := f.slot(w, f.shift)
	return atomic.LoadUint64(&f.bits[i])&m == m
}

// hasQuad reports whether the 4 bytes v (the first the most significant)
// may be the piece of a held form's first 8 bytes at offset 0 to 3.
// Every window of 8 normalised bytes holds a run of 4 that starts at a
// position divisible by 4, at offset 0 to 3 in it: where no such run of
// the last bytes passes, no window ending in them begins a held form,
// and the skim tests two or three numbers a word, not eight windows.
func (f *filter) hasQuad(v uint32) bool {
	i, m := f.slot(uint64(v)|1<<40, f.qshift)
	return atomic.LoadUint64(&f.quad[i])&m == m
}

// octSalt sets the octet filter's keys apart from the anchors', which
// share the multiplier.
const octSalt = 0x9E3779B97F4A7C15

// hasOct reports whether the 8 bytes v (the first the most significant)
// may be the piece of a held form at offset 0 to 7. A form that begins at
// s spans the piece that starts at the first index from s divisible by 8:
// where a run of 15 key characters or more holds no piece that passes,
// no form begins in it (unless short is set).
func (f *filter) hasOct(v uint64) bool {
	i, m := f.slot(v^octSalt, f.oshift)
	return atomic.LoadUint64(&f.oct[i])&m == m
}

// addForm sets the octet filter's bits for form b, or short.
func (f *filter) addForm(b []byte) {
	if len(b) < octLen {
		f.short.Store(true)
		return
	}
	for _, c := range b[:octLen] {
		if !tokenChar[c] {
			f.short.Store(true)
			return
		}
	}
	for o := range octLen - 7 {
		i, m := f.slot(binary.BigEndian.Uint64(b[o:])^octSalt, f.oshift)
		atomic.OrUint64(&f.oct[i], m)
	}
}

// prefixKey packs the k-byte prefix p (k < 8) with its length.
func prefixKey(p uint64, k int) uint64 { return p | uint64(k)<<56 }

// hasPrefix reports whether the k bytes p (k < 8) may begin a held form.
func (f *filter) hasPrefix(p uint64, k int) bool {
	i, m := f.slot(prefixKey(p, k), f.pshift)
	return atomic.LoadUint64(&f.pre[i])&m == m
}

// add sets the bits of anchor c, its prefixes and its first three bytes.
func (f *filter) add(c uint64) {
	for k := 0; k < 64; k += 8 {
		if gramClass[byte(c>>k)] == 0 {
			f.mixed.Store(true)
		}
		if !tokenChar[byte(c>>k)] {
			f.odd.Store(true)
		}
	}
	i, m := f.slot(c, f.shift)
	atomic.OrUint64(&f.bits[i], m)
	k := gramAt(byte(c>>56), byte(c>>48), byte(c>>40))
	atomic.OrUint64(&f.grams[k>>6], 1<<(k&63))
	atomic.OrUint64(&f.dgrams[k>>6], 1<<(k&63))
	for k := 1; k < 8; k++ {
		i, m := f.slot(prefixKey(c>>(8*(8-k)), k), f.pshift)
		atomic.OrUint64(&f.pre[i], m)
	}
	for r := range 4 {
		i, m := f.slot(uint64(uint32(c>>(8*(4-r))))|1<<40, f.qshift)
		atomic.OrUint64(&f.quad[i], m)
	}
}

// The gram table has a bit for each three-byte start of a format keyword
// form or a held form, by gramClass: where none starts, no match can, and
// a stream's block scan (see Stream.block) passes over the bytes with one
// table load each, without stepping the automaton or testing windows.

// gramClass maps a byte to its class in the gram table: one for each
// character a keyword form or a held form begins with in practice
// (letters, digits and "+/-_="), and class 0 for the rest, which may begin
// one too (a raw secret can hold any byte) at the price of more false
// starts.
var gramClass = func() (t [256]uint8) {
	for i := range len(gramChars) {
		t[gramChars[i]] = uint8(i + 1)
	}
	return t
}()

const (
	gramChars    = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_="
	nGramClasses = uint32(len(gramChars) + 1)
	gramWords    = (nGramClasses*nGramClasses*nGramClasses + 63) / 64 // 39 KB
)

// gramAt returns the bit of the three bytes b0 b1 b2 in a gram table.
func gramAt(b0, b1, b2 byte) uint32 {
	return (uint32(gramClass[b0])*nGramClasses+uint32(gramClass[b1]))*nGramClasses + uint32(gramClass[b2])
}

// held reports whether some held form may begin with b0 b1 b2; mixed is
// f.mixed, as the caller read it.
func (f *filter) held(b0, b1, b2 byte, mixed bool) bool {
	if !mixed && (gramClass[b0] == 0 || gramClass[b1] == 0 || gramClass[b2] == 0) {
		return false
	}
	k := gramAt(b0, b1, b2)
	return atomic.LoadUint64(&f.dgrams[k>>6])&(1<<(k&63)) != 0
}

// keywordGrams returns the gram table of the format keywords' forms.
var keywordGrams = sync.OnceValue(func() []uint64 {
	g := make([]uint64, gramWords)
	for _, w := range ruleWords().words {
		k := gramAt(w[0], w[1], w[2]) // every keyword form has three bytes or more
		g[k>>6] |= 1 << (k & 63)
	}
	return g
})
