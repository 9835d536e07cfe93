package daemon

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tokfence/tokfence/daemon/api"
)

// payload decodes a token's claims as a map, for forging variants of it.
func payload(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func b64json(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// withClaims returns tok's header and signature around edited claims.
func withClaims(t *testing.T, tok string, edit func(map[string]any)) string {
	parts := strings.Split(tok, ".")
	m := payload(t, tok)
	edit(m)
	return parts[0] + "." + b64json(t, m) + "." + parts[2]
}

func signWith(t *testing.T, m map[string]any, key ed25519.PrivateKey) string {
	tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims(m)).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTokenAttacksNeverReachUpstream(t *testing.T) {
	e := startProxyEnv(t, nil)
	good := e.grant(t, api.GrantRequest{Providers: []string{"openai"}, Models: []string{"gpt-4o*"}, TTL: "10m"})
	claims := payload(t, good.Token)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	pub := e.d.auth // the daemon's own authority, for the HS256-with-public-key case
	_ = pub

	noneToken := func(alg string) string {
		return b64json(t, map[string]string{"alg": alg, "typ": "JWT"}) + "." + b64json(t, claims) + "."
	}
	hs256 := func() string {
		m := map[string]any{}
		for k, v := range claims {
			m[k] = v
		}
		// The attacker knows only public material; the classic confusion
		// signs HS256 with the verifier's public key as the HMAC secret.
		tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(m)).SignedString([]byte(e.d.auth.InstallID()))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	edited := func(k string, v any) string {
		return withClaims(t, good.Token, func(m map[string]any) { m[k] = v })
	}
	resigned := func(k string, v any) string {
		m := payload(t, good.Token)
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return signWith(t, m, otherKey)
	}
	now := time.Now().Unix()
	tests := []struct {
		name string
		hdr  map[string]string
		path string
		body string
	}{
		{"no token", nil, "/openai/v1/chat/completions", chatBody},
		{"empty bearer", map[string]string{"Authorization": "Bearer "}, "/openai/v1/chat/completions", chatBody},
		{"garbage", bearer("not-a-token"), "/openai/v1/chat/completions", chatBody},
		{"edited payload keeps the old signature", bearer(edited("sub", "admin")), "/openai/v1/chat/completions", chatBody},
		{"edited scope widens providers", bearer(edited("scope", map[string]any{"providers": []string{"openai", "anthropic"}})), "/openai/v1/chat/completions", chatBody},
		{"alg none", bearer(noneToken("none")), "/openai/v1/chat/completions", chatBody},
		{"alg None", bearer(noneToken("None")), "/openai/v1/chat/completions", chatBody},
		{"alg NONE", bearer(noneToken("NONE")), "/openai/v1/chat/completions", chatBody},
		{"HS256 with public material as the secret", bearer(hs256()), "/openai/v1/chat/completions", chatBody},
		{"another install's key", bearer(resigned("sub", "tester")), "/openai/v1/chat/completions", chatBody},
		{"wrong audience", bearer(resigned("aud", "someone-else")), "/openai/v1/chat/completions", chatBody},
		{"wrong issuer", bearer(edited("iss", "evil")), "/openai/v1/chat/completions", chatBody},
		{"no exp", bearer(edited("exp", nil)), "/openai/v1/chat/completions", chatBody},
		{"future nbf", bearer(edited("nbf", now+3600)), "/openai/v1/chat/completions", chatBody},
		{"future iat", bearer(edited("iat", now+3600)), "/openai/v1/chat/completions", chatBody},
		{"session A token naming session B", bearer(edited("sid", strings.Repeat("b", 32))), "/openai/v1/chat/completions", chatBody},
		{"token in the query string", nil, "/openai/v1/chat/completions?api_key=" + good.Token + "&key=" + good.Token, chatBody},
		{"token in the body", nil, "/openai/v1/chat/completions", `{"model":"gpt-4o","api_key":"` + good.Token + `"}`},
		{"oversized token", bearer(good.Token + strings.Repeat("A", 5000)), "/openai/v1/chat/completions", chatBody},
		{"two different credentials", map[string]string{"Authorization": "Bearer " + good.Token, "X-Api-Key": "other"}, "/openai/v1/chat/completions", chatBody},
		{"scope: openai token on the anthropic route", bearer(good.Token), "/anthropic/v1/messages", `{"model":"claude-3-5-haiku"}`},
		{"scope: model outside the glob", bearer(good.Token), "/openai/v1/chat/completions", `{"model":"o1-pro"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.up.count()
			resp, body := e.do(t, false, "POST", tt.path, tt.body, tt.hdr)
			if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status = %d (%s), want 401/403/400", resp.StatusCode, body)
			}
			if !strings.Contains(body, `"error":{`) || !strings.Contains(body, `"type":"`) {
				t.Errorf("body %s is not the provider-shaped error", body)
			}
			if strings.Contains(body, good.Token[20:60]) {
				t.Errorf("error echoes the token: %s", body)
			}
			if n := e.up.count() - before; n != 0 {
				t.Fatalf("upstream saw %d requests, want 0", n)
			}
		})
	}
	// The real token still works: the attacks above proved nothing by
	// failing for an unrelated reason.
	if resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(good.Token)); resp.StatusCode != 200 {
		t.Fatalf("good token = %d %s", resp.StatusCode, body)
	}
}

func TestOversizedHeaderIsRefusedFast(t *testing.T) {
	e := startProxyEnv(t, nil)
	start := time.Now()
	resp, _ := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody,
		map[string]string{"Authorization": "Bearer " + strings.Repeat("A", 1<<20)})
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("1 MiB header = %d, want 431", resp.StatusCode)
	}
	if time.Since(start) > 5*time.Second || e.up.count() != 0 {
		t.Fatalf("slow or forwarded: %v, upstream %d", time.Since(start), e.up.count())
	}
}

func TestExpiryAndLeeway(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, api.GrantRequest{TTL: "1m"})
	e.clock.Advance(time.Minute + 3*time.Second) // past exp, inside the 5 s leeway
	if resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token)); resp.StatusCode != 200 {
		t.Fatalf("inside leeway = %d %s, want 200", resp.StatusCode, body)
	}
	e.clock.Advance(10 * time.Second)
	before := e.up.count()
	resp, body := e.do(t, false, "POST", "/openai/v1/chat/completions", chatBody, bearer(g.Token))
	if resp.StatusCode != 401 || !strings.Contains(body, "expired") || e.up.count() != before {
		t.Fatalf("expired = %d %s (upstream +%d), want 401 expired and nothing forwarded", resp.StatusCode, body, e.up.count()-before)
	}
}

func TestTTLOverMaxIsRefusedNotClamped(t *testing.T) {
	e := startProxyEnv(t, nil)
	_, err := e.client.Grant(t.Context(), api.GrantRequest{Agent: "a", Providers: []string{"openai"}, TTL: "25h"})
	if err == nil || !strings.Contains(err.Error(), "ttl") {
		t.Fatalf("Grant 25h = %v, want a ttl error", err)
	}
}
