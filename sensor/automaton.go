package sensor

import "sort"

// patKind tells an exact secret form from a format-rule keyword.
type patKind uint8

const (
	patExact   patKind = iota // an encoded form of a known secret
	patKeyword                // the keyword that starts a format-rule candidate
)

// pattern is one string the automaton looks for.
type pattern struct {
	kind patKind
	ref  int32  // index into Matcher.secrets or Matcher.rules
	enc  string // encoding label of an exact form ("raw", "base64", ...)
	n    int64  // length in bytes
	dec  uint8  // for a keyword: the encoding it is seen in (decRaw, ...)
	k    uint8  // for a base64 keyword: the byte alignment of the keyword
}

// outBit marks a transition target from which some pattern ends (the state
// itself or a state on its failure chain), so the hot loop tests one bit.
const outBit = 1 << 31

// denseDepth is the deepest trie level that gets a full transition row.
// Rows for the shallow states make the common case (text that matches no
// pattern prefix beyond a byte or two) one table load per byte; deeper
// states, which are many but rarely visited, use sorted edge lists and
// failure links so memory stays linear in the total pattern length.
const denseDepth = 2

// automaton is an Aho–Corasick matcher over bytes. States are numbered in
// breadth-first order, so every state below nDense has a dense row.
//
// Outside the automaton a state is carried as a code, not an id: a dense
// state's code is the offset of its row (id*nc) and a sparse state's is
// sparseBase plus its rank among the sparse states. The hot loop then
// indexes the table with code+class, keeping a multiply off the chain of
// dependent loads that bounds its speed.
type automaton struct {
	classes    [256]uint8 // byte -> class; class 0 is "in no pattern"
	nc         uint32     // number of classes
	nDense     uint32
	sparseBase uint32   // nDense*nc: codes at or above it are sparse states
	dense      []uint32 // nDense*nc target codes, with outBit
	edgeOff    []uint32 // per state, start into edgeByte/edgeNext; len states+1
	edgeByte   []byte
	edgeNext   []uint32 // target codes, with outBit (ids during the build)
	fail       []uint32
	depth      []int32
	out        []int32 // per state, index into outs, or -1
	dict       []uint32
	outs       [][]int32 // pattern indexes ending exactly at a state
	pats       []pattern
	maxLen     int64
}

type tkid struct {
	b byte
	n uint32
}

type tnode struct {
	kids []tkid
	outs []int32
}

func (n *tnode) kid(b byte) (uint32, bool) {
	for _, k := range n.kids {
		if k.b == b {
			return k.n, true
		}
	}
	return 0, false
}

// buildAutomaton compiles words (pattern i is words[i]) into an automaton.
func buildAutomaton(words [][]byte, pats []pattern) *automaton {
	trie := []tnode{{}}
	a := &automaton{pats: pats}
	for i, w := range words {
		s := uint32(0)
		for _, b := range w {
			t, ok := trie[s].kid(b)
			if !ok {
				t = uint32(len(trie))
				trie = append(trie, tnode{})
				trie[s].kids = append(trie[s].kids, tkid{b, t})
			}
			s = t
		}
		trie[s].outs = append(trie[s].outs, int32(i))
		a.maxLen = max(a.maxLen, int64(len(w)))
	}
	// Renumber breadth first so depth never decreases with the id.
	order := []uint32{0}
	newID := make([]uint32, len(trie))
	for i := 0; i < len(order); i++ {
		kids := trie[order[i]].kids
		sort.Slice(kids, func(x, y int) bool { return kids[x].b < kids[y].b })
		for _, k := range kids {
			newID[k.n] = uint32(len(order))
			order = append(order, k.n)
		}
	}
	n := len(order)
	a.edgeOff = make([]uint32, n+1)
	a.fail = make([]uint32, n)
	a.depth = make([]int32, n)
	a.out = make([]int32, n)
	a.dict = make([]uint32, n)
	for id, old := range order {
		a.edgeOff[id] = uint32(len(a.edgeByte))
		a.out[id] = -1
		if len(trie[old].outs) > 0 {
			a.out[id] = int32(len(a.outs))
			a.outs = append(a.outs, trie[old].outs)
		}
		for _, k := range trie[old].kids {
			a.edgeByte = append(a.edgeByte, k.b)
			a.edgeNext = append(a.edgeNext, newID[k.n])
			a.depth[newID[k.n]] = a.depth[id] + 1
		}
	}
	a.edgeOff[n] = uint32(len(a.edgeByte))
	a.link()
	a.densify()
	a.encode()
	return a
}

