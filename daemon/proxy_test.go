package daemon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokfence/tokfence/daemon/api"
)

func TestRedirectsAreReturnedNeverFollowed(t *testing.T) {
	foreign, foreignURL := newForeign(t)
	for _, code := range []int{302, 307} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			e := startProxyEnv(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, foreignURL+"/steal", code)
			})
			g := e.grant(t, api.GrantRequest{})
			resp, _ := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token))
			if resp.StatusCode != code {
				t.Fatalf("status = %d, want %d passed back to the agent", resp.StatusCode, code)
			}
			if foreign.count() != 0 {
				t.Fatalf("the foreign host saw %d requests", foreign.count())
			}
			if e.up.count() != 1 {
				t.Fatalf("upstream saw %d requests, want 1", e.up.count())
			}
		})
	}
}

func TestUpstreamGetsExactlyOneRightCredential(t *testing.T) {
	e := startProxyEnv(t, nil, func(c *Config) {
		c.Providers["local"] = ProviderConfig{BaseURL: c.Providers["openai"].BaseURL, AuthHeader: "X-Local-Auth", AuthScheme: "Token"}
	})
	if err := e.keys.SetProviderKey(t.Context(), "local", mustSecret("local-key-0123456789")); err != nil {
		t.Fatal(err)
	}
	g := e.grant(t, api.GrantRequest{Providers: []string{"openai", "anthropic", "gemini", "local"}})
	tests := []struct {
		name, path, tokHeader, tokValue, wantHeader, wantValue string
	}{
		{"openai bearer", "/openai/v1/chat/completions", "Authorization", "Bearer " + g.Token, "Authorization", "Bearer " + fakeOpenAIKey},
		{"anthropic x-api-key", "/anthropic/v1/messages", "x-api-key", g.Token, "X-Api-Key", fakeAnthropicKey},
		{"gemini x-goog-api-key", "/gemini/v1beta/models/gemini-2.0-flash:generateContent?key=" + g.Token + "&alt=sse", "x-goog-api-key", g.Token, "X-Goog-Api-Key", fakeGeminiKey},
		{"custom scheme", "/local/v1/x", "Authorization", "Bearer " + g.Token, "X-Local-Auth", "Token local-key-0123456789"},
	}
	creds := []string{"Authorization", "X-Api-Key", "X-Goog-Api-Key", "Api-Key", "X-Local-Auth", "Proxy-Authorization", "Cookie"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.up.count()
			hdr := map[string]string{tt.tokHeader: tt.tokValue,
				"Connection": "Authorization, X-Api-Key, X-Goog-Api-Key, X-Local-Auth"}
			resp, body := e.do(t, false, "POST", tt.path, chatBody, hdr)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			seen := e.up.requests()[before]
			n := 0
			for _, c := range creds {
				n += len(seen.Header.Values(c))
			}
			if n != 1 || seen.Header.Get(tt.wantHeader) != tt.wantValue {
				t.Fatalf("upstream credentials = %v, want exactly %s", seen.Header, tt.wantHeader)
			}
			for k, vs := range seen.Header {
				for _, v := range vs {
					if strings.Contains(v, g.Token) {
						t.Fatalf("upstream saw the capability token in %s", k)
					}
				}
			}
			if strings.Contains(seen.RawQuery, "key=") {
				t.Fatalf("upstream query %q still carries key=", seen.RawQuery)
			}
		})
	}
}

