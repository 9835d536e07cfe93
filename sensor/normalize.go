package sensor

// Normalisation flags, recorded per normalised byte so a hit can name the
// layers that were undone to find it.
const (
	fJSON  = 1 << iota // a JSON string escape (\uXXXX, \/, \" ...)
	fPct               // percent-encoding
	fFull              // a fullwidth form mapped to ASCII
	fZW                // zero-width or format characters removed
	nFlags = 4
)

// Normaliser states. The normaliser is a byte-at-a-time state machine whose
// whole state is a few fields: at most one escape or one UTF-8 sequence is
// pending at a time (12 bytes for a surrogate pair), so it never buffers.
const (
	nIdle  = iota
	nEsc   // after '\'
	nEscU  // reading the 4 hex digits of \u
	nHi    // after a \u high surrogate, want '\'
	nHiU   // after a high surrogate and '\', want 'u'
	nLoU   // reading the 4 hex digits of the low surrogate
	nPct   // after '%'
	nPct2  // after '%' and one hex digit
	noRune = -1
)

// normalizer undoes JSON string escapes and percent-encoding, maps
// fullwidth ASCII (U+FF01–U+FF5E) to ASCII and drops zero-width and format
// characters, feeding each resulting byte to its lane with the span of the
// original bytes it came from.
type normalizer struct {
	mode   uint8
	digits uint8
	acc    uint32
	start  int64 // original offset of the pending escape
	hi     uint32
	hiAt   int64
	u8     [4]byte
	u8n    int
	u8need int
	u8at   int64
	u8end  int64
	u8f    uint8
	drop   uint8 // fZW when characters were dropped before the next byte
	pd     byte  // the hex digit after '%', passed through if no second follows
}

func unhex(b byte) (uint32, bool) {
	switch {
	case b >= '0' && b <= '9':
		return uint32(b - '0'), true
	case b >= 'a' && b <= 'f':
		return uint32(b - 'a' + 10), true
	case b >= 'A' && b <= 'F':
		return uint32(b - 'A' + 10), true
	}
	return 0, false
}

// pending reports the original offset of the earliest byte the normaliser
// has consumed but not yet emitted.
func (n *normalizer) pending() (int64, bool) {
	switch {
	case n.mode == nHi || n.mode == nHiU || n.mode == nLoU:
		return n.hiAt, true
	case n.mode != nIdle:
		return n.start, true
	case n.u8n > 0:
		return n.u8at, true
	}
	return 0, false
}

// feedOrig normalises one original byte b at offset o.
func (l *lane) feedOrig(b byte, o int64) {
	n := &l.nz
	switch n.mode {
	case nIdle:
		switch b {
		case '\\':
			n.mode, n.start = nEsc, o
		case '%':
			n.mode, n.start, n.acc = nPct, o, 0
		default:
			l.stageB(b, o, 1, 0)
		}
	case nEsc:
		n.mode = nIdle
		switch b {
		case 'u':
			n.mode, n.digits, n.acc = nEscU, 0, 0
		case '"', '\\', '/', '\'':
			l.stageB(b, n.start, 2, fJSON)
		case 'n':
			l.stageB('\n', n.start, 2, fJSON)
		case 't':
			l.stageB('\t', n.start, 2, fJSON)
		case 'r':
			l.stageB('\r', n.start, 2, fJSON)
		case 'b':
			l.stageB('\b', n.start, 2, fJSON)
		case 'f':
			l.stageB('\f', n.start, 2, fJSON)
		default:
			l.stageB('\\', n.start, 1, 0)
			l.feedOrig(b, o)
		}
	case nEscU, nLoU:
		l.hexDigit(b, o)
	case nHi:
		if b == '\\' {
			n.mode, n.start = nHiU, o
			return
		}
		n.mode = nIdle
		l.runeOut(0xFFFD, n.hiAt, o-n.hiAt, fJSON)
		l.feedOrig(b, o)
	case nHiU:
		if b == 'u' {
			n.mode, n.digits, n.acc = nLoU, 0, 0
			return
		}
		n.mode = nEsc
		l.runeOut(0xFFFD, n.hiAt, n.start-n.hiAt, fJSON)
		l.feedOrig(b, o)
	case nPct, nPct2:
		v, ok := unhex(b)
		if !ok {
			l.flushPct(o)
			l.feedOrig(b, o)
			return
		}
		n.acc = n.acc<<4 | v
		if n.mode == nPct {
			n.mode, n.pd = nPct2, b
			return
		}
		n.mode = nIdle
		l.stageB(byte(n.acc), n.start, 3, fPct)
	}
}

