package sensor

import (
	"bytes"
	"cmp"
	"math"
	"slices"
)

// pattern is one string the automaton looks for: a format rule's keyword
// in one of its encodings. (The exact secrets are in the book.)
type pattern struct {
	ref int32 // index into Matcher.rules
	n   int64 // length in bytes
	dec uint8 // the encoding it is seen in (decRaw, ...)
	k   uint8 // for a base64 keyword: the byte alignment of the keyword
	k1  uint8 // for two layers: the alignment (or, for hex, the case) of the inner one
	kw  uint8 // its index in the rule's keywords
	mid int16 // for two layers: index into keywordWords.mids
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
	out        []int32 // per state, index into outOff, or -1
	dict       []uint32
	outOff     []uint32 // per out index, start into outPat; one extra at the end
	outPat     []int32  // pattern indexes ending exactly at a state, grouped
	pats       []pattern
	maxLen     int64
	minLen     int64
}

// buildAutomaton compiles words (pattern i is words[i]) into an automaton.
//
// The trie is built straight into its final breadth-first numbering: with
// the words sorted, a preorder walk meets each level's nodes in
// lexicographic order, which is their breadth-first order, so counting the
// nodes per level first gives every node its id as it is created. A
// state's children then have consecutive ids, and the edge into state id
// is edge id-1. No per-node slices or maps are made.
func buildAutomaton(words [][]byte, pats []pattern) *automaton {
	a := &automaton{pats: pats, minLen: math.MaxInt64}
	order := make([]int32, len(words))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(x, y int32) int {
		if c := bytes.Compare(words[x], words[y]); c != 0 {
			return c
		}
		return cmp.Compare(x, y) // equal words keep pattern order
	})
	lcp := make([]int32, len(words))
	for j, wi := range order {
		a.maxLen = max(a.maxLen, int64(len(words[wi])))
		a.minLen = min(a.minLen, int64(len(words[wi])))
		if j > 0 {
			lcp[j] = int32(commonPrefix(words[order[j-1]], words[wi]))
		}
	}
	level := make([]uint32, a.maxLen+2) // nodes per depth, then next id per depth
	level[0] = 1
	for j, wi := range order {
		for d := int(lcp[j]) + 1; d <= len(words[wi]); d++ {
			level[d]++
		}
	}
	n := uint32(0)
	for d, c := range level {
		level[d] = n
		n += c
	}
	a.alloc(n)
	a.grow(words, order, lcp, level)
	a.classify()
	a.link()
	a.encode()
	return a
}

// commonPrefix returns the length of the longest common prefix of x and y.
func commonPrefix(x, y []byte) int {
	n := min(len(x), len(y))
	for i := range n {
		if x[i] != y[i] {
			return i
		}
	}
	return n
}

// alloc makes the per-state arrays for n states.
func (a *automaton) alloc(n uint32) {
	a.edgeOff = make([]uint32, n+1)
	a.edgeByte = make([]byte, n-1)
	a.edgeNext = make([]uint32, n-1)
	a.fail = make([]uint32, n)
	a.depth = make([]int32, n)
	a.out = make([]int32, n)
	a.dict = make([]uint32, n)
	for i := range a.out {
		a.out[i] = -1
	}
}

// grow creates the trie's nodes from the sorted words; next[d] is the id
// the next node at depth d gets.
func (a *automaton) grow(words [][]byte, order, lcp []int32, next []uint32) {
	path := make([]uint32, a.maxLen+1) // path[d]: the current word's node at depth d
	for j, wi := range order {
		w := words[wi]
		for d := int(lcp[j]); d < len(w); d++ {
			id := next[d+1]
			next[d+1]++
			a.edgeByte[id-1] = w[d]
			a.edgeNext[id-1] = id
			a.depth[id] = int32(d + 1)
			a.edgeOff[path[d]+1]++
			path[d+1] = id
		}
		t := path[len(w)]
		if j == 0 || int(lcp[j]) != len(w) || len(words[order[j-1]]) != len(w) {
			a.out[t] = int32(len(a.outOff))
			a.outOff = append(a.outOff, uint32(len(a.outPat)))
		}
		a.outPat = append(a.outPat, wi)
	}
	a.outOff = append(a.outOff, uint32(len(a.outPat)))
	for s := range len(a.edgeOff) - 1 {
		a.edgeOff[s+1] += a.edgeOff[s]
	}
}

// outsOf returns the patterns ending exactly at the state whose out is oi.
func (a *automaton) outsOf(oi int32) []int32 { return a.outPat[a.outOff[oi]:a.outOff[oi+1]] }

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

// classify builds the byte classes and counts the dense states.
func (a *automaton) classify() {
	var seen [256]bool
	for _, b := range a.edgeByte {
		seen[b] = true
	}
	nc := uint32(1)
	for b := range 256 {
		if seen[b] {
			a.classes[b] = uint8(nc)
			nc++
		}
	}
	if nc > 256 {
		// Every byte value occurs in some pattern: class 0 is then unused
		// and the table needs 256 columns, one per byte.
		nc = 256
		for b := range a.classes {
			a.classes[b] = uint8(b)
		}
	}
	a.nc = nc
	for a.nDense < uint32(len(a.depth)) && a.depth[a.nDense] <= denseDepth {
		a.nDense++
	}
	a.dense = make([]uint32, a.nDense*a.nc)
}

// link computes failure and dictionary links breadth first, building each
// shallow state's dense row as soon as its children are linked; deeper
// failure links then take one row lookup once the chain reaches a shallow
// state. Finally it flags edge targets.
func (a *automaton) link() {
	for s := uint32(0); s < uint32(len(a.fail)); s++ {
		for i := a.edgeOff[s]; i < a.edgeOff[s+1]; i++ {
			b, t := a.edgeByte[i], a.edgeNext[i]
			if s != 0 {
				a.fail[t] = a.failOf(a.fail[s], b)
			}
			if f := a.fail[t]; a.out[f] >= 0 {
				a.dict[t] = f
			} else {
				a.dict[t] = a.dict[f]
			}
		}
		if s < a.nDense {
			row := a.dense[s*a.nc : (s+1)*a.nc]
			if s != 0 {
				copy(row, a.dense[a.fail[s]*a.nc:])
			}
			for i := a.edgeOff[s]; i < a.edgeOff[s+1]; i++ {
				row[a.classes[a.edgeByte[i]]] = a.flag(a.edgeNext[i])
			}
		}
	}
	for i, t := range a.edgeNext {
		a.edgeNext[i] = a.flag(t)
	}
}

// failOf returns the state reached from state f, or its failure chain, on
// byte b: the failure link of a child of a state whose link is f.
func (a *automaton) failOf(f uint32, b byte) uint32 {
	for f >= a.nDense {
		if k, ok := a.kid(f, b); ok {
			return k
		}
		f = a.fail[f]
	}
	return a.dense[f*a.nc+uint32(a.classes[b])] &^ outBit
}

// flag returns t with outBit set when a pattern ends at t.
func (a *automaton) flag(t uint32) uint32 {
	if a.out[t] >= 0 || a.dict[t] != 0 {
		return t | outBit
	}
	return t
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
