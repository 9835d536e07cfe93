package sensor

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// Keyword encodings. A format rule sees the normalised text directly
// (decRaw) and through the layers the exact matcher sees through: one of
// base64, base64url or hex, or two, base64 or base64url of base64 or of
// hex. The keyword's own encoded forms are extra automaton patterns, and
// a hit on one opens a candidate that collects the encoded run and, once
// the run ends, decodes it layer by layer to check the tail.
const (
	decRaw = iota
	decB64
	decB64URL
	decHex
	decB64B64    // base64 of base64
	decB64URLB64 // base64url of base64
	decB64Hex    // base64 of hex
	decB64URLHex // base64url of hex
)

// decNames label hits on encoded keywords, as the exact matcher labels
// its forms.
var decNames = [...]string{decRaw: "raw", decB64: "base64", decB64URL: "base64url", decHex: "hex",
	decB64B64: "base64(base64)", decB64URLB64: "base64url(base64)", decB64Hex: "base64(hex)", decB64URLHex: "base64url(hex)"}

// layers returns the outer encoding of dec and the inner one, decRaw when
// there is one layer.
func layers(dec uint8) (outer, inner uint8) {
	switch dec {
	case decB64B64:
		return decB64, decB64
	case decB64URLB64:
		return decB64URL, decB64
	case decB64Hex:
		return decB64, decHex
	case decB64URLHex:
		return decB64URL, decHex
	}
	return dec, decRaw
}

// minEncodedKeyword is the shortest encoded keyword form kept: shorter runs
// would open candidates too often inside unrelated base64 data.
const minEncodedKeyword = 3

type keywordForm struct {
	b   []byte
	p   pattern
	mid []byte // for two layers: the inner layer's run, which the outer one encodes
}

var b64Encodings = [...]struct {
	dec, twice, ofHex uint8
	enc               *base64.Encoding
}{
	{decB64, decB64B64, decB64Hex, base64.RawStdEncoding},
	{decB64URL, decB64URLB64, decB64URLHex, base64.RawURLEncoding},
}

// keywordForms returns keyword kw raw; as base64 and base64url runs at the
// three alignments and as hex in both cases; and as base64 and base64url
// runs, at the three alignments, of each of those base64 runs and hex
// forms.
func keywordForms(kw []byte) []keywordForm {
	fs := []keywordForm{{b: kw, p: pattern{dec: decRaw}}}
	add := func(run []byte, dec uint8, k, k1 int, mid []byte) {
		if len(run) >= minEncodedKeyword {
			fs = append(fs, keywordForm{b: run, mid: mid, p: pattern{dec: dec, k: uint8(k), k1: uint8(k1)}})
		}
	}
	h := hex.EncodeToString(kw)
	hexes := [2][]byte{[]byte(h), []byte(strings.ToUpper(h))}
	for _, e := range b64Encodings {
		for k, run := range b64Runs(kw, e.enc) {
			add(run, e.dec, k, 0, nil)
		}
	}
	for _, h := range hexes {
		add(h, decHex, 0, 0, nil)
	}
	for k1, in := range b64Runs(kw, base64.RawStdEncoding) {
		for _, e := range b64Encodings {
			for k, run := range b64Runs(in, e.enc) {
				add(run, e.twice, k, k1, in)
			}
		}
	}
	for _, h := range hexes {
		for _, e := range b64Encodings {
			for k, run := range b64Runs(h, e.enc) {
				add(run, e.ofHex, k, 0, h)
			}
		}
	}
	return fs
}

// decodeLimit bounds the encoded run a candidate collects: the longest
// keyword-plus-tail, hex encoded, with a little slack; for two layers,
// that base64 encoded. A lane caps it at its window, and decodes what it
// has at that point, so only the longest key formats (tails of nearly
// maxTail characters), twice encoded, are decoded in part.
func decodeLimit(dec uint8, kw int) int64 {
	n := int64(2*(kw+maxTail) + 8)
	if _, inner := layers(dec); inner != decRaw {
		n = n*4/3 + 8
	}
	return n
}

var (
	csHex        = charset("0-9a-fA-F")
	charset64    = charset("A-Za-z0-9+/")
	charset64URL = charset("A-Za-z0-9_-")
)