func TestHeaderAllowList(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{Providers: []string{"openai", "anthropic"}})
	dropped := map[string]string{
		"Proxy-Authorization": "Basic Zm9vOmJhcg==", "X_Api_Key": g.Token, "Api-Key": g.Token,
		"Anthropic-Api-Key": "leak3", "Cookie": "session=leak4", "X-Forwarded-For": "10.0.0.1",
		"X-Forwarded-Host": "evil", "Forwarded": "for=10.0.0.1", "X-Real-Ip": "10.0.0.2",
		"X-Goog-Api-Key": g.Token, "X-Echo-Token": "prefix " + g.Token, "Te": "trailers",
		"Some-Random-Header": "not allow-listed",
	}
	kept := map[string]string{
		"X-Custom-Token-Count": "42  ,\ttokens;q=1", "Anthropic-Version": "2023-06-01", "Anthropic-Beta": "tools-2024",
		"Idempotency-Key": "abc-123", "User-Agent": "OpenAI/Python 1.0", "Accept": "application/json",
	}
	hdr := map[string]string{"Authorization": "Bearer " + g.Token}
	for k, v := range dropped {
		hdr[k] = v
	}
	for k, v := range kept {
		hdr[k] = v
	}
	resp, body := e.do(t, false, "POST", "/anthropic/v1/messages", `{"model":"claude"}`, hdr)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	seen := e.up.requests()[0].Header
	for k := range dropped {
		if vs, ok := seen[http.CanonicalHeaderKey(k)]; ok || len(seen[k]) > 0 {
			t.Errorf("upstream got dropped header %s = %q", k, vs)
		}
	}
	for k, v := range kept {
		if got := seen[http.CanonicalHeaderKey(k)]; len(got) != 1 || got[0] != v {
			t.Errorf("upstream header %s = %q, want %q byte for byte", k, got, v)
		}
	}
	if seen.Get("Accept-Encoding") != "identity" {
		t.Errorf("Accept-Encoding = %q, want identity", seen.Get("Accept-Encoding"))
	}
}

// TestProviderHeadersListedInAnyCaseAreForwarded: the provider table lists
// OpenAI-Organization and OpenAI-Project in mixed case; agents send them in
// any case, and they are neither X- headers nor in the base set, so only
// the provider's list lets them through.
func TestProviderHeadersListedInAnyCaseAreForwarded(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{})
	hdr := map[string]string{"Authorization": "Bearer " + g.Token, "openai-organization": "org-1", "OPENAI-PROJECT": "proj-2"}
	if resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, hdr); resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	seen := e.up.requests()[0].Header
	if seen.Get("OpenAI-Organization") != "org-1" || seen.Get("OpenAI-Project") != "proj-2" {
		t.Fatalf("upstream OpenAI-Organization = %q, OpenAI-Project = %q; want both forwarded", seen.Get("OpenAI-Organization"), seen.Get("OpenAI-Project"))
	}
}

func TestResponseHeadersAreScrubbed(t *testing.T) {
	e := startProxyEnv(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Set-Cookie", "sid=1")
		h.Set("Server", "nginx/1.0")
		h.Set("X-Powered-By", "PHP")
		h.Set("Authorization", "Bearer upstream")
		h.Set("X-Api-Key", "upstream")
		h.Set("X-Request-Id", "req-1")
		io.WriteString(w, "{}")
	})
	g := e.grant(t, api.GrantRequest{})
	resp, _ := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token))
	for _, h := range []string{"Set-Cookie", "Server", "X-Powered-By", "Authorization", "X-Api-Key"} {
		if v := resp.Header.Get(h); v != "" {
			t.Errorf("response header %s = %q, want removed", h, v)
		}
	}
	if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Request-Id") != "req-1" {
		t.Errorf("headers = %v, want nosniff added and X-Request-Id kept", resp.Header)
	}
}

