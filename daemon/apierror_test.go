package daemon

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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

// parseShaped reads body in the error shape of api, failing t when it is
// another shape: it returns the message and the status the body claims.
func parseShaped(t *testing.T, api, body string, status int) string {
	t.Helper()
	switch api {
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
	for api, rt := range routesByAPI {
		t.Run(api, func(t *testing.T) {
			scoped := e.grant(t, GrantRequest{Providers: all, Models: []string{"nothing-*"}})
			limited := e.grant(t, GrantRequest{Providers: all, MaxRequests: 1})
			spend := e.grant(t, GrantRequest{Providers: all, MaxSpendUSD: 1})
			rated := e.grant(t, GrantRequest{Providers: all})
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
				resp, body := e.do(t, false, "POST", c.path, c.body, c.hdr)
				if resp.StatusCode != c.status {
					t.Errorf("%s: status %d %s, want %d", c.name, resp.StatusCode, body, c.status)
					continue
				}
				if msg := parseShaped(t, api, body, c.status); !strings.Contains(msg, c.want) {
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
