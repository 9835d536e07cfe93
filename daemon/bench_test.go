package daemon

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"runtime"
	"runtime/metrics"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokfence/tokfence/daemon/api"
)

// BenchmarkProxySmallRequest measures one small non-streaming request sent
// directly to a fake upstream, through a bare httputil.ReverseProxy (the
// floor for a Go proxy), and through Tokfence on the socket and on TCP with
// token checks, policy, audit and all sensors on — in one run, so the
// ratios are comparable:
//
//	go test -run '^$' -bench ProxySmallRequest -benchmem ./daemon/
//
// Besides wall time it reports cpu-µs/op, the CPU time of the whole
// process (client, upstream and proxy alike) per request: on a shared
// machine it is far steadier than wall time, and a variant's figure minus
// direct's is what the proxy costs.
func BenchmarkProxySmallRequest(b *testing.B) {
	e := startProxyEnv(b, nil)
	g := e.grant(b, api.GrantRequest{Agent: "bench", TTL: "1h"})
	target, _ := url.Parse(e.up.URL)
	bare := httptest.NewServer(bareProxy(target, nil, nil))
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
			cpu0 := processCPU()
			for i := 0; i < b.N; i++ {
				postOK(b, c.client, c.url, g.Token, strings.NewReader(chatBody))
			}
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// BenchmarkHeldStreams measures what one open SSE stream costs in memory:
// it opens 200 streams that stay open, each past its first event, directly
// to the fake upstream, through a bare httputil.ReverseProxy and through
// Tokfence on TCP, and reports the growth of live heap and of goroutine
// stacks per stream. Client and upstream live in this process too, so the
// proxy's own cost is a variant's figure minus direct's:
//
//	go test -run '^$' -bench HeldStreams -benchtime 3x ./daemon/
func BenchmarkHeldStreams(b *testing.B) {
	const streams = 200
	release := make(chan struct{})
	e := startProxyEnv(b, heldStream(release))
	defer close(release)
	e.up.record = false
	g := e.grant(b, api.GrantRequest{Agent: "bench", TTL: "1h"})
	target, _ := url.Parse(e.up.URL)
	bare := httptest.NewServer(bareProxy(target, nil, log.New(io.Discard, "", 0))) // closing held streams is not an error
	defer bare.Close()
	cases := []struct{ name, url string }{
		{"direct", e.up.URL + "/v1/chat/completions"},
		{"bare-reverseproxy", bare.URL + "/openai/v1/chat/completions"},
		{"tokfence-tcp", e.baseURL() + "/openai/v1/chat/completions"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			var heap, stack float64
			for range b.N {
				h, s := heldStreamCost(b, c.url, g.Token, streams)
				heap += h
				stack += s
			}
			b.ReportMetric(heap/float64(b.N)/streams, "heap-B/stream")
			b.ReportMetric(stack/float64(b.N)/streams, "stack-B/stream")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// heldStreamCost opens n streams to url, waits for each one's first event,
// and returns the growth of live heap and of stack memory while they are
// open. Every stream is closed before it returns.
func heldStreamCost(b *testing.B, url, token string, n int) (heap, stack float64) {
	b.Helper()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	defer client.CloseIdleConnections()
	settle() // the streams of the run before have wound down
	before := liveMemory()
	bodies := make([]io.ReadCloser, 0, n)
	defer func() {
		for _, body := range bodies {
			body.Close()
		}
	}()
	for range n {
		req, _ := http.NewRequest("POST", url, strings.NewReader(`{"model":"gpt-4o","stream":true}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		bodies = append(bodies, resp.Body)
		if _, err := io.ReadFull(resp.Body, make([]byte, 8)); err != nil {
			b.Fatalf("first event: %v", err)
		}
	}
	after := liveMemory()
	return after[0] - before[0], after[1] - before[1]
}

// settle waits (up to 5 s) until the goroutine count has held still for
// 100 ms, so that connections closed before are gone from the figures.
func settle() {
	last, still := runtime.NumGoroutine(), 0
	for i := 0; i < 500 && still < 10; i++ {
		time.Sleep(10 * time.Millisecond)
		if n := runtime.NumGoroutine(); n == last {
			still++
		} else {
			last, still = n, 0
		}
	}
}

// liveMemory returns the live heap and the stack memory in use, after a GC.
func liveMemory() [2]float64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(s)
	return [2]float64{float64(s[0].Value.Uint64()), float64(s[1].Value.Uint64())}
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// heldStream is an upstream that sends one SSE event and holds the stream
// open until release is closed or the request ends.
func heldStream(release <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
}

// postOK posts body to url with token as a bearer, reads the reply to its
// end and fails b unless it is a 200. It returns the reply's length.
func postOK(b *testing.B, client *http.Client, url, token string, body io.Reader) int64 {
	req, _ := http.NewRequest("POST", url, body)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		b.Fatalf("status %d", resp.StatusCode)
	}
	return n
}

// bareProxy is the floor the benchmarks set Tokfence beside: a plain
// httputil.ReverseProxy to target that strips /openai as the daemon does.
// Its handler runs full duplex: left half duplex, net/http's server may
// consume the rest of the request body when the reply's header goes out,
// while the transport is still reading it to send upstream (to see its
// end), and the transport then drops the upstream connection mid-reply
// ("use of closed network connection"): a reply cut short, now and then,
// in a benchmark of the floor. The daemon sends a body it has read whole.
func bareProxy(target *url.URL, tr http.RoundTripper, errLog *log.Logger) http.Handler {
	rp := &httputil.ReverseProxy{Transport: tr, ErrorLog: errLog, Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.URL.Path = strings.TrimPrefix(pr.In.URL.Path, "/openai")
	}}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		rp.ServeHTTP(w, r)
	})
}
