package sensor

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
