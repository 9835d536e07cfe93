package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
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
	bare := httptest.NewServer(bareProxy(target, tr, nil))
	b.Cleanup(func() { bare.Close(); tr.CloseIdleConnections() })
	return []largeCase{
		{"direct", e.up.URL + "/v1/chat/completions"},
		{"bare-reverseproxy", bare.URL + "/openai/v1/chat/completions"},
		{"tokfence-tcp", e.baseURL() + "/openai/v1/chat/completions"},
	}
}
