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
// practice.
type usageStripper struct {
	ev []byte
}

// filter returns the bytes of p to forward: every complete event that is
// not the usage chunk; a partial event stays until its end arrives.
func (s *usageStripper) filter(p []byte) []byte {
	var out []byte
	s.ev = append(s.ev, p...)
	for {
		i := bytes.Index(s.ev, []byte("\n\n"))
		if i < 0 {
			return out
		}
		ev := s.ev[:i+2]
		if !(bytes.Contains(ev, []byte(`"choices":[]`)) && bytes.Contains(ev, []byte(`"usage":{`))) {
			out = append(out, ev...)
		}
		s.ev = s.ev[i+2:]
	}
}

// flush returns whatever is left at the end of the stream.
func (s *usageStripper) flush() []byte {
	out := s.ev
	s.ev = nil
	return out
}
