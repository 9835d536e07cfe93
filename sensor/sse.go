package sensor

import "bytes"

// sseState follows the JSON in an SSE body just far enough to pull out the
// text deltas: the string values of the keys below, wherever they occur.
// OpenAI streams carry them in choices[].delta.content and
// choices[].delta.tool_calls[].function.arguments, OpenAI Responses API
// events (over SSE or a WebSocket) in a top-level string delta,
// Anthropic streams in content_block_delta's delta.text, delta.partial_json
// and delta.thinking. Only string values are taken, so the delta objects
// of the other two shapes are walked into, not captured.
// The values, still escaped, go to the SSE lane in order, one piece each,
// so a key split across events is matched as one.
//
// Matching by key name rather than full path keeps the state to a few
// fields; the cost is that a same-named key elsewhere in an event is joined
// too, which can only add matches on text the agent or upstream wrote.
type sseState struct {
	eventStart int64 // original offset where the current event began
	nl         int   // consecutive line breaks
	inStr      bool
	esc        bool
	capture    bool // the current string is a selected value
	afterKey   bool // a string just ended; a ':' makes it a key
	wantValue  bool
	key        [16]byte
	keyLen     int
	// leapFrom is the offset before which the SSE lane does not try the
	// leap again (see sseRun).
	leapFrom int64
}

// deltaKeys are the keys whose string values are text deltas.
var deltaKeys = []string{"content", "text", "partial_json", "arguments", "thinking", "delta"}

func (x *sseState) selected() bool {
	if x.keyLen > len(x.key) {
		return false
	}
	k := x.key[:x.keyLen]
	for _, d := range deltaKeys {
		if string(k) == d {
			return true
		}
	}
	return false
}

// feed takes one original byte of the body.
func (x *sseState) feed(s *Stream, b byte, o int64) {
	if b == '\n' {
		// A JSON string cannot hold a raw line break: whatever was open ends.
		x.inStr, x.capture = false, false
		if x.nl++; x.nl >= 2 {
			x.eventStart, x.afterKey, x.wantValue = o+1, false, false
		}
		return
	}
	if b != '\r' {
		x.nl = 0
	}
	if x.inStr {
		x.str(s, b, o)
		return
	}
	switch b {
	case '"':
		x.inStr, x.esc, x.capture, x.keyLen = true, false, x.wantValue, 0
		if x.capture {
			s.sl.segStart = s.sl.pos
		}
		x.wantValue = false
	case ':':
		x.wantValue = x.afterKey && x.selected()
		x.afterKey = false
	case ' ', '\t', '\r':
	default:
		x.afterKey, x.wantValue = false, false
	}
}

// str takes one byte inside a JSON string.
func (x *sseState) str(s *Stream, b byte, o int64) {
	switch {
	case x.esc:
		x.esc = false
	case b == '\\':
		x.esc = true
	case b == '"':
		if x.capture {
			s.sl.pieceEnd()
		}
		x.inStr = false
		x.afterKey = !x.capture
		x.capture = false
		return
	}
	if x.capture {
		s.sl.feedOrig(b, o)
		return
	}
	if x.keyLen < len(x.key) {
		x.key[x.keyLen] = b
	}
	x.keyLen = min(x.keyLen+1, len(x.key)+1)
}

// keyBytes takes the bytes b inside a string that is not a selected
// value, as str does one at a time: the first len(key) are kept, and a
// longer key is one that selects nothing.
func (x *sseState) keyBytes(b []byte) {
	if x.keyLen < len(x.key) {
		copy(x.key[x.keyLen:], b)
	}
	x.keyLen = min(x.keyLen+len(b), len(x.key)+1)
}

// sseScan runs the bytes of p, at original offsets from s.total, through
// the SSE state. The inside of a string is taken a run at a time: a
// selected value goes to the SSE lane (see sseRun), any other string to
// the key it may be. The rest goes a byte at a time; with the fast paths
// off (noBlock), every byte goes through feed, as the oracle compares.
func (s *Stream) sseScan(p []byte) {
	x, base := &s.sx, s.total
	for i := 0; i < len(p); i++ {
		if x.inStr && !x.esc && !noBlock {
			j, esc := valueEnd(p, i)
			if x.capture {
				s.sseRun(p[:j], i, base)
			} else {
				x.keyBytes(p[i:j])
			}
			x.esc, i = esc, j
			if i == len(p) {
				return
			}
		}
		x.feed(s, p[i], base+int64(i))
	}
}

// valueEnd returns the index of the first byte from p[i] (the next byte
// of a JSON string, not escaped) that ends the string, an unescaped
// quote or a line break, or len(p); and, if it is len(p), whether p ends
// with a backslash that escapes the next byte.
func valueEnd(p []byte, i int) (int, bool) {
	from := i
	for {
		k := bytes.IndexByte(p[i:], '"')
		end := len(p)
		if k >= 0 {
			end = i + k
		}
		if n := bytes.IndexByte(p[i:end], '\n'); n >= 0 {
			return i + n, false
		}
		if k < 0 {
			return len(p), backslashes(p, from, len(p))%2 == 1
		}
		if backslashes(p, from, end)%2 == 0 {
			return end, false
		}
		i = end + 1 // an escaped quote
	}
}

// backslashes returns the length of the run of backslashes that ends just
// before p[e] and starts at or after p[from].
func backslashes(p []byte, from, e int) int {
	n := 0
	for e-n > from && p[e-n-1] == '\\' {
		n++
	}
	return n
}

// sseRun feeds the SSE lane the raw bytes p[i:] of a selected value,
// at original offsets from base+i. Where the lane is in a state that
// depends on nothing before (see sseLeapable), the leap passes over what
// it finds clear; a leap that passed little is not tried again until
// leapBack bytes after where it stopped.
func (s *Stream) sseRun(p []byte, i int, base int64) {
	l, x := &s.sl, &s.sx
	for i < len(p) {
		if !noLeap && len(p)-i >= leapBack && base+int64(i) >= x.leapFrom && s.sseLeapable() {
			r, n, stop := s.leap(p, i, true)
			x.leapFrom = base + int64(stop)
			if stop-i < leapBack {
				x.leapFrom += leapBack
			}
			if r > i {
				l.jump(n)
				i = r
				continue
			}
		}
		l.feedOrig(p[i], base+int64(i))
		i++
	}
}

// sseLeapable reports whether the SSE lane's state after its last byte
// depends on nothing before it: the lane quiet and at its automaton's
// root, no held form holding a byte that is not a key character (so that
// no window across the last byte can begin one), and the last byte not a
// key character. A stretch the leap finds clear then ends in that state
// too, so jump leaves the lane as the byte path would.
func (s *Stream) sseLeapable() bool {
	l := &s.sl
	return l.quiet() && l.state == 0 && (l.pos == l.resetAt || !tokenChar[byte(l.win)]) && !s.flt.odd.Load()
}
