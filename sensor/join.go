package sensor

import (
	"strings"
	"sync"
)

// Joiner states.
const (
	jRun    = iota // inside a run of token characters
	jGap           // in a gap that may still join two runs
	jBroken        // after a gap that cannot join
)

// maxGap is the longest gap that still joins two string pieces: quote,
// comma or plus, quote, with room for spaces, a line break and a little
// indentation. Longer gaps are prose, not a split literal.
const maxGap = 16

// tokenChar and gapChar have initialisers rather than an init function, so
// package-level tables built from them (breaksGap) see them filled.
var (
	tokenChar = byteSet("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_.~-")
	gapChar   = byteSet("\"' \t\r\n+,")
)

func byteSet(s string) (t [256]bool) {
	for i := 0; i < len(s); i++ {
		t[s[i]] = true
	}
	return t
}

// joiner feeds the join lane: runs of token characters from the normalised
// body, where two runs separated by a short gap of quotes, spaces, commas
// and plus signs (at least two quotes: `"sk-ab","cd"`, `"sk-ab" + "cd"`;
// a '+' is a base64 character inside a run but an operator after a quote)
// continue one match. Any other gap ends the chain. The gap bytes stay in
// the original range, so a redaction covers the whole split literal.
//
// The join lane is idle until a gap joins two runs; it then replays the
// first run's tail from the main lane's ring and follows the chain until a
// gap breaks it. Most runs in JSON end in a breaking gap (`":"`, `"}`), so
// the lane costs little. While a gap is undecided, the main lane's partial
// match at the end of the run is held, so a split that completes later can
// still be redacted whole.
type joiner struct {
	jState    uint8
	jActive   bool
	gapLen    int
	gapQuotes int
	gapKind   string
	runStart  int64  // main-lane position of the current run's first byte
	runEnd    int64  // main-lane position just past the last run
	runState  uint32 // main-lane automaton state at runEnd
	candHold  int64  // earliest main-lane candidate start at runEnd, as an offset
}

// join takes one normalised byte b of the main lane, at main position q,
// before the main lane has stepped on it.
func (s *Stream) join(b byte, o, w int64, f uint8, q int64) {
	l := &s.jl
	if tokenChar[b] && (b != '+' || s.jState != jGap || s.gapQuotes == 0) {
		switch {
		case s.jState == jGap && s.gapQuotes >= 2:
			if !s.jActive {
				s.replay()
			}
			l.segStart, l.joinKind = l.pos, s.gapKind
		case s.jState != jRun:
			s.idle()
			s.runStart = q
		}
		s.jState = jRun
		if s.jActive {
			l.feedNorm(b, o, w, f)
		}
		return
	}
	switch s.jState {
	case jBroken:
		return
	case jRun:
		s.jState, s.gapLen, s.gapQuotes, s.gapKind = jGap, 0, 0, "concat"
		s.runEnd, s.runState, s.candHold = q, s.main.state, s.main.candHold()
	}
	if !s.gapByte(b) {
		s.idle()
	}
}

// gapByte takes byte b of the gap between two runs. It returns false, with
// the join broken, when b cannot be in a gap or the gap is too long.
func (j *joiner) gapByte(b byte) bool {
	if !gapChar[b] || j.gapLen >= maxGap {
		j.jState = jBroken
		return false
	}
	j.gapLen++
	switch b {
	case '"', '\'':
		j.gapQuotes++
	case ',':
		j.gapKind = "json-array"
	}
	return true
}

// replay wakes the join lane with the tail of the run before the gap.
func (s *Stream) replay() {
	l, m := &s.jl, &s.main
	l.reset()
	l.segStart = l.pos
	from := max(s.runStart, s.runEnd-m.size+1, m.pos-m.size+1)
	for p := from; p < s.runEnd; p++ {
		v := m.ring[p&m.mask]
		l.feedNorm(byte(v), int64(v>>18), int64(v>>12&63), uint8(v>>8&0xF))
	}
	s.jActive = true
}

// idle ends a join chain, settling what the join lane holds.
func (s *Stream) idle() {
	if s.jActive {
		s.jl.reset()
		s.jActive = false
	}
}

// joinHold returns the original offset the joiner needs held.
func (s *Stream) joinHold() int64 {
	h := s.jl.holdFrom()
	if s.jState == jGap {
		// While the gap is undecided, hold the run's partial match.
		h = min(h, s.candHold)
		if d := max(s.main.a.depthOf(s.runState), int64(s.main.trail(s.runEnd))); d > 0 {
			h = min(h, s.main.origin(s.runEnd-d))
		}
	}
	return h
}

// labelKey names one combination of layers for a hit's Encoding.
type labelKey struct {
	enc  string
	f    uint8
	kind laneKind
	join string
}

var flagNames = [nFlags]string{"json-escape", "percent", "fullwidth", "zero-width"}

// labels holds every Encoding string, built once, so a hit allocates none.
var labels = sync.OnceValue(func() map[labelKey]string {
	m := map[labelKey]string{}
	encs := []string{"base64(base64)", "base64url(base64)", "base64(hex)"}
	encs = append(encs, decNames[:]...) // raw, base64, base64url, hex
	lanes := []labelKey{{kind: laneMain}, {kind: laneJoin, join: "concat"}, {kind: laneJoin, join: "json-array"}, {kind: laneSSE}}
	for _, enc := range encs {
		for f := uint8(0); f < 1<<nFlags; f++ {
			for _, ln := range lanes {
				k := labelKey{enc: enc, f: f, kind: ln.kind, join: ln.join}
				m[k] = composeLabel(k)
			}
		}
	}
	return m
})

func composeLabel(k labelKey) string {
	var parts []string
	switch k.kind {
	case laneSSE:
		parts = append(parts, "sse-reassembled")
	case laneJoin:
		parts = append(parts, k.join)
	}
	for i, n := range flagNames {
		if k.f&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	if k.enc != "raw" || len(parts) == 0 {
		parts = append(parts, k.enc)
	}
	return strings.Join(parts, "+")
}

// label returns the Encoding for a hit on an enc form through flags f.
func (m *Matcher) label(enc string, f uint8, kind laneKind, join string) string {
	if s, ok := labels()[labelKey{enc, f, kind, join}]; ok {
		return s
	}
	return composeLabel(labelKey{enc, f, kind, join})
}