func TestPathTricksAreRefused(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{})
	for _, p := range []string{
		"/openai/..%2f..%2fevil", "/openai/v1/%2e%2e/admin", "/openai/v1/..%5cadmin", "/openai/v1/%252fetc",
		"/openai/v1/chat%00/completions", "/openai/v1/../../evil", "/openai/v1/./chat", "/openai//v1/chat",
		"/openai/v1/chat\\completions", "/openai/v1/..;/..;/admin", "/openai/v1/chat;x=1/completions", "/openai/v1/chat/completions;",
		"/openai/v1/..%3b/admin", "/openai/v1/..%3B/admin",
	} {
		t.Run(p, func(t *testing.T) {
			resp := rawRequest(t, e.d.tcpAddr, "POST "+p+" HTTP/1.1\r\nHost: "+e.d.tcpAddr+"\r\nAuthorization: Bearer "+g.Token+"\r\nContent-Length: 2\r\n\r\n{}")
			if !strings.HasPrefix(resp, "HTTP/1.1 400") {
				t.Fatalf("%s -> %q, want 400", p, firstLine(resp))
			}
		})
	}
	for _, raw := range []string{
		"POST http://api.openai.com/openai/v1/chat/completions HTTP/1.1\r\nHost: " + e.d.tcpAddr + "\r\n\r\n",
		"CONNECT api.openai.com:443 HTTP/1.1\r\nHost: api.openai.com:443\r\n\r\n",
		"GET /openai/v1/models HTTP/1.1\r\nHost: " + e.d.tcpAddr + "\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
	} {
		if resp := rawRequest(t, e.d.tcpAddr, raw); strings.HasPrefix(resp, "HTTP/1.1 2") || strings.HasPrefix(resp, "HTTP/1.1 101") {
			t.Errorf("%q -> %q, want refused", firstLine(raw), firstLine(resp))
		}
	}
	if e.up.count() != 0 {
		t.Fatalf("upstream saw %d requests", e.up.count())
	}
	if resp, _ := e.do(t, false, "GET", "/nosuch/v1/models", "", bearer(g.Token)); resp.StatusCode != 404 {
		t.Fatalf("unknown provider = %d, want 404", resp.StatusCode)
	}
	if resp, _ := e.do(t, false, "GET", "/openai/admin/keys", "", bearer(g.Token)); resp.StatusCode != 404 {
		t.Fatalf("path outside the provider's API = %d, want 404", resp.StatusCode)
	}
}

func rawRequest(t *testing.T, addr, raw string) string {
	t.Helper()
	c := rawSend(t, addr, raw)
	defer c.Close()
	// Read the status line only: the daemon may keep the connection open.
	b := make([]byte, 512)
	n, _ := io.ReadAtLeast(c, b, 12)
	b = b[:n]
	return string(b)
}

// rawExchange writes raw on a new connection and reads until the daemon
// closes it (or 10 s pass).
func rawExchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c := rawSend(t, addr, raw)
	defer c.Close()
	b, _ := io.ReadAll(c)
	return string(b)
}

// rawSend dials addr and writes raw, with 10 s for the whole exchange.
func rawSend(t *testing.T, addr, raw string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, raw)
	return c
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\r\n"); return l }

func TestTCPRefusesBrowsersAndForeignHosts(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{})
	if resp, _ := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody,
		map[string]string{"Authorization": "Bearer " + g.Token, "Origin": "https://evil.example"}); resp.StatusCode != 403 {
		t.Fatalf("Origin = %d, want 403", resp.StatusCode)
	}
	resp := rawRequest(t, e.d.tcpAddr, "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: evil.example:9471\r\nAuthorization: Bearer "+g.Token+"\r\nContent-Length: 2\r\n\r\n{}")
	if !strings.HasPrefix(resp, "HTTP/1.1 421") {
		t.Fatalf("foreign Host = %q, want 421", firstLine(resp))
	}
	if resp, _ := e.do(t, false, "GET", "/v1/status", "", nil); resp.StatusCode != 404 {
		t.Fatalf("control API on TCP = %d, want 404", resp.StatusCode)
	}
	if resp, _ := e.do(t, false, "POST", "/v1/grant", `{"agent":"x","providers":["openai"]}`, nil); resp.StatusCode == 200 {
		t.Fatalf("grant over TCP succeeded")
	}
	if resp, body := e.do(t, false, "POST", "/v1/keys/reload", "", nil); resp.StatusCode == 200 {
		t.Fatalf("key reload over TCP succeeded: %s", body)
	}
	if e.up.count() != 0 {
		t.Fatalf("upstream saw %d requests", e.up.count())
	}
}

