package sensor

import "math"

// maxCands bounds the format candidates open at once in a lane. Candidates
// are rare (each needs a keyword and lives within one run of key
// characters), so a fixed array keeps the state allocation-free; when it
// is full the oldest candidate is dropped, because a flood of decoy
// keywords should not shadow the newest, possibly real, one.
const maxCands = 8

// cand is an open format-rule candidate; positions are lane positions.
type cand struct {
	rule  int32
	start int64 // first byte of the keyword
	tail  int64 // first byte after the keyword
	due   int64 // the position at which it must be decided, whatever the byte
	dec   uint8 // decRaw, or the encoding of a keyword seen encoded
	k     uint8 // byte alignment of a base64 keyword
	k1    uint8 // for two layers, the inner one's alignment (see pattern)
	kw    uint8 // which of the rule's keywords
	stop  uint8 // index into stopSets: the bytes that end its run
	mid   int16 // for two layers, see pattern
	pem   pemState
}

// Candidates are not stepped byte by byte. A raw candidate's verdict
// depends only on where its run of charset characters ends and on its
// length, an encoded one's on where its run of alphabet characters ends:
// neither reads the bytes inside the run until then. So a lane steps its
// candidates only on a byte that ends some open candidate's run
// (stopMask[b] & stopBits), or when the earliest one is due (its run has
// reached the longest key of its rule). Inside a run the cost is one
// table load per byte however many candidates are open. PEM candidates
// read every byte, but at most a couple are ever open (a new header ends
// the previous one).

// stopSets are the charsets and alphabets runs are made of; stopAlways
// (no set: every byte stops) is for PEM candidates.
var stopSets = []*[256]bool{csKey, csAlnum, csUnder, csAWS, csSlack, csLetters, charset64, charset64URL, csHex}

const stopAlways = 31

// stopMask[b] has bit i set when b is not in stopSets[i], and bit
// stopAlways always.
var stopMask = func() (t [256]uint32) {
	for b := range t {
		t[b] = 1 << stopAlways
		for i, cs := range stopSets {
			if !cs[b] {
				t[b] |= 1 << i
			}
		}
	}
	return t
}()

// stopOf returns the index of cs in stopSets.
func stopOf(cs *[256]bool) uint8 {
	for i, s := range stopSets {
		if s == cs {
			return uint8(i)
		}
	}
	panic("sensor: a rule charset is missing from stopSets")
}

// decAlpha returns the alphabet of encoding dec and its stopSets index.
func decAlpha(dec uint8) (*[256]bool, uint8) {
	cs := csHex
	switch dec {
	case decB64:
		cs = charset64
	case decB64URL:
		cs = charset64URL
	}
	return cs, stopOf(cs)
}

// open starts a candidate for keyword pattern p spanning [start, tail).
func (l *lane) open(p *pattern, start, tail int64) {
	if p.dec == decRaw && start > l.resetAt && start > l.pos-l.size {
		if b := byte(l.ring[(start-1)&l.mask]); csAlnum[b] {
			return // the keyword is inside a longer word
		}
	}
	if l.cands == nil {
		l.cands = make([]cand, maxCands)
	}
	if l.nc == maxCands {
		copy(l.cands, l.cands[1:])
		l.nc--
	}
	r := &l.st.m.rules[p.ref]
	c := cand{rule: p.ref, start: start, tail: tail, dec: p.dec, k: p.k, k1: p.k1, kw: p.kw, mid: p.mid, due: start + l.size - 8}
	switch {
	case p.dec != decRaw:
		outer, _ := layers(p.dec)
		_, c.stop = decAlpha(outer)
		c.due = start + min(decodeLimit(p.dec, len(r.keywords[p.kw])), l.size-16)
	case r.pem:
		c.stop = stopAlways
	default:
		c.stop = stopOf(r.charset)
		c.due = min(c.due, tail+int64(r.max))
	}
	l.cands[l.nc] = c
	l.nc++
	l.recount()
}

