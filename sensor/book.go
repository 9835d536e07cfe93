package sensor

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"
)

// The book holds the exact secrets: every encoded form of every secret,
// in a trie cut into 8-byte chunks. It changes in place: Put and Delete
// cost the secret's own forms, whatever else the book holds, and a
// removed secret leaves nothing behind.
//
// Why not one automaton for everything, as the format keywords have:
// adding one pattern to an Aho–Corasick automaton moves failure links all
// over it, so each change rebuilt it whole, and with thousands of secrets
// that took seconds and hundreds of megabytes (about 80 KB per secret).
// Generations of automata (a large one for long-lived keys, small ones per
// session, merged now and then) would bound the rebuild but make every
// byte step through every generation. The forms are high-entropy strings
// of eight bytes or more, which a hash of their first eight bytes finds
// with almost no false alarms: a stream keeps its last eight normalised
// bytes in a register and tests them against a filter (one load) on each
// byte it takes one at a time, and skips runs in which no form begins by a
// table of their first three bytes (see Stream.block) or, without format
// rules, by the runs of 4 of the forms' first 8 (see Stream.skim). A
// window the filter passes is looked up in the trie, and a candidate then
// follows it a byte at a time. None of it costs more with more secrets,
// but for the filter and the table filling up: with a thousand live
// sessions a stream leaves its fast path more often.
//
// Concurrency: streams read the book while grants and kills change it.
// The filter's bits are read and set atomically; the trie is read under
// the read lock, once per 8 bytes of an open candidate, and a node's
// slices are copied on write, so what a candidate read on arrival stays
// valid. A stream sees a secret from the first byte it scans after Put
// returns (or earlier), and stops seeing a deleted one at some point
// after Delete starts. Changes take wmu, one at a time, and change the
// maps under the write lock; a remake of the maps and a rebuild of the
// filter read them under wmu alone, so the scans wait only for the swap.
type book struct {
	wmu     sync.Mutex // serialises changes; the maps change only under mu too
	mu      sync.RWMutex
	entries map[string]*entry
	root    map[uint64]*tnode // by a form's first 8 bytes
	flt     atomic.Pointer[filter]
	lens    map[int]int // forms held per length
	forms   int         // forms held
	longest atomic.Int64
	stale   int      // filter keys whose anchor has gone, since the last rebuild
	dels    int      // root keys deleted since the maps were last made anew
	static  []uint64 // the format keywords' grams, or nil
}

// entry is one secret and its forms, in one arena.
type entry struct {
	key   string
	id    string
	class Class
	fp    string
	arena []byte
	forms []dform
}

// dform is one encoded form of a held secret.
type dform struct {
	b   []byte
	enc string
	e   *entry
}

// tnode is the trie node reached after depth bytes of some forms (a
// multiple of 8). A node with one form is a leaf: the form is followed
// byte by byte from depth on. Otherwise its forms are in ends (they end
// here), tails (they end within the next 8 bytes) or under kids, by their
// next 8 bytes.
type tnode struct {
	depth int32
	n     int32 // forms at or under this node
	dels  int32 // kids deleted since kids was last made anew
	leaf  *dform
	ends  []*dform
	tails []*dform
	kids  map[uint64]*tnode
}

// chunkAt returns b[d:d+8] as a big-endian number: the first byte is the
// most significant, as in a lane's window of its last 8 bytes.
func chunkAt(b []byte, d int32) uint64 { return binary.BigEndian.Uint64(b[d : d+8]) }

func (b *book) init(static []uint64) {
	b.static = static
	b.entries, b.root, b.lens = map[string]*entry{}, map[uint64]*tnode{}, map[int]int{}
	b.flt.Store(newFilter(0, 0, b.static))
}

// put adds secret s under key, replacing what key held.
func (b *book) put(key string, s Secret, fpKey []byte) error {
	if len(s.Value) < MinSecretLen {
		return fmt.Errorf("secret %q (%s) has %d bytes, need %d: %w", s.ID, s.Class, len(s.Value), MinSecretLen, ErrShortSecret)
	}
	e := newEntry(key, s, fpKey)
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.mu.Lock()
	if old := b.entries[key]; old != nil {
		b.removeLocked(old)
	}
	b.entries[key] = e
	for i := range e.forms {
		b.insert(&e.forms[i])
	}
	b.mu.Unlock()
	b.resize()
	b.remake()
	return nil
}

// newEntry expands s into its forms (see expand), all in one arena.
func newEntry(key string, s Secret, fpKey []byte) *entry {
	var fb formBuilder
	fb.arena = make([]byte, 0, 64*len(s.Value)) // the forms total about 61 times its length
	fb.expand(s.Value)
	e := &entry{key: key, id: s.ID, class: s.Class, fp: Fingerprint(fpKey, s.Value)}
	e.arena = fb.arena
	e.forms = make([]dform, len(fb.spans))
	for i, sp := range fb.spans {
		e.forms[i] = dform{b: fb.word(sp), enc: sp.enc, e: e}
	}
	return e
}

