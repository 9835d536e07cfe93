package daemon

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tokfence/tokfence/daemon/api"
	"github.com/tokfence/tokfence/daemon/audit"
	"github.com/tokfence/tokfence/daemon/layout"
	"github.com/tokfence/tokfence/daemon/meter"
)

// usageUpstream reports the given usage on every non-streaming reply.
func usageUpstream(in, out int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"choices":[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":%d,"completion_tokens":%d}}`, in, out)
	}
}

func TestMaxSpendRefusesOnceCrossed(t *testing.T) {
	e := startProxyEnv(t, usageUpstream(5000, 1000)) // gpt-4o-mini: 5000×0.15 + 1000×0.60 = 1350 µ$
	g := e.grant(t, api.GrantRequest{MaxSpendUSD: 0.002})
	for i, want := range []int{200, 200, 403} {
		resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token))
		if resp.StatusCode != want {
			t.Fatalf("request %d = %d %s, want %d", i+1, resp.StatusCode, body, want)
		}
		if want == 403 && (!strings.Contains(body, "max-spend") || !strings.Contains(body, `"code":"budget_exhausted"`)) {
			t.Fatalf("403 body %s should name the limit in the provider shape", body)
		}
	}
	if e.up.count() != 2 {
		t.Fatalf("upstream saw %d, want 2", e.up.count())
	}
	s := sessionRisk(t, e, g.Session)
	if s.SpendUSD != 0.0027 || s.Tokens != 12000 {
		t.Fatalf("session usage = %d tokens $%v, want 12000 tokens $0.0027", s.Tokens, s.SpendUSD)
	}
}

func TestUnpricedModelsAreFlaggedNeverFree(t *testing.T) {
	e := startProxyEnv(t, usageUpstream(10, 10))
	g := e.grant(t, api.GrantRequest{})
	body := `{"model":"gpt-99-ultra","messages":[]}`
	if resp, _ := e.do(t, false, "POST", "/openai/v1/chat/completions", body, bearer(g.Token)); resp.StatusCode != 200 {
		t.Fatalf("unpriced model without a spend limit = %d, want 200", resp.StatusCode)
	}
	if s := sessionRisk(t, e, g.Session); s.Unpriced != 1 || s.Tokens != 20 {
		t.Fatalf("session = %+v, want 1 unpriced request with its 20 tokens counted", s)
	}
	capped := e.grant(t, api.GrantRequest{MaxSpendUSD: 1})
	resp, msg := e.do(t, false, "POST", "/openai/v1/chat/completions", body, bearer(capped.Token))
	if resp.StatusCode != 403 || !strings.Contains(msg, "no price") || resp.Header.Get("X-Should-Retry") != "false" {
		t.Fatalf("unpriced model under --max-spend = %d %s (x-should-retry %q), want a final 403 naming the missing price",
			resp.StatusCode, msg, resp.Header.Get("X-Should-Retry"))
	}
}

func TestAgentBudgetSurvivesRestart(t *testing.T) {
	e := startProxyEnv(t, usageUpstream(4000, 2000), func(c *Config) {
		c.Budgets = map[string]meter.Budget{"coder": {DailyTokens: 10000}}
	})
	g := e.grant(t, api.GrantRequest{Agent: "coder"})
	for i, want := range []int{200, 200, 403} {
		if resp, _ := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token)); resp.StatusCode != want {
			t.Fatalf("request %d = %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	e2 := e.restart(t)
	fresh := e2.grant(t, api.GrantRequest{Agent: "coder"})
	resp, body := e2.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(fresh.Token))
	if resp.StatusCode != 403 || !strings.Contains(body, "daily token budget") {
		t.Fatalf("new session of the same agent after restart = %d %s, want 403", resp.StatusCode, body)
	}
	other := e2.grant(t, api.GrantRequest{Agent: "writer"})
	if resp, _ := e2.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(other.Token)); resp.StatusCode != 200 {
		t.Fatalf("another agent = %d, want 200", resp.StatusCode)
	}
}