// stepCands decides the open candidates that the byte b at position q
// (not in their run, or at their due position) settles, or all of them at
// end of stream, when q == l.pos (b is then ignored).
func (l *lane) stepCands(q int64, b byte) {
	end := q == l.pos
	l.st.work += int64(l.nc)
	k := 0
	for i := 0; i < l.nc; i++ {
		c := &l.cands[i]
		r := &l.st.m.rules[c.rule]
		v := more
		switch {
		case q-c.start >= l.size-8:
			v = reject // never reached by the rules' own bounds; keeps the ring valid
		case c.dec != decRaw:
			v = l.stepDecoded(c, r, q, b, end)
		case r.pem && end:
			v = c.pem.end()
		case r.pem:
			v = c.pem.step(b)
		case !end && r.charset[b]:
			if q-c.tail >= int64(r.max) {
				v = reject // the run is longer than any key of this format
			}
		default:
			v = r.stepTail(l.bytesAt(c.tail, q), true)
		}
		if v == accept {
			stop := q
			if r.pem && !end && c.dec == decRaw {
				stop = q + 1
			}
			l.hitFormat(c, r, stop)
		}
		if v == more {
			l.cands[k] = *c
			k++
		}
	}
	l.nc = k
	l.recount()
}

// recount recomputes stopBits and due from the open candidates.
func (l *lane) recount() {
	l.stopBits, l.due = 0, math.MaxInt64
	for i := 0; i < l.nc; i++ {
		l.stopBits |= 1 << l.cands[i].stop
		l.due = min(l.due, l.cands[i].due)
	}
}

// hitFormat reports candidate c of rule r, whose token is [c.start, stop).
func (l *lane) hitFormat(c *cand, r *rule, stop int64) {
	if l.kind != laneMain && c.start >= l.segStart {
		return
	}
	o1, o2, f := l.span(c.start, stop)
	enc, key := "raw", l.bytesAt(c.start, stop)
	if c.dec != decRaw {
		// The fingerprint is of the key, as if it had been sent raw.
		enc = decNames[c.dec]
		key = append(append(l.scratch[:0], r.keywords[c.kw]...), l.decTok...)
	}
	l.report(Hit{
		Rule: r.name, Class: ClassFormat,
		Encoding:    l.st.m.label(enc, f, l.kind, l.joinKind),
		Fingerprint: Fingerprint(l.st.m.fpKey, key),
	}, c.start, stop, o1, o2)
}

// pieceEnd settles, at the end of an SSE delta, the candidates that would
// be accepted if the stream ended here. Waiting for the next delta would
// let this event go out unredacted; the price is that a key continued in a
// later delta is reported on the part seen so far.
func (l *lane) pieceEnd() {
	k := 0
	for i := 0; i < l.nc; i++ {
		c := &l.cands[i]
		r := &l.st.m.rules[c.rule]
		if l.settle(c, r) == accept {
			l.hitFormat(c, r, l.pos)
			continue
		}
		l.cands[k] = *c
		k++
	}
	l.nc = k
	l.recount()
}

// settle returns the verdict on candidate c of rule r if the lane ended
// at its current position.
func (l *lane) settle(c *cand, r *rule) verdict {
	switch {
	case c.dec != decRaw:
		return l.stepDecoded(c, r, l.pos, 0, true)
	case r.pem:
		return c.pem.end()
	}
	return r.stepTail(l.bytesAt(c.tail, l.pos), true)
}

// candHold returns the original offset of the earliest open candidate's
// start, format or exact, or math.MaxInt64.
func (l *lane) candHold() int64 {
	h := int64(math.MaxInt64)
	for i := 0; i < l.nc; i++ {
		h = min(h, l.origin(l.cands[i].start))
	}
	if x := l.xStart(); x >= 0 {
		h = min(h, l.origin(x))
	}
	return h
}