// code returns the code of state id.
func (a *automaton) code(id uint32) uint32 {
	if id < a.nDense {
		return id * a.nc
	}
	return a.sparseBase + id - a.nDense
}

// id returns the state id of code c (without outBit).
func (a *automaton) id(c uint32) uint32 {
	if c < a.sparseBase {
		return c / a.nc
	}
	return c - a.sparseBase + a.nDense
}

// encode turns the transition targets from ids into codes.
func (a *automaton) encode() {
	a.sparseBase = a.nDense * a.nc
	for _, ts := range [][]uint32{a.dense, a.edgeNext} {
		for i, t := range ts {
			ts[i] = a.code(t&^outBit) | t&outBit
		}
	}
}

// depthOf returns the depth of the state with code c.
func (a *automaton) depthOf(c uint32) int64 { return int64(a.depth[a.id(c)]) }

// kid returns the trie child of s on b.
func (a *automaton) kid(s uint32, b byte) (uint32, bool) {
	for i := a.edgeOff[s]; i < a.edgeOff[s+1]; i++ {
		if a.edgeByte[i] == b {
			return a.edgeNext[i] &^ outBit, true
		}
	}
	return 0, false
}

// link computes failure and dictionary links, then flags edge targets.
func (a *automaton) link() {
	for s := uint32(0); s < uint32(len(a.fail)); s++ {
		for i := a.edgeOff[s]; i < a.edgeOff[s+1]; i++ {
			b, t := a.edgeByte[i], a.edgeNext[i]
			if s != 0 {
				f := a.fail[s]
				for {
					if k, ok := a.kid(f, b); ok {
						a.fail[t] = k
						break
					}
					if f == 0 {
						break
					}
					f = a.fail[f]
				}
			}
			if f := a.fail[t]; a.out[f] >= 0 {
				a.dict[t] = f
			} else {
				a.dict[t] = a.dict[f]
			}
		}
	}
	for i, t := range a.edgeNext {
		a.edgeNext[i] = a.flag(t)
	}
}

// flag returns t with outBit set when a pattern ends at t.
func (a *automaton) flag(t uint32) uint32 {
	if a.out[t] >= 0 || a.dict[t] != 0 {
		return t | outBit
	}
	return t
}

// densify builds byte classes and the dense rows of the shallow states.
func (a *automaton) densify() {
	var rep []byte
	rep = append(rep, 0)
	seen := [256]bool{}
	for _, b := range a.edgeByte {
		seen[b] = true
	}
	for b := 0; b < 256; b++ {
		if seen[b] {
			a.classes[b] = uint8(len(rep))
			rep = append(rep, byte(b))
		}
	}
	all := len(rep) > 256
	if all {
		// Every byte value occurs in some pattern: class 0 is then unused
		// and the table needs 256 columns, one per byte.
		rep = rep[1:]
		for b := range a.classes {
			a.classes[b] = uint8(b)
		}
	}
	a.nc = uint32(len(rep))
	for a.nDense < uint32(len(a.depth)) && a.depth[a.nDense] <= denseDepth {
		a.nDense++
	}
	a.dense = make([]uint32, a.nDense*a.nc)
	for s := uint32(0); s < a.nDense; s++ {
		for c := uint32(0); c < a.nc; c++ {
			var t uint32
			if c == 0 && !all {
				t = 0 // a byte in no pattern restarts the search
			} else if k, ok := a.kid(s, rep[c]); ok {
				t = a.flag(k)
			} else if s != 0 {
				t = a.dense[a.fail[s]*a.nc+c]
			}
			a.dense[s*a.nc+c] = t
		}
	}
}

// step returns the code (with outBit) after reading b in the state with
// code c (without outBit).
func (a *automaton) step(c uint32, b byte) uint32 {
	if c < a.sparseBase {
		return a.dense[c+uint32(a.classes[b])]
	}
	s := c - a.sparseBase + a.nDense
	for {
		for i := a.edgeOff[s]; i < a.edgeOff[s+1]; i++ {
			if a.edgeByte[i] == b {
				return a.edgeNext[i]
			}
		}
		if s = a.fail[s]; s < a.nDense {
			return a.dense[s*a.nc+uint32(a.classes[b])]
		}
	}
}
