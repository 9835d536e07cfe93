package sensor

// Exact candidates: a lane's side of the book. Each lane keeps its last 8
// normalised bytes in win; when the filter says they may begin a held
// form, the lane looks them up in the book's trie and, if some form does
// begin with them, opens a candidate there. A candidate reads the trie
// again every 8 bytes (or follows its one remaining form byte by byte)
// and reports every form it completes. Nothing is held per secret, so a
// stream costs the same with ten secrets in the book or ten thousand.

// maxExact bounds the exact candidates open at once in a lane. Each needs
// 8 bytes that begin a held form and lives while the bytes after them
// still spell one. Held forms are random, so a candidate opens inside
// another one's run almost never: two are rarely open at once. Only a
// secret that repeats itself ("bbbbbbbbbbbb") opens one per byte of a run
// of it; past maxExact, a new one is not opened, so the older ones, which
// are further on, are followed to the end. (Format candidates drop the
// oldest instead: anyone can flood a stream with a keyword, and no one can
// flood it with the prefixes of a secret they do not hold.)
const maxExact = 64

// xcand is an open exact candidate: the normalised bytes from start spell
// the first d bytes of some held form.
type xcand struct {
	start int64
	node  *tnode   // the trie node arrived at last; nil when following form
	form  *dform   // the one form left to follow, byte by byte
	tails []*dform // node's forms that end within the next 8 bytes
	chunk uint64   // the bytes since node's depth
	d     int32    // bytes matched
	depth int32    // node's depth
	kids  bool     // node has forms longer than depth+8
	most  int32    // the longest of tails
}

// anchor opens an exact candidate for the window that ends at position q,
// if a held form begins with it.
func (l *lane) anchor(q int64) {
	start := q - 7
	if start < l.resetAt || start <= l.pos-l.size {
		return
	}
	v, ok := l.st.m.book.anchor(l.win)
	if !ok {
		return
	}
	l.st.work += 8
	c := xcand{start: start, d: 8}
	if !l.enter(&c, v, q) {
		return
	}
	if l.xc == nil {
		l.xc = make([]xcand, 0, 4)
	}
	if len(l.xc) < maxExact {
		l.xc = append(l.xc, c)
	}
}

// enter moves c, which has matched d bytes ending at q, to the node v
// shows, reports the forms that end there and returns whether c lives on.
func (l *lane) enter(c *xcand, v view, q int64) bool {
	if v.self { // c's node became a leaf: check the chunk c read against it
		f := v.leaf
		if int32(len(f.b)) < c.d || !chunkIs(f.b[c.depth:c.d], c.chunk, 8) {
			return false
		}
		return l.follow(c, f, q)
	}
	for _, f := range v.ends {
		l.hitExact(f, c.start, q)
	}
	if v.leaf != nil {
		return l.follow(c, v.leaf, q)
	}
	c.node, c.depth, c.tails, c.kids, c.chunk = v.n, c.d, v.tails, v.kids, 0
	c.most = 0
	for _, t := range v.tails {
		c.most = max(c.most, int32(len(t.b)))
	}
	return c.kids || c.most > c.d
}

// follow makes c follow form f, which it matches so far.
func (l *lane) follow(c *xcand, f *dform, q int64) bool {
	if int32(len(f.b)) == c.d {
		l.hitExact(f, c.start, q)
		return false
	}
	c.form, c.node, c.tails = f, nil, nil
	return true
}

// chunkIs reports whether b[:k] are the last k bytes of chunk.
func chunkIs(b []byte, chunk uint64, k int32) bool {
	for i := int32(0); i < k; i++ {
		if b[i] != byte(chunk>>(8*(k-1-i))) {
			return false
		}
	}
	return true
}

// stepExact advances the open exact candidates by the byte b at q.
func (l *lane) stepExact(q int64, b byte) {
	k := 0
	for i := range l.xc {
		if c := &l.xc[i]; l.advance(c, q, b) {
			l.xc[k] = *c
			k++
		}
	}
	l.st.work += int64(len(l.xc))
	l.xc = l.xc[:k]
}

// advance feeds b at q to c and returns whether c lives on.
func (l *lane) advance(c *xcand, q int64, b byte) bool {
	if q-c.start >= l.size-8 {
		return false // a form longer than this stream's window: added after it started
	}
	c.d++
	if f := c.form; f != nil {
		if f.b[c.d-1] != b {
			return false
		}
		if int(c.d) == len(f.b) {
			l.hitExact(f, c.start, q)
			return false
		}
		return true
	}
	c.chunk = c.chunk<<8 | uint64(b)
	k := c.d - c.depth
	for _, t := range c.tails {
		if int32(len(t.b)) == c.d && chunkIs(t.b[c.depth:], c.chunk, k) {
			l.hitExact(t, c.start, q)
		}
	}
	if k < 8 {
		return c.kids || c.most > c.d
	}
	if !c.kids {
		return false
	}
	v, ok := l.st.m.book.child(c.node, c.chunk)
	return ok && l.enter(c, v, q)
}

// hitExact reports form f matched at lane positions [start, q].
func (l *lane) hitExact(f *dform, start, q int64) {
	if l.kind != laneMain && start >= l.segStart {
		return // within one piece: the main lane reports it
	}
	e := f.e
	o1, o2, fl := l.span(start, q+1)
	l.report(Hit{
		Rule: "exact", Class: e.class, SecretID: e.id,
		Encoding:    l.st.m.label(f.enc, fl, l.kind, l.joinKind),
		Fingerprint: e.fp,
	}, start, q+1, o1, o2)
}

// xStart returns the earliest lane position an open exact candidate
// starts at, or -1.
func (l *lane) xStart() int64 {
	h := int64(-1)
	for i := range l.xc {
		if s := l.xc[i].start; h < 0 || s < h {
			h = s
		}
	}
	return h
}

// trail returns the length of the longest run of normalised bytes ending
// at lane position end (shorter than 8, since the last reset, and still in
// the ring) that the filter says may begin a held form; 0 if there is
// none. A false yes holds a few bytes until the next write, never more:
// the trail is not a match. Unless some held form begins with one, a byte
// of gram class 0 (a line break, a quote, a brace) begins none, so at the
// end of an SSE event or a JSON document nothing is held.
func (l *lane) trail(end int64) int {
	f := l.st.flt
	odd := f.odd.Load() // else no held form, nor its start, holds a byte that is not a key character
	w, best := uint64(0), 0
	for k := 1; k < 8; k++ {
		at := end - int64(k)
		if at < l.resetAt || at < l.pos-l.size || at < 0 {
			break
		}
		b := byte(l.ring[at&l.mask])
		if gramClass[b] == 0 && !l.st.mixed || !tokenChar[b] && !odd {
			break
		}
		if w |= uint64(b) << (8 * (k - 1)); f.hasPrefix(w, k) {
			best = k
		}
	}
	return best
}