// TestConcurrentOvershootIsBoundedByInFlight documents the limit's
// semantics: admission counts finished requests only, so N requests
// admitted together may all run, and nothing starts after they finish.
func TestConcurrentOvershootIsBoundedByInFlight(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	inFlight := 0
	e := startProxyEnv(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		mu.Unlock()
		<-release
		usageUpstream(100, 0)(w, r)
	})
	g := e.grant(t, api.GrantRequest{MaxTokens: 1})
	const n = 8
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _ := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token))
			codes <- resp.StatusCode
		}()
	}
	waitUntil(t, "all requests in flight", func() bool { mu.Lock(); defer mu.Unlock(); return inFlight == n })
	close(release)
	wg.Wait()
	close(codes)
	ok := 0
	for c := range codes {
		if c == 200 {
			ok++
		}
	}
	if ok > n {
		t.Fatalf("%d succeeded, more than the %d in flight", ok, n)
	}
	if resp, _ := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token)); resp.StatusCode != 403 {
		t.Fatalf("request after the limit was crossed = %d, want 403", resp.StatusCode)
	}
}

func TestStreamUsageIsRequestedAndHiddenFromTheAgent(t *testing.T) {
	e := startProxyEnv(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n")
		if strings.Contains(string(body), `"include_usage":true`) {
			io.WriteString(w, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3000,\"completion_tokens\":500}}\n\n")
		}
		io.WriteString(w, "data: [DONE]\n\n")
	})
	g := e.grant(t, api.GrantRequest{})
	stream := func(body string) string {
		req, _ := http.NewRequest("POST", e.baseURL()+"/openai/v1/chat/completions", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+g.Token)
		resp, err := e.tcp.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(bufio.NewReader(resp.Body))
		return string(b)
	}
	got := stream(`{"model":"gpt-4o-mini","stream":true,"messages":[]}`)
	if strings.Contains(got, "usage") || !strings.Contains(got, `"hi"`) || !strings.Contains(got, "[DONE]") {
		t.Fatalf("agent that did not ask for usage saw %q", got)
	}
	if !strings.Contains(string(e.up.requests()[0].Body), `"include_usage":true`) {
		t.Fatalf("upstream request %s lacks include_usage", e.up.requests()[0].Body)
	}
	if s := sessionRisk(t, e, g.Session); s.Tokens != 3500 {
		t.Fatalf("metered tokens = %d, want 3500 from the hidden usage chunk", s.Tokens)
	}
	got = stream(`{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[]}`)
	if !strings.Contains(got, `"usage":{"prompt_tokens":3000`) {
		t.Fatalf("agent that asked for usage did not get it: %q", got)
	}
	_ = context.Background
}

