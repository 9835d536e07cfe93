package daemon

import (
	"net/url"
	"strings"
	"testing"
)

// Regression tests for the holes an attack run from outside found
// (issue 14). Each attacks one; the item number is in its name's comment.

// TestTokenInTheQueryNeverGoesUpstream (item 3): the capability token in
// ?api_key= (beside a valid Authorization header) or in any other
// parameter, and any parameter named like a credential, stay behind; the
// rest of the query goes through.
func TestTokenInTheQueryNeverGoesUpstream(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, GrantRequest{})
	q := url.Values{"api_key": {g.Token}, "q": {"x" + g.Token + "y"}, "access_token": {"abc"}, "Key": {"k"},
		"limit": {"5"}, "order": {"desc"}}
	resp, body := e.do(t, false, "GET", "/openai/v1/models?"+q.Encode(), "", bearer(g.Token))
	if resp.StatusCode != 200 {
		t.Fatalf("models with a query = %d %s", resp.StatusCode, body)
	}
	got := e.up.requests()[0].RawQuery
	if got != "limit=5&order=desc" || strings.Contains(got, g.Token[len(g.Token)-20:]) {
		t.Fatalf("upstream query = %q, want only limit and order", got)
	}
	if s := sessionRisk(t, e, g.Session); s.Risk != "GREEN" {
		t.Fatalf("the session's own token in the query made it %s: it is misplaced, not leaked", s.Risk)
	}
}

// TestHeldKeyInTheQueryIsCaught (item 3): a held provider key in the
// query string is a secret on its way out, as in a body.
func TestHeldKeyInTheQueryIsCaught(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, GrantRequest{})
	resp, _ := e.do(t, false, "GET", "/openai/v1/models?note="+url.QueryEscape(fakeAnthropicKey), "", bearer(g.Token))
	if resp.StatusCode != 403 || e.up.count() != 0 {
		t.Fatalf("held key in the query = %d, upstream saw %d; want 403 and nothing forwarded", resp.StatusCode, e.up.count())
	}
	if s := sessionRisk(t, e, g.Session); s.Risk != "GONE" {
		t.Fatalf("risk after a held key in the query = %s, want RED, which kills the session", s.Risk)
	}
}

// TestOwnAndNominatedHeadersStayBehind (items 3, 10): X-Tokfence-*
// headers are the daemon's, never the provider's; a header the client
// names in Connection is hop-by-hop, even an allow-listed one; the
// injected key survives any Connection trick.
func TestOwnAndNominatedHeadersStayBehind(t *testing.T) {
	e := startProxyEnv(t, nil)
	g := e.grant(t, GrantRequest{Providers: []string{"anthropic"}})
	raw := "POST /anthropic/v1/messages HTTP/1.1\r\nHost: " + e.d.tcpAddr + "\r\nx-api-key: " + g.Token +
		"\r\nAnthropic-Version: 2023-06-01\r\nAnthropic-Beta: tools\r\nX-Custom: 1\r\nX-Kept: 1" +
		"\r\nX-Tokfence-Debug: 1\r\nX-Tokfence-Agent: root\r\nConnection: keep-alive, Anthropic-Beta, x-custom, X-Api-Key" +
		"\r\nContent-Length: 2\r\n\r\n{}"
	if resp := rawRequest(t, e.d.tcpAddr, raw); !strings.HasPrefix(resp, "HTTP/1.1 200") {
		t.Fatalf("request = %q", firstLine(resp))
	}
	h := e.up.requests()[0].Header
	for _, gone := range []string{"Anthropic-Beta", "X-Custom", "X-Tokfence-Debug", "X-Tokfence-Agent", "Connection"} {
		if v := h.Values(gone); len(v) > 0 {
			t.Errorf("upstream got %s: %q", gone, v)
		}
	}
	if h.Get("Anthropic-Version") != "2023-06-01" || h.Get("X-Kept") != "1" || h.Get("X-Api-Key") != fakeAnthropicKey {
		t.Errorf("upstream headers = %v, want anthropic-version, X-Kept and the real key", h)
	}
}