// delete removes the secret under key and reports whether there was one.
func (b *book) delete(key string) bool {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.mu.Lock()
	e := b.entries[key]
	if e == nil {
		b.mu.Unlock()
		return false
	}
	b.removeLocked(e)
	b.mu.Unlock()
	b.resize()
	b.remake()
	return true
}

func (b *book) removeLocked(e *entry) {
	delete(b.entries, e.key)
	for i := range e.forms {
		b.remove(&e.forms[i])
	}
}

// insert adds form f to the trie (MinSecretLen makes every form at least
// 8 bytes long).
func (b *book) insert(f *dform) {
	b.count(len(f.b), 1)
	b.flt.Load().addForm(f.b)
	c := chunkAt(f.b, 0)
	n := b.root[c]
	if n == nil {
		b.root[c] = &tnode{depth: 8, n: 1, leaf: f}
		b.flt.Load().add(c)
		return
	}
	n.insert(f)
}

func (n *tnode) insert(f *dform) {
	n.n++
	if n.leaf != nil { // a second form: spread both below
		g := n.leaf
		n.leaf = nil
		n.place(g)
	}
	n.place(f)
}

// place files f, one of n's forms, in ends, tails or kids.
func (n *tnode) place(f *dform) {
	switch l := int32(len(f.b)); {
	case l == n.depth:
		n.ends = appendCopy(n.ends, f)
	case l < n.depth+8:
		n.tails = appendCopy(n.tails, f)
	default:
		c := chunkAt(f.b, n.depth)
		if n.kids == nil {
			n.kids = map[uint64]*tnode{}
		}
		if k := n.kids[c]; k != nil {
			k.insert(f)
		} else {
			n.kids[c] = &tnode{depth: n.depth + 8, n: 1, leaf: f}
		}
	}
}

// appendCopy returns s with f appended, in new memory: readers may hold s.
func appendCopy(s []*dform, f *dform) []*dform {
	return append(append(make([]*dform, 0, len(s)+1), s...), f)
}

// without returns s less f, in new memory (nil if nothing is left), and
// whether f was there.
func without(s []*dform, f *dform) (out []*dform, found bool) {
	for _, g := range s {
		if g == f {
			found = true
		} else {
			out = append(out, g)
		}
	}
	return out, found
}

// remove takes form f out of the trie.
func (b *book) remove(f *dform) {
	b.count(len(f.b), -1)
	c := chunkAt(f.b, 0)
	if n := b.root[c]; n != nil {
		if _, empty := n.remove(f); empty {
			delete(b.root, c)
			b.stale++
			b.dels++
		}
	}
}

// remove takes f out of n's subtree; it reports whether f was there and
// whether n is now empty. A node left with one form becomes a leaf again,
// so a node with one form is always a leaf.
func (n *tnode) remove(f *dform) (found, empty bool) {
	switch l := int32(len(f.b)); {
	case n.leaf != nil:
		if found = n.leaf == f; found {
			n.leaf = nil
		}
	case l == n.depth:
		n.ends, found = without(n.ends, f)
	case l < n.depth+8:
		n.tails, found = without(n.tails, f)
	default:
		c := chunkAt(f.b, n.depth)
		if k := n.kids[c]; k != nil {
			var gone bool
			if found, gone = k.remove(f); gone {
				delete(n.kids, c)
				if n.dels++; churned(int(n.dels), len(n.kids)) {
					n.kids, n.dels = remade(n.kids), 0
				}
			}
		}
	}
	if !found {
		return false, false
	}
	if n.n--; n.n == 1 {
		n.collapse()
	}
	return true, n.n == 0
}

// collapse turns n, left with one form, into a leaf of it.
func (n *tnode) collapse() {
	switch {
	case len(n.ends) == 1:
		n.leaf = n.ends[0]
	case len(n.tails) == 1:
		n.leaf = n.tails[0]
	default:
		for _, k := range n.kids {
			n.leaf = k.leaf // a node with one form is a leaf
		}
	}
	n.ends, n.tails, n.kids, n.dels = nil, nil, nil, 0
}

// count tracks how many forms of each length the book holds, for the
// window streams need.
func (b *book) count(l, d int) {
	b.forms += d
	if b.lens[l] += d; b.lens[l] == 0 {
		delete(b.lens, l)
	}
	if int64(l) > b.longest.Load() && d > 0 {
		b.longest.Store(int64(l))
	}
	if int64(l) == b.longest.Load() && d < 0 && b.lens[l] == 0 {
		m := 0
		for k := range b.lens {
			m = max(m, k)
		}
		b.longest.Store(int64(m))
	}
}