func TestMissingUsageIsEstimatedAndMarked(t *testing.T) {
	e := startProxyEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"choices":[{"message":{"content":"`+strings.Repeat("x", 400)+`"}}]}`)
	})
	g := e.grant(t, api.GrantRequest{})
	e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token))
	if s := sessionRisk(t, e, g.Session); s.Tokens < 100 || s.Tokens > 150 {
		t.Fatalf("estimated tokens = %d, want about (body bytes)/4", s.Tokens)
	}
}

// TestResponsesStreamUsageIsRead: Codex's traffic is all streamed
// Responses API replies, whose usage is in the response.completed event;
// the session is charged that, not an estimate from the stream's size.
func TestResponsesStreamUsageIsRead(t *testing.T) {
	sse, err := os.ReadFile(filepath.Join("..", "testdata", "usage", "openai-responses-stream.sse"))
	if err != nil {
		t.Fatal(err)
	}
	e := startProxyEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write(sse)
	})
	g := e.grant(t, api.GrantRequest{})
	resp, body := e.do(t, false, "POST", "/openai/v1/responses", `{"model":"gpt-5-codex","stream":true,"input":"hi"}`, bearer(g.Token))
	if resp.StatusCode != 200 || body != string(sse) {
		t.Fatalf("responses stream = %d %q", resp.StatusCode, body)
	}
	// The record is finished after the reply's last byte is sent.
	var rec []audit.Record
	waitUntil(t, "the response record", func() bool {
		rec = nil
		audit.Read(layout.StateDir(e.cfg.StateDir).Audit(), audit.Filter{Event: audit.EventResponse}, func(r audit.Record) error {
			rec = append(rec, r)
			return nil
		})
		return len(rec) > 0
	})
	if u := rec[0].Usage; len(rec) != 1 || u == nil || u.Estimated || u.InputTokens != 9 || u.OutputTokens != 3 || u.CachedTokens != 4 {
		t.Fatalf("response records = %+v, want one with the stream's usage (9 in, 4 of them cached, 3 out)", rec)
	}
	if s := sessionRisk(t, e, g.Session); s.Tokens != 12 {
		t.Fatalf("metered tokens = %d, want the stream's 9 in + 3 out", s.Tokens)
	}
}

// TestCacheWritesArePriced runs an Anthropic reply with prompt-cache
// counts through the proxy: each kind of input token at its own rate, and
// the price's source in the audit record.
func TestCacheWritesArePriced(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	e := startProxyEnv(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"type":"message","usage":{"input_tokens":10,"cache_creation_input_tokens":100000,"cache_read_input_tokens":200000,"output_tokens":1000}}`)
	}, func(c *Config) {
		c.Pricing = map[string]meter.PriceOverride{"anthropic/claude-test": {Input: 3, CachedInput: f(0.3), CacheWrite: f(3.75), Output: 15, Date: "2026-12-01"}}
	})
	g := e.grant(t, api.GrantRequest{Providers: []string{"anthropic"}, MaxSpendUSD: 1})
	resp, body := e.do(t, false, "POST", "/anthropic/v1/messages", `{"model":"claude-test","messages":[]}`, map[string]string{"x-api-key": g.Token})
	if resp.StatusCode != 200 {
		t.Fatalf("request = %d %s", resp.StatusCode, body)
	}
	const want = 10*3 + 200000*0.3 + 100000*3.75 + 1000*15 // µ$
	if s := sessionRisk(t, e, g.Session); s.SpendUSD != want/1e6 || s.Tokens != 301010 {
		t.Errorf("session = %d tokens $%v, want 301010 tokens $%v", s.Tokens, s.SpendUSD, want/1e6)
	}
	// The response record is written after the reply's last byte.
	var ref string
	waitUntil(t, "the response record", func() bool {
		audit.Read(layout.StateDir(e.cfg.StateDir).Audit(), audit.Filter{Event: audit.EventResponse}, func(r audit.Record) error {
			ref = r.Detail["price"]
			return nil
		})
		return ref != ""
	})
	if ref != "anthropic/claude-test (config file, 2026-12-01)" {
		t.Errorf("audit price = %q, want the override named", ref)
	}
	st, err := e.client.Status(context.Background())
	if err != nil || !strings.HasPrefix(st.Prices, "@pydantic/genai-prices ") || !strings.Contains(st.Prices, "1 overrides") {
		t.Errorf("status prices = %q, %v; want the embedded table and the override", st.Prices, err)
	}
}

// TestPricingFileInTheDaemon: under a pricing_file, the embedded table's
// models have no price, so a --max-spend grant refuses them.
func TestPricingFileInTheDaemon(t *testing.T) {
	e := startProxyEnv(t, usageUpstream(10, 10), func(c *Config) { c.PricingFile = fixturePrices(t) })
	g := e.grant(t, api.GrantRequest{MaxSpendUSD: 1})
	if resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token)); resp.StatusCode == 200 || !strings.Contains(body, "no price") {
		t.Errorf("gpt-4o-mini under a pricing_file without it = %d %s, want refused for no price", resp.StatusCode, body)
	}
	if resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", `{"model":"fx-equals","messages":[]}`, bearer(g.Token)); resp.StatusCode != 200 {
		t.Errorf("a model the pricing_file prices = %d %s, want 200", resp.StatusCode, body)
	}
	if s := sessionRisk(t, e, g.Session); s.SpendUSD != (10*1+10*2)/1e6 {
		t.Errorf("spend = $%v, want $%v at the pricing_file's rates", s.SpendUSD, (10*1+10*2)/1e6)
	}
}

// fixturePrices is the meter package's hand-written genai-prices table.
func fixturePrices(t testing.TB) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("meter", "testdata", "prices", "fixture.json"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestMissingPricingFileStopsTheDaemon: a pricing_file that cannot be
// read is a config error, never an empty table.
func TestMissingPricingFileStopsTheDaemon(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t)
	cfg.PricingFile = filepath.Join(dir, "missing.json")
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("Validate() with a missing pricing_file = %v, want an error naming it", err)
	}
	if _, err := New(cfg, Options{}); err == nil {
		t.Error("New() with a missing pricing_file succeeded")
	}
}
