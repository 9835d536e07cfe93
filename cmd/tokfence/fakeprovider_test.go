package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// fakeStreamText is what the fake's streamed Anthropic reply says, in three
// deltas: a client that prints it (Claude Code) got it from the fake.
const fakeStreamText = "Hello from the fake upstream"

// fakeProvider plays OpenAI, Anthropic and Gemini on 127.0.0.1 and records
// every credential, path and User-Agent it is sent. Each route answers 401
// unless it gets its provider's real key, as the real APIs would.
type fakeProvider struct {
	*httptest.Server
	mu     sync.Mutex
	auths  []string        // every Authorization / x-api-key / x-goog-api-key value seen
	paths  []string        // "METHOD /path" of every request, known or not
	agents []string        // the User-Agent of every request, beside paths
	ids    map[string]bool // X-Req-Id of every request that arrived
}

func newFakeProvider(t testing.TB) *fakeProvider {
	f := startFakeProvider()
	t.Cleanup(f.Close)
	return f
}

// startFakeProvider starts a fakeProvider; the caller closes it.
func startFakeProvider() *fakeProvider {
	f := &fakeProvider{}
	mux := http.NewServeMux()
	for _, r := range []struct {
		pattern string
		key     func(*http.Request) bool
		h       func(w http.ResponseWriter, r *http.Request, body []byte)
	}{
		{"POST /v1/chat/completions", openAIKey, fakeChat},
		{"POST /v1/responses", openAIKey, fakeResponses},
		{"POST /v1/messages", anthropicKey, fakeMessages},
		{"POST /v1/messages/count_tokens", anthropicKey, fakeCountTokens},
		{"POST /v1beta/models/{call}", geminiKey, fakeGenerateContent},
		{"POST /v1/models/{call}", geminiKey, fakeGenerateContent}, // @google/genai 3 asks v1 by default
	} {
		mux.HandleFunc(r.pattern, func(w http.ResponseWriter, req *http.Request) {
			body, _ := io.ReadAll(req.Body)
			if !r.key(req) {
				w.WriteHeader(http.StatusUnauthorized)
				io.WriteString(w, `{"error":{"message":"bad key","type":"invalid_request_error"}}`)
				return
			}
			r.h(w, req, body)
		})
	}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.record(r)
		mux.ServeHTTP(w, r)
	}))
	return f
}

func (f *fakeProvider) record(r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range []string{"Authorization", "X-Api-Key", "X-Goog-Api-Key"} {
		f.auths = append(f.auths, r.Header.Values(h)...)
	}
	f.paths = append(f.paths, r.Method+" "+r.URL.Path)
	f.agents = append(f.agents, r.Header.Get("User-Agent"))
	if id := r.Header.Get("X-Req-Id"); id != "" {
		if f.ids == nil {
			f.ids = map[string]bool{}
		}
		f.ids[id] = true
	}
}

func (f *fakeProvider) seen() ([]string, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.auths...), append([]string(nil), f.paths...)
}

// requests returns "METHOD /path  User-Agent" for every request seen.
func (f *fakeProvider) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.paths))
	for i := range f.paths {
		out[i] = f.paths[i] + "  " + f.agents[i]
	}
	return out
}

func openAIKey(r *http.Request) bool    { return r.Header.Get("Authorization") == "Bearer "+testOpenAIKey }
func anthropicKey(r *http.Request) bool { return r.Header.Get("X-Api-Key") == testAnthropicKey }
func geminiKey(r *http.Request) bool    { return r.Header.Get("X-Goog-Api-Key") == testGeminiKey }

func streamed(body []byte) bool { return strings.Contains(string(body), `"stream":true`) }

func fakeChat(w http.ResponseWriter, _ *http.Request, body []byte) {
	if !streamed(body) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"hello from openai"}}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}`)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	for _, piece := range []string{"Hel", "lo", " world"} {
		fmt.Fprintf(w, "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"content\":%q}}]}\n\n", piece)
		w.(http.Flusher).Flush()
	}
	io.WriteString(w, "data: [DONE]\n\n")
}

// fakeResponses answers the Responses API (the Vercel AI SDK's openai(...)).
func fakeResponses(w http.ResponseWriter, _ *http.Request, _ []byte) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"id":"resp_1","object":"response","created_at":1,"status":"completed","model":"gpt-4o-mini",`+
		`"output":[{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"hello from responses","annotations":[]}]}],`+
		`"usage":{"input_tokens":3,"output_tokens":4,"total_tokens":7}}`)
}

// fakeMessages answers Messages, plain or streamed the way Claude Code
// reads a stream (message_start, content blocks, message_delta, stop).
func fakeMessages(w http.ResponseWriter, _ *http.Request, body []byte) {
	if !streamed(body) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":"msg_1","type":"message","role":"assistant","model":"claude-3-5-haiku-latest","stop_reason":"end_turn","content":[{"type":"text","text":"hello from anthropic"}],"usage":{"input_tokens":3,"output_tokens":4}}`)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	events := []string{
		`{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-3-5-haiku-latest","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":3,"output_tokens":1}}}`,
		`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
	}
	for _, piece := range []string{fakeStreamText[:3], fakeStreamText[3:11], fakeStreamText[11:]} {
		events = append(events, fmt.Sprintf(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":%q}}`, piece))
	}
	events = append(events, `{"type":"content_block_stop","index":0}`,
		`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":4}}`,
		`{"type":"message_stop"}`)
	for _, ev := range events {
		var typ struct{ Type string }
		json.Unmarshal([]byte(ev), &typ)
		fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ.Type, ev)
		w.(http.Flusher).Flush()
	}
}

func fakeCountTokens(w http.ResponseWriter, _ *http.Request, _ []byte) {
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, `{"input_tokens":3}`)
}

// fakeGenerateContent answers POST /v1beta/models/{model}:generateContent
// (and /v1/...).
func fakeGenerateContent(w http.ResponseWriter, r *http.Request, _ []byte) {
	model, method, _ := strings.Cut(r.PathValue("call"), ":")
	if method != "generateContent" {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"candidates":[{"content":{"role":"model","parts":[{"text":"hello from gemini"}]},"finishReason":"STOP","index":0}],`+
		`"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":4,"totalTokenCount":7},"modelVersion":%q}`, model)
}
