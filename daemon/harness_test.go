package daemon

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokfence/tokfence/daemon/api"
	"github.com/tokfence/tokfence/daemon/ctl"
	"github.com/tokfence/tokfence/keystore"
)

// Fake provider keys. Shaped like the real thing, valid nowhere.
const (
	fakeOpenAIKey    = "sk-proj-FAKEopenai0123456789abcdefghijklmnopqrstuvwxyzAB"
	fakeAnthropicKey = "sk-ant-api03-FAKEanthropic0123456789abcdefghijklmnopqrstuv-XYZ"
	fakeGeminiKey    = "AIzaSyFAKEgemini0123456789abcdefghijklm"
)

// seenRequest is what a fake upstream recorded of one request.
type seenRequest struct {
	Method, Path, RawQuery, Host string
	Header                       http.Header
	Body                         []byte
	ContentLength                int64
}

// upstream is a fake provider on 127.0.0.1 that records every request.
type upstream struct {
	*httptest.Server
	mu      sync.Mutex
	seen    []seenRequest
	handler http.HandlerFunc
	record  bool
}

func newUpstream(t testing.TB, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{handler: h, record: true}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		if u.record {
			u.seen = append(u.seen, seenRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Host, r.Header.Clone(), body, r.ContentLength})
		}
		hh := u.handler
		u.mu.Unlock()
		if hh == nil {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","choices":[{"message":{"role":"assistant","content":"hello"}}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}`)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		hh(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

// foreign is a fake upstream reached as "localhost": the foreign host a
// redirect points to. It must never see a request.
func newForeign(t *testing.T) (*upstream, string) {
	u := newUpstream(t, nil)
	_, port, _ := net.SplitHostPort(u.Listener.Addr().String())
	return u, "http://localhost:" + port
}

func (u *upstream) requests() []seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seenRequest(nil), u.seen...)
}

func (u *upstream) count() int { return len(u.requests()) }

// proxyEnv is a running daemon whose openai, anthropic and gemini
// providers point at one fake upstream.
type proxyEnv struct {
	*testEnv
	up     *upstream
	client *ctl.Client
	unix   *http.Client
	tcp    *http.Client
}

func startProxyEnv(t testing.TB, h http.HandlerFunc, mod ...func(*Config)) *proxyEnv {
	t.Helper()
	up := newUpstream(t, h)
	cfg := testConfig(t)
	cfg.TCP = "127.0.0.1:0"
	cfg.AuditSync = AuditSyncNever // fsync per record is tested in the audit package; here it only slows tests
	cfg.Providers = map[string]ProviderConfig{
		"openai":    {BaseURL: up.URL},
		"anthropic": {BaseURL: up.URL},
		"gemini":    {BaseURL: up.URL},
	}
	for _, m := range mod {
		m(&cfg)
	}
	e := newEnv(t, cfg)
	ctx := context.Background()
	for p, k := range map[string]string{"openai": fakeOpenAIKey, "anthropic": fakeAnthropicKey, "gemini": fakeGeminiKey} {
		if err := e.keys.SetProviderKey(ctx, p, keystore.NewSecret([]byte(k))); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	pe := &proxyEnv{testEnv: e, up: up, client: ctl.New(cfg.Socket)}
	pe.unix = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", cfg.Socket)
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	pe.tcp = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return pe
}

// grant mints a token through the control API.
func (e *proxyEnv) grant(t testing.TB, req api.GrantRequest) *api.Grant {
	t.Helper()
	if req.Agent == "" {
		req.Agent = "tester"
	}
	if len(req.Providers) == 0 {
		req.Providers = []string{"openai"}
	}
	g, err := e.client.Grant(context.Background(), req)
	if err != nil {
		t.Fatalf("Grant: %v", err)
	}
	return g
}

// baseURL is the daemon's TCP address as an SDK would use it.
func (e *proxyEnv) baseURL() string { return "http://" + e.d.tcpAddr }

// do sends a request over TCP (or the socket when viaUnix) with headers.
func (e *proxyEnv) do(t testing.TB, viaUnix bool, method, path, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	base, c := e.baseURL(), e.tcp
	if viaUnix {
		base, c = "http://tokfence", e.unix
	}
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header[k] = []string{v} // exact spelling, no canonicalisation
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

const chatBody = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`

func mustSecret(s string) keystore.Secret { return keystore.NewSecret([]byte(s)) }

// openStream starts a streamed completion over TCP and returns a reader of
// its events; the body is closed when the test ends.
func (e *proxyEnv) openStream(t testing.TB, token string) *bufio.Reader {
	t.Helper()
	req, _ := http.NewRequest("POST", e.baseURL()+"/openai/v1/chat/completions", strings.NewReader(`{"model":"gpt-4o","stream":true}`))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.tcp.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return bufio.NewReader(resp.Body)
}

// cutAfterFirstEvent reads the stream's first event, then reports on the
// returned channel when the stream ends.
func cutAfterFirstEvent(t testing.TB, br *bufio.Reader) <-chan time.Time {
	t.Helper()
	if _, err := readEvent(br); err != nil {
		t.Fatalf("first event: %v", err)
	}
	cut := make(chan time.Time, 1)
	go func() {
		for {
			if _, err := readEvent(br); err != nil {
				cut <- time.Now()
				return
			}
		}
	}()
	return cut
}
