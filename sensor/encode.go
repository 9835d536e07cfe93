package sensor

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"slices"
)

// form is one encoded rendering of a secret that the automaton looks for.
type form struct {
	enc string
	b   []byte
}

// expand returns the encoded forms of secret v: raw; base64 and base64url
// at the three byte alignments; hex in both cases; and the double
// encodings base64(base64) and base64(hex). Duplicate renderings (base64
// and base64url agree when no '+' or '/' occurs) are kept once.
func expand(v []byte) []form {
	var fb formBuilder
	fb.expand(v)
	fs := make([]form, len(fb.spans))
	for i, sp := range fb.spans {
		fs[i] = form{sp.enc, fb.word(sp)}
	}
	return fs
}

// span is one word in a formBuilder's arena.
type span struct {
	off, n uint32
	enc    string
}

// formBuilder collects the encoded forms of many secrets in one arena, so
// building a matcher costs a handful of allocations, not several per form.
type formBuilder struct {
	arena    []byte
	spans    []span
	first    int    // index of the first span of the secret being expanded
	src, dst []byte // scratch: an encoding's input at its alignment, and output
	inner    [3][]byte
	lo, up   []byte
}

func (fb *formBuilder) word(sp span) []byte {
	return fb.arena[sp.off : sp.off+sp.n : sp.off+sp.n]
}

// add appends form b unless it is empty or repeats one of the current
// secret's forms.
func (fb *formBuilder) add(enc string, b []byte) {
	if len(b) == 0 {
		return
	}
	for _, sp := range fb.spans[fb.first:] {
		if bytes.Equal(fb.word(sp), b) {
			return
		}
	}
	fb.spans = append(fb.spans, span{uint32(len(fb.arena)), uint32(len(b)), enc})
	fb.arena = append(fb.arena, b...)
}

// run returns the stable base64 run of v at alignment k (see b64Runs), in
// scratch space valid until the next call. v must not alias that space.
func (fb *formBuilder) run(e *base64.Encoding, v []byte, k int) []byte {
	fb.src = append(append(fb.src[:0], 0, 0, 0)[:k], v...)
	n := e.EncodedLen(len(fb.src))
	fb.dst = slices.Grow(fb.dst[:0], n)[:n]
	e.Encode(fb.dst, fb.src)
	first, last := (8*k+5)/6, min(8*(k+len(v))/6, n)
	if first >= last {
		return nil
	}
	return fb.dst[first:last]
}

// expand appends the forms of secret v in the order expand lists them.
func (fb *formBuilder) expand(v []byte) {
	std, url := base64.RawStdEncoding, base64.RawURLEncoding
	fb.first = len(fb.spans)
	fb.add("raw", v)
	for k := range 3 {
		fb.inner[k] = append(fb.inner[k][:0], fb.run(std, v, k)...)
		fb.add("base64", fb.inner[k])
		fb.add("base64url", fb.run(url, v, k))
	}
	fb.lo = hex.AppendEncode(fb.lo[:0], v)
	fb.up = append(fb.up[:0], fb.lo...)
	for i, c := range fb.up {
		if c >= 'a' {
			fb.up[i] = c - 'a' + 'A'
		}
	}
	fb.add("hex", fb.lo)
	fb.add("hex", fb.up)
	for _, in := range fb.inner {
		for k := range 3 {
			fb.add("base64(base64)", fb.run(std, in, k))
		}
		for k := range 3 {
			fb.add("base64url(base64)", fb.run(url, in, k))
		}
	}
	for _, h := range [2][]byte{fb.lo, fb.up} {
		for k := range 3 {
			fb.add("base64(hex)", fb.run(std, h, k))
		}
	}
}

// b64Runs returns, for each alignment k in 0..2 (v placed k bytes into a
// larger blob), the run of base64 characters that depends on v alone. The
// characters at either end of the run also carry bits of the neighbouring
// bytes or the padding, so they vary with context and are left out; what is
// left appears verbatim in any base64 encoding of any blob containing v at
// that alignment, padded or not.
func b64Runs(v []byte, enc *base64.Encoding) [3][]byte {
	var runs [3][]byte
	for k := range 3 {
		buf := make([]byte, k+len(v))
		copy(buf[k:], v)
		e := enc.EncodeToString(buf)
		first := (8*k + 5) / 6         // first char whose 6 bits start inside v
		last := (8 * (k + len(v))) / 6 // chars before this end inside v
		if last > len(e) {
			last = len(e)
		}
		if first < last {
			runs[k] = []byte(e[first:last])
		}
	}
	return runs
}