// hexDigit takes one of the four hex digits of a \u escape.
func (l *lane) hexDigit(b byte, o int64) {
	n := &l.nz
	v, ok := unhex(b)
	if !ok {
		lo := n.mode == nLoU
		if lo {
			l.runeOut(0xFFFD, n.hiAt, n.start-n.hiAt, fJSON)
		}
		// Not an escape after all: pass "\u" and the digits through.
		l.stageB('\\', n.start, 1, 0)
		l.stageB('u', n.start+1, 1, 0)
		for i := int64(0); i < int64(n.digits); i++ {
			d := byte(n.acc >> (4 * (int64(n.digits) - 1 - i)) & 0xF)
			l.stageB("0123456789abcdef"[d], n.start+2+i, 1, 0)
		}
		n.mode = nIdle
		l.feedOrig(b, o)
		return
	}
	n.acc = n.acc<<4 | v
	if n.digits++; n.digits < 4 {
		return
	}
	r, lo := n.acc, n.mode == nLoU
	n.mode = nIdle
	switch {
	case lo && r >= 0xDC00 && r <= 0xDFFF:
		cp := 0x10000 + (n.hi-0xD800)<<10 + (r - 0xDC00)
		l.runeOut(rune(cp), n.hiAt, o+1-n.hiAt, fJSON)
		return
	case lo:
		l.runeOut(0xFFFD, n.hiAt, n.start-n.hiAt, fJSON)
	}
	switch {
	case r >= 0xD800 && r <= 0xDBFF:
		n.mode, n.hi, n.hiAt = nHi, r, n.start
	case r >= 0xDC00 && r <= 0xDFFF:
		l.runeOut(0xFFFD, n.start, o+1-n.start, fJSON)
	default:
		l.runeOut(rune(r), n.start, o+1-n.start, fJSON)
	}
}

// flushPct passes a '%' that did not start an escape through unchanged.
func (l *lane) flushPct(o int64) {
	n := &l.nz
	mode := n.mode
	n.mode = nIdle
	l.stageB('%', n.start, 1, 0)
	if mode == nPct2 {
		l.stageB(n.pd, n.start+1, 1, 0)
	}
}

// stageB collects the UTF-8 sequences that may encode a fullwidth or
// zero-width character; every other byte passes straight through.
func (l *lane) stageB(b byte, o, w int64, f uint8) {
	n := &l.nz
	if n.u8n > 0 {
		if b&0xC0 == 0x80 {
			n.u8[n.u8n] = b
			n.u8n++
			n.u8end, n.u8f = o+w, n.u8f|f
			if n.u8n == n.u8need {
				r := decodeRune(n.u8[:n.u8n])
				n.u8n = 0
				l.runeOut(r, n.u8at, n.u8end-n.u8at, n.u8f)
			}
			return
		}
		l.flushUTF8()
	}
	switch b {
	case 0xC2:
		n.u8need = 2
	case 0xE1, 0xE2, 0xEF:
		n.u8need = 3
	default:
		l.feedNorm(b, o, w, f)
		return
	}
	n.u8[0], n.u8n, n.u8at, n.u8end, n.u8f = b, 1, o, o+w, f
}

// flushUTF8 passes an incomplete UTF-8 sequence through unchanged.
func (l *lane) flushUTF8() {
	n := &l.nz
	k := n.u8n
	n.u8n = 0
	for i := 0; i < k; i++ {
		l.feedNorm(n.u8[i], n.u8at, n.u8end-n.u8at, n.u8f)
	}
}

func decodeRune(p []byte) rune {
	if len(p) == 2 {
		return rune(p[0]&0x1F)<<6 | rune(p[1]&0x3F)
	}
	return rune(p[0]&0x0F)<<12 | rune(p[1]&0x3F)<<6 | rune(p[2]&0x3F)
}

// invisible reports whether r is a zero-width or format character that
// renders as nothing and so can hide inside a key.
func invisible(r rune) bool {
	switch {
	case r == 0xAD, r == 0x180E, r == 0xFEFF:
		return true
	case r >= 0x200B && r <= 0x200F, r >= 0x202A && r <= 0x202E:
		return true
	case r >= 0x2060 && r <= 0x2064, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}

// runeOut emits a decoded character spanning original bytes [o, o+w).
func (l *lane) runeOut(r rune, o, w int64, f uint8) {
	switch {
	case r < 0x80:
		l.feedNorm(byte(r), o, w, f)
	case invisible(r):
		l.nz.drop = fZW | f
	case r >= 0xFF01 && r <= 0xFF5E:
		l.feedNorm(byte(r-0xFEE0), o, w, f|fFull)
	default:
		var buf [4]byte
		k := encodeRune(buf[:], r)
		for _, b := range buf[:k] {
			l.feedNorm(b, o, w, f)
		}
	}
}

func encodeRune(p []byte, r rune) int {
	switch {
	case r < 0x800:
		p[0], p[1] = byte(0xC0|r>>6), byte(0x80|r&0x3F)
		return 2
	case r < 0x10000:
		p[0], p[1], p[2] = byte(0xE0|r>>12), byte(0x80|r>>6&0x3F), byte(0x80|r&0x3F)
		return 3
	}
	p[0], p[1], p[2], p[3] = byte(0xF0|r>>18), byte(0x80|r>>12&0x3F), byte(0x80|r>>6&0x3F), byte(0x80|r&0x3F)
	return 4
}

// flushNorm emits whatever the normaliser still holds, at end of stream.
func (l *lane) flushNorm(end int64) {
	n := &l.nz
	switch n.mode {
	case nEsc:
		l.stageB('\\', n.start, 1, 0)
	case nEscU:
		n.mode = nIdle
		l.stageB('\\', n.start, end-n.start, 0) // a truncated \u escape
	case nHi, nHiU, nLoU:
		l.runeOut(0xFFFD, n.hiAt, end-n.hiAt, fJSON)
	case nPct, nPct2:
		l.flushPct(end)
	}
	n.mode = nIdle
	if n.u8n > 0 {
		l.flushUTF8()
	}
}
