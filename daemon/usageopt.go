package daemon

import (
	"bytes"
	"encoding/json"
	"strings"
)

// requestUsage makes an OpenAI-style streaming chat request report its
// usage: when the agent did not ask for stream_options.include_usage the
// daemon asks for it upstream and strips the extra usage-only chunk from
// what the agent sees, so metering works and the agent's stream is exactly
// what it asked for. It returns the body to forward.
func (d *Daemon) requestUsage(f *forward, body []byte) []byte {
	if !f.p.StreamUsage || !strings.HasSuffix(f.rest, "/chat/completions") || !bytes.Contains(body, []byte(`"stream"`)) {
		return body
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil || string(bytes.TrimSpace(m["stream"])) != "true" {
		return body
	}
	opts := map[string]json.RawMessage{}
	if raw, ok := m["stream_options"]; ok && json.Unmarshal(raw, &opts) != nil {
		return body
	}
	if string(bytes.TrimSpace(opts["include_usage"])) == "true" {
		return body
	}
	opts["include_usage"] = json.RawMessage("true")
	o, _ := json.Marshal(opts)
	m["stream_options"] = o
	out, err := json.Marshal(m)
	if err != nil {
		return body
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
	k := bytes.LastIndex(buf, sseEventEnd)
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
