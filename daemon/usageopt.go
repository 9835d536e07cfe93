package daemon

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
)

// requestUsage makes an OpenAI-style streaming chat request report its
// usage: when the agent did not ask for stream_options.include_usage the
// daemon asks for it upstream and strips the extra usage-only chunk from
// what the agent sees, so metering works and the agent's stream is exactly
// what it asked for. It returns the body to forward.
//
// fields is what the walk of the body for its model found (readFields), so
// deciding costs nothing more. The body is edited where it says so and
// nowhere else: the member "stream_options":{"include_usage":true} goes in
// after the object's '{', or an existing stream_options object is
// rewritten in place. So a large request costs no decode and re-encode of
// the whole (30 ms for 1 MiB), and the upstream reads every other byte as
// the agent wrote it. A body whose top level names stream or
// stream_options twice is left alone: parsers disagree on which counts.
func (d *Daemon) requestUsage(f *forward, body []byte, fields bodyFields) []byte {
	if !f.p.StreamUsage || !strings.HasSuffix(f.rest, "/chat/completions") {
		return body
	}
	if !fields.scanned {
		// The path named the model, so the body was not walked for it.
		var err error
		if fields, err = readFields(body); err != nil || !fields.scanned {
			return body
		}
	}
	stream, opts := fields.stream, fields.opts
	if fields.streamKeyTwice || string(stream) != "true" {
		return body
	}
	var out []byte
	if opts == nil {
		i := bytes.IndexByte(body, '{') + 1 // Members found the object
		out = slices.Concat(body[:i], []byte(`"stream_options":{"include_usage":true},`), body[i:])
	} else {
		o := map[string]json.RawMessage{}
		if json.Unmarshal(opts, &o) != nil {
			return body // not an object: the upstream will say so
		}
		if string(bytes.TrimSpace(o["include_usage"])) == "true" {
			return body
		}
		if o == nil {
			o = map[string]json.RawMessage{} // null, which Unmarshal makes a nil map
		}
		o["include_usage"] = json.RawMessage("true")
		v, err := json.Marshal(o)
		if err != nil {
			return body
		}
		at := cap(body) - cap(opts) // opts is a slice of body
		out = slices.Concat(body[:at], v, body[at+len(opts):])
	}
	f.stripUsage = true
	f.rec.BytesIn = int64(len(out))
	return out
}

// usageStripper removes the usage-only chunk (`"choices":[]` with a usage
// object) from an SSE stream the agent did not ask usage of. It holds at
// most one event, which upstreams send whole, so no event is delayed in
// practice. Events pass without a copy unless the usage chunk is in sight:
// an event held from an earlier read is completed in a buffer of its own
// and forwarded ahead of the read's own bytes.
type usageStripper struct {
	ev    []byte // the start of an event whose end has not arrived
	spare []byte // ev's other buffer: the last held event, once completed
	out   []byte // the events of a read the usage chunk was dropped from
}

var (
	sseEventEnd = []byte("\n\n")
	usageChunk  = []byte(`"choices":[]`)
)

// filter returns the bytes of p to forward, in two parts to send in order:
// every complete event that is not the usage chunk; a partial event stays
// until its end arrives. head is the event held from earlier calls that p
// completes; tail is the rest (p's own bytes, unless the usage chunk was
// dropped from them). Both are valid until the next call.
func (s *usageStripper) filter(p []byte) (head, tail []byte) {
	if len(s.ev) > 0 {
		e := heldEventEnd(s.ev, p)
		if e < 0 {
			s.ev = append(s.ev, p...)
			return nil, nil
		}
		s.ev = append(s.ev, p[:e]...)
		if !isUsageEvent(s.ev) {
			head = s.ev
		}
		// head stays in spare, untouched, until the next call.
		s.ev, s.spare = s.spare[:0], s.ev
		p = p[e:]
	}
	k := lastEventEnd(p)
	if k < 0 {
		s.ev = append(s.ev, p...)
		return head, nil
	}
	tail, rest := p[:k+2], p[k+2:]
	if hasUsageChunk(tail) {
		s.out = s.out[:0]
		for done := tail; len(done) > 0; {
			i := bytes.Index(done, sseEventEnd)
			if ev := done[:i+2]; !isUsageEvent(ev) {
				s.out = append(s.out, ev...)
			}
			done = done[i+2:]
		}
		tail = s.out
	}
	s.ev = append(s.ev, rest...) // s.ev is empty here; tail never aliases it
	return head, tail
}

// heldEventEnd returns where in p the event held in ev (which has no end
// of its own) ends: just past the first "\n\n", which may begin with ev's
// last byte; or -1.
func heldEventEnd(ev, p []byte) int {
	if len(p) > 0 && p[0] == '\n' && ev[len(ev)-1] == '\n' {
		return 1
	}
	if i := bytes.Index(p, sseEventEnd); i >= 0 {
		return i + 2
	}
	return -1
}

// isUsageEvent says whether one whole event is the usage chunk.
func isUsageEvent(ev []byte) bool {
	return hasUsageChunk(ev) && bytes.Contains(ev, []byte(`"usage":{`))
}

// lastEventEnd is bytes.LastIndex(b, sseEventEnd), searched forward: a
// read holds a few events, and bytes.Index finds each end at vector speed
// where LastIndex hashes its way back byte by byte (it was 7% of a fast
// stream's CPU). Each search starts one byte after the last find, so that
// "\n\n\n" ends where LastIndex says.
func lastEventEnd(b []byte) int {
	k := -1
	for i := 0; ; {
		j := bytes.Index(b[i:], sseEventEnd)
		if j < 0 {
			return k
		}
		k = i + j
		i = k + 1
	}
}

// hasUsageChunk is bytes.Contains(b, usageChunk), by the chunk's last
// byte: a ']' comes about once an event, where a search for the whole
// chunk tests every quote, which JSON is full of.
func hasUsageChunk(b []byte) bool {
	if len(b) < len(usageChunk) {
		return false
	}
	for k := len(usageChunk) - 1; ; {
		i := bytes.IndexByte(b[k:], ']')
		if i < 0 {
			return false
		}
		if k += i; bytes.Equal(b[k+1-len(usageChunk):k+1], usageChunk) {
			return true
		}
		k++
	}
}

// flush returns whatever is left at the end of the stream.
func (s *usageStripper) flush() []byte {
	out := s.ev
	s.ev = nil
	return out
}