func TestHugeBodyIs413WithBoundedMemory(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{})
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	req, _ := http.NewRequest("POST", e.baseURL()+"/openai/v1/chat/completions", io.LimitReader(zeros{}, 2<<30))
	req.Header.Set("Authorization", "Bearer "+g.Token)
	resp, err := e.tcp.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Fatalf("2 GiB body = %d, want 413", resp.StatusCode)
		}
	} // an error means the daemon closed the connection mid-upload after its 413: also a refusal
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 256<<20 {
		t.Fatalf("heap grew by %d MiB reading a 2 GiB body", grown>>20)
	}
	if e.up.count() != 0 {
		t.Fatalf("upstream saw the oversized request")
	}
	req, _ = http.NewRequest("POST", e.baseURL()+"/openai/v1/chat/completions", strings.NewReader(chatBody))
	req.Header.Set("Authorization", "Bearer "+g.Token)
	req.ContentLength = 3 << 30 // declared too large: refused before reading
	if resp, err := e.tcp.Do(req); err == nil && resp.StatusCode != 413 {
		t.Fatalf("declared 3 GiB = %d, want 413", resp.StatusCode)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestSlowlorisHeadersTimeOut(t *testing.T) {
	e := startProxyEnv(t, nil, func(c *Config) { c.HeaderTimeout.Duration = 300 * time.Millisecond })
	g := e.grant(t, api.GrantRequest{})
	c, err := net.Dial("tcp", e.d.tcpAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: "+e.d.tcpAddr+"\r\n")
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 50; i++ { // one header byte every 50 ms: never finishes
			if _, err := io.WriteString(c, "X"); err != nil {
				done <- err
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		done <- nil
	}()
	if resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token)); resp.StatusCode != 200 {
		t.Fatalf("a normal request during the slowloris = %d %s", resp.StatusCode, body)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(c)
	if strings.HasPrefix(string(b), "HTTP/1.1 2") {
		t.Fatalf("slow headers were served: %q", b)
	}
	if err := <-done; err == nil {
		t.Fatalf("the daemon kept the slowloris connection open for 2.5 s with a %s header timeout", e.cfg.HeaderTimeout.Duration)
	}
}

// TestSSEEventsAreNotBuffered runs the upstream in lock-step with the
// reader: it sends event i only after the agent has read event i-1. Any
// buffering in the proxy would deadlock, and the test would time out.
func TestSSEEventsAreNotBuffered(t *testing.T) {
	const events = 50
	ack := make(chan struct{})
	e := startProxyEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for i := 0; i < events; i++ {
			fmt.Fprintf(w, "data: {\"choices\":[{\"delta\":{\"content\":\"tok%d \"}}]}\n\n", i)
			fl.Flush()
			select {
			case <-ack:
			case <-time.After(10 * time.Second):
				return
			}
		}
		io.WriteString(w, "data: [DONE]\n\n")
	})
	g := e.grant(t, api.GrantRequest{})
	br := e.openStream(t, g.Token)
	for i := 0; i < events; i++ {
		ev, err := readEvent(br)
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if !strings.Contains(ev, fmt.Sprintf("tok%d ", i)) {
			t.Fatalf("event %d = %q", i, ev)
		}
		ack <- struct{}{}
	}
}