// stepDecoded advances an encoded-keyword candidate by byte b at q.
func (l *lane) stepDecoded(c *cand, r *rule, q int64, b byte, end bool) verdict {
	outer, _ := layers(c.dec)
	alpha, _ := decAlpha(outer)
	if !end && alpha[b] && q < c.due {
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

// maxLead is how many encoded characters before a run decodeRun reads:
// for one layer, a quantum's worth of padding and one more quantum (the
// byte before the keyword); for two, enough outer quanta to decode the
// inner layer's padding and quantum.
const (
	maxLead  = 7
	maxLead2 = 15
)

// decodeRun decodes the encoded run [c.start, q) and returns the bytes
// after the keyword, or nil if the run is too short to hold any or the
// byte before the keyword is alphanumeric (the keyword is inside a longer
// word, as "ask-" holds "sk-"). Encoded characters just before the run,
// still in the ring, are decoded with it to recover that byte. For two
// layers the outer one is decoded first; the inner run it holds is known
// to start with the inner encoding of the keyword, which replaces the
// first bytes decoded (at alignments 1 and 2 they depend on characters
// before the run that may be missing).
func (l *lane) decodeRun(c *cand, q int64) []byte {
	kw := len(l.st.m.rules[c.rule].keywords[c.kw])
	outer, inner := layers(c.dec)
	alpha, _ := decAlpha(outer)
	lead, quanta := l.lead(c.start, alpha, maxLead), 1
	if inner != decRaw {
		lead, quanta = l.lead(c.start, alpha, maxLead2), 3
	}
	if l.decBuf == nil {
		l.decBuf = make([]byte, 0, decBufSize(l.size))
	}
	half := cap(l.decBuf) / 2
	out, at, real, ok := unwrap(l.decBuf[:0:half], l.bytesAt(c.start-int64(lead), q), lead, outer, c.k, quanta)
	if ok && inner != decRaw {
		out, at, real, ok = l.unwrapInner(out, at, real, c, inner)
	}
	if !ok || len(out) <= at+kw || real > 0 && csAlnum[out[at-1]] {
		return nil
	}
	return out[at+kw:]
}

// decBufSize is the capacity of a lane's decoding buffer: room for two
// layers of a run that fills the window.
func decBufSize(size int64) int { return 2 * int(size+maxLead2+4) }

// unwrapInner decodes the inner layer of a two-layer candidate c from
// out, the decoded outer layer, whose inner run starts at at after real
// bytes of the blob.
func (l *lane) unwrapInner(out []byte, at, real int, c *cand, inner uint8) ([]byte, int, int, bool) {
	mid := ruleWords().mids[c.mid]
	if len(out) < at+len(mid) {
		return nil, 0, 0, false
	}
	copy(out[at:], mid)
	alpha, _ := decAlpha(inner)
	end := at + len(mid)
	for end < len(out) && alpha[out[end]] {
		end++
	}
	lead := 0
	for lead < min(real, maxLead) && alpha[out[at-1-lead]] {
		lead++
	}
	half := cap(l.decBuf) / 2
	return unwrap(l.decBuf[half:half], out[at-lead:end], lead, inner, c.k1, 1)
}

// unwrap decodes one layer of encoding dec into dst's memory. src is lead
// characters of the encoding's alphabet, then a run whose first character
// starts the stable run of some string v at byte alignment k (0 for hex).
// It returns the decoded bytes, the index at which v starts in them, and
// how many bytes before it are the blob's own: none when the run starts
// mid-quantum and the characters before it are missing (stand-ins are
// decoded in their place). It decodes at most quanta whole quanta before
// the one holding v's first byte.
func unwrap(dst, src []byte, lead int, dec, k uint8, quanta int) (out []byte, at, real int, ok bool) {
	if dec == decHex {
		n := min(lead, 2) &^ 1
		dst = append(dst, src[lead-n:]...)
		dst = dst[:len(dst)&^1]
		m, err := hex.Decode(dst, dst)
		return dst[:m], n / 2, n / 2, err == nil
	}
	enc := base64.RawStdEncoding
	if dec == decB64URL {
		enc = base64.RawURLEncoding
	}
	pad := [3]int{0, 2, 3}[k]
	if lead < pad {
		dst = append(append(dst, "AAA"[:pad]...), src[lead:]...)
		at = int(k)
	} else {
		extra := min((lead-pad)/4, quanta) * 4
		dst = append(dst, src[lead-pad-extra:]...)
		at = extra/4*3 + int(k)
		real = at
	}
	if len(dst)%4 == 1 {
		dst = dst[:len(dst)-1] // one character holds no whole byte
	}
	m, err := enc.Decode(dst, dst)
	return dst[:m], at, real, err == nil
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
