package daemon

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tokfence/tokfence/daemon/api"
)

// providerRoute is one provider API's request, as its SDK sends it.
type providerRoute struct {
	provider, path, body string
}

var routesByAPI = map[string]providerRoute{
	apiOpenAI:    {"openai", "/openai/v1/chat/completions", `{"model":"gpt-4o-mini","messages":[]}`},
	apiAnthropic: {"anthropic", "/anthropic/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[]}`},
	apiGemini:    {"gemini", "/gemini/v1beta/models/gemini-2.5-flash:generateContent", `{"contents":[]}`},
}

// parseShaped reads body in the error shape of API shape, failing t when it is
// another shape: it returns the message and the status the body claims.
func parseShaped(t *testing.T, shape, body string, status int) string {
	t.Helper()
	switch shape {
	case apiAnthropic:
		var b struct {
			Type  string `json:"type"`
			Error struct{ Type, Message string }
		}
		if json.Unmarshal([]byte(body), &b) != nil || b.Type != "error" || b.Error.Message == "" ||
			b.Error.Type != anthropicType(status, "") && b.Error.Type != errNotFound {
			t.Fatalf("%d on an anthropic route: %s, want {\"type\":\"error\",\"error\":{\"type\",\"message\"}}", status, body)
		}
		return b.Error.Message
	case apiGemini:
		var b struct {
			Error struct {
				Code            int
				Message, Status string
			}
		}
		if json.Unmarshal([]byte(body), &b) != nil || b.Error.Code != status || b.Error.Status != grpcStatus(status) || b.Error.Message == "" {
			t.Fatalf("%d on a gemini route: %s, want {\"error\":{\"code\",\"message\",\"status\"}}", status, body)
		}
		return b.Error.Message
	}
	var b struct {
		Error struct{ Message, Type string }
	}
	if json.Unmarshal([]byte(body), &b) != nil || b.Error.Message == "" || b.Error.Type == "" {
		t.Fatalf("%d on an openai route: %s, want {\"error\":{\"message\",\"type\"}}", status, body)
	}
	return b.Error.Message
}

// TestRefusalsHaveTheProviderShapeAndSayIfRetryHelps sends each kind of
// refusal to each provider API: the body must be that API's error shape
// with the cause in its message, and only what waiting fixes may invite a
// retry (429 with Retry-After); the rest say x-should-retry: false.
func TestRefusalsHaveTheProviderShapeAndSayIfRetryHelps(t *testing.T) {
	dir := shortTempDir(t)
	pf := filepath.Join(dir, "policy.toml")
	must(t, os.WriteFile(pf, []byte("version = 1\n[limits.green]\nper_minute = 60\nburst = 2\n"), 0o600))
	e := startProxyEnv(t, nil, func(c *Config) { c.PolicyFile = pf })
	all := []string{"openai", "anthropic", "gemini"}
	for shape, rt := range routesByAPI {
		t.Run(shape, func(t *testing.T) {
			scoped := e.grant(t, api.GrantRequest{Providers: all, Models: []string{"nothing-*"}})
			limited := e.grant(t, api.GrantRequest{Providers: all, MaxRequests: 1})
			spend := e.grant(t, api.GrantRequest{Providers: all, MaxSpendUSD: 1})
			rated := e.grant(t, api.GrantRequest{Providers: all})
			e.do(t, false, "POST", rt.path, rt.body, bearer(limited.Token))
			e.do(t, false, "POST", rt.path, rt.body, bearer(rated.Token))
			e.do(t, false, "POST", rt.path, rt.body, bearer(rated.Token))
			unpriced := strings.Replace(strings.Replace(rt.body, "gpt-4o-mini", "gpt-99-nowhere", 1), "claude-sonnet-4-5", "claude-99-nowhere", 1)
			unpricedPath := strings.Replace(rt.path, "gemini-2.5-flash", "gemini-99-nowhere", 1)
			for _, c := range []struct {
				name, path, body string
				hdr              map[string]string
				status           int
				retry            bool
				want             string
			}{
				{"no token", rt.path, rt.body, nil, 401, false, "token"},
				{"forged token", rt.path, rt.body, bearer(scoped.Token[:len(scoped.Token)-4] + "AAAA"), 401, false, "capability token refused"},
				{"outside the scope", rt.path, rt.body, bearer(scoped.Token), 403, false, "outside the grant's scope"},
				{"request limit used up", rt.path, rt.body, bearer(limited.Token), 403, false, "request limit"},
				{"no price under --max-spend", unpricedPath, unpriced, bearer(spend.Token), 403, false, "no price"},
				{"rate limit", rt.path, rt.body, bearer(rated.Token), 429, true, "rate limit"},
				{"path outside the API", "/" + rt.provider + "/nope", rt.body, bearer(rated.Token), 404, false, "not part of"},
				{"protocol upgrade", rt.path, rt.body, map[string]string{"Authorization": "Bearer " + rated.Token, "Upgrade": "h2c", "Connection": "Upgrade"}, 400, false, "upgrade"},
			} {
				if c.status == http.StatusNotFound && shape == apiAnthropic {
					continue // every anthropic path is under /v1/ (TestAnthropicBaseURLWithAndWithoutV1)
				}
				resp, body := e.do(t, false, "POST", c.path, c.body, c.hdr)
				if resp.StatusCode != c.status {
					t.Errorf("%s: status %d %s, want %d", c.name, resp.StatusCode, body, c.status)
					continue
				}
				if msg := parseShaped(t, shape, body, c.status); !strings.Contains(msg, c.want) {
					t.Errorf("%s: message %q, want it to say %q", c.name, msg, c.want)
				}
				if got := resp.Header.Get("X-Should-Retry"); got != strconv.FormatBool(c.retry) {
					t.Errorf("%s: x-should-retry %q, want %v", c.name, got, c.retry)
				}
				if c.status == http.StatusTooManyRequests {
					if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 || s > 60 {
						t.Errorf("%s: Retry-After %q, want 1..60 s", c.name, resp.Header.Get("Retry-After"))
					}
				}
			}
		})
	}
}

func TestProviderAPIIsValidated(t *testing.T) {
	if _, err := BuildProviders(map[string]ProviderConfig{"local": {BaseURL: "http://127.0.0.1:1", AuthHeader: "x-k", API: "cohere"}}); err == nil ||
		!strings.Contains(err.Error(), `api "cohere"`) {
		t.Fatalf("api = cohere: %v, want a refusal naming it", err)
	}
	ps, err := BuildProviders(map[string]ProviderConfig{"claude-proxy": {BaseURL: "http://127.0.0.1:1", AuthHeader: "x-api-key", API: "anthropic"}})
	if err != nil || ps["claude-proxy"].API != apiAnthropic || ps["mistral"].API != apiOpenAI || ps["gemini"].API != apiGemini {
		t.Fatalf("providers = %v, %v", ps, err)
	}
}

// TestAnthropicBaseURLWithAndWithoutV1 sends the Vercel AI SDK's request
// (base ending in /v1, then /messages) and the official SDK's (base
// without it, then /v1/messages): both reach upstream /v1/messages, and
// nothing else is rewritten.
func TestAnthropicBaseURLWithAndWithoutV1(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{Providers: []string{"anthropic"}})
	body := `{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[]}`
	for _, c := range []struct{ path, upstream string }{
		{"/anthropic/v1/messages", "/v1/messages"}, // official SDK, Claude Code
		{"/anthropic/messages", "/v1/messages"},    // Vercel AI SDK
		{"/anthropic/messages/count_tokens", "/v1/messages/count_tokens"},
		{"/anthropic/v1/v1/messages", "/v1/v1/messages"}, // not guessed at: upstream's 404
	} {
		before := e.up.count()
		if resp, body := e.do(t, false, "POST", c.path, body, bearer(g.Token)); resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", c.path, resp.StatusCode, body)
		}
		reqs := e.up.requests()
		if len(reqs) != before+1 || reqs[len(reqs)-1].Path != c.upstream {
			t.Fatalf("%s reached upstream as %+v, want %s", c.path, reqs[len(reqs)-1], c.upstream)
		}
	}
	// OpenAI has no such rule: its base URL already ends in /v1.
	og := e.grant(t, api.GrantRequest{})
	if resp, _ := e.do(t, false, "POST", "/openai/chat/completions", chatBody, bearer(og.Token)); resp.StatusCode != 404 {
		t.Fatalf("/openai/chat/completions = %d, want 404", resp.StatusCode)
	}
	if _, err := BuildProviders(map[string]ProviderConfig{"x": {BaseURL: "http://127.0.0.1:1", AuthHeader: "k", Paths: []string{"/api/"}, VersionPrefix: "/v1"}}); err == nil {
		t.Fatal("a version_prefix outside the provider's paths was accepted")
	}
}