// A streamed reply's header reaches the agent when the upstream sends it,
// not with the first event: an upstream that answers at once and then
// thinks for a while must not look hung.
func TestStreamHeaderIsNotHeldForTheFirstEvent(t *testing.T) {
	gotHeader := make(chan struct{})
	e := startProxyEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Request-Id", "req-1")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select { // the first event waits until the agent has the header
		case <-gotHeader:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n")
	})
	g := e.grant(t, api.GrantRequest{})
	for _, viaUnix := range []bool{false, true} {
		base, c := e.baseURL(), e.tcp
		if viaUnix {
			base, c = "http://tokfence", e.unix
		}
		req, _ := http.NewRequest("POST", base+"/openai/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o","stream":true}`))
		req.Header.Set("Authorization", "Bearer "+g.Token)
		type result struct {
			resp *http.Response
			err  error
		}
		done := make(chan result, 1)
		go func() {
			resp, err := c.Do(req)
			done <- result{resp, err}
		}()
		var res result
		select {
		case res = <-done:
		case <-time.After(10 * time.Second):
			close(gotHeader) // let the upstream finish so the test can end
			t.Fatalf("unix=%v: no response header while the upstream holds its first event", viaUnix)
		}
		if res.err != nil {
			t.Fatal(res.err)
		}
		if res.resp.StatusCode != 200 || res.resp.Header.Get("X-Request-Id") != "req-1" {
			t.Fatalf("unix=%v: status %d, header %v", viaUnix, res.resp.StatusCode, res.resp.Header)
		}
		gotHeader <- struct{}{}
		ev, err := readEvent(bufio.NewReader(res.resp.Body))
		res.resp.Body.Close()
		if err != nil || !strings.Contains(ev, "hi") {
			t.Fatalf("unix=%v: first event %q, %v", viaUnix, ev, err)
		}
	}
}

// A key changed without telling the daemon (the CLI could not reach it) is
// still picked up, through the key index's change signal, with no restart.
func TestKeyChangedBehindTheDaemonsBackIsNoticed(t *testing.T) {
	const rotated = "sk-proj-SILENTLYrotated0123456789abcdefghijklmnopqrst"
	e, g := rotateAfterARequest(t, rotated)
	waitUntil(t, "the silently rotated key to be used", func() bool {
		e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token))
		reqs := e.up.requests()
		return reqs[len(reqs)-1].Header.Get("Authorization") == "Bearer "+rotated
	})
}

func readEvent(br *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := br.ReadString('\n')
		b.WriteString(line)
		if err != nil {
			return b.String(), err
		}
		if line == "\n" {
			return b.String(), nil
		}
	}
}

func TestStoredKeyWithCRLFFailsClosed(t *testing.T) {
	e := startProxyEnv(t, nil)
	// Bypass key-set validation, as a keychain edited by another tool would.
	e.mem.Set("tokfence", "provider:openai", "sk-good\r\nX-Injected: SECRETPART")
	e.keys.Index().Add("openai")
	g := e.grant(t, api.GrantRequest{})
	resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token))
	if resp.StatusCode != 500 || strings.Contains(body, "SECRETPART") || e.up.count() != 0 {
		t.Fatalf("CRLF key = %d %s (upstream %d), want 500 without echo and nothing sent", resp.StatusCode, body, e.up.count())
	}
	if strings.Contains(e.logs.String(), "SECRETPART") {
		t.Fatalf("the log echoes the key")
	}
}

func TestSocketServesTheProxy(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{})
	resp, body := e.do(t, true, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token))
	if resp.StatusCode != 200 || !strings.Contains(body, "hello") {
		t.Fatalf("over the socket = %d %s", resp.StatusCode, body)
	}
	_ = context.Background
}

// rotateAfterARequest starts a daemon, proxies one request with a fresh
// grant (so the old key is cached), then stores rotated as the openai key
// behind the daemon's back.
func rotateAfterARequest(t *testing.T, rotated string) (*proxyEnv, *api.Grant) {
	t.Helper()
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{})
	e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token))
	time.Sleep(10 * time.Millisecond) // a distinct index mtime on coarse-timestamp filesystems
	must(t, e.keys.SetProviderKey(t.Context(), "openai", mustSecret(rotated)))
	return e, g
}

func TestRotatedKeyIsUsedAndAuditedWithoutRestart(t *testing.T) {
	const rotated = "sk-proj-ROTATEDkey0123456789abcdefghijklmnopqrstuvwxyz"
	e, g := rotateAfterARequest(t, rotated)
	// As `tokfence key set` does: tell the daemon, so the very next
	// request uses the new key.
	rel, err := e.client.ReloadKeys(t.Context())
	if err != nil || !slices.Contains(rel.Providers, "openai") {
		t.Fatalf("ReloadKeys = %+v, %v", rel, err)
	}
	resp, _ := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token))
	reqs := e.up.requests()
	if resp.StatusCode != 200 || reqs[len(reqs)-1].Header.Get("Authorization") != "Bearer "+rotated {
		t.Fatalf("after rotation upstream got %q, want the new key", reqs[len(reqs)-1].Header.Get("Authorization"))
	}
	if !strings.Contains(e.logs.String(), "provider key changed") {
		t.Fatalf("rotation not noticed:\n%s", e.logs.String())
	}
	// The sensors now watch the new key: an agent echoing it is caught.
	e.do(t, false, "POST", "/openai/v1/chat/completions", `{"model":"gpt-4o","messages":[{"content":"`+rotated+`"}]}`, bearer(g.Token))
	if s := sessionRisk(t, e, g.Session); s.Risk != "GONE" {
		t.Fatalf("session that sent the rotated key = %s, want RED", s.Risk)
	}
}
