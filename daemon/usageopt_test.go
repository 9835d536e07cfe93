package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestUsageStripperAtEveryChunking: however the stream is cut into reads,
// the stripper forwards every event but the usage chunk, in order, once.
func TestUsageStripperAtEveryChunking(t *testing.T) {
	var in, want bytes.Buffer
	for i := range 40 {
		ev := fmt.Sprintf("data: {\"choices\":[{\"delta\":{\"content\":\"t%d\"}}]}\n\n", i)
		in.WriteString(ev)
		want.WriteString(ev)
	}
	in.WriteString("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5}}\n\n")
	in.WriteString("data: [DONE]\n\n")
	want.WriteString("data: [DONE]\n\n")
	for _, size := range []int{1, 2, 3, 7, 13, 64, 100, 1 << 20} {
		var s usageStripper
		var got bytes.Buffer
		for b := in.Bytes(); len(b) > 0; {
			n := min(size, len(b))
			chunk := append([]byte(nil), b[:n]...) // the caller's buffer is reused
			head, tail := s.filter(chunk)
			got.Write(head)
			got.Write(tail)
			clear(chunk)
			b = b[n:]
		}
		got.Write(s.flush())
		if got.String() != want.String() {
			t.Errorf("reads of %d bytes: forwarded\n%q\nwant\n%q", size, got.String(), want.String())
		}
	}
}

// TestLastEventEndIsLastIndex: the forward search ends where
// bytes.LastIndex does, on runs of newlines and on every short string of
// 'a', '\r' and '\n'.
func TestLastEventEndIsLastIndex(t *testing.T) {
	cases := []string{"", "\n", "\n\n", "\n\n\n", "a\n\n\n", "\n\na\n\n", strings.Repeat("x", 5000) + "\n\n" + strings.Repeat("y", 3000)}
	var gen func(s string)
	gen = func(s string) {
		if cases = append(cases, s); len(s) < 7 {
			for _, c := range "a\r\n" {
				gen(s + string(c))
			}
		}
	}
	gen("")
	for _, s := range cases {
		if got, want := lastEventEnd([]byte(s)), bytes.LastIndex([]byte(s), sseEventEnd); got != want {
			t.Errorf("lastEventEnd(%q) = %d, want %d", s, got, want)
		}
	}
}

// TestHasUsageChunkIsContains: the stripper's search by ']' finds the
// usage chunk exactly where bytes.Contains would, at every edge.
func TestHasUsageChunkIsContains(t *testing.T) {
	for _, s := range []string{"", "]", `"choices":[]`, `x"choices":[]`, `"choices":[] `, `"choices":[`, `]]]"choices":[]]`, `"choices": []`, `"choices":[1]"choices":[]`, `choices":[]`} {
		if got, want := hasUsageChunk([]byte(s)), bytes.Contains([]byte(s), usageChunk); got != want {
			t.Errorf("hasUsageChunk(%q) = %v, want %v", s, got, want)
		}
	}
}

// TestRequestUsageEditsInPlace: requestUsage asks for include_usage by
// adding or rewriting stream_options alone; every other byte goes upstream
// as the agent wrote it, and a body it must not touch is left whole.
func TestRequestUsageEditsInPlace(t *testing.T) {
	d := &Daemon{}
	for _, c := range []struct{ in, want string }{
		{`{"model":"m","stream":true,"messages":[{"content":"a \"stream\":true"}]}`,
			`{"stream_options":{"include_usage":true},"model":"m","stream":true,"messages":[{"content":"a \"stream\":true"}]}`},
		{" \n{ \"stream\" : true }", " \n{\"stream_options\":{\"include_usage\":true}, \"stream\" : true }"},
		{`{"str\u0065am":true,"stream_options":{"b":2,"a":1}}`, `{"str\u0065am":true,"stream_options":{"a":1,"b":2,"include_usage":true}}`},
		{`{"stream":true,"stream_options":null,"x":1}`, `{"stream":true,"stream_options":{"include_usage":true},"x":1}`},
		{`{"stream":true,"stream_options":{"include_usage":false}}`, `{"stream":true,"stream_options":{"include_usage":true}}`},
		// Left whole: usage asked already, no stream, stream twice,
		// stream_options twice or not an object, not JSON.
		{`{"stream":true,"stream_options":{"include_usage":true}}`, ""},
		{`{"stream":false}`, ""},
		{`{"model":"m","messages":[{"stream":true}]}`, ""},
		{`{"stream":true,"stream":false}`, ""},
		{`{"stream":true,"stream_options":{},"stream_options":{}}`, ""},
		{`{"stream":true,"stream_options":7}`, ""},
		{`{"stream":true,`, ""},
	} {
		want := c.want
		if want == "" {
			want = c.in
		}
		// As the proxy calls it, with what the walk for the model found,
		// and as for a provider whose path names the model (no walk yet).
		body := []byte(c.in)
		fields, _ := readFields(body)
		for _, fs := range []bodyFields{fields, {}} {
			f := &forward{p: &Provider{StreamUsage: true}, rest: "/v1/chat/completions", rec: &requestRecord{}}
			got := string(d.requestUsage(f, body, fs))
			if got != want || f.stripUsage != (c.want != "") {
				t.Errorf("requestUsage(%s, walked %v) = %s (strip %v), want %s", c.in, fs.scanned, got, f.stripUsage, want)
			}
			if c.want != "" && !json.Valid([]byte(got)) {
				t.Errorf("requestUsage(%s) = %s: not JSON", c.in, got)
			}
		}
	}
}
