package daemon

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzRequestURI checks the path sanitiser: whatever it accepts must
// decode to a clean absolute path with no dot segment, empty segment,
// backslash or NUL, and must survive the mux's cleaning unchanged.
func FuzzRequestURI(f *testing.F) {
	for _, s := range []string{"/openai/v1/chat/completions", "/openai/..%2fevil", "/a/%2e%2e/b", "/a/%252f",
		"/a//b", "/a/./b", "/a/b?x=../..", "http://evil/x", "*", "/a/%5c", "/a/b%00", "/%", "/a%2F"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		if checkRequestURI(uri) != nil {
			return
		}
		p, _, _ := strings.Cut(uri, "?")
		dec, err := url.PathUnescape(p)
		if err != nil {
			return // net/http refuses it before our handler
		}
		if !strings.HasPrefix(dec, "/") || strings.Contains(dec, "\\") || strings.Contains(dec, "\x00") || strings.Contains(dec, "//") {
			t.Fatalf("accepted %q, which decodes to %q", uri, dec)
		}
		for _, seg := range strings.Split(dec, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("accepted %q with a dot segment after decoding", uri)
			}
		}
	})
}

// FuzzForwardHeaders checks the header allow-list: no credential-named
// header and no value carrying the token ever goes upstream, and the token
// extractor never panics.
func FuzzForwardHeaders(f *testing.F) {
	f.Add("X-Api-Key", "k", "Authorization", "Bearer tok")
	f.Add("X_Api_Key", "tok", "Cookie", "a=b")
	f.Add("X-Custom-Token-Count", "42", "x-goog-api-key", "tok")
	f.Add("Proxy-Authorization", "Basic x", "X-Echo", "prefix tok suffix")
	f.Add("X-Api-\u212aey", "tok", "X_API_KEY", "v") // Kelvin sign lowercases to k
	f.Fuzz(func(t *testing.T, n1, v1, n2, v2 string) {
		const token = "tok"
		for _, n := range []string{n1, n2} {
			if got, want := string(appendNormHeader([]byte("pre"), n)), "pre"+normHeader(n); got != want {
				t.Fatalf("appendNormHeader(%q) = %q, want %q", n, got, want)
			}
		}
		h := http.Header{}
		h[n1] = []string{v1}
		h[n2] = append(h[n2], v2)
		_, _ = extractToken(h)
		p := &Provider{Name: "x", Headers: []string{"anthropic-version"}}
		out := forwardHeaders(h, p, token)
		for name, vals := range out {
			n := normHeader(name)
			if (isCredentialHeader(n) && !baseForwardHeaders[n]) || strings.HasPrefix(n, "x-forwarded-") || n == "forwarded" {
				t.Fatalf("forwarded credential-like header %q", name)
			}
			for _, v := range vals {
				if strings.Contains(v, token) {
					t.Fatalf("forwarded a value carrying the token: %q: %q", name, v)
				}
			}
		}
	})
}
