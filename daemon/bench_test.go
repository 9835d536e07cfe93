package daemon

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
)

// BenchmarkProxySmallRequest measures one small non-streaming request sent
// directly to a fake upstream, through a bare httputil.ReverseProxy (the
// floor for a Go proxy), and through Tokfence on the socket and on TCP with
// token checks, policy, audit and all sensors on — in one run, so the
// ratios are comparable:
//
//	go test -run '^$' -bench ProxySmallRequest -benchmem ./daemon/
func BenchmarkProxySmallRequest(b *testing.B) {
	e := startProxyEnv(b, nil)
	g := e.grant(b, GrantRequest{Agent: "bench", TTL: "1h"})
	target, _ := url.Parse(e.up.URL)
	bare := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, "/openai")
	}})
	defer bare.Close()
	cases := []struct {
		name   string
		client *http.Client
		url    string
	}{
		{"direct", e.tcp, e.up.URL + "/v1/chat/completions"},
		{"bare-reverseproxy", e.tcp, bare.URL + "/openai/v1/chat/completions"},
		{"tokfence-unix", e.unix, "http://tokfence/openai/v1/chat/completions"},
		{"tokfence-tcp", e.tcp, e.baseURL() + "/openai/v1/chat/completions"},
	}
	e.up.record = false // a recording upstream would grow without bound
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(chatBody)))
			for i := 0; i < b.N; i++ {
				req, _ := http.NewRequest("POST", c.url, strings.NewReader(chatBody))
				req.Header.Set("Authorization", "Bearer "+g.Token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := c.client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}
