package sensor

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strings"
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

// Keyword encodings. A format rule sees the normalised text directly
// (decRaw) and, where cheap, through one layer of base64 or hex: the
// keyword's own encoded forms are extra automaton patterns, and a hit on
// one opens a candidate that collects the encoded run and decodes it once,
// when the run ends, to check the tail.
const (
	decRaw = iota
	decB64
	decB64URL
	decHex
)

// minEncodedKeyword is the shortest encoded keyword form kept: shorter runs
// would open candidates too often inside unrelated base64 data.
const minEncodedKeyword = 3

type keywordForm struct {
	b []byte
	p pattern
}

// keywordForms returns keyword kw raw, as base64 and base64url runs at the
// three alignments, and as hex in both cases.
func keywordForms(kw []byte) []keywordForm {
	fs := []keywordForm{{kw, pattern{kind: patKeyword, dec: decRaw}}}
	for dec, enc := range map[uint8]*base64.Encoding{decB64: base64.RawStdEncoding, decB64URL: base64.RawURLEncoding} {
		for k, run := range b64Runs(kw, enc) {
			if len(run) >= minEncodedKeyword {
				fs = append(fs, keywordForm{run, pattern{kind: patKeyword, dec: dec, k: uint8(k)}})
			}
		}
	}
	h := hex.EncodeToString(kw)
	fs = append(fs, keywordForm{[]byte(h), pattern{kind: patKeyword, dec: decHex}},
		keywordForm{[]byte(strings.ToUpper(h)), pattern{kind: patKeyword, dec: decHex}})
	return fs
}

// decodeLimit bounds the encoded run a candidate collects: the longest
// keyword-plus-tail, hex encoded, with a little slack.
func decodeLimit(kw int) int64 { return int64(2*(kw+maxTail) + 8) }

var csHex = charset("0-9a-fA-F")

// stepDecoded advances an encoded-keyword candidate by byte b at q.
func (l *lane) stepDecoded(c *cand, r *rule, q int64, b byte, end bool) verdict {
	alpha := csHex
	switch c.dec {
	case decB64:
		alpha = charset64
	case decB64URL:
		alpha = charset64URL
	}
	if !end && alpha[b] && q-c.start < decodeLimit(len(r.keywords[0])) {
		return more
	}
	tail := l.decodeRun(c, q)
	if tail == nil {
		return reject
	}
	if r.pem {
		l.decTok = tail[:min(len(tail), 64)]
		return pemStep(tail[:min(len(tail), pemMaxTail)], true)
	}
	n := 0
	for n < len(tail) && r.charset[tail[n]] {
		n++
	}
	l.decTok = tail[:n]
	return r.stepTail(tail[:n], true)
}

// decNames label hits on encoded keywords.
var decNames = [...]string{decRaw: "raw", decB64: "base64", decB64URL: "base64url", decHex: "hex"}

var (
	charset64    = charset("A-Za-z0-9+/")
	charset64URL = charset("A-Za-z0-9_-")
)

// decodeRun decodes the encoded run [c.start, q) and returns the bytes
// after the keyword, or nil if the run is too short to hold any or the
// byte before the keyword is alphanumeric (the keyword is inside a longer
// word, as "ask-" holds "sk-"). Encoded characters just before the run,
// still in the ring, are decoded with it to recover that byte.
func (l *lane) decodeRun(c *cand, q int64) []byte {
	r := &l.st.m.rules[c.rule]
	kw := len(r.keywords[0])
	alpha, enc := csHex, base64.RawStdEncoding
	switch c.dec {
	case decB64:
		alpha = charset64
	case decB64URL:
		alpha, enc = charset64URL, base64.RawURLEncoding
	}
	lead := l.lead(c.start, alpha, 7)
	if c.dec == decHex {
		lead = min(lead, 2) &^ 1
		src := l.bytesAt(c.start-int64(lead), q)
		src = src[:len(src)&^1]
		n, err := hex.Decode(src, src)
		skip := lead/2 + kw
		if err != nil || n <= skip || lead > 0 && csAlnum[src[0]] {
			return nil
		}
		return src[skip:n]
	}
	// The run starts mid-quantum at alignments 1 and 2; decode from the
	// quantum boundary, one quantum earlier if the ring has it, using 'A's
	// where the blob itself starts mid-quantum.
	pad := []int{0, 2, 3}[c.k]
	extra := 0
	if lead >= pad+4 {
		extra = 4
	}
	if l.decBuf == nil {
		l.decBuf = make([]byte, 0, l.size+4)
	}
	buf := l.decBuf[:0]
	if lead < pad {
		buf = append(buf, "AAA"[:pad]...)
		buf = append(buf, l.bytesAt(c.start, q)...)
	} else {
		buf = append(buf, l.bytesAt(c.start-int64(pad+extra), q)...)
	}
	if len(buf)%4 == 1 {
		buf = buf[:len(buf)-1] // one character holds no whole byte
	}
	n, err := enc.Decode(buf, buf)
	skip := extra/4*3 + int(c.k) + kw
	if err != nil || n <= skip {
		return nil
	}
	if prev := skip - kw - 1; lead >= pad && prev >= 0 && csAlnum[buf[prev]] {
		return nil
	}
	return buf[skip:n]
}

// lead counts the characters of alpha just before position p, up to most.
func (l *lane) lead(p int64, alpha *[256]bool, most int) int {
	n := 0
	for ; n < most; n++ {
		at := p - int64(n) - 1
		if at < l.resetAt || at < l.pos-l.size || !alpha[byte(l.ring[at&l.mask])] {
			break
		}
	}
	return n
}
