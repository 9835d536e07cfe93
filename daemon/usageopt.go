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
// practice. Events pass without a copy unless a partial one is held or
// the usage chunk is in sight.
type usageStripper struct {
	ev  []byte // the start of an event whose end has not arrived
	out []byte // filter's result when it had to be assembled
}

var (
	sseEventEnd = []byte("\n\n")
	usageChunk  = []byte(`"choices":[]`)
)

// filter returns the bytes of p to forward: every complete event that is
// not the usage chunk; a partial event stays until its end arrives. The
// result is valid until the next call.
func (s *usageStripper) filter(p []byte) []byte {
	buf := p
	if len(s.ev) > 0 {
		s.ev = append(s.ev, p...)
		buf = s.ev
	}
	k := lastEventEnd(buf)
	if k < 0 {
		if len(s.ev) == 0 {
			s.ev = append(s.ev, p...)
		}
		return nil
	}
	done, rest := buf[:k+2], buf[k+2:]
	var out []byte
	switch {
	case !hasUsageChunk(done) && len(s.ev) == 0:
		out = done // p's own bytes: nothing held, nothing to drop
	default:
		s.out = s.out[:0]
		for len(done) > 0 {
			i := bytes.Index(done, sseEventEnd)
			ev := done[:i+2]
			if !(hasUsageChunk(ev) && bytes.Contains(ev, []byte(`"usage":{`))) {
				s.out = append(s.out, ev...)
			}
			done = done[i+2:]
		}
		out = s.out
	}
	s.ev = append(s.ev[:0], rest...) // out never aliases s.ev
	return out
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