// resize rebuilds the filter when it is too small for the anchors it
// holds, four times too large, or holds more stale anchors than live
// ones: each rebuild costs the anchors held, and is paid for by at least
// as many changes since the last, so a change costs a constant on average.
// The caller holds wmu, not mu (as for remake): the new filter is built
// from maps no change can touch, while scans read on with the old one,
// which has every form the maps hold, and it replaces the old atomically.
// At 1,000 live sessions a rebuild takes some 17 ms.
func (b *book) resize() {
	f := b.flt.Load()
	live, have := len(b.root), len(f.bits)*64
	want := filterBits(live)
	if want <= have && (have <= minFilterBits || want*4 > have) && b.stale <= max(live, minFilterKeys) &&
		octFilterBits(b.forms) <= len(f.oct)*64 {
		return
	}
	nf := newFilter(live, b.forms, b.static)
	for c := range b.root {
		nf.add(c)
	}
	for _, e := range b.entries {
		for i := range e.forms {
			nf.addForm(e.forms[i].b)
		}
	}
	b.flt.Store(nf)
	b.stale = 0
}

// Go maps never give back what deletes leave. A map that held a thousand
// sessions' keys and now holds ten keeps the room for a thousand; and a
// map whose keys are replaced at a steady size fills with tombstones, so
// that it grows (or splits its tables) now and then, without bound
// (golang/go#70886): at 2,000 live sessions, the book's root map grew by
// about 120 KB with each turnover of them, and the maps below the nodes
// that a kind of canary shares (sk-ant-admin01-, ghp_) by a third as
// much again. So each map is made anew, of the size its keys need, once
// it has had as many deletes since it was last made as it now holds keys
// (and a few more, so that small maps are left alone). That costs its
// keys, paid for by at least as many deletes: a constant a change, on
// average. A node's children are made anew in the change that deletes
// one, under the write lock: the largest, under the canaries' shared
// prefixes, hold a key a live session, 10,000 at 10,000 sessions.

// minChurn is the deletes a map always takes before it is made anew.
const minChurn = 8

// churned reports whether a map that has had dels deletes since it was
// made, and now holds n keys, is to be made anew.
func churned(dels, n int) bool { return dels > max(n, minChurn) }

// remade returns a new map of m's keys and values, sized for them
// (maps.Clone would keep m's tables, tombstones and all).
func remade[M ~map[K]V, K comparable, V any](m M) M {
	out := make(M, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// remake makes the root and entry maps anew once the root has churned
// (the entries churn with it, a secret's forms at a time). The caller
// holds wmu, not mu: no change can touch the maps, so they are copied
// while scans read on (at 10,000 live sessions the root holds some
// 430,000 keys, tens of milliseconds of copying), and only the swap
// waits for the scans.
func (b *book) remake() {
	if !churned(b.dels, len(b.root)) {
		return
	}
	root, entries := remade(b.root), remade(b.entries)
	b.mu.Lock()
	b.root, b.entries, b.dels = root, entries, 0
	b.mu.Unlock()
}

// view is what a candidate reads of a trie node on arrival, under the
// read lock. self marks the node the candidate was already at, found to
// have become a leaf (its other forms were deleted) when the candidate
// looked for a child: the candidate's last chunk is still to be checked
// against the leaf.
type view struct {
	n     *tnode
	leaf  *dform
	ends  []*dform
	tails []*dform
	kids  bool
	self  bool
}

func (n *tnode) view() view {
	return view{n: n, leaf: n.leaf, ends: n.ends, tails: n.tails, kids: n.kids != nil}
}

// anchor returns the view of the node for a window's 8 bytes.
func (b *book) anchor(w uint64) (view, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if n := b.root[w]; n != nil {
		return n.view(), true
	}
	return view{}, false
}

// child returns the view of n's child by chunk c.
func (b *book) child(n *tnode, c uint64) (view, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if n.leaf != nil {
		return view{n: n, leaf: n.leaf, self: true}, true
	}
	if k := n.kids[c]; k != nil {
		return k.view(), true
	}
	return view{}, false
}

// Sizes of the book's parts, for size.
const (
	entrySize = int64(unsafe.Sizeof(entry{}))
	formSize  = int64(unsafe.Sizeof(dform{}))
	nodeSize  = int64(unsafe.Sizeof(tnode{}))
	mapSlot   = 24 // a key, a pointer and the map's per-slot overhead, roughly
)

// size returns the bytes the book holds, counted from its parts: what
// grows with the secrets and shrinks when they go.
func (b *book) size() int64 {
	data, flt := b.sizes()
	return data + flt
}

// sizes returns the bytes of the book's forms, trie and maps, and of its
// filter. The filter shrinks only once it is four times the size it needs,
// so that a book at a size boundary does not rebuild it on every change.
func (b *book) sizes() (data, flt int64) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	f := b.flt.Load()
	n := int64(len(b.lens)) * mapSlot
	for k, e := range b.entries {
		n += mapSlot + int64(len(k)) + entrySize + int64(cap(e.arena)) + int64(cap(e.forms))*formSize
	}
	for _, t := range b.root {
		n += mapSlot + t.size()
	}
	return n, 8 * int64(len(f.bits)+len(f.pre)+len(f.grams)+len(f.dgrams)+len(f.quad)+len(f.oct))
}

func (n *tnode) size() int64 {
	s := nodeSize + 8*int64(cap(n.ends)+cap(n.tails))
	for _, k := range n.kids {
		s += mapSlot + k.size()
	}
	return s
}
