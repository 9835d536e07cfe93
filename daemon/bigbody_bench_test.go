package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/tokfence/tokfence/daemon/api"
)

// bigChatBody is a chat request of about n bytes whose one user message is
// source code and prose, as an agent sends when it pastes files into its
// context: JSON-escaped newlines, quotes and tabs throughout.
func bigChatBody(n int) []byte {
	const chunk = "func handle(w http.ResponseWriter, r *http.Request) {\n\tif r.Method != \"POST\" {\n\t\thttp.Error(w, \"no\", 405)\n\t\treturn\n\t}\n\t// The agent explains what it changed and why, at length, in prose.\n}\n"
	var text strings.Builder
	for text.Len() < n {
		text.WriteString(chunk)
	}
	b, _ := json.Marshal(map[string]any{"model": "gpt-4o-mini", "messages": []map[string]string{{"role": "user", "content": text.String()}}})
	return b
}

// BenchmarkProxyLargeBody sends one 1 MiB request body directly, through a
// bare httputil.ReverseProxy and through Tokfence on TCP, in one run; a
// variant's time minus direct's is what it adds per MiB, to be set beside
// the sensors' own figure (BenchmarkScanAll in ./sensor). The stream
// variant asks for a streamed reply ("stream": true), which the daemon
// also has report its usage (stream_options); the fake upstream answers
// both with a small JSON reply:
//
//	go test -run '^$' -bench 'ProxyLarge' -benchmem ./daemon/
func BenchmarkProxyLargeBody(b *testing.B) {
	e := startProxyEnv(b, nil)
	g := e.grant(b, api.GrantRequest{Agent: "bench", TTL: "1h"})
	e.up.record = false
	for _, stream := range []bool{false, true} {
		body := bigChatBody(1 << 20)
		pre := ""
		if stream {
			body = append([]byte(`{"stream":true,`), body[1:]...)
			pre = "stream/"
		}
		for _, c := range largeCases(b, e) {
			b.Run(pre+c.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				for range b.N {
					postOK(b, e.tcp, c.url, g.Token, bytes.NewReader(body))
				}
			})
		}
	}
}

// BenchmarkProxyLargeStream streams a 1 MiB SSE reply (1,024 events of
// 1 KiB of content each) to a small request, as BenchmarkProxyLargeBody
// does for a request body.
func BenchmarkProxyLargeStream(b *testing.B) {
	var stream bytes.Buffer
	content := strings.Repeat("token text ", 93) // ~1 KiB of delta per event
	for stream.Len() < 1<<20 {
		fmt.Fprintf(&stream, "data: {\"choices\":[{\"delta\":{\"content\":%q}}]}\n\n", content)
	}
	stream.WriteString("data: [DONE]\n\n")
	e := startProxyEnv(b, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for b := stream.Bytes(); len(b) > 0; { // in 64 KiB flushes, as a fast upstream sends
			n := min(64<<10, len(b))
			w.Write(b[:n])
			w.(http.Flusher).Flush()
			b = b[n:]
		}
	})
	g := e.grant(b, api.GrantRequest{Agent: "bench", TTL: "1h"})
	e.up.record = false
	for _, c := range largeCases(b, e) {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(stream.Len()))
			for range b.N {
				if n := postOK(b, e.tcp, c.url, g.Token, strings.NewReader(`{"model":"gpt-4o-mini","stream":true,"messages":[]}`)); n < 1<<20 {
					b.Fatalf("%d bytes streamed, want 1 MiB", n)
				}
			}
		})
	}
}

type largeCase struct{ name, url string }

// largeCases are the three ways a large request is sent.
func largeCases(b *testing.B, e *proxyEnv) []largeCase {
	target, _ := url.Parse(e.up.URL)
	tr := &http.Transport{}
	bare := httptest.NewServer(&httputil.ReverseProxy{Transport: tr, Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, "/openai")
	}})
	b.Cleanup(func() { bare.Close(); tr.CloseIdleConnections() })
	return []largeCase{
		{"direct", e.up.URL + "/v1/chat/completions"},
		{"bare-reverseproxy", bare.URL + "/openai/v1/chat/completions"},
		{"tokfence-tcp", e.baseURL() + "/openai/v1/chat/completions"},
	}
}

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
			got.Write(s.filter(chunk))
			clear(chunk)
			b = b[n:]
		}
		got.Write(s.flush())
		if got.String() != want.String() {
			t.Errorf("reads of %d bytes: forwarded\n%q\nwant\n%q", size, got.String(), want.String())
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
